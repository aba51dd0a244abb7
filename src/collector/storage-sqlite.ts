/**
 * The embedded storage: the collector's own SQLite file (`<dataDir>/collector.sqlite`) beside one process.
 * Installations (latest attributes and the hash of their bearer secret), raw submissions (kept at most 90 days) and
 * one row of counts per installation per week. Writes go through a group commit (batcher.ts).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { silentLogger } from '../log.js';
import { GroupCommit } from './batcher.js';
import type { SubmissionPayload } from './payload.js';
import {
  type AdmissionState,
  type CollectorStorage,
  type DeletionVerdict,
  type Dimension,
  type GroupCountRow,
  type IncomingSubmission,
  type InstallationAuth,
  type JobsHistogramRow,
  type PruneResult,
  printerModelSet,
  printerTypeSet,
  type RetentionOptions,
  retentionCutoffs,
  type StatsView,
  type Verdict,
  type WeekRow,
  weekStartOf,
} from './storage.js';

export const DB_FILE_NAME = 'collector.sqlite';

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

/** How many migrations this version knows (the schema version of a migrated database). */
export const SCHEMA_VERSION = MIGRATIONS.length;

export class SqliteCollectorStorage implements CollectorStorage {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;
  readonly path: string;
  readonly #statements;
  readonly #commits: GroupCommit;
  readonly #view: StatsView;
  /** Removals happen only in this process (one process per file), so a counter in memory is the version. */
  #removals = 0;

  constructor(dataDir: string, options: { logger?: Logger } = {}) {
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
    const log = (options.logger ?? silentLogger()).child({ component: 'collector-sqlite' });
    this.#commits = new GroupCommit(this.db, log);
    this.#view = this.#statsView();
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
    const activeGroup = (column: Dimension) =>
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
      deleteInstallation: db.prepare('DELETE FROM installations WHERE id = ?'),
      pruneSubmissions: db.prepare('DELETE FROM submissions WHERE received_at < ?'),
      pruneWeeks: db.prepare('DELETE FROM weekly_stats WHERE last_received_at < ?'),
      pruneInstallations: db.prepare('DELETE FROM installations WHERE last_accepted_at < ?'),
      ping: db.prepare('SELECT 1 FROM installations LIMIT 1'),
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

  #statsView(): StatsView {
    const s = this.#statements;
    return {
      activeInstallationCount: async (since) => s.activeCount.get(since)?.n ?? 0,
      activeDistributions: async (since) => ({
        deployment_mode: s.byDeploymentMode.all(since),
        app_version: s.byAppVersion.all(since),
        country_code: s.byCountry.all(since),
        printer_types: s.byPrinterTypeSet.all(since),
        printer_models: s.byPrinterModelSet.all(since),
      }),
      jobsPerWeek: async (since) => s.jobsPerWeek.all(weekStartOf(since), since),
      jobsHistogram: async (since) => s.jobsHistogram.all(since),
    };
  }

  /** The stored state of an installation, as the rules see it. */
  findInstallation(installationId: string): InstallationAuth | undefined {
    const row = this.#statements.findInstallation.get(installationId);
    return row ? { secretHash: row.secret_hash, lastAcceptedAt: row.last_accepted_at } : undefined;
  }

  admit<V extends Verdict>(submission: IncomingSubmission, decide: (state: AdmissionState) => V): Promise<V> {
    // Judged inside the batch transaction: earlier work of the same batch is already visible.
    const work = this.db.transaction((): V => {
      const payload = submission.payload;
      const verdict = decide({
        installation: this.findInstallation(payload.installation.installation_id),
        submissionOwner: this.#statements.findSubmission.get(payload.submission_id)?.installation_id,
      });
      if (verdict.store) this.recordSubmission(payload, submission.secretHash, submission.receivedAt);
      return verdict;
    });
    return this.#commits.run(() => work());
  }

  /**
   * Stores a submission unconditionally: the installation's latest attributes (and, on first contact, its secret
   * hash; later calls keep the stored hash), the raw payload as validated, and the counts added to this week's row.
   * The rules never call this directly (they go through `admit`); benchmarks seed with it.
   */
  recordSubmission(payload: SubmissionPayload, secretHash: Buffer, receivedAt: number): void {
    const s = this.#statements;
    const usage = payload.usage_stats;
    this.db.transaction(() => {
      const row = s.upsertInstallation.get({
        installation_id: payload.installation.installation_id,
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

  async deleteInstallation<V extends DeletionVerdict>(
    installationId: string,
    decide: (installation: InstallationAuth | undefined) => V,
  ): Promise<V> {
    // Queued behind pending submissions, so one of this installation still in the batch is deleted too.
    const work = this.db.transaction((): V => {
      const row = this.#statements.findInstallation.get(installationId);
      const verdict = decide(row ? { secretHash: row.secret_hash, lastAcceptedAt: row.last_accepted_at } : undefined);
      if (verdict.delete && row) this.#statements.deleteInstallation.run(row.id);
      return verdict;
    });
    const verdict = await this.#commits.run(() => work());
    if (verdict.delete) {
      this.#removals++;
      this.#scrubWal();
    }
    return verdict;
  }

  async removalVersion(): Promise<number> {
    return this.#removals;
  }

  async snapshot<T>(read: (view: StatsView) => Promise<T>): Promise<T> {
    const release = this.#commits.hold();
    try {
      return await read(this.#view);
    } finally {
      release();
    }
  }

  async prune(now: number, retention: RetentionOptions): Promise<PruneResult> {
    const s = this.#statements;
    const { submissionsBefore, installationsBefore } = retentionCutoffs(now, retention);
    const result = this.db.transaction(() => ({
      submissions: s.pruneSubmissions.run(submissionsBefore).changes,
      weeklyRows: s.pruneWeeks.run(installationsBefore).changes,
      installations: s.pruneInstallations.run(installationsBefore).changes,
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

  async ping(): Promise<void> {
    this.#statements.ping.get();
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.#commits.flush();
    this.db.close();
  }
}
