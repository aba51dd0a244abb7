/**
 * Event counts kept current instead of recounted on every read: all-time counts per type with the summed printing
 * time, and counts per hour for the recent window ("this week"). GET /api/v1/usage-stats/local and the MQTT mirror's
 * summary (rebuilt every 2 s while events arrive) need both. A print farm records about 15 events a second; counting a
 * year of them took 0.5 s and summing their printing time another 0.2 s, and counting one week grew with every event
 * until the daemon spent a tenth of its CPU on it (bench/farm.ts).
 *
 * Loaded with one pass over the events on first use, then moved on by each event the service stores. Any other change
 * is noticed and answered with a fresh count on the next read: another connection's commit (the CLI's `delete` beside
 * the daemon) changes SQLite's data_version, a change through this connection that did not come from `recorded()`
 * (retention cleanup, deleting all events, settings) changes its total_changes() beyond the one insert expected.
 */
import type { EventMetadata, EventType } from './events.js';
import type { ContentVersion, UsageRepository } from './repository.js';

const HOUR_MS = 3_600_000;

type Counts = Map<EventType, number>;

/** Counts per hour of the event timestamps, for every hour from `from` (ms, an hour start) on. */
interface HourlyCounts {
  from: number;
  hours: Map<number, Counts>;
}

function floorHour(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** The counts of one hour, created empty the first time. */
function hourBucket(hours: Map<number, Counts>, hour: number): Counts {
  let bucket = hours.get(hour);
  if (!bucket) {
    bucket = new Map();
    hours.set(hour, bucket);
  }
  return bucket;
}

function increment(counts: Counts, type: EventType, n = 1): void {
  counts.set(type, (counts.get(type) ?? 0) + n);
}

export class EventTotals {
  private counts: Counts | null = null;
  private printSeconds = 0;
  private hourly: HourlyCounts | null = null;
  /** The content the totals describe; null until loaded. */
  private seen: ContentVersion | null = null;

  constructor(private readonly repository: UsageRepository) {}

  countsByType(): Partial<Record<EventType, number>> {
    return Object.fromEntries(this.current());
  }

  /** Printing time of every stored event that carries one (job_completed, job_failed), in seconds. */
  totalPrintSeconds(): number {
    this.current();
    return this.printSeconds;
  }

  /**
   * Counts per type of the events stamped `since` or later: whole hours from the kept counts, and the hour the window
   * starts in, which lies only partly inside it, from the database (an hour of events at most, read by index).
   */
  countsSince(since: Date): Partial<Record<EventType, number>> {
    this.current();
    const sinceMs = since.getTime();
    const startHour = floorHour(sinceMs);
    const firstWholeHour = Math.ceil(sinceMs / HOUR_MS) * HOUR_MS;
    let hourly = this.hourly;
    if (!hourly || hourly.from > startHour) hourly = this.hourly = this.loadHourly(startHour);
    const out: Counts = new Map();
    for (const [hour, counts] of hourly.hours) {
      if (hour >= firstWholeHour) for (const [type, n] of counts) increment(out, type, n);
      // Hours wholly before the window are done with: the window only moves forward.
      else if (hour < startHour) hourly.hours.delete(hour);
    }
    hourly.from = Math.max(hourly.from, startHour);
    if (firstWholeHour > sinceMs) {
      // Timestamps carry milliseconds (toISOString), so "before the next hour" is "at most 1 ms before it".
      const partial = this.repository.countsByType({
        start: since.toISOString(),
        end: new Date(firstWholeHour - 1).toISOString(),
      });
      for (const [type, n] of Object.entries(partial)) increment(out, type as EventType, n ?? 0);
    }
    return Object.fromEntries(out);
  }

  /** The service stored this event just now, through this connection, as one insert. */
  recorded(eventType: EventType, metadata: EventMetadata, timestamp: string): void {
    const counts = this.counts;
    const seen = this.seen;
    if (!counts || !seen) return; // not loaded yet: the first read counts it
    const now = this.repository.contentVersion();
    if (now.dataVersion !== seen.dataVersion || now.ownChanges !== seen.ownChanges + 1) {
      this.forget(); // something else changed too: count afresh when asked
      return;
    }
    increment(counts, eventType);
    const seconds = (metadata as { duration_seconds?: unknown }).duration_seconds;
    if (typeof seconds === 'number' && Number.isFinite(seconds)) this.printSeconds += seconds;
    const at = Date.parse(timestamp);
    if (this.hourly && Number.isFinite(at) && floorHour(at) >= this.hourly.from) {
      increment(hourBucket(this.hourly.hours, floorHour(at)), eventType);
    }
    this.seen = now;
  }

  private forget(): void {
    this.counts = null;
    this.hourly = null;
  }

  private current(): Counts {
    const now = this.repository.contentVersion();
    const seen = this.seen;
    if (this.counts && seen && now.dataVersion === seen.dataVersion && now.ownChanges === seen.ownChanges) {
      return this.counts;
    }
    const counts: Counts = new Map();
    let printSeconds = 0;
    for (const row of this.repository.totalsByType()) {
      counts.set(row.event_type, row.events);
      printSeconds += row.duration_seconds ?? 0;
    }
    this.counts = counts;
    this.printSeconds = printSeconds;
    this.hourly = null;
    this.seen = now;
    return counts;
  }

  private loadHourly(from: number): HourlyCounts {
    const hours = new Map<number, Counts>();
    for (const row of this.repository.hourlyCountsSince(new Date(from).toISOString())) {
      const hour = Date.parse(`${row.hour}:00:00.000Z`);
      if (!Number.isFinite(hour)) continue;
      increment(hourBucket(hours, hour), row.event_type, row.events);
    }
    return { from, hours };
  }
}
