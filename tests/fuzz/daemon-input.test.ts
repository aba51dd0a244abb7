/**
 * No printer input makes the daemon stop: the real daemon (in process) bridges a simulated Bambu Lab printer that
 * publishes a few hundred arbitrary, mutated and damaged reports on its report topic. Afterwards the daemon still
 * answers its API and still counts a normal job exactly once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { type BambuSimulator, startBambuSimulator } from '../../src/simulators/bambu.js';
import type { EventType } from '../../src/stats/events.js';
import { waitFor } from '../reliability/daemon-process.js';
import { anyValue, damaged, FIXTURES, jsonValue, mutated, RUNS } from './arbitraries.js';

const FULL = (JSON.parse(readFileSync(`${FIXTURES}/bambu/ha-bambulab__MOCK-A1.json`, 'utf8')) as { pushall: unknown })
  .pushall;

describe('daemon fed arbitrary printer reports (fuzz)', () => {
  let dir: string;
  let sim: BambuSimulator;
  let daemon: Daemon;
  const events: EventType[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pstats-fuzzd-'));
    sim = await startBambuSimulator({
      serial: '03919A000000301',
      accessCode: 'fuzz0301',
      model: 'A1',
      speed: 200,
      tickMs: 40,
    });
    const config = parseConfig({
      printers: [
        {
          name: 'Fuzz',
          type: 'bambu_lab',
          host: '127.0.0.1',
          port: sim.port,
          serial: sim.serial,
          access_code: 'fuzz0301',
        },
      ],
    });
    daemon = new Daemon({
      config,
      dataDir: dir,
      port: 0,
      host: '127.0.0.1',
      logger: silentLogger(),
      env: { DO_NOT_TRACK: '1' },
      createDriver,
    });
    await daemon.start();
    daemon.service?.onRecorded((event) => events.push(event.event_type));
  });

  afterAll(async () => {
    await daemon?.stop('test done');
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps running and counting after arbitrary reports', { timeout: 30_000 }, async () => {
    await waitFor(
      () => sim.connectedClients() > 0 && (daemon.fleet?.snapshots()[0]?.online ?? false),
      10_000,
      'online',
    );
    const payloads = fc.sample(
      fc.oneof(
        jsonValue.map((v) => JSON.stringify(v)),
        fc.record({ print: fc.dictionary(fc.string(), jsonValue) }).map((v) => JSON.stringify(v)),
        mutated({ print: FULL }, anyValue).map((v) => {
          try {
            return JSON.stringify(v) ?? 'null';
          } catch {
            return '{}';
          }
        }),
        damaged(JSON.stringify({ print: FULL })),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      ),
      Math.min(RUNS, 400),
    );
    for (const payload of payloads) await sim.publishRaw(payload);

    // Back to a known state, then one ordinary job.
    sim.publishFullReport();
    await new Promise((r) => setTimeout(r, 200));
    const before = events.length;
    sim.startJob({ seconds: 30 });
    await waitFor(() => events.slice(before).includes('job_completed'), 10_000, 'the job after the fuzzing');
    const after = events.slice(before);
    expect(after.filter((e) => e === 'job_created')).toHaveLength(1);
    expect(after.filter((e) => e === 'job_completed')).toHaveLength(1);

    const response = await fetch(`http://127.0.0.1:${daemon.port}/api/v1/usage-stats/local`);
    expect(response.status).toBe(200);
    expect(daemon.fleet?.snapshots()[0]?.online).toBe(true);
  });
});
