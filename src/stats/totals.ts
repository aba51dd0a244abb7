/**
 * All-time event counts per type and the summed printing time, kept current instead of recounted on every read.
 * GET /api/v1/usage-stats/local and the MQTT mirror's summary (rebuilt every 2 s while events arrive) need both; a
 * print farm keeps about 1.5 million events over the default year of retention, and counting them took 0.5 s and
 * summing their printing time another 0.2 s, each time, with the event loop blocked (bench/farm.ts).
 *
 * Loaded with one pass over the events on first use, then moved on by each event the service stores. Any other change
 * is noticed and answered with a fresh count on the next read: another connection's commit (the CLI's `delete` beside
 * the daemon) changes SQLite's data_version, a change through this connection that did not come from `recorded()`
 * (retention cleanup, deleting all events, settings) changes its total_changes() beyond the one insert expected.
 */
import type { EventMetadata, EventType } from './events.js';
import type { ContentVersion, UsageRepository } from './repository.js';

export class EventTotals {
  private counts: Map<EventType, number> | null = null;
  private printSeconds = 0;
  /** The content the totals describe; null until loaded. */
  private seen: ContentVersion | null = null;

  constructor(private readonly repository: UsageRepository) {}

  countsByType(): Partial<Record<EventType, number>> {
    return Object.fromEntries(this.current());
  }

  totalEvents(): number {
    let total = 0;
    for (const n of this.current().values()) total += n;
    return total;
  }

  /** Printing time of every stored event that carries one (job_completed, job_failed), in seconds. */
  totalPrintSeconds(): number {
    this.current();
    return this.printSeconds;
  }

  /** The service stored this event just now, through this connection, as one insert. */
  recorded(eventType: EventType, metadata: EventMetadata): void {
    const counts = this.counts;
    const seen = this.seen;
    if (!counts || !seen) return; // not loaded yet: the first read counts it
    const now = this.repository.contentVersion();
    if (now.dataVersion !== seen.dataVersion || now.ownChanges !== seen.ownChanges + 1) {
      this.counts = null; // something else changed too: count afresh when asked
      return;
    }
    counts.set(eventType, (counts.get(eventType) ?? 0) + 1);
    const seconds = (metadata as { duration_seconds?: unknown }).duration_seconds;
    if (typeof seconds === 'number' && Number.isFinite(seconds)) this.printSeconds += seconds;
    this.seen = now;
  }

  private current(): Map<EventType, number> {
    const now = this.repository.contentVersion();
    const seen = this.seen;
    if (this.counts && seen && now.dataVersion === seen.dataVersion && now.ownChanges === seen.ownChanges) {
      return this.counts;
    }
    const counts = new Map<EventType, number>();
    let printSeconds = 0;
    for (const row of this.repository.totalsByType()) {
      counts.set(row.event_type, row.events);
      printSeconds += row.duration_seconds ?? 0;
    }
    this.counts = counts;
    this.printSeconds = printSeconds;
    this.seen = now;
    return counts;
  }
}
