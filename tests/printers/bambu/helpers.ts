/**
 * Shared pieces for the Bambu Lab tests: the real fixtures (tests/fixtures/bambu, copied verbatim from
 * ../shared/fixtures/bambu), a replay rig (the driver's message and session calls on a ManualClock, through a real
 * PrinterFleet into an events array), a live rig (the driver over TLS against a simulator, its updates through a real
 * tracker and live state into SQLite), and cleanup after each test.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import type { BambuPrinterConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { BambuDriver, type BambuDriverOptions, type BambuTimings } from '../../../src/printers/bambu/driver.js';
import { modelFromSerial } from '../../../src/printers/bambu/model.js';
import { ManualClock, systemClock } from '../../../src/printers/clock.js';
import { PrinterFleet } from '../../../src/printers/fleet.js';
import { LivePrinter } from '../../../src/printers/live-printer.js';
import { PrinterTracker } from '../../../src/printers/tracker.js';
import type { PrinterSnapshot, PrinterUpdate, RawTraffic } from '../../../src/printers/types.js';
import { type BambuSimulator, type BambuSimulatorOptions, startBambuSimulator } from '../../../src/simulators/bambu.js';
import type { EventMetadata, EventType } from '../../../src/stats/events.js';
import { captureLogger, type LogLine, sleep, testService, waitFor } from '../../helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURE_DIR = join(here, '..', '..', 'fixtures', 'bambu');

type Json = Record<string, unknown>;

export function readFixture(name: string): Json {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, name), 'utf8')) as Json;
}

/** The ha-bambulab full-report fixtures: a `print` object (under pushall.print or push_all) and a get_version reply. */
export const FIXTURE_FILES = {
  x1c: 'ha-bambulab__2AMS1-1AMS2-1AMSHT.json',
  p1pFinish: 'ha-bambulab__MOCK-P1PNOAMS.json',
  p1pFailed: 'ha-bambulab__P1P.json',
  a1: 'ha-bambulab__MOCK-A1.json',
  p2s: 'ha-bambulab__MOCK-P2S.json',
  h2s: 'ha-bambulab__MOCK-H2S.json',
  h2d: 'ha-bambulab__MOCK-H2D.json',
  h2c: 'ha-bambulab__MOCK-H2C.json',
  x2d: 'ha-bambulab__MOCK-X2D.json',
  a2l: 'ha-bambulab__MOCK-A2L.json',
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
  return readFileSync(join(FIXTURE_DIR, 'real-captures__deltas.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
}

/** One message of the snapcon P2S capture: arrival time (ms) and the payload as the printer sent it. */
export interface CapturedMessage {
  ms: number;
  phase: string;
  payload: string;
}

/**
 * The real ordered P2S print (snapcon): each entry's `section` is the envelope key it arrived under; `ms`, `phase` and
 * `section` are the probe's annotations, everything else is the message.
 */
export function snapconCapture(): { idle: Json; messages: CapturedMessage[] } {
  const file = readFixture('snapcon__p2s-capture.json') as { IDLE_REPORT: Json; PRINT_EVENTS: Json[] };
  const messages = file.PRINT_EVENTS.map((event) => {
    const { ms, phase, section, ...message } = event;
    return { ms: ms as number, phase: phase as string, payload: JSON.stringify({ [section as string]: message }) };
  });
  return { idle: file.IDLE_REPORT, messages };
}

/** The bambuddy H2S capture (a calibration run cancelled from the screen) and Bambu Studio's project_file. */
export function bambuddyH2s(): { running: string; failedNoCode: string; failedCancelCode: string; projectFile: Json } {
  const file = readFixture('bambuddy__h2s-capture.json') as Record<string, Json>;
  return {
    running: JSON.stringify(file.RUNNING),
    failedNoCode: JSON.stringify(file.FAILED_NO_CODE),
    failedCancelCode: JSON.stringify(file.FAILED_CANCEL_CODE),
    projectFile: file.STUDIO_PROJECT_FILE as Json,
  };
}

/** A request the printer acknowledges: echoed on the report topic with a result (fixtures README). */
export function ack(request: Json, result = 'success'): string {
  return JSON.stringify({ print: { ...request, result, reason: '' } });
}

let seq = 100_000;
/** A msg 1 delta carrying only the given keys. */
export function delta(fields: Json): string {
  return JSON.stringify({ print: { ...fields, command: 'push_status', msg: 1, sequence_id: String(seq++) } });
}

export interface RecordedEvent {
  type: EventType;
  metadata: EventMetadata;
}

// --- cleanup -------------------------------------------------------------------------------------------------------

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

// --- replay rig ----------------------------------------------------------------------------------------------------

export const T0 = Date.parse('2026-11-02T10:00:00.000Z');

export interface ReplayRig {
  clock: ManualClock;
  driver: BambuDriver;
  fleet: PrinterFleet;
  events: RecordedEvent[];
  traffic: RawTraffic[];
  updates: PrinterUpdate[];
  /** A message on the printer's report topic, at `atMs` after the start (default: now). */
  feed(payload: string, atMs?: number): void;
  /** Moves the clock to `atMs` after the start, running due timers. */
  at(atMs: number): void;
  snapshot(): PrinterSnapshot;
  /** [type, failure_type] of the job events, in order. */
  jobs(): [EventType, string | undefined][];
  types(): EventType[];
  of(type: EventType): RecordedEvent[];
}

/**
 * The driver without a socket: the test calls handleMessage / sessionUp / sessionDown as the MQTT session would (or a
 * replay of a capture), on a ManualClock, through a real PrinterFleet (tracker, policies, live state) into `events`.
 * Sequences built by hand leave minutes between reports where a printer sends one every second or so, so the
 * watchdog waits a day unless a test sets `timings.watchdogMs`.
 */
export function replayRig(
  serial: string,
  opts: { timings?: Partial<BambuTimings>; session?: boolean; name?: string } = {},
): ReplayRig {
  const clock = new ManualClock(T0);
  const events: RecordedEvent[] = [];
  const traffic: RawTraffic[] = [];
  const updates: PrinterUpdate[] = [];
  let driver: BambuDriver | null = null;
  const config: BambuPrinterConfig = {
    name: opts.name ?? 'Workshop',
    type: 'bambu_lab',
    host: '127.0.0.1',
    port: 8883,
    serial,
    access_code: '12345678',
    tls: true,
    verify_certificate: false,
  };
  const fleet = new PrinterFleet([config], {
    emit: (type, metadata) => events.push({ type, metadata: metadata as EventMetadata }),
    logger: silentLogger(),
    clock,
    createDriver: (printer, id, deps) => {
      if (printer.type !== 'bambu_lab') throw new Error('bambu only');
      const real = new BambuDriver(
        {
          id,
          host: printer.host,
          port: printer.port,
          serial: printer.serial,
          accessCode: printer.access_code,
          tls: printer.tls,
          verifyCertificate: printer.verify_certificate,
          timings: { watchdogMs: 24 * 3600_000, ...opts.timings },
          random: () => 0.5,
        },
        { ...deps, traffic: (entry) => traffic.push(entry) },
      );
      driver = real;
      // No socket: the test is the session.
      return { id, start: () => {}, stop: () => real.stop() };
    },
  });
  fleet.observeUpdates((_id, update) => updates.push(update));
  fleet.start();
  onCleanup(() => fleet.stop());
  const d = driver as unknown as BambuDriver;
  if (opts.session ?? true) d.sessionUp();
  const at = (atMs: number) => clock.advanceTo(T0 + atMs);
  return {
    clock,
    driver: d,
    fleet,
    events,
    traffic,
    updates,
    feed(payload, atMs) {
      if (atMs !== undefined) at(atMs);
      d.handleMessage(`device/${serial}/report`, payload);
    },
    at,
    snapshot: () => fleet.snapshots()[0] as PrinterSnapshot,
    jobs: () =>
      events
        .filter((e) => e.type.startsWith('job_'))
        .map((e) => [e.type, e.metadata.failure_type as string | undefined]),
    types: () => events.map((e) => e.type),
    of: (type) => events.filter((e) => e.type === type),
  };
}

// --- live rig (TLS against the simulator) ---------------------------------------------------------------------------

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

export { captureLogger, type LogLine, sleep, waitFor };

/** Timings short enough for tests; backoff still grows and still has jitter. */
export const FAST_TIMINGS: Partial<BambuTimings> = {
  backoffInitialMs: 50,
  backoffMaxMs: 400,
  authRetryMs: 150,
  watchdogMs: 5000,
  requestReplyMs: 1500,
  connectTimeoutMs: 2000,
  keepaliveSeconds: 5,
  stopTimeoutMs: 500,
};

export interface LiveRig {
  driver: BambuDriver;
  events: RecordedEvent[];
  of: (type: EventType) => RecordedEvent[];
  stored: () => Partial<Record<EventType, number>>;
  snapshot: () => PrinterSnapshot;
  log: ReturnType<typeof captureLogger>;
}

/**
 * A driver against a (simulated) printer over the network, wired as PrinterFleet wires it (its updates to a live
 * state and a PrinterTracker with Bambu Lab's policy, but a cancel grace short enough for tests), recording through
 * the real stats service into SQLite. `events` keeps the order, `stored()` reads back what the database holds.
 */
export function liveRig(
  target: { port: number; serial: string },
  overrides: Partial<BambuDriverOptions> & { cancelGraceMs?: number } = {},
): LiveRig {
  const { service, repository } = testService();
  const events: RecordedEvent[] = [];
  service.onRecorded((e) => events.push({ type: e.event_type, metadata: e.metadata }));
  const log = captureLogger();
  const live = new LivePrinter('workshop', 'Workshop', 'bambu_lab', modelFromSerial(target.serial), systemClock);
  const tracker = new PrinterTracker({
    printerType: 'bambu_lab',
    model: () => live.currentModel,
    connection: 'mqtt',
    cancelGraceMs: overrides.cancelGraceMs ?? 400,
    idleAfterActive: 'cancelled',
    emit: (type, metadata) => service.recordEvent(type, metadata),
    clock: systemClock,
  });
  const { cancelGraceMs: _grace, ...driverOverrides } = overrides;
  const driver = new BambuDriver(
    {
      id: 'workshop',
      host: '127.0.0.1',
      port: target.port,
      serial: target.serial,
      accessCode: ACCESS_CODE,
      tls: true,
      verifyCertificate: false,
      ...driverOverrides,
      timings: { ...FAST_TIMINGS, ...overrides.timings },
    },
    {
      update: (update) => {
        live.apply(update);
        tracker.handle(update);
      },
      logger: log.logger.child({ printer: 'workshop' }),
      clock: systemClock,
    },
  );
  cleanups.push(async () => {
    await driver.stop();
    tracker.flush();
  });
  return {
    driver,
    events,
    of: (type) => events.filter((e) => e.type === type),
    stored: () => repository.countsByType(),
    snapshot: () => live.snapshot(),
    log,
  };
}
