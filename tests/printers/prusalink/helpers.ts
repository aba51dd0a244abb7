/**
 * Shared pieces for the PrusaLink tests over real HTTP: simulators and fleets that are closed after each test, the
 * real driver in a real PrinterFleet (tracker and live state) with fast timings, an event sink, a log sink.
 */
import pino, { type Logger } from 'pino';
import { afterEach } from 'vitest';
import { parseConfig } from '../../../src/config.js';
import { PrinterFleet } from '../../../src/printers/fleet.js';
import { PrusaLinkDriver, type PrusaLinkDriverOptions } from '../../../src/printers/prusalink/driver.js';
import type { EventSink, PrinterSnapshot, PrinterUpdate } from '../../../src/printers/types.js';
import {
  type PrusaLinkSimulator,
  type PrusaLinkSimulatorOptions,
  startPrusaLinkSimulator,
} from '../../../src/simulators/prusalink.js';
import type { EventMetadata, EventType } from '../../../src/stats/events.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export async function simulator(opts: Partial<PrusaLinkSimulatorOptions> = {}): Promise<PrusaLinkSimulator> {
  const sim = await startPrusaLinkSimulator({ password: 'secret-pw', ...opts });
  cleanups.push(() => sim.stop());
  return sim;
}

export interface RecordedEvent {
  type: EventType;
  metadata: EventMetadata;
}

export function eventSink(): {
  emit: EventSink;
  events: RecordedEvent[];
  of: (type: EventType) => RecordedEvent[];
} {
  const events: RecordedEvent[] = [];
  return {
    emit: (type, metadata) => {
      events.push({ type, metadata: { ...metadata } as EventMetadata });
    },
    events,
    of: (type) => events.filter((e) => e.type === type),
  };
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export function memoryLogger(): { logger: Logger; lines: LogLine[]; raw: string[] } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(chunk: string) {
        raw.push(chunk);
        lines.push(JSON.parse(chunk) as LogLine);
      },
    },
  );
  return { logger, lines, raw };
}

export interface Bridge {
  /** The printer's live state as GET /api/v1/printers shows it. */
  snapshot: () => PrinterSnapshot;
  updates: PrinterUpdate[];
  stop: () => Promise<void>;
}

/**
 * The real driver against `host` in a real fleet, with fast timings for tests; started. `deps.emit` receives the
 * tracker's events.
 */
export function bridgeFor(
  host: string,
  deps: { emit: EventSink; logger?: Logger },
  opts: Partial<PrusaLinkDriverOptions> = {},
): Bridge {
  const config = parseConfig({
    printers: [{ name: 'Workshop MK4', type: 'prusa', host: 'http://127.0.0.1', password: 'x', poll_interval_s: 30 }],
  });
  const updates: PrinterUpdate[] = [];
  const fleet = new PrinterFleet(config.printers, {
    emit: deps.emit,
    logger: deps.logger ?? pino({ level: 'silent' }),
    createDriver: (printer, id, driverDeps) =>
      new PrusaLinkDriver(
        {
          id,
          name: printer.name,
          host,
          username: 'maker',
          password: 'secret-pw',
          apiKey: '',
          pollIntervalS: 0.04,
          activePollIntervalS: 0.04,
          timeoutMs: 400,
          filesIntervalS: 0,
          maxBackoffS: 0.2,
          authRecheckS: 0.3,
          legacyRecheckS: 0.3,
          ...opts,
        },
        driverDeps,
      ),
  });
  fleet.observeUpdates((_, update) => updates.push(update));
  fleet.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await fleet.stop();
  };
  cleanups.push(stop);
  return { snapshot: () => fleet.snapshots()[0]!, updates, stop };
}

/** The bridge for a simulator (digest auth with the simulator's password). */
export function driverFor(
  sim: PrusaLinkSimulator,
  deps: { emit: EventSink; logger?: Logger },
  opts: Partial<PrusaLinkDriverOptions> = {},
): Bridge {
  return bridgeFor(sim.url, deps, opts);
}

export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Until the driver has taken its first storage listing (the baseline that files are compared against). */
export function waitForListing(sim: PrusaLinkSimulator): Promise<void> {
  return waitFor('first storage listing', () =>
    Object.entries(sim.stats().byPath).some(([path, n]) => path.startsWith('/api/v1/files/') && n >= 1),
  );
}
