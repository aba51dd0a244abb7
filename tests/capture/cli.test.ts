/**
 * `printernizer-stats capture` and `replay` as a user runs them (child processes): exit codes, the standalone capture
 * that runs the printer itself, and the capture asked of a daemon running on the same data directory.
 */
import { type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { parseCapture } from '../../src/capture/format.js';
import { parseConfig } from '../../src/config.js';
import { databasePath } from '../../src/db/open.js';
import { silentLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { type BambuSimulator, startBambuSimulator } from '../../src/simulators/bambu.js';
import { tempDir, waitFor } from '../helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'tests/fixtures/captures/snapcon-p2s-cancel.jsonl');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], options: SpawnOptions = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, DO_NOT_TRACK: '1' },
      ...options,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

describe('printernizer-stats replay', () => {
  it('prints the events and exits 0 when --expect finds them all', { timeout: 30_000 }, async () => {
    const run = await cli(['replay', FIXTURE, '--instant', '--expect']);
    expect(run.code, run.stderr).toBe(0);
    expect(
      run.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/)[3]),
    ).toEqual(['printer_connected', 'file_uploaded', 'job_created', 'error_occurred', 'job_failed', 'error_occurred']);
    expect(run.stdout).toContain('failure_type=cancelled');
    expect(run.stderr).toContain("--expect: the replay recorded the capture's 6 events");
  });

  it('exits 1 on a difference, 2 on a truncated, malformed or future file and on bad arguments', async () => {
    const dir = tempDir();
    const text = readFileSync(FIXTURE, 'utf8');
    const wrong = join(dir, 'wrong.jsonl');
    writeFileSync(wrong, text.replace('"failure_type":"cancelled"', '"failure_type":"failed"'));
    const truncated = join(dir, 'truncated.jsonl');
    writeFileSync(truncated, text.slice(0, 2500));
    const malformed = join(dir, 'malformed.jsonl');
    writeFileSync(malformed, text.replace('"kind":"link"', '"kind":"wormhole"'));
    const future = join(dir, 'future.jsonl');
    writeFileSync(future, text.replace('"version":1', '"version":7'));

    const [differs, cut, bad, newer, none, both] = await Promise.all([
      cli(['replay', wrong, '--instant', '--expect']),
      cli(['replay', truncated, '--instant']),
      cli(['replay', malformed, '--instant']),
      cli(['replay', future, '--instant']),
      cli(['replay', '--instant']),
      cli(['replay', FIXTURE, '--instant', '--speed', '2']),
    ]);
    expect(differs.code).toBe(1);
    expect(differs.stderr).toMatch(
      /#5: the capture recorded job_failed .*"failure_type":"failed".*the replay recorded/,
    );
    expect(cut.code).toBe(2);
    expect(cut.stderr).toMatch(/truncated\.jsonl: line \d+: the file ends in the middle of this line/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/malformed\.jsonl: line 2: invalid line/);
    expect(newer.code).toBe(2);
    expect(newer.stderr).toMatch(/capture format version 7.*update printernizer-stats/);
    expect(none.code).toBe(2);
    expect(both.code).toBe(2);
  }, 60_000);
});

describe('printernizer-stats capture', () => {
  let sim: BambuSimulator;

  beforeAll(async () => {
    sim = await startBambuSimulator({
      serial: '01P00A000000401',
      accessCode: 'cli40001',
      model: 'P1S',
      host: '127.0.0.1',
      port: 0,
      speed: 20,
      tickMs: 100,
    });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  function config(dir: string): void {
    writeFileSync(
      join(dir, 'options.json'),
      JSON.stringify({
        printers: [
          {
            name: 'Workshop P1S',
            type: 'bambu_lab',
            host: '127.0.0.1',
            port: sim.port,
            serial: sim.serial,
            access_code: 'cli40001',
          },
        ],
      }),
    );
  }

  it('refuses an unknown printer by name', async () => {
    const dir = tempDir();
    config(dir);
    const run = await cli(['capture', '--printer', 'Garage', '--data-dir', dir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no configured printer is called "Garage"; configured: "Workshop P1S"');
  });

  it('standalone: runs the printer itself for the capture and records the events in the data directory', async () => {
    const dir = tempDir();
    config(dir);
    const output = join(dir, 'capture.jsonl');
    const running = cli([
      'capture',
      '--printer',
      'workshop p1s',
      '--minutes',
      '0.2',
      '--output',
      output,
      '--data-dir',
      dir,
    ]);
    // The job once the capture runs and the printer's baseline is in it (the CLI takes a few seconds to start).
    await waitFor(
      () => existsSync(output) && readFileSync(output, 'utf8').includes('"gcode_state"'),
      20_000,
      'a report in the capture',
    );
    sim.startJob({ seconds: 40 });
    const run = await running;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('no daemon runs on this data directory');
    expect(run.stderr).toMatch(/Serials, access codes, passwords/);
    const capture = parseCapture(readFileSync(output, 'utf8'));
    expect(capture.header).toMatchObject({ session: 'started', model: 'P1S', printer_type: 'bambu_lab' });
    expect(capture.complete).toBe(true);
    const events = capture.lines.flatMap((line) => (line.kind === 'event' ? [line.event_type] : []));
    expect(events).toEqual(expect.arrayContaining(['printer_connected', 'job_created', 'job_completed']));
    // The events went into the data directory's database too (the daemon was not there to record them).
    const db = new Database(databasePath(dir), { readonly: true });
    const stored = db.prepare('SELECT event_type FROM usage_events').all() as { event_type: string }[];
    db.close();
    expect(stored.map((row) => row.event_type)).toEqual(expect.arrayContaining(['job_created', 'job_completed']));
    const replay = await cli(['replay', output, '--instant', '--expect']);
    expect(replay.code, replay.stderr).toBe(0);
  }, 60_000);

  it('beside a running daemon: the daemon records it and keeps running; a second one at once is refused', async () => {
    const dir = tempDir();
    config(dir);
    const daemon = new Daemon({
      config: parseConfig(JSON.parse(readFileSync(join(dir, 'options.json'), 'utf8'))),
      dataDir: dir,
      port: 0,
      host: '127.0.0.1',
      logger: silentLogger(),
      createDriver,
      env: {},
    });
    const { port } = await daemon.start();
    try {
      const output = join(dir, 'joined.jsonl');
      const args = ['capture', '--printer', 'Workshop P1S', '--data-dir', dir, '--port', String(port)];
      const first = cli([...args, '--minutes', '0.25', '--output', output]);
      await waitFor(
        () => daemon.core?.captures.status('workshop_p1s')?.state === 'recording',
        20_000,
        'the capture asked of the daemon',
      );
      const second = await cli([...args, '--minutes', '1', '--output', join(dir, 'second.jsonl')]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain('a capture of this printer is already running');
      sim.startJob({ seconds: 20 });
      const run = await first;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/the daemon \(pid \d+\) records it and keeps running/);
      const capture = parseCapture(readFileSync(output, 'utf8'));
      expect(capture.header.session).toBe('joined');
      expect(daemon.fleet?.snapshots()[0]?.online).toBe(true);
      const replay = await cli(['replay', output, '--instant', '--expect']);
      expect(replay.code, replay.stderr).toBe(0);
    } finally {
      await daemon.stop();
    }
  }, 60_000);
});
