/**
 * Replaying printer responses to the real driver without a network: a scripted printer (the driver's transport)
 * answers each path with the body set for it, the driver polls on a ManualClock, and its updates go through a real
 * PrinterFleet (PrinterTracker + LivePrinter) into an events array.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { parseConfig } from '../../../src/config.js';
import { ManualClock, type TimerHandle } from '../../../src/printers/clock.js';
import { PrinterFleet } from '../../../src/printers/fleet.js';
import type { GetResult, PrusaLinkTransport } from '../../../src/printers/prusalink/client.js';
import { PrusaLinkDriver, type PrusaLinkDriverOptions } from '../../../src/printers/prusalink/driver.js';
import type { PrinterSnapshot, RawTraffic } from '../../../src/printers/types.js';
import type { EventMetadata, EventType } from '../../../src/stats/events.js';

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = resolve(here, '../../fixtures/prusalink');

/** A response body from tests/fixtures/prusalink/{buddy,prusa-link}/, verbatim. */
export function fixture(server: 'buddy' | 'prusa-link', name: string): string {
  return readFileSync(resolve(FIXTURES, server, `${name}.json`), 'utf8');
}

/**
 * The same body with some numbers or strings changed in place (`"time_printing":600` → 900), keeping the server's
 * formatting; throws when a key is missing, so a fixture edit cannot silently make a test vacuous.
 */
export function edit(body: string, values: Record<string, number | string>): string {
  let out = body;
  for (const [key, value] of Object.entries(values)) {
    const re = new RegExp(`("${key}":\\s?)("[^"]*"|-?[0-9.]+)`);
    if (!re.test(out)) throw new Error(`no "${key}" in the body`);
    out = out.replace(re, `$1${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }
  return out;
}

/** A manual clock that knows when its next timer is due, so a replay can jump exactly there. */
export class SteppingClock extends ManualClock {
  private readonly due = new Map<TimerHandle, number>();

  override setTimer(fn: () => void, ms: number): TimerHandle {
    const at = this.now() + Math.max(0, ms);
    const inner = super.setTimer(() => {
      this.due.delete(handle);
      fn();
    }, ms);
    const handle: TimerHandle = {
      cancel: () => {
        this.due.delete(handle);
        inner.cancel();
      },
    };
    this.due.set(handle, at);
    return handle;
  }

  /** When the next timer is due, or null when none is set. */
  nextDue(): number | null {
    let next: number | null = null;
    for (const at of this.due.values()) if (next === null || at < next) next = at;
    return next;
  }
}

export type Reply = { status: number; body: string } | 'no-answer' | 'timeout';

/** The printer side of a replay: what each path answers now. Unknown paths answer 404 as Buddy does. */
export class ScriptedPrinter implements PrusaLinkTransport {
  private readonly replies = new Map<string, Reply>();
  /** Every path asked for, in order. */
  readonly requests: string[] = [];
  /** No answer at all (a printer that is off or rebooting): every request fails with ECONNREFUSED. */
  down = false;

  /** `body` answers 200, null answers 204 (no job, no transfer). */
  set(path: string, body: string | null | Reply): this {
    this.replies.set(
      path,
      body === null ? { status: 204, body: '' } : typeof body === 'string' ? { status: 200, body } : body,
    );
    return this;
  }

  count(path: string): number {
    return this.requests.filter((p) => p === path).length;
  }

  async get(path: string): Promise<GetResult> {
    this.requests.push(path);
    if (this.down) return { ok: false, failure: { kind: 'network', code: 'ECONNREFUSED' } };
    const reply = this.replies.get(path) ?? { status: 404, body: '{"title": "404: Not Found","message":""}' };
    if (reply === 'no-answer') return { ok: false, failure: { kind: 'network', code: 'ECONNRESET' } };
    if (reply === 'timeout') return { ok: false, failure: { kind: 'timeout' } };
    if (reply.status === 401 || reply.status === 403) {
      return { ok: false, failure: { kind: 'auth', status: reply.status }, body: reply.body };
    }
    if (reply.status >= 400) return { ok: false, failure: { kind: 'http', status: reply.status }, body: reply.body };
    return { ok: true, status: reply.status, body: reply.body, contentType: 'application/json' };
  }
}

export interface RecordedEvent {
  type: EventType;
  metadata: EventMetadata;
}

export interface Replay {
  printer: ScriptedPrinter;
  clock: SteppingClock;
  events: RecordedEvent[];
  traffic: RawTraffic[];
  logs: Record<string, unknown>[];
  /** The log lines as written (duplicate keys would show here, not in `logs`). */
  rawLogs: string[];
  driver: () => PrusaLinkDriver;
  snapshot: () => PrinterSnapshot;
  /** Lets time pass until the driver has polled /api/v1/status once more (at its own pace), and that poll is done. */
  poll: () => Promise<void>;
  polls: (n: number) => Promise<void>;
  /** Lets `ms` of time pass, running whatever polls fall into it. */
  wait: (ms: number) => Promise<void>;
  stop: () => Promise<void>;
  types: () => EventType[];
}

export function replay(options: Partial<PrusaLinkDriverOptions> = {}): Replay {
  const printer = new ScriptedPrinter();
  const clock = new SteppingClock();
  const events: RecordedEvent[] = [];
  const traffic: RawTraffic[] = [];
  const logs: Record<string, unknown>[] = [];
  const rawLogs: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        rawLogs.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  const config = parseConfig({
    printers: [
      { name: 'Desk MK4', type: 'prusa', host: 'http://printer.invalid', password: 'pw', poll_interval_s: 30 },
    ],
  });
  let driver: PrusaLinkDriver | null = null;
  const fleet = new PrinterFleet(config.printers, {
    emit: (type, metadata) => events.push({ type, metadata: { ...metadata } as EventMetadata }),
    logger,
    clock,
    createDriver: (p, id, deps) => {
      driver = new PrusaLinkDriver(
        {
          id,
          name: p.name,
          host: 'http://printer.invalid',
          username: 'maker',
          password: 'pw',
          apiKey: '',
          pollIntervalS: 30,
          activePollIntervalS: 5,
          random: () => 0.5,
          transport: printer,
          ...options,
        },
        { ...deps, traffic: (entry) => traffic.push(entry) },
      );
      return driver;
    },
  });
  fleet.start();

  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      await driver?.whenIdle();
      await new Promise((r) => setImmediate(r));
    }
  };
  // Jumps from timer to timer, so that a poll runs (and finishes) at the very time it was due.
  const poll = async () => {
    const before = printer.requests.length;
    for (let i = 0; i < 1000 && printer.requests.length === before; i++) {
      const next = clock.nextDue();
      if (next === null) break;
      clock.advanceTo(next);
      await settle();
    }
    if (printer.requests.length === before) throw new Error('the driver did not poll');
  };
  return {
    printer,
    clock,
    events,
    traffic,
    logs,
    rawLogs,
    driver: () => driver!,
    snapshot: () => fleet.snapshots()[0]!,
    poll,
    polls: async (n) => {
      for (let i = 0; i < n; i++) await poll();
    },
    wait: async (ms) => {
      const end = clock.now() + ms;
      for (;;) {
        const next = clock.nextDue();
        if (next === null || next > end) break;
        clock.advanceTo(next);
        await settle();
      }
      clock.advanceTo(end);
    },
    stop: () => fleet.stop(),
    types: () => events.map((e) => e.type),
  };
}
