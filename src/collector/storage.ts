/**
 * The collector's own SQLite file (`<dataDir>/collector.sqlite`): installations (latest attributes and the hash of
 * their bearer secret), raw submissions (kept at most 90 days) and one row of counts per installation per week.
 * SQL lives here and nowhere else; the rules (who may write, when, what is public) live in server.ts and stats.ts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { SubmissionPayload } from './payload.js';

export const DB_FILE_NAME = 'collector.sqlite';
const DAY_MS = 24 * 60 * 60 * 1000;

export interface RetentionOptions {
  /** Raw submissions older than this are deleted (issue 5: at most 90 days). */
  rawSubmissionDays: number;
  /** Weekly rows and installations silent for this long are deleted with their secret hash. */
  installationDays: number;
}
export const DEFAULT_RETENTION: RetentionOptions = { rawSubmissionDays: 90, installationDays: 365 };

/** Numbered migrations; PRAGMA user_version records how many have run. */
const MIGRATIONS: readonly string[] = [
  // Integer surrogate keys keep the weekly rows and their indexes small: /v1/stats scans them whole.
  `CREATE TABLE installations (
     id INTEGER PRIMARY KEY,
     installation_id TEXT NOT NULL UNIQUE,
     secret_hash BLOB NOT NULL,
     registered_at INTEGER NOT NULL,
     last_accepted_at INTEGER NOT NULL,
     first_seen TEXT NOT NULL,
     app_version TEXT NOT NULL,
     runtime_version TEXT NOT NULL,
     platform TEXT NOT NULL,
     deployment_mode TEXT NOT NULL,
     country_code TEXT,
     printer_types TEXT NOT NULL,
     printer_models TEXT NOT NULL
   ) STRICT;
   CREATE INDEX installations_last_accepted ON installations(last_accepted_at);
   -- One small covering index per public distribution: /v1/stats counts each in one ordered pass, no sort and no
   -- table reads (about 4x faster than grouping the active range at 100,000 installations).
   CREATE INDEX installations_by_deployment_mode ON installations(deployment_mode, last_accepted_at);
   CREATE INDEX installations_by_app_version ON installations(app_version, last_accepted_at);
   CREATE INDEX installations_by_country_code ON installations(country_code, last_accepted_at);
   CREATE INDEX installations_by_printer_types ON installations(printer_types, last_accepted_at);
   CREATE INDEX installations_by_printer_models ON installations(printer_models, last_accepted_at);

   CREATE TABLE submissions (
     submission_id TEXT PRIMARY KEY,
     installation INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
     received_at INTEGER NOT NULL,
     payload TEXT NOT NULL
   ) STRICT;
   CREATE INDEX submissions_installation ON submissions(installation);
   CREATE INDEX submissions_received ON submissions(received_at);

   CREATE TABLE weekly_stats (
     installation INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
     week_start TEXT NOT NULL,
     last_received_at INTEGER NOT NULL,
     submission_count INTEGER NOT NULL,
     job_count INTEGER NOT NULL,
     job_completed_count INTEGER NOT NULL,
     job_failed_count INTEGER NOT NULL,
     job_cancelled_count INTEGER NOT NULL,
     print_hours REAL NOT NULL,
     file_count INTEGER NOT NULL,
     upload_count INTEGER NOT NULL,
     uptime_hours REAL NOT NULL,
     PRIMARY KEY (installation, week_start)
   ) STRICT, WITHOUT ROWID;
   -- Jobs per week in one ordered pass, without a sort.
   CREATE INDEX weekly_stats_week ON weekly_stats(week_start, last_received_at, job_count);`,
];

/** Separator of the printer model set column; models contain spaces and dots but never a bar. */
export const SET_SEPARATOR = '|';

export interface InstallationAuth {
  secretHash: Buffer;
  lastAcceptedAt: number;
}

export interface GroupCountRow {
  key: string | null;
  installations: number;
}

export interface WeekRow {
  week_start: string;
  installations: number;
  jobs: number;
}

export interface JobsHistogramRow {
  /** Jobs one installation created in the window. */
  jobs: number;
  /** Installations with exactly that many jobs. */
  installations: number;
  completed: number;
  failed: number;
}

export interface PruneResult {
  submissions: number;
  weeklyRows: number;
  installations: number;
}

/** Monday 00:00 UTC of the week containing `ms`, as `YYYY-MM-DD`. */
export function weekStartOf(ms: number): string {
  const date = new Date(ms);
  const daysSinceMonday = (date.getUTCDay() + 6) % 7;
  const monday = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() - daysSinceMonday);
  return new Date(monday).toISOString().slice(0, 10);
}

function printerTypeSet(payload: SubmissionPayload): string {
  const fleet = payload.printer_fleet;
  const types = new Set<string>(fleet.printer_types);
  for (const [type, n] of Object.entries(fleet.printer_type_counts)) if ((n ?? 0) > 0) types.add(type);
  return [...types].sort().join(SET_SEPARATOR);
}

function printerModelSet(payload: SubmissionPayload): string {
  return Object.entries(payload.printer_fleet.printer_model_counts)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([model]) => model)
    .sort()
    .join(SET_SEPARATOR);
}

export class CollectorStorage {
  readonly db: Database.Database;
  readonly path: string;
  readonly #statements;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, DB_FILE_NAME);
    this.db = new Database(this.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    // Deleted rows are overwritten with zeros, so a remote deletion or a prune leaves no bytes behind in the file.
    this.db.pragma('secure_delete = ON');
    // The statistics scan the installations index and the weekly rows whole: keep them in memory.
    this.db.pragma('cache_size = -65536');
    this.#migrate();
    this.#statements = this.#prepare();
  }

  #migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `Collector database is at schema ${current}, newer than this version knows (${MIGRATIONS.length})`,
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[version] as string);
        this.db.pragma(`user_version = ${version + 1}`);
      })();
    }
  }

  #prepare() {
    const db = this.db;
    const activeGroup = (column: string) =>
      db.prepare<[number], GroupCountRow>(
        `SELECT ${column} AS key, count(*) AS installations FROM installations INDEXED BY installations_by_${column}
         WHERE last_accepted_at >= ? GROUP BY ${column}`,
      );
    return {
      findInstallation: db.prepare<[string], { id: number; secret_hash: Buffer; last_accepted_at: number }>(
        'SELECT id, secret_hash, last_accepted_at FROM installations WHERE installation_id = ?',
      ),
      findSubmission: db.prepare<[string], { installation_id: string }>(
        `SELECT i.installation_id FROM submissions s JOIN installations i ON i.id = s.installation
         WHERE s.submission_id = ?`,
      ),
      upsertInstallation: db.prepare<Record<string, unknown>, { id: number }>(
        `INSERT INTO installations (installation_id, secret_hash, registered_at, last_accepted_at, first_seen,
           app_version, runtime_version, platform, deployment_mode, country_code, printer_types, printer_models)
         VALUES (@installation_id, @secret_hash, @received_at, @received_at, @first_seen, @app_version,
           @runtime_version, @platform, @deployment_mode, @country_code, @printer_types, @printer_models)
         ON CONFLICT(installation_id) DO UPDATE SET
           last_accepted_at = excluded.last_accepted_at, first_seen = excluded.first_seen,
           app_version = excluded.app_version, runtime_version = excluded.runtime_version,
           platform = excluded.platform, deployment_mode = excluded.deployment_mode,
           country_code = excluded.country_code, printer_types = excluded.printer_types,
           printer_models = excluded.printer_models
         RETURNING id`,
      ),
      insertSubmission: db.prepare(
        'INSERT INTO submissions (submission_id, installation, received_at, payload) VALUES (?, ?, ?, ?)',
      ),
      upsertWeek: db.prepare(
        `INSERT INTO weekly_stats (installation, week_start, last_received_at, submission_count, job_count,
           job_completed_count, job_failed_count, job_cancelled_count, print_hours, file_count, upload_count,
           uptime_hours)
         VALUES (@installation, @week_start, @received_at, 1, @job_count, @job_completed_count, @job_failed_count,
           @job_cancelled_count, @print_hours, @file_count, @upload_count, @uptime_hours)
         ON CONFLICT(installation, week_start) DO UPDATE SET
           last_received_at = excluded.last_received_at,
           submission_count = submission_count + 1,
           job_count = job_count + excluded.job_count,
           job_completed_count = job_completed_count + excluded.job_completed_count,
           job_failed_count = job_failed_count + excluded.job_failed_count,
           job_cancelled_count = job_cancelled_count + excluded.job_cancelled_count,
           print_hours = print_hours + excluded.print_hours,
           file_count = file_count + excluded.file_count,
           upload_count = upload_count + excluded.upload_count,
           uptime_hours = uptime_hours + excluded.uptime_hours`,
      ),
      deleteInstallation: db.prepare('DELETE FROM installations WHERE installation_id = ?'),
      pruneSubmissions: db.prepare('DELETE FROM submissions WHERE received_at < ?'),
      pruneWeeks: db.prepare('DELETE FROM weekly_stats WHERE last_received_at < ?'),
      pruneInstallations: db.prepare('DELETE FROM installations WHERE last_accepted_at < ?'),
      activeCount: db.prepare<[number], { n: number }>(
        'SELECT count(*) AS n FROM installations WHERE last_accepted_at >= ?',
      ),
      byDeploymentMode: activeGroup('deployment_mode'),
      byAppVersion: activeGroup('app_version'),
      byCountry: activeGroup('country_code'),
      byPrinterTypeSet: activeGroup('printer_types'),
      byPrinterModelSet: activeGroup('printer_models'),
      // A weekly row received inside the window belongs to an active installation, and every active installation
      // has one: no join with installations is needed.
      jobsPerWeek: db.prepare<[string, number], WeekRow>(
        `SELECT week_start, count(*) AS installations, sum(job_count) AS jobs FROM weekly_stats
         INDEXED BY weekly_stats_week WHERE week_start >= ? AND last_received_at >= ?
         GROUP BY week_start ORDER BY week_start`,
      ),
      // Per-installation job totals as a histogram (few rows, whatever the number of installations), with the
      // completed and failed sums riding along.
      jobsHistogram: db.prepare<[number], JobsHistogramRow>(
        `SELECT jobs, count(*) AS installations, sum(completed) AS completed, sum(failed) AS failed FROM (
           SELECT sum(job_count) AS jobs, sum(job_completed_count) AS completed, sum(job_failed_count) AS failed
           FROM weekly_stats NOT INDEXED WHERE last_received_at >= ? GROUP BY installation
         ) GROUP BY jobs ORDER BY jobs`,
      ),
    };
  }

  findInstallation(installationId: string): InstallationAuth | undefined {
    const row = this.#statements.findInstallation.get(installationId);
    return row ? { secretHash: row.secret_hash, lastAcceptedAt: row.last_accepted_at } : undefined;
  }

  /** The installation that sent `submissionId`, if it is still stored. */
  findSubmissionOwner(submissionId: string): string | undefined {
    return this.#statements.findSubmission.get(submissionId)?.installation_id;
  }

  /**
   * Stores an accepted submission: the installation's latest attributes (and, on first contact, its secret hash;
   * later calls keep the stored hash), the raw payload as validated, and the counts added to this week's row.
   */
  recordSubmission(payload: SubmissionPayload, secretHash: Buffer, receivedAt: number): void {
    const s = this.#statements;
    const installationId = payload.installation.installation_id;
    const usage = payload.usage_stats;
    this.db.transaction(() => {
      const row = s.upsertInstallation.get({
        installation_id: installationId,
        secret_hash: secretHash,
        received_at: receivedAt,
        first_seen: payload.installation.first_seen,
        app_version: payload.installation.app_version,
        runtime_version: payload.installation.runtime_version,
        platform: payload.installation.platform,
        deployment_mode: payload.installation.deployment_mode,
        country_code: payload.installation.country_code,
        printer_types: printerTypeSet(payload),
        printer_models: printerModelSet(payload),
      }) as { id: number };
      s.insertSubmission.run(payload.submission_id, row.id, receivedAt, JSON.stringify(payload));
      s.upsertWeek.run({
        installation: row.id,
        week_start: weekStartOf(receivedAt),
        received_at: receivedAt,
        job_count: usage.job_count,
        job_completed_count: usage.job_completed_count,
        job_failed_count: usage.job_failed_count,
        job_cancelled_count: usage.job_cancelled_count,
        print_hours: usage.print_hours,
        file_count: usage.file_count,
        upload_count: usage.upload_count,
        uptime_hours: usage.uptime_hours,
      });
    })();
  }

  /** Removes the installation, its submissions and weekly rows; true when there was something to remove. */
  deleteInstallation(installationId: string): boolean {
    const removed = this.#statements.deleteInstallation.run(installationId).changes > 0;
    if (removed) this.#scrubWal();
    return removed;
  }

  prune(now: number, retention: RetentionOptions = DEFAULT_RETENTION): PruneResult {
    const s = this.#statements;
    const result = this.db.transaction(() => ({
      submissions: s.pruneSubmissions.run(now - retention.rawSubmissionDays * DAY_MS).changes,
      weeklyRows: s.pruneWeeks.run(now - retention.installationDays * DAY_MS).changes,
      installations: s.pruneInstallations.run(now - retention.installationDays * DAY_MS).changes,
    }))();
    if (result.submissions + result.weeklyRows + result.installations > 0) this.#scrubWal();
    return result;
  }

  /**
   * The WAL still holds the pages as they were before a delete; checkpointing and truncating it leaves the deleted
   * rows neither in the WAL nor (secure_delete) in the main file.
   */
  #scrubWal(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  activeInstallationCount(since: number): number {
    return this.#statements.activeCount.get(since)?.n ?? 0;
  }

  activeGroups(
    dimension: 'deployment_mode' | 'app_version' | 'country_code' | 'printer_types' | 'printer_models',
    since: number,
  ): GroupCountRow[] {
    const s = this.#statements;
    const statement = {
      deployment_mode: s.byDeploymentMode,
      app_version: s.byAppVersion,
      country_code: s.byCountry,
      printer_types: s.byPrinterTypeSet,
      printer_models: s.byPrinterModelSet,
    }[dimension];
    return statement.all(since);
  }

  jobsPerWeek(since: number): WeekRow[] {
    return this.#statements.jobsPerWeek.all(weekStartOf(since), since);
  }

  /** How many active installations created how many jobs over the window, ordered by jobs. */
  jobsHistogram(since: number): JobsHistogramRow[] {
    return this.#statements.jobsHistogram.all(since);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
