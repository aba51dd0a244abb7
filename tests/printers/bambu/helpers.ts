/**
 * Shared pieces for the Bambu Lab tests: the real fixtures (tests/fixtures/bambu, copied verbatim from ../shared/fixtures/bambu), simulators
 * and drivers closed after each test, an event sink backed by a real SQLite file, and a log capture.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { BambuDriver, type BambuDriverOptions, type BambuTimings } from '../../../src/printers/bambu/driver.js';
import { type BambuSimulator, type BambuSimulatorOptions, startBambuSimulator } from '../../../src/simulators/bambu.js';
import type { EventMetadata, EventType } from '../../../src/stats/events.js';
import { captureLogger, type LogLine, sleep, testService, waitFor } from '../../helpers.js';

const here = dirname(fileURLToPath(import.meta.url));

type Json = Record<string, unknown>;

function readFixture(name: string): Json {
  return JSON.parse(readFileSync(join(here, '..', '..', 'fixtures', 'bambu', name), 'utf8')) as Json;
}

export const FIXTURE_FILES = {
  x1c: 'ha-bambulab__2AMS1-1AMS2-1AMSHT.json',
  p1pFinish: 'ha-bambulab__MOCK-P1PNOAMS.json',
  p1pFailed: 'ha-bambulab__P1P.json',
  a1: 'ha-bambulab__MOCK-A1.json',
} as const;
export type FixtureName = keyof typeof FIXTURE_FILES;

/** The `print` object of a fixture's full report (files keep it under pushall.print or push_all). */
export function fixturePrint(name: FixtureName): Json {
  const file = readFixture(FIXTURE_FILES[name]);
  const pushall = (file.pushall as Json | undefined)?.print ?? file.push_all;
  return structuredClone(pushall) as Json;
}

/** The full report as the printer sends it: `{"print": {...}}`. */
export function fullReport(name: FixtureName, overrides: Json = {}): string {
  return JSON.stringify({ print: { ...fixturePrint(name), ...overrides } });
}

/** The get_version reply, `{"info": {...}}` (some files keep the inner object only). */
export function versionReply(name: FixtureName): string {
  const gv = readFixture(FIXTURE_FILES[name]).get_version as Json;
  return JSON.stringify(gv.info ? gv : { info: gv });
}

/** The real delta captures, one payload per line. */
export function realDeltas(): string[] {
  return readFileSync(join(here, '..', '..', 'fixtures', 'bambu', 'real-captures__deltas.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
}

let seq = 100_000;
/** A msg 1 delta carrying only the given keys. */
export function delta(fields: Json): string {
  return JSON.stringify({ print: { ...fields, command: 'push_status', msg: 1, sequence_id: String(seq++) } });
}

// --- integration ---------------------------------------------------------------------------------------------------

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export const ACCESS_CODE = '12345678';

export async function simulator(opts: Partial<BambuSimulatorOptions> = {}): Promise<BambuSimulator> {
  const sim = await startBambuSimulator({
    serial: '01S00A391800001',
    accessCode: ACCESS_CODE,
    model: 'P1P',
    speed: 100,
    tickMs: 50,
    ...opts,
  });
  cleanups.push(() => sim.stop());
  return sim;
}

export interface RecordedEvent {
  type: EventType;
  metadata: EventMetadata;
}

export { captureLogger, type LogLine, sleep, waitFor };

/** Timings short enough for tests; backoff still grows and still has jitter. */
export const FAST_TIMINGS: Partial<BambuTimings> = {
  backoffInitialMs: 50,
  backoffMaxMs: 400,
  authRetryMs: 150,
  watchdogMs: 5000,
  connectTimeoutMs: 2000,
  keepaliveSeconds: 5,
  stopTimeoutMs: 500,
};

/**
 * A driver against a simulator, recording through the real stats service into SQLite. `events` keeps the order,
 * `stored()` reads back what the database holds.
 */
export function driverFor(
  target: { port: number; serial: string },
  overrides: Partial<BambuDriverOptions> = {},
): {
  driver: BambuDriver;
  events: RecordedEvent[];
  of: (type: EventType) => RecordedEvent[];
  stored: () => Partial<Record<EventType, number>>;
  log: ReturnType<typeof captureLogger>;
} {
  const { service, repository } = testService();
  const events: RecordedEvent[] = [];
  service.onRecorded((e) => events.push({ type: e.event_type, metadata: e.metadata }));
  const log = captureLogger();
  const driver = new BambuDriver(
    {
      id: 'workshop_p1p',
      name: 'Workshop P1P',
      host: '127.0.0.1',
      port: target.port,
      serial: target.serial,
      accessCode: ACCESS_CODE,
      tls: true,
      verifyCertificate: false,
      ...overrides,
      timings: { ...FAST_TIMINGS, ...overrides.timings },
    },
    { emit: (type, metadata) => service.recordEvent(type, metadata), logger: log.logger },
  );
  cleanups.push(() => driver.stop());
  return {
    driver,
    events,
    of: (type) => events.filter((e) => e.type === type),
    stored: () => repository.countsByType(),
    log,
  };
}
