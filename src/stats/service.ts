/**
 * The usage-statistics service: the only writer of the statistics database. It records events (whether or not the
 * user opted in, so local statistics always work), keeps the user's privacy choice, and builds what the API, the CLI
 * and the submitter show or send.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type AggregatedStats, aggregateStats, type FleetMember, hoursFromSeconds } from './aggregate.js';
import {
  type EventMetadata,
  type EventType,
  type Feature,
  isEventType,
  type MetadataFor,
  sanitizeMetadata,
  type UsageEvent,
} from './events.js';
import {
  appVersion,
  archName,
  countryFromTimezone,
  detectDeploymentMode,
  doNotTrack,
  platformName,
  runtimeVersion,
} from './privacy.js';
import type { UsageRepository } from './repository.js';
import { EventTotals } from './totals.js';

const MINUTE_MS = 60_000;
/** The collector refuses periods longer than 31 days. */
export const MAX_SUBMISSION_PERIOD_MS = 31 * 24 * 60 * MINUTE_MS;
/** The collector needs duration_days above zero at two decimals (about 7 minutes). */
export const MIN_SUBMISSION_PERIOD_MS = 10 * MINUTE_MS;

import { SETTINGS } from './settings-keys.js';

export { SETTINGS };

export const EXPORT_VERSION = 1;
/** Events kept in memory while the database refuses writes (disk full), flushed when it accepts them again. */
const MAX_PENDING_EVENTS = 10_000;

export interface ServiceOptions {
  repository: UsageRepository;
  logger: Logger;
  /** The IANA zone for the country code; a function defers resolving it (Intl's zone data costs memory). */
  timezone?: string | null | (() => string | null);
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  /** The configured printers as type and best-known model, for the payload's fleet counts. */
  fleet?: () => readonly FleetMember[];
  /** Features as switched now (mqtt_publish, ha_discovery, ...); usage_statistics is added from the opt-in. */
  features?: () => Partial<Record<Feature, boolean>>;
  /** When the scheduler will submit next, if it knows. */
  nextSubmission?: () => string | null;
  startedAt?: Date;
}

export interface LocalStats {
  installation_id: string | null;
  first_seen: string | null;
  opt_in_status: 'enabled' | 'disabled';
  total_events: number;
  this_week: {
    job_count: number;
    job_completed_count: number;
    job_failed_count: number;
    file_count: number;
    upload_count: number;
    error_count: number;
    printer_connect_count: number;
  };
  events_by_type: Partial<Record<EventType, number>>;
  last_submission: string | null;
  next_submission: string | null;
}

export interface ServiceStatus {
  service_available: boolean;
  opted_in: boolean;
  total_events: number;
  pending_events: number;
  collection_active: boolean;
  last_submission: string | null;
  next_submission: string | null;
  do_not_track: boolean;
  last_error: string | null;
}

export interface ExportDocument {
  export_version: number;
  exported_at: string;
  settings: {
    opt_in_status: 'enabled' | 'disabled';
    installation_id: string | null;
    first_seen: string | null;
    last_submission: string | null;
  };
  events: { id: string; event_type: EventType; timestamp: string; metadata: EventMetadata; submitted: boolean }[];
}

/** GET /usage-stats/history: jobs per UTC day (oldest first) and printing hours. */
export interface JobHistory {
  weeks: number;
  days: { date: string; job_created: number; job_completed: number; job_failed: number; print_hours: number }[];
  print_hours: { total: number; this_week: number };
}

export type RecordedListener = (event: UsageEvent) => void;

export class UsageStatsService {
  private readonly repository: UsageRepository;
  /** All-time and this week's counts and printing time, kept current (a farm's events are too many to recount per read). */
  private readonly totals: EventTotals;
  private readonly logger: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly now: () => Date;
  private readonly startedAt: Date;
  private readonly listeners = new Set<RecordedListener>();
  private readonly pending: { event_type: EventType; timestamp: string; metadata: EventMetadata }[] = [];
  private databaseFailing = false;
  /** Events that could not be recorded at all (invalid type, or dropped from a full in-memory queue). */
  recordFailures = 0;
  /** Metadata keys dropped by the allow-list since start. */
  droppedMetadataKeys = 0;

  constructor(private readonly options: ServiceOptions) {
    this.repository = options.repository;
    this.totals = new EventTotals(options.repository);
    this.logger = options.logger.child({ component: 'stats' });
    this.env = options.env ?? process.env;
    this.now = options.now ?? (() => new Date());
    this.startedAt = options.startedAt ?? this.now();
  }

  onRecorded(listener: RecordedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  isOptedIn(): boolean {
    return this.repository.getSetting(SETTINGS.optInStatus) === 'enabled';
  }

  doNotTrack(): boolean {
    return doNotTrack(this.env);
  }

  /** Whether a submission may happen now: the user's choice, overridden by DO_NOT_TRACK. */
  collectionActive(): boolean {
    return this.isOptedIn() && !this.doNotTrack();
  }

  installationId(): string | null {
    return this.repository.getSetting(SETTINGS.installationId);
  }

  /** The bearer secret for the collector, made at first opt-in; never logged, never in a payload. */
  submissionSecret(): string | null {
    return this.repository.getSetting(SETTINGS.submissionSecret);
  }

  optIn(): { installation_id: string; changed: boolean } {
    const wasOptedIn = this.isOptedIn();
    const timestamp = this.now().toISOString();
    const installationId = this.repository.transaction(() => {
      let id = this.repository.getSetting(SETTINGS.installationId);
      if (!id) {
        id = randomUUID();
        this.repository.setSetting(SETTINGS.installationId, id, timestamp);
        this.repository.setSetting(SETTINGS.firstSeen, timestamp, timestamp);
      }
      if (!this.repository.getSetting(SETTINGS.submissionSecret)) {
        this.repository.setSetting(SETTINGS.submissionSecret, randomBytes(32).toString('base64url'), timestamp);
      }
      this.repository.setSetting(SETTINGS.optInStatus, 'enabled', timestamp);
      return id;
    });
    if (!wasOptedIn) {
      this.logger.info('usage statistics enabled by the user');
      this.recordEvent('feature_enabled', { feature: 'usage_statistics' });
    }
    return { installation_id: installationId, changed: !wasOptedIn };
  }

  /** Stops submission; local data and the installation id stay (the user can delete them separately). */
  optOut(): { changed: boolean } {
    const wasOptedIn = this.isOptedIn();
    this.repository.setSetting(SETTINGS.optInStatus, 'disabled', this.now().toISOString());
    if (wasOptedIn) {
      this.logger.info('usage statistics disabled by the user');
      this.recordEvent('feature_disabled', { feature: 'usage_statistics' });
    }
    return { changed: wasOptedIn };
  }

  /**
   * Records one event. Never throws: an unknown type is refused and counted; metadata outside the allow-list is
   * dropped; a database that refuses the write (disk full, locked) keeps the event in memory until it accepts again.
   * Returns the stored event, or null when it could not be stored now.
   */
  recordEvent<T extends EventType>(eventType: T, metadata: MetadataFor<T> = {}): UsageEvent | null {
    return this.recordUntrusted(eventType, metadata);
  }

  /** recordEvent for input whose type and shape are not known at compile time (imports, hostile-input tests). */
  recordUntrusted(eventType: unknown, metadata: unknown = {}): UsageEvent | null {
    try {
      if (!isEventType(eventType)) {
        this.recordFailures++;
        this.logger.warn({ event_type: String(eventType).slice(0, 40) }, 'refused an event of unknown type');
        return null;
      }
      const sanitized = sanitizeMetadata(eventType, metadata);
      if (sanitized.dropped.length > 0) {
        this.droppedMetadataKeys += sanitized.dropped.length;
        this.logger.debug({ event_type: eventType, dropped: sanitized.dropped.length }, 'dropped metadata keys');
      }
      const entry = { event_type: eventType, timestamp: this.now().toISOString(), metadata: sanitized.metadata };
      if (this.pending.length > 0 && !this.flushPending()) return this.queue(entry);
      return this.store(entry) ?? this.queue(entry);
    } catch (error) {
      this.recordFailures++;
      this.logger.error({ err: error }, 'recording an event failed');
      return null;
    }
  }

  /** Events waiting in memory because the database refused them. */
  pendingInMemory(): number {
    return this.pending.length;
  }

  private store(entry: { event_type: EventType; timestamp: string; metadata: EventMetadata }): UsageEvent | null {
    const id = randomUUID();
    try {
      this.repository.insertEvent({ id, ...entry, created_at: this.now().toISOString() });
    } catch (error) {
      if (!this.databaseFailing) {
        this.databaseFailing = true;
        this.logger.error(
          { err: error, code: (error as { code?: string }).code },
          'the statistics database refuses writes; keeping events in memory until it accepts them again',
        );
      }
      return null;
    }
    this.totals.recorded(entry.event_type, entry.metadata, entry.timestamp);
    const event: UsageEvent = { id, ...entry, submitted: false, submitted_at: null };
    // After the commit: one line per stored event (id and type only), so a crash test can prove none is lost.
    this.logger.debug({ event_id: id, event_type: entry.event_type }, 'event recorded');
    if (this.databaseFailing) this.recoveredFromDatabaseFailure();
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.warn({ err: error }, 'an event listener failed');
      }
    }
    return event;
  }

  private recoveredFromDatabaseFailure(): void {
    this.databaseFailing = false;
    this.logger.info('the statistics database accepts writes again');
    this.store({
      event_type: 'error_occurred',
      timestamp: this.now().toISOString(),
      metadata: { error_type: 'database_full', component: 'database' },
    });
  }

  private queue(entry: { event_type: EventType; timestamp: string; metadata: EventMetadata }): null {
    if (this.pending.length >= MAX_PENDING_EVENTS) {
      this.pending.shift();
      this.recordFailures++;
    }
    this.pending.push(entry);
    return null;
  }

  /** Retries events held in memory, oldest first. True when none is left. */
  flushPending(): boolean {
    while (this.pending.length > 0) {
      const entry = this.pending[0]!;
      if (!this.store(entry)) return false;
      this.pending.shift();
    }
    return true;
  }

  /** The payload that a submission made now would send: the exact object, not a description of it. */
  aggregateStats(period?: { start?: string; end?: string }, submissionId?: string): AggregatedStats {
    const now = this.now();
    // One millisecond in the past: an event recorded after this call can never fall inside the period, so the same
    // `end` used to count and later to mark events submitted covers exactly the same events.
    const end = period?.end ?? new Date(now.getTime() - 1).toISOString();
    const start = period?.start ?? this.defaultPeriodStart(end);
    const runStart = Math.max(this.startedAt.getTime(), Date.parse(start));
    const currentRunSeconds = Math.max(0, (Math.min(Date.parse(end), now.getTime()) - runStart) / 1000);
    return aggregateStats({
      repository: this.repository,
      installation: this.installationFacts(),
      period: { start, end },
      fleet: this.options.fleet?.() ?? [],
      features: { ...this.options.features?.(), usage_statistics: this.isOptedIn() },
      currentRunSeconds,
      submissionId,
      now,
    });
  }

  /**
   * The period a submission made now covers, within what the collector accepts: at most 31 days (older unsubmitted
   * events are to be dropped, `dropBefore`), at least 10 minutes (`duration_days` must be above zero at two decimals;
   * only unsubmitted events count, so the overlap never counts an event twice).
   */
  submissionPeriod(): { start: string; end: string; dropBefore: string | null } {
    const end = new Date(this.now().getTime() - 1).toISOString();
    const endMs = Date.parse(end);
    const startMs = Date.parse(this.defaultPeriodStart(end));
    if (endMs - startMs > MAX_SUBMISSION_PERIOD_MS) {
      const start = new Date(endMs - MAX_SUBMISSION_PERIOD_MS).toISOString();
      return { start, end, dropBefore: start };
    }
    const clamped = Math.min(startMs, endMs - MIN_SUBMISSION_PERIOD_MS);
    return { start: new Date(clamped).toISOString(), end, dropBefore: null };
  }

  /** Exactly the payload a submission made now would send (the preview; the submitter sends the same). */
  submissionPayload(submissionId?: string): AggregatedStats {
    const { start, end } = this.submissionPeriod();
    return this.aggregateStats({ start, end }, submissionId);
  }

  /** The period runs from the last submission, else from the oldest unsubmitted event, else from first opt-in. */
  private defaultPeriodStart(end: string): string {
    const candidates = [
      this.repository.getSetting(SETTINGS.lastSubmission),
      this.repository.oldestUnsubmittedTimestamp(),
      this.repository.getSetting(SETTINGS.firstSeen),
    ].filter((v): v is string => v !== null && v <= end);
    return candidates[0] ?? end;
  }

  private timezone(): string | null {
    const zone = this.options.timezone;
    return typeof zone === 'function' ? zone() : (zone ?? null);
  }

  installationFacts(): AggregatedStats['installation'] {
    return {
      installation_id: this.installationId() ?? '00000000-0000-0000-0000-000000000000',
      first_seen: this.repository.getSetting(SETTINGS.firstSeen) ?? this.now().toISOString(),
      app_version: appVersion(),
      runtime_version: runtimeVersion(),
      platform: platformName(),
      deployment_mode: detectDeploymentMode(this.env),
      country_code: countryFromTimezone(this.timezone()),
    };
  }

  appStartMetadata(): EventMetadata {
    return {
      app_version: appVersion(),
      deployment_mode: detectDeploymentMode(this.env),
      platform: platformName(),
      arch: archName(),
      runtime_version: runtimeVersion(),
    };
  }

  uptimeSeconds(): number {
    return Math.max(0, Math.round((this.now().getTime() - this.startedAt.getTime()) / 1000));
  }

  getLocalStats(): LocalStats {
    const week = this.totals.countsSince(new Date(this.now().getTime() - 7 * 86_400_000));
    const byType = this.totals.countsByType();
    const total = Object.values(byType).reduce((sum, n) => sum + (n ?? 0), 0);
    return {
      installation_id: this.installationId(),
      first_seen: this.repository.getSetting(SETTINGS.firstSeen),
      opt_in_status: this.isOptedIn() ? 'enabled' : 'disabled',
      total_events: total,
      this_week: {
        job_count: week.job_created ?? 0,
        job_completed_count: week.job_completed ?? 0,
        job_failed_count: week.job_failed ?? 0,
        file_count: (week.file_uploaded ?? 0) + (week.file_downloaded ?? 0),
        upload_count: week.file_uploaded ?? 0,
        error_count: week.error_occurred ?? 0,
        printer_connect_count: week.printer_connected ?? 0,
      },
      events_by_type: byType,
      last_submission: this.repository.getSetting(SETTINGS.lastSubmission),
      next_submission: this.nextSubmission(),
    };
  }

  /** Printing time of every stored job, completed or failed (the only events with duration_seconds), in seconds. */
  totalPrintSeconds(): number {
    return this.totals.totalPrintSeconds();
  }

  /**
   * Jobs per UTC day over the last `weeks` weeks (today included, days without jobs as zeros) and printing hours in
   * total and over the last 7 days, for the UI's chart and totals; local data only, read-only.
   */
  jobHistory(weeks: number): JobHistory {
    const now = this.now();
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const first = today - (weeks * 7 - 1) * 86_400_000;
    const rows = new Map(
      this.repository.dailyJobCounts(new Date(first).toISOString()).map((row) => [row.date, row] as const),
    );
    const days: JobHistory['days'] = [];
    for (let t = first; t <= today; t += 86_400_000) {
      const date = new Date(t).toISOString().slice(0, 10);
      const row = rows.get(date);
      days.push({
        date,
        job_created: row?.job_created ?? 0,
        job_completed: row?.job_completed ?? 0,
        job_failed: row?.job_failed ?? 0,
        print_hours: hoursFromSeconds(row?.print_seconds ?? 0),
      });
    }
    const weekAgo = new Date(now.getTime() - 7 * 86_400_000).toISOString();
    return {
      weeks,
      days,
      print_hours: {
        total: hoursFromSeconds(this.totalPrintSeconds()),
        this_week: hoursFromSeconds(this.repository.sumMetadata('duration_seconds', { start: weekAgo })),
      },
    };
  }

  nextSubmission(): string | null {
    return this.collectionActive() ? (this.options.nextSubmission?.() ?? null) : null;
  }

  getStatus(): ServiceStatus {
    return {
      service_available: true,
      opted_in: this.isOptedIn(),
      total_events: this.repository.countEvents(),
      pending_events: this.repository.countEvents({ submitted: false }),
      collection_active: this.collectionActive(),
      last_submission: this.repository.getSetting(SETTINGS.lastSubmission),
      next_submission: this.nextSubmission(),
      do_not_track: this.doNotTrack(),
      last_error: this.repository.getSetting(SETTINGS.lastSubmissionError),
    };
  }

  exportStats(): ExportDocument {
    const events: ExportDocument['events'] = [];
    for (const event of this.repository.iterateEvents()) {
      events.push({
        id: event.id,
        event_type: event.event_type,
        timestamp: event.timestamp,
        metadata: event.metadata,
        submitted: event.submitted,
      });
    }
    return {
      export_version: EXPORT_VERSION,
      exported_at: this.now().toISOString(),
      settings: {
        opt_in_status: this.isOptedIn() ? 'enabled' : 'disabled',
        installation_id: this.installationId(),
        first_seen: this.repository.getSetting(SETTINGS.firstSeen),
        last_submission: this.repository.getSetting(SETTINGS.lastSubmission),
      },
      events,
    };
  }

  /** Deletes every stored event (and any held in memory); the privacy choice and installation id stay. */
  deleteAllStats(): number {
    this.pending.length = 0;
    const deleted = this.repository.deleteAllEvents();
    this.logger.info({ deleted }, 'deleted all local usage events at the user’s request');
    return deleted;
  }

  /** Removes events older than the retention period. */
  cleanup(retentionDays: number): number {
    const cutoff = new Date(this.now().getTime() - retentionDays * 86_400_000).toISOString();
    const removed = this.repository.deleteEventsBefore(cutoff);
    if (removed > 0) this.logger.info({ removed, retention_days: retentionDays }, 'removed events past retention');
    return removed;
  }

  /** Marks everything a successful submission covered and records when it happened. */
  markSubmitted(periodEnd: string): number {
    const at = this.now().toISOString();
    return this.repository.transaction(() => {
      const marked = this.repository.markSubmittedUpTo(periodEnd, at);
      this.repository.setSetting(SETTINGS.lastSubmission, periodEnd, at);
      this.repository.deleteSetting(SETTINGS.lastSubmissionError);
      return marked;
    });
  }

  setLastSubmissionError(message: string | null): void {
    if (message === null) this.repository.deleteSetting(SETTINGS.lastSubmissionError);
    else this.repository.setSetting(SETTINGS.lastSubmissionError, message, this.now().toISOString());
  }

  getSetting(key: string): string | null {
    return this.repository.getSetting(key);
  }

  setSetting(key: string, value: string): void {
    this.repository.setSetting(key, value, this.now().toISOString());
  }
}
