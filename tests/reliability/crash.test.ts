/**
 * Crash safety (issue 8, item 1): the real daemon bridges two simulated Bambu Lab printers whose jobs the test runs
 * back to back on a fast clock, and is killed with SIGKILL at random moments (start-up included) 20 times. After each
 * kill: the SQLite file passes integrity_check, every event the daemon logged as recorded is in it, none is doubled,
 * and no job is counted twice across restarts.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databasePath } from '../../src/db/open.js';
import { type BambuSimulator, type SimulatedModel, startBambuSimulator } from '../../src/simulators/bambu.js';
import { type DaemonProcess, startDaemonProcess, waitFor, writeConfig } from './daemon-process.js';

const KILLS = 20;
const PRINTERS: { serial: string; model: SimulatedModel; code: string }[] = [
  { serial: '00M00A000000101', model: 'X1C', code: 'crash101' },
  { serial: '03919A000000102', model: 'A1', code: 'crash102' },
];

interface Row {
  id: string;
  event_type: string;
  metadata: string | null;
}

function checkDatabase(path: string): Row[] {
  // Killed before it created the file: nothing can have been recorded.
  if (!existsSync(path)) return [];
  // Read-only, so the test never checkpoints or recovers the WAL for the daemon: its restart has to.
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    return db.prepare('SELECT id, event_type, metadata FROM usage_events').all() as Row[];
  } finally {
    db.close();
  }
}

describe('daemon killed with SIGKILL while recording', () => {
  let dir: string;
  const sims: BambuSimulator[] = [];
  const started = new Map<string, number>();
  let driver: NodeJS.Timeout | null = null;
  let current: DaemonProcess | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pstats-crash-'));
    for (const p of PRINTERS) {
      sims.push(
        await startBambuSimulator({
          serial: p.serial,
          accessCode: p.code,
          model: p.model,
          speed: 200,
          tickMs: 40,
          jobSeconds: 40,
        }),
      );
      started.set(p.model, 0);
    }
    // Jobs back to back (0.2 s each, about a third fail): a kill often lands while one runs.
    driver = setInterval(() => {
      for (const sim of sims) {
        if (['IDLE', 'FINISH', 'FAILED'].includes(sim.state())) {
          sim.startJob({
            seconds: 20 + Math.floor(Math.random() * 40),
            outcome: Math.random() < 0.3 ? 'fail' : 'finish',
          });
          started.set(sim.model, (started.get(sim.model) ?? 0) + 1);
        }
      }
    }, 60);
  });

  afterAll(async () => {
    if (driver) clearInterval(driver);
    await current?.kill();
    await Promise.allSettled(sims.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it(`loses nothing, doubles nothing and counts each job once over ${KILLS} kills`, { timeout: 120_000 }, async () => {
    const dataDir = join(dir, 'data');
    const configPath = writeConfig(dir, {
      log_level: 'debug',
      printers: sims.map((sim, i) => ({
        name: `Crash ${i}`,
        type: 'bambu_lab',
        host: '127.0.0.1',
        port: sim.port,
        serial: sim.serial,
        access_code: PRINTERS[i]!.code,
      })),
    });
    const logged = new Map<string, string>();
    let killedWhileRunning = 0;

    for (let round = 0; round < KILLS; round++) {
      current = startDaemonProcess({ configPath, dataDir });
      const daemon = current;
      // Every third kill may land anywhere in start-up (opening, migrations, app_start); the others while it bridges.
      const early = round % 3 === 0;
      if (early) {
        await Promise.race([daemon.exited, new Promise((r) => setTimeout(r, 300 + Math.random() * 900))]);
      } else {
        await daemon.running;
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 700));
        killedWhileRunning++;
      }
      const exit = await daemon.kill('SIGKILL');
      if (exit.signal !== 'SIGKILL') throw new Error(`daemon exited by itself (${exit.code}): ${daemon.stderr()}`);

      for (const { id, type } of daemon.recorded) {
        expect(logged.has(id), `event ${id} logged twice`).toBe(false);
        logged.set(id, type);
      }
      const rows = checkDatabase(databasePath(dataDir));
      const stored = new Map(rows.map((r) => [r.id, r.event_type]));
      for (const [id, type] of logged) expect(stored.get(id), `logged ${type} ${id} is missing`).toBe(type);
      // A row committed just before the kill may miss its log line; more than one per kill would be a double.
      expect(rows.length - logged.size).toBeGreaterThanOrEqual(0);
      expect(rows.length - logged.size).toBeLessThanOrEqual(round + 1);
    }

    // After the last kill: a normal run resumes tracking (new jobs are counted) and stops cleanly.
    current = startDaemonProcess({ configPath, dataDir });
    const last = current;
    await last.running;
    await waitFor(
      () => last.recorded.filter((e) => e.type === 'job_completed' || e.type === 'job_failed').length >= 2,
      15_000,
      'jobs counted after the last restart',
    );
    expect((await last.kill('SIGTERM')).code).toBe(0);
    expect(last.recorded.at(-1)?.type).toBe('app_shutdown');
    for (const { id, type } of last.recorded) logged.set(id, type);
    current = null;

    const rows = checkDatabase(databasePath(dataDir));
    const storedIds = new Set(rows.map((r) => r.id));
    for (const [id, type] of logged) expect(storedIds.has(id), `logged ${type} ${id} is missing`).toBe(true);
    const jobs = new Map<string, { created: number; ended: number }>();
    for (const row of rows) {
      if (!['job_created', 'job_completed', 'job_failed'].includes(row.event_type)) continue;
      const model = String((JSON.parse(row.metadata ?? '{}') as { printer_model?: string }).printer_model);
      const counts = jobs.get(model) ?? { created: 0, ended: 0 };
      if (row.event_type === 'job_created') counts.created++;
      else counts.ended++;
      jobs.set(model, counts);
    }
    expect(killedWhileRunning).toBeGreaterThanOrEqual(10);
    expect(logged.size).toBeGreaterThan(KILLS); // at least app_start each time it got that far, plus jobs
    for (const p of PRINTERS) {
      const counts = jobs.get(p.model) ?? { created: 0, ended: 0 };
      const simulated = started.get(p.model) ?? 0;
      expect(counts.created, `${p.model} job_created`).toBeGreaterThan(0);
      // A job running across a kill is a baseline job after the restart: never created again.
      expect(counts.created, `${p.model} job_created vs jobs run`).toBeLessThanOrEqual(simulated);
      expect(counts.ended, `${p.model} jobs ended vs jobs run`).toBeLessThanOrEqual(simulated);
      // Each restart may finish at most one job it did not see start.
      expect(counts.ended, `${p.model} jobs ended vs created`).toBeLessThanOrEqual(counts.created + KILLS + 1);
    }
  });
});
