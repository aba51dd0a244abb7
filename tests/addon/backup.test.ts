/**
 * Issue 13, point 5: a Home Assistant backup taken while the daemon records restores to a sound database holding
 * every event recorded before the backup began.
 *
 * Done as the Supervisor does it (supervisor/apps/app.py: begin_backup, backup, end_backup): config.yaml's
 * `backup_pre` command runs, /data is copied into the backup file by file (here into a directory, in small chunks
 * and slowly, with config.yaml's `backup_exclude` applied as PurePath.match applies it), then `backup_post` runs.
 * Meanwhile the real daemon (`printernizer-stats run`) records events, through its API, and a second writer process
 * (fixtures/event-writer.ts) records thousands more, enough to pass SQLite's automatic checkpoint several times.
 * The copy is then restored into a fresh directory, the daemon is started on it, and the database is checked.
 *
 * The commands run from this checkout: `/usr/bin/node /opt/printernizer-stats/dist/src/cli.js` becomes
 * `node --import tsx src/cli.ts`, and `/data` the test's data directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sleep, tempDir, waitFor } from '../helpers.js';

const root = join(import.meta.dirname, '..', '..');
const addon = parse(readFileSync(join(root, 'config.yaml'), 'utf8')) as {
  backup: string;
  backup_pre: string;
  backup_post: string;
  backup_exclude: string[];
};
const PAGE = 4096;

const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  children.clear();
});

/** config.yaml's command as the Supervisor runs it (split like shlex, no shell), mapped onto this checkout. */
function supervisorCommand(line: string, dataDir: string): string[] {
  const [node, cli, ...rest] = line.split(/\s+/);
  expect([node, cli]).toEqual(['/usr/bin/node', '/opt/printernizer-stats/dist/src/cli.js']);
  return [
    process.execPath,
    '--import',
    'tsx',
    join(root, 'src', 'cli.ts'),
    ...rest.map((arg) => (arg === '/data' ? dataDir : arg)),
  ];
}

function run(command: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** `printernizer-stats run` on a data directory; resolves with its port once it listens. */
async function startDaemon(dataDir: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'run', '--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1'],
    { cwd: root, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  await waitFor(() => output.includes('printernizer-stats is running') || child.exitCode !== null, 20_000, 'daemon');
  if (child.exitCode !== null) throw new Error(`daemon exited: ${output}`);
  const line = output.split('\n').find((l) => l.includes('printernizer-stats is running'))!;
  const port = (JSON.parse(line) as { port: number }).port;
  const stop = () =>
    new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });
  return { port, stop, output: () => output };
}

/** The load: the daemon records through its API (opt-in/opt-out), a second process records in bulk. */
function startLoad(dataDir: string, port: number) {
  const writer = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'event-writer.ts'), dataDir],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.add(writer);
  let bulk = 0;
  writer.stdout!.on('data', (c: Buffer) => {
    const last = c.toString().trim().split('\n').at(-1);
    if (last) bulk = Number(last);
  });
  let toggling = true;
  let toggles = 0;
  let refused = 0;
  let failure: unknown = null;
  const toggler = (async () => {
    while (toggling) {
      const path = toggles % 2 === 0 ? 'opt-in' : 'opt-out';
      try {
        const response = await fetch(`http://127.0.0.1:${port}/api/v1/usage-stats/${path}`, { method: 'POST' });
        // 503: the opt-in's read-then-write transaction lost a race with the bulk writer (SQLITE_BUSY_SNAPSHOT);
        // that race is the second writer's, not the backup's, and the request changed nothing.
        if (response.status === 503) refused++;
        else if (response.status === 200) toggles++;
        else throw new Error(`${path}: ${response.status}`);
      } catch (error) {
        if (toggling) failure = error;
        return;
      }
      await sleep(5);
    }
  })();
  return {
    bulk: () => bulk,
    toggles: () => toggles,
    refused: () => refused,
    async stop() {
      const stillRunning = failure === null;
      toggling = false;
      await toggler;
      if (!stillRunning) throw failure;
      await new Promise<void>((resolve) => {
        if (writer.exitCode !== null) return resolve();
        writer.once('exit', () => resolve());
        writer.kill('SIGTERM');
      });
    },
  };
}

/** supervisor/apps/app.py _is_excluded_by_filter: PurePath(full_path).match(pattern), from the right. */
function excluded(path: string): boolean {
  const parts = path.split('/');
  return addon.backup_exclude.some((pattern) => {
    const want = pattern.split('/');
    if (want.length > parts.length) return false;
    return want.every((glob, i) => {
      const part = parts[parts.length - want.length + i]!;
      const regex = new RegExp(
        `^${glob
          .replace(/[.+^${}()|\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')}$`,
      );
      return regex.test(part);
    });
  });
}

/**
 * Copies a directory the way the Supervisor's tar does (securetar's atomic_contents_add, Python's tarfile): file by
 * file, each file's size taken first and exactly that many bytes read, in chunks, while others write.
 */
async function copyLikeABackup(from: string, to: string, order: (names: string[]) => string[]): Promise<string[]> {
  const copied: string[] = [];
  const walk = async (dir: string) => {
    for (const name of order(readdirSync(dir))) {
      const path = join(dir, name);
      if (excluded(path)) continue;
      const target = join(to, relative(from, path));
      const stat = statSync(path);
      if (stat.isDirectory()) {
        mkdirSync(target, { recursive: true });
        await walk(path);
        continue;
      }
      const input = openSync(path, 'r');
      const output = openSync(target, 'w');
      const chunk = Buffer.alloc(64 * 1024);
      for (let position = 0; position < stat.size; ) {
        const read = readSync(input, chunk, 0, Math.min(chunk.length, stat.size - position), position);
        if (read === 0) throw new Error(`${name} shrank while it was copied`); // tarfile: "unexpected end of data"
        writeFileSync(output, chunk.subarray(0, read));
        position += read;
        await sleep(2); // the daemon writes between two reads
      }
      closeSync(input);
      closeSync(output);
      copied.push(relative(from, path));
    }
  };
  mkdirSync(to, { recursive: true });
  await walk(from);
  return copied;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const sizeOf = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

function eventIds(dataDir: string): Set<string> {
  const db = new Database(join(dataDir, 'usage_stats.db'), { readonly: true });
  try {
    return new Set(db.prepare('SELECT id FROM usage_events').pluck().all() as string[]);
  } finally {
    db.close();
  }
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('config.yaml backup settings', () => {
  it('hot backup with backup_pre/backup_post commands and the excludes the design needs', () => {
    expect(addon.backup).toBe('hot');
    expect(addon.backup_pre).toMatch(/ backup-begin --data-dir \/data$/);
    expect(addon.backup_post).toMatch(/ backup-end --data-dir \/data$/);
    expect(excluded('/data/addons/data/abcd_printernizer_stats/usage_stats.db-shm')).toBe(true);
    expect(excluded('/data/addons/data/abcd_printernizer_stats/daemon.lock')).toBe(true);
    expect(excluded('/data/addons/data/abcd_printernizer_stats/backup-hold.json')).toBe(true);
    // The database and its log are in every backup.
    expect(excluded('/data/addons/data/abcd_printernizer_stats/usage_stats.db')).toBe(false);
    expect(excluded('/data/addons/data/abcd_printernizer_stats/usage_stats.db-wal')).toBe(false);
    expect(excluded('/data/addons/data/abcd_printernizer_stats/options.json')).toBe(false);
  });
});

describe('a backup taken while the daemon records', () => {
  const orders: [string, (names: string[]) => string[]][] = [
    ['database file first', (names) => [...names].sort()],
    ['log first', (names) => [...names].sort().reverse()],
  ];

  it.each(orders)(
    'restores to a sound database with every event recorded before it began (%s)',
    async (_label, order) => {
      const data = tempDir('pstats-live-');
      const daemon = await startDaemon(data);
      const load = startLoad(data, daemon.port);
      await waitFor(() => load.bulk() > 2000 && load.toggles() > 20, 20_000, 'events under load');

      // Everything recorded up to here must be in the backup.
      const before = eventIds(data);
      const pre = await run(supervisorCommand(addon.backup_pre, data));
      expect(pre.code, pre.stderr).toBe(0);
      const hold = JSON.parse(pre.stdout) as {
        held: boolean;
        state: { pid: number; events: number; file_frozen: boolean };
      };
      expect(hold).toMatchObject({ held: true, state: { file_frozen: true } });
      expect(hold.state.events).toBeGreaterThanOrEqual(before.size);

      const db = join(data, 'usage_stats.db');
      const heldAt = Date.now();
      const frozenHash = sha256(db);
      const walAtStart = sizeOf(`${db}-wal`);
      const bulkAtStart = load.bulk();
      const backup = tempDir('pstats-backup-');
      const copied = await copyLikeABackup(data, backup, order);
      // Keep writing until the log is past SQLite's automatic checkpoint (1000 pages) a few times over: without
      // the hold, the database file would have been rewritten by now (see the next test).
      await waitFor(() => sizeOf(`${db}-wal`) > 3000 * PAGE, 30_000, 'the log to pass 3000 pages');
      expect(sha256(db), 'the database file did not change during the backup').toBe(frozenHash);
      expect(load.bulk() - bulkAtStart, 'events recorded during the backup').toBeGreaterThan(300);

      const walAtEnd = sizeOf(`${db}-wal`);
      const heldMs = Date.now() - heldAt;
      const post = await run(supervisorCommand(addon.backup_post, data));
      expect(post.code, post.stderr).toBe(0);
      expect(JSON.parse(post.stdout)).toEqual({ released: true, checkpointed: true });
      await waitFor(() => !pidAlive(hold.state.pid), 5000, 'the holder to let go');
      // After the hold the log is folded back into the database file.
      expect(sha256(db)).not.toBe(frozenHash);

      await load.stop();
      expect(await daemon.stop()).toBe(0);
      expect(copied).toContain('usage_stats.db');
      for (const name of copied) expect(name).not.toMatch(/-shm$|daemon\.lock|backup-hold/);

      // Restore (the Supervisor extracts the tar into an empty /data) and start the daemon on it.
      const restoredDir = tempDir('pstats-restored-');
      await copyLikeABackup(backup, restoredDir, (n) => n);
      const restored = await startDaemon(restoredDir);
      const health = await fetch(`http://127.0.0.1:${restored.port}/api/v1/health`);
      expect(health.status).toBe(200);
      const status = (await (await fetch(`http://127.0.0.1:${restored.port}/api/v1/usage-stats/status`)).json()) as {
        total_events: number;
      };
      expect(status.total_events).toBeGreaterThanOrEqual(before.size);
      expect(await restored.stop()).toBe(0);

      const check = new Database(join(restoredDir, 'usage_stats.db'), { readonly: true });
      try {
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(check.pragma('foreign_key_check')).toEqual([]);
      } finally {
        check.close();
      }
      const after = eventIds(restoredDir);
      const missing = [...before].filter((id) => !after.has(id));
      expect(missing, 'events recorded before the backup began').toEqual([]);
      console.info(
        `backup (${_label}): backup_pre ${pre.ms} ms (tsx), backup_post ${post.ms} ms; held ${heldMs} ms while ` +
          `${load.bulk() - bulkAtStart}+ events were recorded and the log grew ${walAtStart} -> ${walAtEnd} bytes; ` +
          `${before.size} events before, ${after.size} restored; ${load.refused()} opt-in requests lost the race`,
      );
    },
    90_000,
  );

  it('without backup_pre the database file changes while it is being copied (what the hold prevents)', async () => {
    const data = tempDir('pstats-live-');
    const daemon = await startDaemon(data);
    const load = startLoad(data, daemon.port);
    await waitFor(() => load.bulk() > 500, 20_000, 'events under load');
    const db = join(data, 'usage_stats.db');
    const hash = sha256(db);
    // The same load as above: SQLite's automatic checkpoint rewrites pages of the file under the copy.
    await waitFor(() => sha256(db) !== hash, 30_000, 'a checkpoint to rewrite the database file');
    await load.stop();
    expect(await daemon.stop()).toBe(0);
  }, 60_000);
});
