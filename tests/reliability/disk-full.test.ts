/**
 * Disk full and read-only (issue 8, item 2): the real daemon bridges a simulated Bambu Lab printer running jobs back
 * to back while its database cannot grow. It must keep running and serving the API, report error_occurred
 * (component database) exactly once, keep what happened in memory, and store it when space returns.
 *
 * Two ways to fill the disk: SQLite's page limit (PRINTERNIZER_MAX_DB_PAGES, works everywhere) with the space given
 * back by deleting a filler table from another connection; and, where the test may mount (root in a container), a
 * real 1 MiB tmpfs filled with a file that is deleted to give the space back.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { databasePath, openDatabase } from '../../src/db/open.js';
import { createHttpApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { type BambuSimulator, startBambuSimulator } from '../../src/simulators/bambu.js';
import { testService } from '../helpers.js';
import { requireTool } from '../requirements.js';
import { type DaemonProcess, getJson, startDaemonProcess, waitFor, writeConfig } from './daemon-process.js';

const REFUSED = 'the statistics database refuses writes; keeping events in memory until it accepts them again';
const ACCEPTED = 'the statistics database accepts writes again';

let sim: BambuSimulator;
let driver: NodeJS.Timeout;
let root: string;
let daemon: DaemonProcess | null = null;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'pstats-full-'));
  sim = await startBambuSimulator({
    serial: '01P00A000000201',
    accessCode: 'full0201',
    model: 'P1S',
    speed: 200,
    tickMs: 40,
  });
  driver = setInterval(() => {
    if (['IDLE', 'FINISH', 'FAILED'].includes(sim.state())) sim.startJob({ seconds: 20 });
  }, 50);
});

afterEach(async () => {
  await daemon?.kill();
  daemon = null;
});

afterAll(async () => {
  clearInterval(driver);
  await sim.stop();
  rmSync(root, { recursive: true, force: true });
});

function config(dir: string): string {
  return writeConfig(dir, {
    log_level: 'debug',
    printers: [
      {
        name: 'Full',
        type: 'bambu_lab',
        host: '127.0.0.1',
        port: sim.port,
        serial: sim.serial,
        access_code: 'full0201',
      },
    ],
  });
}

const count = (d: DaemonProcess, msg: string) => d.lines.filter((l) => l.msg === msg).length;

/**
 * The common course: wait for the refusal, check the daemon lives and answers while full, give the space back, and
 * check that it records again with exactly one database error and nothing it reported lost.
 */
async function fullThenRecovered(d: DaemonProcess, port: number, freeSpace: () => void, dbPath: string) {
  await waitFor(() => count(d, REFUSED) > 0, 20_000, 'the database to refuse writes');
  const recordedWhenFull = d.recorded.length;
  // Full for a while: jobs go on (events held in memory), the API answers, the refusal is reported once.
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const local = await getJson(port, '/api/v1/usage-stats/local');
    expect(local.status).toBe(200);
    expect((local.body as { total_events: number }).total_events).toBeGreaterThan(0);
    expect((await getJson(port, '/api/v1/health')).status).toBe(200);
  }
  // A write through the API either fits in free pages or is refused as 503 storage_unavailable, never a 500.
  const optIn = await fetch(`http://127.0.0.1:${port}/api/v1/usage-stats/opt-in`, { method: 'POST' });
  const optInBody = (await optIn.json()) as { error?: { code: string } };
  expect([200, 503]).toContain(optIn.status);
  if (optIn.status === 503) expect(optInBody.error?.code).toBe('storage_unavailable');
  expect(d.child.exitCode).toBeNull();
  expect(d.recorded.length).toBe(recordedWhenFull);
  expect(count(d, REFUSED)).toBe(1);

  freeSpace();
  await waitFor(() => count(d, ACCEPTED) > 0, 10_000, 'the database to accept writes again');
  await waitFor(() => d.recorded.length > recordedWhenFull + 4, 10_000, 'events recorded after recovery');
  expect(count(d, REFUSED)).toBe(1);
  expect(count(d, ACCEPTED)).toBe(1);
  const local = await getJson(port, '/api/v1/usage-stats/local');
  expect(local.status).toBe(200);

  const exit = await d.kill('SIGTERM');
  expect(exit.code).toBe(0);
  const db = new Database(dbPath, { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const errors = db.prepare("SELECT metadata FROM usage_events WHERE event_type = 'error_occurred'").all() as {
      metadata: string;
    }[];
    const databaseErrors = errors.filter((e) => JSON.parse(e.metadata).component === 'database');
    expect(databaseErrors.map((e) => JSON.parse(e.metadata))).toEqual([
      { error_type: 'database_full', component: 'database' },
    ]);
    const ids = new Set((db.prepare('SELECT id FROM usage_events').all() as { id: string }[]).map((r) => r.id));
    for (const { id, type } of d.recorded) expect(ids.has(id), `recorded ${type} ${id}`).toBe(true);
    // The jobs that ran while the disk was full were kept in memory and stored on recovery with their own time.
    const held = db
      .prepare(
        "SELECT COUNT(*) AS n FROM usage_events WHERE event_type IN ('job_created', 'job_completed') AND julianday(created_at) - julianday(timestamp) > 0.5 / 86400",
      )
      .get() as { n: number };
    expect(held.n).toBeGreaterThan(2);
  } finally {
    db.close();
  }
}

describe('database unable to grow', () => {
  it('page limit: keeps running and serving, reports once, records again when space returns', {
    timeout: 60_000,
  }, async () => {
    const dir = join(root, 'pages');
    mkdirSync(dir);
    const dbPath = databasePath(dir);
    // A migrated database with a filler table that can be deleted later to give pages back.
    const setup = openDatabase(dbPath);
    setup.exec('CREATE TABLE test_filler (b BLOB)');
    const fill = setup.prepare('INSERT INTO test_filler VALUES (randomblob(3000))');
    for (let i = 0; i < 40; i++) fill.run();
    setup.pragma('wal_checkpoint(TRUNCATE)');
    const pages = setup.pragma('page_count', { simple: true }) as number;
    setup.close();

    // Room for start-up and a few events only.
    daemon = startDaemonProcess({
      configPath: config(dir),
      dataDir: dir,
      env: { PRINTERNIZER_MAX_DB_PAGES: String(pages + 4) },
    });
    const port = await daemon.running;
    await fullThenRecovered(
      daemon,
      port,
      () => {
        const db = new Database(dbPath);
        db.pragma('busy_timeout = 5000');
        db.exec('DROP TABLE test_filler');
        db.close();
      },
      dbPath,
    );
  });

  const mountRoot = join(tmpdir(), `pstats-tmpfs-${process.pid}`);
  const mounted = requireTool(
    'a tmpfs mount',
    () => {
      try {
        mkdirSync(mountRoot, { recursive: true });
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountRoot], { stdio: 'ignore' });
        return true;
      } catch (error) {
        rmSync(mountRoot, { recursive: true, force: true });
        return { ok: false, reason: `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}` };
      }
    },
    'run as root',
  );
  afterAll(() => {
    if (!mounted) return;
    execFileSync('umount', ['-l', mountRoot], { stdio: 'ignore' });
    rmSync(mountRoot, { recursive: true, force: true });
  });

  it.skipIf(!mounted)(
    'full 1 MiB tmpfs: keeps running and serving, records again when the file is deleted',
    { timeout: 60_000 },
    async () => {
      const dir = join(mountRoot, 'data');
      daemon = startDaemonProcess({ configPath: config(mountRoot), dataDir: dir });
      const port = await daemon.running;
      await waitFor(() => (daemon?.recorded.length ?? 0) > 3, 10_000, 'first events');
      // Fill every free byte of the filesystem.
      const ballast = join(mountRoot, 'ballast');
      const fd = openSync(ballast, 'w');
      const chunk = Buffer.alloc(4096, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
      } finally {
        closeSync(fd);
      }
      await fullThenRecovered(daemon, port, () => unlinkSync(ballast), databasePath(dir));
    },
  );

  it.skipIf(!mounted)('read-only filesystem at start: exits with a clear error, no stack', async () => {
    const dir = join(mountRoot, 'ro');
    mkdirSync(dir);
    const setup = openDatabase(databasePath(dir));
    setup.close();
    const cfg = config(mountRoot);
    execFileSync('mount', ['-o', 'remount,ro', mountRoot]);
    try {
      daemon = startDaemonProcess({ configPath: cfg, dataDir: dir });
      const exit = await daemon.exited;
      expect(exit.code).toBe(1);
      expect(daemon.stderr()).toMatch(/not writable \(EROFS\)/);
      expect(daemon.stderr()).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mountRoot]);
    }
  });

  // Found by the tmpfs case: POST /opt-in on a full disk answered 500 internal_error (and logged a stack).
  it('regression: a write the database refuses answers 503 storage_unavailable', async () => {
    const { service } = testService();
    service.optIn = () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const app = createHttpApp({ service, logger: silentLogger(), version: '0.1.0' });
    const response = await app.request('/api/v1/usage-stats/opt-in', { method: 'POST' });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      error: { code: 'storage_unavailable', message: expect.any(String) },
    });
  });
});
