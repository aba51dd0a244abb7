/**
 * Issue 13, point 6: the daemon's SQLite temporary files land where the add-on's AppArmor profile lets it write.
 *
 * SQLite writes large sorts and VACUUM's copy to a temporary file in the first of $SQLITE_TMPDIR, $TMPDIR, /var/tmp,
 * /usr/tmp, /tmp, "." that exists and that access(2) calls writable (os_unix.c, unixTempFileDir). AppArmor does not
 * answer access(2), it refuses the open(2) that follows; so in the container SQLite would pick /var/tmp, which the
 * profile does not allow, and fail with SQLITE_CANTOPEN.
 *
 * 1. From the files: the image's environment (Dockerfile ENV) and apparmor.txt's daemon profile, SQLite's choice of
 *    directory is one the profile lets the daemon write, and without SQLITE_TMPDIR it would not be.
 * 2. For real, in a private mount namespace (root; skipped where `unshare` is refused): /var/tmp is replaced by a
 *    filesystem with no free inode, which, like AppArmor, passes access(2) and refuses every new file; TMPDIR is
 *    unset, as in the image. With the image's SQLITE_TMPDIR a sort that spills to disk and a VACUUM work; without it
 *    they fail.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { readStages } from './dockerfile-stages.js';

const root = join(import.meta.dirname, '..', '..');

/** The run stage's ENV, as the daemon (and backup_pre/backup_post, through `docker exec`) gets it. */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const instruction of readStages(join(root, 'Dockerfile')).at(-1)!.instructions) {
    if (instruction.keyword !== 'ENV') continue;
    for (const [, key, value] of instruction.args.matchAll(/(\w+)=(\S+)/g)) env[key!] = value!;
  }
  return env;
}

/** The daemon's child profile: every file rule that grants writing, as a regular expression over paths. */
function daemonWritablePaths(): RegExp[] {
  const text = readFileSync(join(root, 'apparmor.txt'), 'utf8');
  const start = text.indexOf('profile printernizer_stats_daemon');
  expect(start).toBeGreaterThan(0);
  const body = text.slice(start, text.indexOf('\n  }', start));
  const rules: RegExp[] = [];
  for (const [, path, perms] of body.matchAll(/^\s*(\/\S*|@\{PROC\}\S*)\s+([rwkmlix]+),\s*$/gm)) {
    if (!perms!.includes('w')) continue;
    // AppArmor globbing: ** any path, * within one component, {a,b} alternatives.
    const glob = (part: string) =>
      part
        .replace(/[.+^$()|\\]/g, '\\$&')
        .replace(/\{([^}]*)\}/g, (_m, alternatives: string) => `(?:${alternatives.split(',').join('|')})`)
        .replace(/\*/g, '[^/]*');
    const source = path!.split('**').map(glob).join('.*');
    rules.push(new RegExp(`^${source}$`));
  }
  return rules;
}

/** SQLite's choice (unixTempFileDir) in the container, where /var/tmp and /tmp exist and root may write both. */
function sqliteTempDir(env: Record<string, string | undefined>): string {
  const existing = new Set(['/var/tmp', '/tmp', '.']); // Alpine has no /usr/tmp
  const candidates = [env.SQLITE_TMPDIR, env.TMPDIR, '/var/tmp', '/usr/tmp', '/tmp', '.'];
  return candidates.find(
    (dir) => dir !== undefined && (existing.has(dir) || dir === env.SQLITE_TMPDIR || dir === env.TMPDIR),
  )!;
}

// SQLITE_TEMP_FILE_PREFIX: temporary files are named etilqs_<random>.
const tempFile = (dir: string) => `${dir}/etilqs_3a9f0c7d21b84e65`;

describe('SQLite temporary files under the AppArmor profile (from the files)', () => {
  const env = imageEnv();
  const writable = daemonWritablePaths();
  const allowed = (path: string) => writable.some((rule) => rule.test(path));

  it('the profile lets the daemon write /data and /tmp, and nothing else on disk', () => {
    expect(allowed('/data/usage_stats.db-wal')).toBe(true);
    expect(allowed(tempFile('/tmp'))).toBe(true);
    for (const path of ['/var/tmp/x', '/usr/tmp/x', '/opt/printernizer-stats/x', '/etc/x', '/root/x']) {
      expect(allowed(path), path).toBe(false);
    }
  });

  it('the image sets SQLITE_TMPDIR, so SQLite picks a directory the profile allows', () => {
    expect(env.SQLITE_TMPDIR).toMatch(/^\/(tmp|data)(\/|$)/);
    expect(env.TMPDIR).toBeUndefined();
    const chosen = sqliteTempDir(env);
    expect(chosen).toBe(env.SQLITE_TMPDIR);
    expect(allowed(tempFile(chosen))).toBe(true);
  });

  it('without it SQLite would pick /var/tmp, which the profile refuses (the failure this prevents)', () => {
    const chosen = sqliteTempDir({ ...env, SQLITE_TMPDIR: undefined });
    expect(chosen).toBe('/var/tmp');
    expect(allowed(tempFile(chosen))).toBe(false);
  });
});

// As the other namespace tests here (run-script, image): skipped, not failed, where `unshare -m` is refused (not root).
const canUnshare =
  spawnSync('unshare', ['-m', '--propagation', 'private', 'mount', '-t', 'tmpfs', 'probe', '/mnt']).status === 0;
if (!canUnshare) process.stderr.write('[skip] the SQLite sandbox test needs root and unshare -m\n');

/** A sort larger than the page cache (it spills to a temporary file) and a VACUUM, on the daemon's own database. */
const WORKLOAD = `
import { databasePath, openDatabase } from ${JSON.stringify(join(root, 'src', 'db', 'open.ts'))};
const db = openDatabase(databasePath(process.argv[2]));
const insert = db.prepare(
  "INSERT INTO usage_events (id, event_type, timestamp, metadata, created_at) VALUES (?, 'job_created', ?, ?, ?)",
);
db.transaction(() => {
  for (let i = 0; i < 30000; i++) {
    const at = new Date(1_800_000_000_000 - i * 60_000).toISOString();
    insert.run(String(i).padStart(36, '0'), at, JSON.stringify({ printer_model: 'MK4', n: Math.random() }), at);
  }
})();
db.pragma('cache_size = -256'); // 256 KiB: the sort below does not fit
const outcome = {};
for (const [name, work] of [
  ['sort', () => db.prepare('SELECT id FROM usage_events ORDER BY metadata, timestamp').all().length],
  ['vacuum', () => db.exec('VACUUM')],
]) {
  try {
    work();
    outcome[name] = 'ok';
  } catch (error) {
    outcome[name] = error.code ?? String(error);
  }
}
db.close();
process.stdout.write(JSON.stringify(outcome));
`;

describe.skipIf(!canUnshare)('SQLite temporary files under the AppArmor profile (for real)', () => {
  function runWorkload(sqliteTmpdir: string | undefined) {
    const dir = tempDir('pstats-sandbox-');
    const script = join(dir, 'workload.ts');
    writeFileSync(script, WORKLOAD);
    const data = join(dir, 'data');
    // /var/tmp: writable to access(2), but no file can be created in it (no free inode), as under AppArmor.
    const shell = `
      set -e
      mkdir -p "$DATA"
      mount -t tmpfs -o size=64k,nr_inodes=1 denied /var/tmp
      if touch /var/tmp/probe 2>/dev/null; then echo "the stand-in for AppArmor let a file through" >&2; exit 3; fi
      exec env -u SQLITE_TMPDIR -u TMPDIR ${sqliteTmpdir ? `SQLITE_TMPDIR=${sqliteTmpdir}` : ''} \
        "$NODE" --import tsx "$SCRIPT" "$DATA"
    `;
    const result = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', shell], {
      cwd: root,
      env: { PATH: process.env.PATH, NODE: process.execPath, SCRIPT: script, DATA: data },
      encoding: 'utf8',
      timeout: 60_000,
    });
    // Without stack lines: vitest would try to read source maps of the files they name.
    expect(result.status, result.stderr.replace(/^\s+at .*$/gm, '')).toBe(0);
    return JSON.parse(result.stdout) as { sort: string; vacuum: string };
  }

  it("with the image's SQLITE_TMPDIR a spilling sort and a VACUUM work", () => {
    expect(runWorkload(imageEnv().SQLITE_TMPDIR)).toEqual({ sort: 'ok', vacuum: 'ok' });
  }, 60_000);

  it('without it both fail: SQLite chose a directory it may not create files in', () => {
    expect(runWorkload(undefined)).toEqual({ sort: 'SQLITE_CANTOPEN', vacuum: 'SQLITE_CANTOPEN' });
  }, 60_000);
});
