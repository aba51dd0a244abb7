/**
 * Replays a capture through the same driver-facing path the daemon uses (DESIGN.md "Captures"), with no printer and
 * no network: the real driver of the capture's printer type, fed the recorded traffic on the capture's own timeline
 * (a ManualClock), inside a real PrinterFleet (tracker and live state) whose events go into a throwaway
 * UsageStatsService on a temporary SQLite file. Returns the events that service recorded.
 *
 * Bambu Lab traffic is delivered at its recorded time (`handleMessage`, `sessionUp`, `sessionDown`). PrusaLink is
 * polled by its driver on its own schedule, answered from the recorded responses (replay-harness.ts). `--speed N`
 * plays N times faster than it happened, `--instant` as fast as possible.
 *
 * A capture that joined a running session starts with a prelude (the daemon's knowledge at that moment); events the
 * replay records while it takes in the prelude are the replay catching up and are returned apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { databasePath, openDatabase } from '../db/open.js';
import { silentLogger } from '../log.js';
import { ManualClock } from '../printers/clock.js';
import { PrinterFleet } from '../printers/fleet.js';
import type { EventMetadata, EventType } from '../stats/events.js';
import { UsageRepository } from '../stats/repository.js';
import { UsageStatsService } from '../stats/service.js';
import { type Capture, captureDurationMs, type EventLine, type TrafficLine } from './format.js';
import { createReplayHarness } from './replay-harness.js';

export interface ReplayOptions {
  /** Play this many times faster than the capture happened; ignored with `instant`. Default 1. */
  speed?: number;
  /** As fast as possible (tests, `--instant`). */
  instant?: boolean;
  /** Called for each event as the replay records it (the CLI prints them as they come). */
  onEvent?: (event: ReplayedEvent) => void;
  logger?: Logger;
}

export interface ReplayedEvent {
  /** ms since the capture's start, on the capture's timeline. */
  t: number;
  event_type: EventType;
  metadata: EventMetadata;
}

export interface ReplayResult {
  events: ReplayedEvent[];
  /** Events recorded while the replay took in a joined capture's prelude (not the capture's own). */
  preludeEvents: ReplayedEvent[];
  /** Where the replayed driver asked for something the capture does not answer the same way (PrusaLink). */
  divergences: string[];
}

/** How far the replay clock moves at most in one step while waiting for a polling driver. */
const STEP_MS = 1000;

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

function isTraffic(line: Capture['lines'][number]): line is TrafficLine {
  return line.kind === 'mqtt' || line.kind === 'http' || line.kind === 'link';
}

export async function replayCapture(capture: Capture, options: ReplayOptions = {}): Promise<ReplayResult> {
  const logger = options.logger ?? silentLogger();
  const startMs = Date.parse(capture.header.started_at);
  const clock = new ManualClock(startMs);
  const dir = mkdtempSync(join(tmpdir(), 'pstats-replay-'));
  const db = openDatabase(databasePath(dir));
  const events: ReplayedEvent[] = [];
  let preludeCut: number | null = null;
  let fleet: PrinterFleet | null = null;
  try {
    const service = new UsageStatsService({
      repository: new UsageRepository(db),
      logger,
      env: {},
      timezone: 'UTC',
      now: () => new Date(clock.now()),
    });
    let collecting = true;
    service.onRecorded((event) => {
      if (!collecting) return;
      const replayed = {
        t: Date.parse(event.timestamp) - startMs,
        event_type: event.event_type,
        metadata: event.metadata,
      };
      events.push(replayed);
      if (preludeCut !== null) options.onEvent?.(replayed);
    });

    const traffic = capture.lines.filter(isTraffic);
    const hasPrelude = traffic.some((line) => line.prelude === true);
    const harness = createReplayHarness(capture, clock, logger, () => {
      // The first line after the prelude is about to be played: what was recorded so far was catching up.
      if (preludeCut === null) preludeCut = events.length;
    });
    if (!hasPrelude) preludeCut = 0;
    fleet = new PrinterFleet([harness.printer], {
      emit: (type, metadata) => service.recordEvent(type, metadata),
      logger,
      clock,
      createDriver: harness.createDriver,
    });
    fleet.start();

    const endT = captureDurationMs(capture);
    const speed = options.instant ? Number.POSITIVE_INFINITY : Math.max(0.001, options.speed ?? 1);
    const wallStart = Date.now();
    const pace = (t: number) => (Number.isFinite(speed) ? sleep(wallStart + t / speed - Date.now()) : undefined);

    // Data-paced lines (Bambu messages, session changes) play at their own time; a polling driver is given time in
    // steps and answered from the recorded responses when it asks.
    const timed = harness.dataPaced ? traffic : [];
    let index = 0;
    let now = 0;
    for (;;) {
      const nextT = index < timed.length ? timed[index]!.t : Number.POSITIVE_INFINITY;
      const target = Math.min(nextT, harness.dataPaced ? Number.POSITIVE_INFINITY : now + STEP_MS, endT);
      if (target > now) {
        await pace(target);
        clock.advanceTo(startMs + target);
        now = Math.max(target, clock.now() - startMs);
        await settle();
      }
      while (index < timed.length && timed[index]!.t <= now) {
        const line = timed[index++]!;
        if (!line.prelude) harness.beforeLine();
        harness.deliver(line);
        await settle();
      }
      now = Math.max(now, clock.now() - startMs);
      if (now >= endT && index >= timed.length) break;
    }
    // A polling driver whose schedule runs a little behind the live one's (backoff jitter after an outage) may not
    // have asked yet for the last answers the capture holds: give it until it has, within a poll interval.
    const graceEnd = endT + harness.graceMs;
    while (harness.unanswered(endT) && now < graceEnd) {
      const target = Math.min(now + 100, graceEnd);
      await pace(target);
      clock.advanceTo(startMs + target);
      now = Math.max(target, clock.now() - startMs);
      await settle();
    }
    await settle();
    harness.beforeLine(); // a capture of only a prelude: everything was catching up
    collecting = false;
    const cut = preludeCut ?? events.length;
    return { events: events.slice(cut), preludeEvents: events.slice(0, cut), divergences: harness.divergences };
  } finally {
    // A job held for its cancel code is flushed by stop(): after the capture's end, so not collected.
    await fleet?.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One event as compared: type and metadata with sorted keys. */
function comparable(event: { event_type: string; metadata: EventMetadata }): string {
  const keys = Object.keys(event.metadata).sort();
  return `${event.event_type} ${JSON.stringify(Object.fromEntries(keys.map((k) => [k, event.metadata[k]])))}`;
}

export interface EventComparison {
  equal: boolean;
  /** Readable lines, one per difference (at most 50). */
  differences: string[];
}

/**
 * The replay's events against the capture's. Exact, in order, except for a joined capture: a job that was already
 * running when it began has no start the replay could see, so its duration is compared only where the replay has one
 * (Bambu Lab reports no printing time; PrusaLink does, and is compared).
 */
export function compareEvents(
  expected: readonly EventLine[],
  actual: readonly ReplayedEvent[],
  session: Capture['header']['session'],
): EventComparison {
  const differences: string[] = [];
  const length = Math.max(expected.length, actual.length);
  for (let i = 0; i < length && differences.length < 50; i++) {
    const want = expected[i];
    const got = actual[i];
    if (want && got) {
      const wantMetadata = { ...want.metadata };
      if (
        session === 'joined' &&
        (want.event_type === 'job_completed' || want.event_type === 'job_failed') &&
        got.metadata.duration_seconds === undefined
      ) {
        delete wantMetadata.duration_seconds;
      }
      const a = comparable({ event_type: want.event_type, metadata: wantMetadata });
      const b = comparable(got);
      if (a !== b) differences.push(`#${i + 1}: the capture recorded ${a}; the replay recorded ${b}`);
    } else if (want) {
      differences.push(`#${i + 1}: the capture recorded ${comparable(want)}; the replay recorded nothing more`);
    } else if (got) {
      differences.push(`#${i + 1}: the replay also recorded ${comparable(got)}, which the capture does not have`);
    }
  }
  return { equal: differences.length === 0, differences };
}

/** `+12.3 s  job_failed  printer_type=bambu_lab printer_model=P2S failure_type=cancelled` */
export function formatEvent(event: { t: number; event_type: string; metadata: EventMetadata }): string {
  const seconds = (event.t / 1000).toFixed(1).padStart(7);
  const metadata = Object.entries(event.metadata)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
  return `+${seconds} s  ${event.event_type.padEnd(20)} ${metadata}`.trimEnd();
}
