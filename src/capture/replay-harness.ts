/**
 * The driver side of a replay: the real driver of the capture's printer type, built without a socket, and the way
 * recorded traffic reaches it.
 * - Bambu Lab: messages go to `handleMessage` at their recorded time; link lines to `sessionUp` / `sessionDown`.
 * - PrusaLink: the driver polls on its own schedule through a transport that answers from the recorded responses
 *   (ReplayTransport), so its requests, timing and job-file lookups are its own and only the printer is recorded.
 */
import type { Logger } from 'pino';
import type { PrinterConfig } from '../config.js';
import { BambuDriver } from '../printers/bambu/driver.js';
import { modelFromSerial } from '../printers/bambu/model.js';
import type { ManualClock } from '../printers/clock.js';
import type { DriverFactory } from '../printers/fleet.js';
import type { GetResult, PrusaLinkTransport, RequestFailure } from '../printers/prusalink/client.js';
import { PrusaLinkDriver } from '../printers/prusalink/driver.js';
import type { PrinterDriver } from '../printers/types.js';
import type { PrinterModel } from '../stats/events.js';
import type { Capture, TrafficLine } from './format.js';

export interface ReplayHarness {
  /** The one printer of the replay fleet. */
  printer: PrinterConfig;
  createDriver: DriverFactory;
  /** True when lines are delivered at their time (Bambu); false when the driver asks for them (PrusaLink). */
  dataPaced: boolean;
  /**
   * How much longer than the capture the replay may run so that the driver asks for what the capture answered before
   * its end (a polling driver's schedule after an outage has its own jitter); 0 for data-paced drivers.
   */
  graceMs: number;
  /** Recorded answers up to `t` (ms since start) the driver has not asked for yet. */
  unanswered(t: number): boolean;
  deliver(line: TrafficLine): void;
  /** Marks the end of the prelude (idempotent). */
  beforeLine(): void;
  divergences: string[];
}

const REPLAY_NAME = 'Replay';
const REPLAY_HOST = 'replay.invalid';

/** The payload text a line stands for: the redacted JSON re-serialised, or the text that replaced a non-JSON body. */
export function lineText(line: { payload?: unknown; body?: unknown; text?: string }): string | null {
  if ('payload' in line && line.payload !== undefined) return JSON.stringify(line.payload);
  if ('body' in line && line.body !== undefined) return JSON.stringify(line.body);
  return line.text ?? null;
}

export function createReplayHarness(
  capture: Capture,
  clock: ManualClock,
  logger: Logger,
  onPreludeEnd: () => void,
): ReplayHarness {
  let preludeOver = false;
  const beforeLine = () => {
    if (preludeOver) return;
    preludeOver = true;
    onPreludeEnd();
  };
  return capture.header.printer_type === 'bambu_lab'
    ? bambuHarness(capture, beforeLine)
    : prusaLinkHarness(capture, clock, logger, beforeLine);
}

// --- Bambu Lab ----------------------------------------------------------------------------------------------------

const serialPrefixes = new Map<PrinterModel, string>();

/**
 * A serial whose prefix names `model` to this version's model table, so a replay starts from the capture's model
 * (captures hold no serial). The table is private to model.ts; asking it is enough.
 */
export function serialForModel(model: PrinterModel): string {
  if (serialPrefixes.size === 0) {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    for (const a of alphabet)
      for (const b of alphabet)
        for (const c of alphabet) {
          const prefix = `${a}${b}${c}`;
          const found = modelFromSerial(`${prefix}00A000000000`);
          if (found !== 'other' && !serialPrefixes.has(found)) serialPrefixes.set(found, prefix);
        }
  }
  return `${serialPrefixes.get(model) ?? 'ZZZ'}00R0PLAY0000`.slice(0, 15);
}

function bambuHarness(capture: Capture, beforeLine: () => void): ReplayHarness {
  const serial = serialForModel(capture.header.model);
  const topic = `device/${serial}/report`;
  let driver: BambuDriver | null = null;
  return {
    printer: {
      name: REPLAY_NAME,
      type: 'bambu_lab',
      host: REPLAY_HOST,
      port: 8883,
      serial,
      access_code: 'replay',
      tls: false,
      verify_certificate: false,
    },
    dataPaced: true,
    graceMs: 0,
    unanswered: () => false,
    divergences: [],
    beforeLine,
    createDriver: (_printer, id, deps) => {
      const created = new BambuDriver(
        { id, host: REPLAY_HOST, port: 8883, serial, accessCode: 'replay', tls: false, verifyCertificate: false },
        deps,
      );
      driver = created;
      return socketFree(created);
    },
    deliver(line) {
      if (!driver) return;
      if (line.kind === 'link') {
        if (line.up) driver.sessionUp();
        else driver.sessionDown(line.reason ?? 'closed');
      } else if (line.kind === 'mqtt') {
        // The capture's topic names no serial; the driver's own report topic stands for it.
        const text = lineText(line) ?? '';
        driver.handleMessage(line.topic === 'device/<serial>/report' ? topic : line.topic, text);
      }
    },
  };
}

/**
 * The driver as the fleet starts it, minus the socket: start() would connect. The session is the capture's link lines
 * (sessionUp / sessionDown), and the driver's timers (watchdog, reply deadline) run on the replay clock while it is open.
 */
function socketFree(driver: BambuDriver): PrinterDriver {
  return { id: driver.id, start() {}, stop: () => driver.stop() };
}

// --- PrusaLink ----------------------------------------------------------------------------------------------------

/** A recorded response within this much of a request answers it (the driver's own deadline is 5 s). */
const ANSWER_WINDOW_MS = 10_000;

type HttpLine = Extract<TrafficLine, { kind: 'http' }>;

function decodedPath(path: string): string {
  const query = path.indexOf('?');
  const bare = query >= 0 ? path.slice(0, query) : path;
  return bare
    .split('/')
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    })
    .join('/');
}

const FAILURE_KINDS: ReadonlySet<RequestFailure['kind']> = new Set([
  'timeout',
  'network',
  'auth',
  'stale',
  'http',
  'aborted',
  'too_large',
]);

/** A recorded response as the driver's transport returns it. */
export function resultOf(line: HttpLine): GetResult {
  const body = lineText(line);
  if (line.failure === undefined && line.status !== null && line.status < 400) {
    const json = line.body !== undefined;
    return { ok: true, status: line.status, body: body ?? '', contentType: json ? 'application/json' : 'text/plain' };
  }
  // The driver writes `kind` or `kind CODE` (`network ECONNREFUSED`).
  const [word = 'network', code] = (line.failure ?? '').split(/[ :]/);
  const kind: RequestFailure['kind'] = FAILURE_KINDS.has(word as RequestFailure['kind'])
    ? (word as RequestFailure['kind'])
    : line.status === 401 || line.status === 403
      ? 'auth'
      : line.status !== null
        ? 'http'
        : 'network';
  const failure: RequestFailure = { kind };
  if (line.status !== null) failure.status = line.status;
  if (code) failure.code = code;
  return { ok: false, failure, body };
}

/**
 * Answers a polling driver from the recorded responses, as the printer would have: each request gets the next
 * recorded response of its path that arrived within ANSWER_WINDOW_MS of now (the clock moves to when it arrived),
 * skipping ones the replayed driver did not ask for in time; a driver that asks more often than the capture shows
 * gets the last answer again.
 */
export class ReplayTransport implements PrusaLinkTransport {
  private readonly byPath = new Map<string, { lines: HttpLine[]; next: number; last: HttpLine | null }>();
  readonly divergences: string[] = [];
  private readonly startMs: number;

  constructor(
    lines: readonly HttpLine[],
    private readonly clock: ManualClock,
    startedAt: string,
    private readonly beforeLine: () => void,
  ) {
    this.startMs = Date.parse(startedAt);
    for (const line of lines) {
      const key = decodedPath(line.path);
      let entry = this.byPath.get(key);
      if (!entry) {
        entry = { lines: [], next: 0, last: null };
        this.byPath.set(key, entry);
      }
      entry.lines.push(line);
    }
  }

  async get(path: string): Promise<GetResult> {
    // Answer after the caller's timer callback returned (the clock is not moved from inside its own advance).
    await Promise.resolve();
    const now = this.clock.now() - this.startMs;
    const entry = this.byPath.get(decodedPath(path));
    if (!entry) {
      this.diverge(`the driver asked for ${decodedPath(path)}, which the capture never answered`);
      return { ok: false, failure: { kind: 'network', code: 'ENOTRECORDED' } };
    }
    while (entry.next < entry.lines.length && entry.lines[entry.next]!.t < now - ANSWER_WINDOW_MS) entry.next++;
    let line: HttpLine | null = null;
    const candidate = entry.lines[entry.next];
    if (candidate && (candidate.t <= now + ANSWER_WINDOW_MS || entry.last === null)) {
      line = candidate;
      entry.next++;
    } else {
      line = entry.last;
    }
    if (!line) return { ok: false, failure: { kind: 'network', code: 'ENOTRECORDED' } };
    if (!line.prelude) this.beforeLine();
    entry.last = line;
    if (line.t > now) this.clock.advanceTo(this.startMs + line.t);
    return resultOf(line);
  }

  /** Answers recorded up to `t` that no request has taken or passed yet. */
  unanswered(t: number): boolean {
    for (const entry of this.byPath.values()) {
      const next = entry.lines[entry.next];
      if (next && next.t <= t) return true;
    }
    return false;
  }

  private diverge(message: string): void {
    if (this.divergences.length < 20 && !this.divergences.includes(message)) this.divergences.push(message);
  }
}

function prusaLinkHarness(capture: Capture, clock: ManualClock, logger: Logger, beforeLine: () => void): ReplayHarness {
  const lines = capture.lines.filter((line): line is HttpLine => line.kind === 'http');
  const transport = new ReplayTransport(lines, clock, capture.header.started_at, beforeLine);
  const pollIntervalS = capture.header.poll_interval_s ?? 30;
  return {
    printer: {
      name: REPLAY_NAME,
      type: 'prusa',
      host: `http://${REPLAY_HOST}`,
      username: 'maker',
      password: 'replay',
      poll_interval_s: pollIntervalS,
    },
    dataPaced: false,
    // A poll interval and a second: the offset a backoff's jitter can leave between the replay's polls and the live.
    graceMs: pollIntervalS * 1000 + 1000,
    unanswered: (t) => transport.unanswered(t),
    divergences: transport.divergences,
    beforeLine,
    createDriver: (_printer, id, deps) =>
      new PrusaLinkDriver(
        {
          id,
          name: REPLAY_NAME,
          host: `http://${REPLAY_HOST}`,
          username: 'maker',
          password: 'replay',
          apiKey: '',
          pollIntervalS,
          transport,
          // The jitter of the offline backoff, fixed: a replay is the same every time.
          random: () => 0.5,
        },
        { ...deps, logger: deps.logger ?? logger },
      ),
    // Link lines of a polling driver follow from its failed polls, which the transport replays.
    deliver() {},
  };
}
