/** Shared pieces for the PrusaLink tests: simulators that are closed after each test, an event sink, a log sink. */
import pino, { type Logger } from 'pino';
import { afterEach } from 'vitest';
import { PrusaLinkDriver, type PrusaLinkDriverOptions } from '../../../src/printers/prusalink/driver.js';
import type { EventSink } from '../../../src/printers/types.js';
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

export function eventSink(): { emit: EventSink; events: RecordedEvent[]; of: (type: EventType) => RecordedEvent[] } {
  const events: RecordedEvent[] = [];
  return {
    emit: (type, metadata) => {
      events.push({ type, metadata: { ...metadata } });
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

/** Fast timings for tests; real HTTP on loopback. */
export function driverFor(
  sim: PrusaLinkSimulator,
  deps: { emit: EventSink; logger?: Logger; tracker?: ConstructorParameters<typeof PrusaLinkDriver>[1]['tracker'] },
  opts: Partial<PrusaLinkDriverOptions> = {},
): PrusaLinkDriver {
  const driver = new PrusaLinkDriver(
    {
      id: 'workshop_mk4',
      name: 'Workshop MK4',
      host: sim.url,
      username: 'maker',
      password: 'secret-pw',
      apiKey: '',
      pollIntervalS: 0.04,
      activePollIntervalS: 0.04,
      timeoutMs: 400,
      filesIntervalS: 0,
      maxBackoffS: 0.2,
      authRecheckS: 0.3,
      ...opts,
    },
    { emit: deps.emit, logger: deps.logger ?? pino({ level: 'silent' }), tracker: deps.tracker },
  );
  cleanups.push(() => driver.stop());
  return driver;
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
