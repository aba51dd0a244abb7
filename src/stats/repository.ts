/**
 * All SQL of the usage statistics lives here; statements are prepared once. No business rules: the service decides
 * what to write, this module only writes and reads it.
 */
import type Database from 'better-sqlite3';
import type { EventMetadata, EventType, UsageEvent } from './events.js';

export interface NewEventRow {
  id: string;
  event_type: EventType;
  timestamp: string;
  metadata: EventMetadata;
  created_at: string;
}

export interface EventFilter {
  /** Inclusive lower bound, ISO-8601 UTC. */
  start?: string;
  /** Inclusive upper bound, ISO-8601 UTC. */
  end?: string;
  eventType?: EventType;
  submitted?: boolean;
}

export interface Page {
  limit?: number;
  offset?: number;
}

/** One row of the aggregation query: counts and sums per event type and metadata class. */
export interface AggregateRow {
  event_type: string;
  failure_type: string | null;
  error_type: string | null;
  events: number;
  duration_seconds: number | null;
}

/** One UTC day of the job history (GET /usage-stats/history). */
export interface DailyJobRow {
  date: string;
  job_created: number;
  job_completed: number;
  job_failed: number;
  print_seconds: number;
}

/** All events of one type: how many, and their summed duration_seconds (printing time; null when none has one). */
export interface TypeTotalRow {
  event_type: EventType;
  events: number;
  duration_seconds: number | null;
}

/** Events of one type in one hour: `hour` is the timestamp's first 13 characters ("2026-12-01T20", UTC). */
export interface HourCountRow {
  hour: string;
  event_type: EventType;
  events: number;
}

/**
 * What this connection last saw of the events: another connection's commit changes `dataVersion` (PRAGMA
 * data_version), any change of its own adds to `ownChanges` (total_changes()).
 */
export interface ContentVersion {
  dataVersion: number;
  ownChanges: number;
}

interface EventRow {
  id: string;
  event_type: EventType;
  timestamp: string;
  metadata: string | null;
  submitted: number;
  submitted_at: string | null;
}

/**
 * The table for a filtered read: a time window is read from the timestamp index. Without statistics the planner
 * otherwise picks idx_usage_events_event_type for the GROUP BY and reads every event to test its timestamp: the last
 * week's counts of a year of farm events (1,000,000) took 390 ms that way and 3.5 ms from the index (bench/farm.ts).
 */
function source(filter: EventFilter): string {
  return filter.start !== undefined || filter.end !== undefined
    ? 'usage_events INDEXED BY idx_usage_events_timestamp'
    : 'usage_events';
}

function whereClause(filter: EventFilter): { sql: string; params: Record<string, string | number> } {
  const conditions: string[] = [];
  const params: Record<string, string | number> = {};
  if (filter.start !== undefined) {
    conditions.push('timestamp >= @start');
    params.start = filter.start;
  }
  if (filter.end !== undefined) {
    conditions.push('timestamp <= @end');
    params.end = filter.end;
  }
  if (filter.eventType !== undefined) {
    conditions.push('event_type = @eventType');
    params.eventType = filter.eventType;
  }
  if (filter.submitted !== undefined) {
    conditions.push('submitted = @submitted');
    params.submitted = filter.submitted ? 1 : 0;
  }
  return { sql: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

function toEvent(row: EventRow): UsageEvent {
  let metadata: EventMetadata = {};
  if (row.metadata) {
    try {
      metadata = JSON.parse(row.metadata) as EventMetadata;
    } catch {
      // A row we did not write (hand-edited file): show it with empty metadata rather than failing the whole read.
      metadata = {};
    }
  }
  return {
    id: row.id,
    event_type: row.event_type,
    timestamp: row.timestamp,
    metadata,
    submitted: row.submitted === 1,
    submitted_at: row.submitted_at,
  };
}

export class UsageRepository {
  private readonly insertStatement: Database.Statement;
  private readonly getSettingStatement: Database.Statement;
  private readonly setSettingStatement: Database.Statement;
  private readonly deleteSettingStatement: Database.Statement;
  private readonly aggregateStatement: Database.Statement;
  private readonly uptimeStatement: Database.Statement;
  private readonly dataVersionStatement: Database.Statement;
  private readonly ownChangesStatement: Database.Statement;

  constructor(readonly db: Database.Database) {
    this.insertStatement = db.prepare(
      `INSERT INTO usage_events (id, event_type, timestamp, metadata, submitted, created_at)
       VALUES (@id, @event_type, @timestamp, @metadata, 0, @created_at)`,
    );
    this.getSettingStatement = db.prepare('SELECT value FROM usage_settings WHERE key = ?').pluck();
    this.setSettingStatement = db.prepare(
      `INSERT INTO usage_settings (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    );
    this.deleteSettingStatement = db.prepare('DELETE FROM usage_settings WHERE key = ?');
    // Counts and durations of the not-yet-submitted events up to a point in time, grouped by what the payload needs.
    // Read from the partial covering index of migration 2 (expressions identical to the index's): without statistics
    // the planner would pick idx_usage_events_submitted and run json_extract on every row, 7x slower at 1M events.
    this.aggregateStatement = db.prepare(
      `SELECT event_type,
              CASE WHEN event_type = 'job_failed' THEN json_extract(metadata, '$.failure_type') END AS failure_type,
              CASE WHEN event_type = 'error_occurred' THEN json_extract(metadata, '$.error_type') END AS error_type,
              COUNT(*) AS events,
              SUM(CASE WHEN event_type IN ('job_completed', 'job_failed')
                       THEN json_extract(metadata, '$.duration_seconds') END) AS duration_seconds
       FROM usage_events INDEXED BY idx_usage_events_unsubmitted_aggregate
       WHERE submitted = 0 AND timestamp <= @end
       GROUP BY 1, 2, 3`,
    );
    // Each finished run contributes only its part after the period start (a run can span two periods). There is one
    // app_shutdown per run, so look them up by type rather than walking every unsubmitted event.
    this.dataVersionStatement = db.prepare('PRAGMA data_version').pluck();
    this.ownChangesStatement = db.prepare('SELECT total_changes()').pluck();
    this.uptimeStatement = db
      .prepare(
        `SELECT COALESCE(SUM(MAX(0, MIN(
                  json_extract(metadata, '$.uptime_seconds'),
                  (julianday(timestamp) - julianday(@start)) * 86400.0))), 0)
         FROM usage_events INDEXED BY idx_usage_events_event_type
         WHERE event_type = 'app_shutdown' AND submitted = 0 AND timestamp <= @end`,
      )
      .pluck();
  }

  insertEvent(row: NewEventRow): void {
    this.insertStatement.run({ ...row, metadata: JSON.stringify(row.metadata) });
  }

  getEvents(filter: EventFilter = {}, page: Page = {}): UsageEvent[] {
    const { sql, params } = whereClause(filter);
    const limit = Math.max(0, Math.min(page.limit ?? -1, Number.MAX_SAFE_INTEGER));
    const rows = this.db
      .prepare(
        `SELECT id, event_type, timestamp, metadata, submitted, submitted_at FROM usage_events ${sql}
         ORDER BY timestamp, rowid LIMIT @limit OFFSET @offset`,
      )
      .all({ ...params, limit: page.limit === undefined ? -1 : limit, offset: page.offset ?? 0 }) as EventRow[];
    return rows.map(toEvent);
  }

  /** Every event in insertion order, one at a time, so an export of a large database does not build one array. */
  *iterateEvents(): Generator<UsageEvent> {
    const statement = this.db.prepare(
      'SELECT id, event_type, timestamp, metadata, submitted, submitted_at FROM usage_events ORDER BY timestamp, rowid',
    );
    for (const row of statement.iterate() as Iterable<EventRow>) yield toEvent(row);
  }

  countEvents(filter: EventFilter = {}): number {
    const { sql, params } = whereClause(filter);
    return this.db
      .prepare(`SELECT COUNT(*) FROM ${source(filter)} ${sql}`)
      .pluck()
      .get(params) as number;
  }

  countsByType(filter: EventFilter = {}): Partial<Record<EventType, number>> {
    const { sql, params } = whereClause(filter);
    const rows = this.db
      .prepare(`SELECT event_type, COUNT(*) AS n FROM ${source(filter)} ${sql} GROUP BY event_type`)
      .all(params) as { event_type: EventType; n: number }[];
    const counts: Partial<Record<EventType, number>> = {};
    for (const row of rows) counts[row.event_type] = row.n;
    return counts;
  }

  /** Every event counted and its printing time summed, per type, in one pass (EventTotals loads from it). */
  totalsByType(): TypeTotalRow[] {
    return this.db
      .prepare(
        `SELECT event_type, COUNT(*) AS events, SUM(json_extract(metadata, '$.duration_seconds')) AS duration_seconds
         FROM usage_events GROUP BY event_type`,
      )
      .all() as TypeTotalRow[];
  }

  /** Events per hour and type from `start` on (EventTotals keeps the recent window from it). */
  hourlyCountsSince(start: string): HourCountRow[] {
    // Timestamps are toISOString() output, UTC with a Z, so their first 13 characters name the hour.
    return this.db
      .prepare(
        `SELECT substr(timestamp, 1, 13) AS hour, event_type, COUNT(*) AS events
         FROM usage_events INDEXED BY idx_usage_events_timestamp WHERE timestamp >= ? GROUP BY 1, 2`,
      )
      .all(start) as HourCountRow[];
  }

  contentVersion(): ContentVersion {
    return {
      dataVersion: this.dataVersionStatement.get() as number,
      ownChanges: this.ownChangesStatement.get() as number,
    };
  }

  /** Sum of a numeric metadata key over matching events (print time, uptime). */
  sumMetadata(key: string, filter: EventFilter = {}): number {
    if (!/^[a-z_]+$/.test(key)) throw new Error(`invalid metadata key ${key}`);
    const { sql, params } = whereClause(filter);
    return (
      (this.db
        .prepare(`SELECT COALESCE(SUM(json_extract(metadata, '$.${key}')), 0) FROM ${source(filter)} ${sql}`)
        .pluck()
        .get(params) as number) ?? 0
    );
  }

  /** Jobs per UTC day since `start` (ISO), and their printing time; only days with jobs appear. */
  dailyJobCounts(start: string): DailyJobRow[] {
    return this.db
      .prepare(
        `SELECT substr(timestamp, 1, 10) AS date,
                SUM(event_type = 'job_created') AS job_created,
                SUM(event_type = 'job_completed') AS job_completed,
                SUM(event_type = 'job_failed') AS job_failed,
                COALESCE(SUM(CASE WHEN event_type IN ('job_completed', 'job_failed')
                                  THEN json_extract(metadata, '$.duration_seconds') END), 0) AS print_seconds
         FROM usage_events INDEXED BY idx_usage_events_timestamp
         WHERE timestamp >= @start AND event_type IN ('job_created', 'job_completed', 'job_failed')
         GROUP BY 1 ORDER BY 1`,
      )
      .all({ start }) as DailyJobRow[];
  }

  aggregateUnsubmitted(end: string): AggregateRow[] {
    return this.aggregateStatement.all({ end }) as AggregateRow[];
  }

  unsubmittedUptimeSeconds(start: string, end: string): number {
    return this.uptimeStatement.get({ start, end }) as number;
  }

  oldestUnsubmittedTimestamp(): string | null {
    return (
      (this.db
        .prepare(
          // The partial index answers MIN in one step; the planner would otherwise walk idx_usage_events_submitted.
          'SELECT MIN(timestamp) FROM usage_events INDEXED BY idx_usage_events_unsubmitted_timestamp WHERE submitted = 0',
        )
        .pluck()
        .get() as string | null) ?? null
    );
  }

  /** Marks what a submission covered: every unsubmitted event up to `end`. Returns how many. */
  markSubmittedUpTo(end: string, submittedAt: string): number {
    return this.db
      .prepare('UPDATE usage_events SET submitted = 1, submitted_at = ? WHERE submitted = 0 AND timestamp <= ?')
      .run(submittedAt, end).changes;
  }

  markSubmitted(ids: readonly string[], submittedAt: string): number {
    const statement = this.db.prepare(
      'UPDATE usage_events SET submitted = 1, submitted_at = ? WHERE id = ? AND submitted = 0',
    );
    return this.db.transaction(() => ids.reduce((n, id) => n + statement.run(submittedAt, id).changes, 0))();
  }

  deleteAllEvents(): number {
    return this.db.prepare('DELETE FROM usage_events').run().changes;
  }

  /** Removes events older than `cutoff` (ISO). Returns how many. */
  deleteEventsBefore(cutoff: string): number {
    return this.db.prepare('DELETE FROM usage_events WHERE timestamp < ?').run(cutoff).changes;
  }

  getSetting(key: string): string | null {
    return (this.getSettingStatement.get(key) as string | undefined) ?? null;
  }

  setSetting(key: string, value: string, updatedAt: string): void {
    this.setSettingStatement.run(key, value, updatedAt);
  }

  deleteSetting(key: string): void {
    this.deleteSettingStatement.run(key);
  }

  /**
   * Runs `work` in one IMMEDIATE transaction: it takes the write lock first, so a read-then-write (opt-in) waits
   * for another writer (the CLI beside the daemon) within the busy timeout instead of failing with SQLITE_BUSY when
   * its read snapshot went stale.
   */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work).immediate();
  }
}
