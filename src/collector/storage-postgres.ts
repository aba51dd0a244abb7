/**
 * The shared storage: one PostgreSQL database behind several collector instances (`--database postgres://...`).
 *
 * Client: `pg` (node-postgres) with its Pool. It is the most used PostgreSQL client for Node.js, pure JavaScript (no
 * native build), with named prepared statements, and its explicit client checkout maps one-to-one onto what the
 * collector needs: a statement or a transaction on one connection; connections that broke are destroyed instead of
 * being handed out again (`release(err)`), and idle ones that the server dropped surface as a pool `error` event
 * instead of a crash. (`postgres` is well kept too, but its tagged templates and automatic reconnection hide the
 * connection that the fault handling here needs to control.)
 *
 * Several instances, one database; every rule is enforced by the database, none in an instance's memory:
 *  - migrations run under an advisory lock (numbered steps recorded in `collector_migrations`, each step once);
 *  - submissions are read, judged by the rules, and stored by one statement per group that writes each only if its
 *    installation is still as read (compare-and-set on its row, `INSERT ... ON CONFLICT DO NOTHING` for a first
 *    contact; postgres-admission.ts): the 6-hour rule, the first-use secret and submission_id idempotency (its
 *    primary key) hold across instances;
 *  - a deletion locks the installation's row, and bumps `collector_state.removals` in the same commit, which every
 *    instance's /v1/stats cache checks;
 *  - pruning takes a transaction-level advisory lock, so one instance prunes at a time.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { PostgresAdmission } from './postgres-admission.js';
import {
  type AdmissionState,
  CollectorDatabaseError,
  type CollectorStorage,
  type DeletionVerdict,
  DIMENSIONS,
  type Dimension,
  type GroupCountRow,
  type IncomingSubmission,
  type InstallationAuth,
  type JobsHistogramRow,
  type PruneResult,
  type RetentionOptions,
  retentionCutoffs,
  type StatsView,
  StorageUnavailableError,
  type Verdict,
  type WeekRow,
} from './storage.js';

/**
 * Advisory lock keys (two int4): this one per purpose, and the hash of the current schema, so collectors in other
 * schemas of the same database do not wait for each other.
 */
export const MIGRATION_LOCK_KEY = 0x70726e7a + 1; // 'prnz' + 1
export const PRUNE_LOCK_KEY = 0x70726e7a + 2;

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Computes migration 2's derived data from the rows themselves: run once by the migration, and by the tests to check
 * that what the statements maintain one submission at a time is the same.
 */
export const REBUILD_STATS_ROLLUPS = `
  DELETE FROM active_counts;
  INSERT INTO active_counts (day, dimension, value, shard, installations)
  SELECT (i.last_accepted_at / ${DAY_MS})::integer, d.dimension, d.value, 0, count(*)
  FROM installations i, LATERAL (VALUES (0, i.deployment_mode), (1, i.app_version), (2, coalesce(i.country_code, '')),
    (3, i.printer_types), (4, i.printer_models)) AS d (dimension, value)
  GROUP BY 1, 2, 3;
  DELETE FROM week_counts;
  INSERT INTO week_counts (day, week_start, shard, weekly_rows, jobs)
  SELECT (last_received_at / ${DAY_MS})::integer, week_start, 0, count(*), sum(job_count) FROM weekly_stats
  GROUP BY 1, 2;
  UPDATE weekly_stats w SET prev_received_at = s.prev, jobs_from_here = s.jobs, completed_from_here = s.completed,
    failed_from_here = s.failed
  FROM (SELECT installation, week_start,
          coalesce(lag(last_received_at) OVER (PARTITION BY installation ORDER BY week_start), 0) AS prev,
          sum(job_count) OVER later AS jobs, sum(job_completed_count) OVER later AS completed,
          sum(job_failed_count) OVER later AS failed
        FROM weekly_stats
        WINDOW later AS (PARTITION BY installation ORDER BY week_start DESC)) s
  WHERE w.installation = s.installation AND w.week_start = s.week_start;`;

/**
 * Numbered migrations; `collector_migrations` records which have run. Migration 1 is the SQLite schema's meaning;
 * migration 2 adds what lets /v1/stats answer over a million installations without scanning them.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE installations (
     id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     installation_id uuid NOT NULL UNIQUE,
     secret_hash bytea NOT NULL,
     registered_at bigint NOT NULL,
     last_accepted_at bigint NOT NULL,
     first_seen text NOT NULL,
     app_version text NOT NULL,
     runtime_version text NOT NULL,
     platform text NOT NULL,
     deployment_mode text NOT NULL,
     country_code text,
     printer_types text NOT NULL,
     printer_models text NOT NULL
   );
   CREATE INDEX installations_last_accepted ON installations (last_accepted_at);

   CREATE TABLE submissions (
     submission_id uuid PRIMARY KEY,
     installation integer NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
     received_at bigint NOT NULL,
     payload json NOT NULL
   );
   CREATE INDEX submissions_installation ON submissions (installation);
   CREATE INDEX submissions_received ON submissions (received_at);

   CREATE TABLE weekly_stats (
     installation integer NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
     week_start date NOT NULL,
     last_received_at bigint NOT NULL,
     submission_count integer NOT NULL,
     job_count integer NOT NULL,
     job_completed_count integer NOT NULL,
     job_failed_count integer NOT NULL,
     job_cancelled_count integer NOT NULL,
     print_hours double precision NOT NULL,
     file_count integer NOT NULL,
     upload_count integer NOT NULL,
     uptime_hours double precision NOT NULL,
     PRIMARY KEY (installation, week_start)
   );
   CREATE INDEX weekly_stats_received ON weekly_stats (last_received_at);

   -- One row: removals counts deletions on request; every instance's /v1/stats cache compares it.
   CREATE TABLE collector_state (
     singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
     removals bigint NOT NULL DEFAULT 0
   );
   INSERT INTO collector_state DEFAULT VALUES;`,

  // 2: what /v1/stats reads at a million installations, kept up to date by the same statements that store
  // submissions (so always consistent with the rows, in every snapshot).
  //  - active_counts: installations per UTC day of their last accepted submission and per value of each public
  //    dimension; the distributions of a 30-day window are the sums of its whole days plus an exact count of the
  //    partial first day. A submission moves its installation from one day to another (-1, +1); new counts go to
  //    one of 16 shards so that today's rows are not one hot row, and pruning folds the shards of past days.
  //  - week_counts: weekly rows (and their jobs) per UTC day of their last submission and per week, for jobs per
  //    week the same way; a submission moves this week's row to its day.
  //  - per weekly row, the received time of the installation's previous row and the job counts of this row and every
  //    later one: the row that opens an installation's window (received inside it, its predecessor before) carries
  //    the installation's totals over the window, so the histogram needs no grouping by installation.
  `CREATE TABLE active_counts (
     day integer NOT NULL,
     dimension smallint NOT NULL,
     value text NOT NULL,
     shard smallint NOT NULL,
     installations integer NOT NULL,
     PRIMARY KEY (day, dimension, value, shard)
   );
   CREATE TABLE week_counts (
     day integer NOT NULL,
     week_start date NOT NULL,
     shard smallint NOT NULL,
     weekly_rows integer NOT NULL,
     jobs bigint NOT NULL,
     PRIMARY KEY (day, week_start, shard)
   );
   ALTER TABLE weekly_stats
     ADD COLUMN prev_received_at bigint NOT NULL DEFAULT 0,
     ADD COLUMN jobs_from_here integer NOT NULL DEFAULT 0,
     ADD COLUMN completed_from_here integer NOT NULL DEFAULT 0,
     ADD COLUMN failed_from_here integer NOT NULL DEFAULT 0;
   ${REBUILD_STATS_ROLLUPS}
   -- The window's rows straight from the index, without visiting the table.
   DROP INDEX weekly_stats_received;
   CREATE INDEX weekly_stats_window ON weekly_stats (last_received_at)
     INCLUDE (week_start, job_count, prev_received_at, jobs_from_here, completed_from_here, failed_from_here);`,
];

/** bigint (counts, millisecond times) and numeric (sums of bigint) as numbers: all far below 2^53. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 || oid === 1700
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** SQLSTATE classes and Node errors that mean "the database is not there right now", not "the request is wrong". */
const UNAVAILABLE_CODES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '57014', // query_canceled (statement_timeout)
  '53300', // too_many_connections
  '53000', // insufficient_resources
  '25006', // read_only_sql_transaction (a failover left us on a standby)
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/** Lost races: the transaction is run again from the start. */
const RETRY_CODES = new Set(['23505', '40001', '40P01']);
const MAX_ATTEMPTS = 4;

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isUnavailable(err: unknown): boolean {
  if (err instanceof StorageUnavailableError) return true;
  const code = errorCode(err);
  if (code && (code.startsWith('08') || UNAVAILABLE_CODES.has(code))) return true;
  const message = (err as Error | undefined)?.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|not queryable/i.test(
    message,
  );
}

function unavailable(err: unknown): StorageUnavailableError {
  if (err instanceof StorageUnavailableError) return err;
  return new StorageUnavailableError(`database unavailable: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** The URL without its password or query, for messages; throws CollectorDatabaseError when it is not a database URL. */
export function describeDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not echoed: it may hold a password.
    throw new CollectorDatabaseError(
      'collector: the database URL is not a valid URL (expected postgres://user:password@host:5432/database)',
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new CollectorDatabaseError(
      `collector: the database URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`,
    );
  }
  const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : '';
  return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
}

export interface PostgresStorageOptions {
  logger: Logger;
  /** Connections this instance may open (default 10); every instance has its own pool. */
  poolSize?: number;
  /** How long opening a connection may take before the request is answered 503 (default 5 s). */
  connectTimeoutMs?: number;
}

type Client = pg.PoolClient;

/** An installation's row as admission and deletion read it. */
interface StoredInstallation {
  id: number | null;
  secret_hash: Buffer;
  last_accepted_at: number;
  deployment_mode: string;
  app_version: string;
  country_code: string | null;
  printer_types: string;
  printer_models: string;
}

/** How many migrations this version knows (the schema version of a migrated database). */
export const SCHEMA_VERSION = MIGRATIONS.length;

export class PostgresCollectorStorage implements CollectorStorage {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #guarded = new WeakSet<Client>();

  readonly #admission: PostgresAdmission;

  private constructor(pool: pg.Pool, log: Logger, poolSize: number) {
    this.#pool = pool;
    this.#log = log;
    // Admissions may take all connections but two: deletions, /v1/stats and health checks never wait behind them.
    this.#admission = new PostgresAdmission((query) => this.#query(query), { maxInFlight: poolSize - 2 });
  }

  /** Connects and migrates; a bad URL, a refused login or an unreachable server throws CollectorDatabaseError. */
  static async open(url: string, options: PostgresStorageOptions): Promise<PostgresCollectorStorage> {
    const target = describeDatabaseUrl(url);
    const log = options.logger.child({ component: 'collector-postgres' });
    const poolSize = Math.max(3, options.poolSize ?? 10);
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      // A request never waits on the database for longer than this; a session stuck inside a transaction is ended.
      statement_timeout: 30_000,
      idle_in_transaction_session_timeout: 60_000,
      fallback_application_name: 'printernizer-collector',
      types: TYPES,
    });
    // An idle connection the server dropped (restart, failover): the pool forgets it; the next request opens a new one.
    pool.on('error', (err) =>
      log.warn({ err: { message: err.message, code: errorCode(err) } }, 'idle connection lost'),
    );
    const storage = new PostgresCollectorStorage(pool, log, poolSize);
    try {
      await storage.#migrate();
    } catch (err) {
      await pool.end().catch(() => {});
      const code = errorCode(err);
      const detail = `${(err as Error)?.message ?? String(err)}${code && !/^E[A-Z]/.test(code) ? ` (${code})` : ''}`;
      throw new CollectorDatabaseError(`collector: cannot use the database ${target}: ${detail.split('\n')[0]}`);
    }
    log.info('PostgreSQL storage ready');
    return storage;
  }

  async #migrate(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      // A migration over a large table, and an instance waiting for another's, may take longer than a request may.
      await client.query('SET statement_timeout = 0');
      // Instances starting together queue here; the first runs the missing steps, the others find none left.
      await client.query('SELECT pg_advisory_lock($1, hashtext(current_schema()))', [MIGRATION_LOCK_KEY]);
      try {
        await client.query(
          `CREATE TABLE IF NOT EXISTS collector_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
           )`,
        );
        const { rows } = await client.query<{ version: number }>(
          'SELECT coalesce(max(version), 0)::integer AS version FROM collector_migrations',
        );
        const current = rows[0]?.version ?? 0;
        if (current > MIGRATIONS.length) {
          throw new Error(
            `the schema is at version ${current}, newer than this collector knows (${MIGRATIONS.length})`,
          );
        }
        for (let version = current; version < MIGRATIONS.length; version++) {
          await client.query('BEGIN');
          try {
            await client.query(MIGRATIONS[version] as string);
            await client.query('INSERT INTO collector_migrations (version) VALUES ($1)', [version + 1]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => {});
            throw err;
          }
          this.#log.info({ version: version + 1 }, 'migrated');
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, hashtext(current_schema()))', [MIGRATION_LOCK_KEY]);
        await client.query('RESET statement_timeout');
      }
    } finally {
      client.release();
    }
  }

  async #connect(): Promise<Client> {
    let client: Client;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw unavailable(err);
    }
    // The pool listens for errors only while a connection is idle; one that breaks while checked out but between
    // two queries would otherwise be an unhandled 'error' event. The query in flight, if any, fails on its own.
    if (!this.#guarded.has(client)) {
      this.#guarded.add(client);
      client.on('error', (err) =>
        this.#log.warn({ err: { message: err.message, code: errorCode(err) } }, 'connection lost'),
      );
    }
    return client;
  }

  /**
   * Runs `work` in one transaction on one connection, committing when it asks to (else rolling back). A lost race
   * (unique violation, serialization failure, deadlock) runs it again from the start; a connection error becomes
   * StorageUnavailableError, and the broken connection is destroyed.
   */
  async #transaction<T>(
    work: (client: Client) => Promise<{ result: T; commit: boolean }>,
    begin = 'BEGIN',
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#connect();
      let broken: Error | undefined;
      try {
        await client.query(begin);
        let outcome: { result: T; commit: boolean };
        try {
          outcome = await work(client);
        } catch (err) {
          if (!isUnavailable(err)) await client.query('ROLLBACK');
          throw err;
        }
        await client.query(outcome.commit ? 'COMMIT' : 'ROLLBACK');
        return outcome.result;
      } catch (err) {
        if (isUnavailable(err)) {
          broken = err as Error;
          throw unavailable(err);
        }
        if (RETRY_CODES.has(errorCode(err) ?? '') && attempt < MAX_ATTEMPTS) continue;
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  /** See postgres-admission.ts: grouped, compare-and-set, judged again when another instance got there first. */
  admit<V extends Verdict>(submission: IncomingSubmission, decide: (state: AdmissionState) => V): Promise<V> {
    return this.#admission.admit(submission, decide);
  }

  deleteInstallation<V extends DeletionVerdict>(
    installationId: string,
    decide: (installation: InstallationAuth | undefined) => V,
  ): Promise<V> {
    return this.#transaction(async (client) => {
      const locked = await client.query<StoredInstallation>({
        name: 'collector_lock_installation',
        text: `SELECT id, secret_hash, last_accepted_at, deployment_mode, app_version, country_code, printer_types,
                 printer_models
               FROM installations WHERE installation_id = $1 FOR UPDATE`,
        values: [installationId],
      });
      const row = locked.rows[0];
      const verdict = decide(row ? { secretHash: row.secret_hash, lastAcceptedAt: row.last_accepted_at } : undefined);
      if (!verdict.delete || !row) return { result: verdict, commit: false };
      // Submissions and weekly rows go with it (ON DELETE CASCADE), its counts with it, and the version tells every
      // instance's cache.
      await client.query({
        name: 'collector_delete_installation',
        text: `WITH gone AS (
                 DELETE FROM installations WHERE id = $1
               ), counts AS (
                 INSERT INTO active_counts AS a (day, dimension, value, shard, installations)
                 SELECT ($2::bigint / ${DAY_MS})::integer, d.dimension, d.value, 0, -1
                 FROM (VALUES (0, $3::text), (1, $4::text), (2, $5::text), (3, $6::text), (4, $7::text))
                   AS d (dimension, value)
                 ORDER BY 1, 2, 3
                 ON CONFLICT (day, dimension, value, shard) DO UPDATE
                   SET installations = a.installations + excluded.installations
               ), week_moves AS (
                 INSERT INTO week_counts AS c (day, week_start, shard, weekly_rows, jobs)
                 SELECT (last_received_at / ${DAY_MS})::integer, week_start, 0, -count(*), -sum(job_count)
                 FROM weekly_stats WHERE installation = $1 GROUP BY 1, 2 ORDER BY 1, 2
                 ON CONFLICT (day, week_start, shard) DO UPDATE
                   SET weekly_rows = c.weekly_rows + excluded.weekly_rows, jobs = c.jobs + excluded.jobs
               )
               UPDATE collector_state SET removals = removals + 1`,
        values: [
          row.id,
          row.last_accepted_at,
          row.deployment_mode,
          row.app_version,
          row.country_code ?? '',
          row.printer_types,
          row.printer_models,
        ],
      });
      return { result: verdict, commit: true };
    });
  }

  async removalVersion(): Promise<number> {
    const { rows } = await this.#query<{ removals: number }>('SELECT removals FROM collector_state');
    return rows[0]?.removals ?? 0;
  }

  snapshot<T>(read: (view: StatsView) => Promise<T>): Promise<T> {
    // One snapshot for every number of the answer, so totals and groups agree.
    return this.#transaction(
      async (client) => ({ result: await read(statsView(client)), commit: false }),
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  prune(now: number, retention: RetentionOptions): Promise<PruneResult> {
    const { submissionsBefore, installationsBefore } = retentionCutoffs(now, retention);
    return this.#transaction<PruneResult>(async (client) => {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema())) AS locked',
        [PRUNE_LOCK_KEY],
      );
      if (!rows[0]?.locked) {
        return { result: { submissions: 0, weeklyRows: 0, installations: 0, skipped: true }, commit: false };
      }
      const submissions = await client.query('DELETE FROM submissions WHERE received_at < $1', [submissionsBefore]);
      const weeks = await client.query('DELETE FROM weekly_stats WHERE last_received_at < $1', [installationsBefore]);
      const installations = await client.query('DELETE FROM installations WHERE last_accepted_at < $1', [
        installationsBefore,
      ]);
      // Counts of days no window reaches any more go; the shards of past days fold into one row each.
      const today = Math.floor(now / DAY_MS);
      for (const [table, key, sums] of [
        ['active_counts', 'day, dimension, value', 'installations'],
        ['week_counts', 'day, week_start', 'weekly_rows, jobs'],
      ] as const) {
        await client.query(`DELETE FROM ${table} WHERE day < $1`, [today - 32]);
        const total = sums.split(', ').map((c) => `sum(${c})`);
        const add = sums.split(', ').map((c) => `${c} = t.${c} + excluded.${c}`);
        await client.query(
          `WITH folded AS (DELETE FROM ${table} WHERE day < $1 AND shard <> 0 RETURNING ${key}, ${sums})
           INSERT INTO ${table} AS t (${key}, shard, ${sums})
           SELECT ${key}, 0, ${total.join(', ')} FROM folded GROUP BY ${key} ORDER BY ${key}
           ON CONFLICT (${key}, shard) DO UPDATE SET ${add.join(', ')}`,
          [today],
        );
      }
      await client.query('DELETE FROM active_counts WHERE installations = 0');
      await client.query('DELETE FROM week_counts WHERE weekly_rows = 0 AND jobs = 0');
      return {
        result: {
          submissions: submissions.rowCount ?? 0,
          weeklyRows: weeks.rowCount ?? 0,
          installations: installations.rowCount ?? 0,
        },
        commit: true,
      };
    });
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1 FROM installations LIMIT 1');
  }

  /** One statement on a pooled connection (its own transaction); the connection is kept unless it broke. */
  async #query<R extends pg.QueryResultRow>(
    query: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const client = await this.#connect();
    let broken: Error | undefined;
    try {
      return await client.query<R>(query, values);
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      broken = err as Error;
      throw unavailable(err);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  /** For the benchmark and the tests: a connection of this instance's pool (release it). */
  connect(): Promise<pg.PoolClient> {
    return this.#connect();
  }
}

/**
 * The first window day counted whole, and where the partial day before it ends: the window's installations are
 * those counted on days from `firstWholeDay` on, plus those of the partial day accepted at or after `since`.
 */
function windowDays(since: number) {
  const firstWholeDay = Math.floor(since / DAY_MS) + 1;
  return { firstWholeDay, partialDayEnd: firstWholeDay * DAY_MS };
}

function statsView(client: Client): StatsView {
  return {
    async activeInstallationCount(since) {
      const { firstWholeDay, partialDayEnd } = windowDays(since);
      const { rows } = await client.query<{ n: number }>({
        name: 'collector_stats_active',
        text: `SELECT (SELECT coalesce(sum(installations), 0) FROM active_counts WHERE day >= $1 AND dimension = 0)
                 + (SELECT count(*) FROM installations WHERE last_accepted_at >= $2 AND last_accepted_at < $3) AS n`,
        values: [firstWholeDay, since, partialDayEnd],
      });
      return rows[0]?.n ?? 0;
    },
    async activeDistributions(since) {
      const { firstWholeDay, partialDayEnd } = windowDays(since);
      const { rows } = await client.query<{ dimension: number; value: string; installations: number }>({
        name: 'collector_stats_distributions',
        text: `SELECT dimension, value, sum(n) AS installations FROM (
                 SELECT dimension, value, installations AS n FROM active_counts WHERE day >= $1
                 UNION ALL
                 SELECT d.dimension, d.value, 1 FROM installations i,
                   LATERAL (VALUES (0::smallint, i.deployment_mode), (1::smallint, i.app_version),
                     (2::smallint, coalesce(i.country_code, '')), (3::smallint, i.printer_types),
                     (4::smallint, i.printer_models)) AS d (dimension, value)
                 WHERE i.last_accepted_at >= $2 AND i.last_accepted_at < $3
               ) counted GROUP BY dimension, value HAVING sum(n) > 0`,
        values: [firstWholeDay, since, partialDayEnd],
      });
      const result = Object.fromEntries(DIMENSIONS.map((d) => [d, [] as GroupCountRow[]])) as Record<
        Dimension,
        GroupCountRow[]
      >;
      for (const row of rows) {
        const dimension = DIMENSIONS[row.dimension] as Dimension;
        const key = dimension === 'country_code' && row.value === '' ? null : row.value;
        result[dimension].push({ key, installations: row.installations });
      }
      return result;
    },
    async jobsPerWeek(since) {
      const { firstWholeDay, partialDayEnd } = windowDays(since);
      const { rows } = await client.query<WeekRow>({
        name: 'collector_stats_weeks',
        text: `SELECT to_char(week_start, 'YYYY-MM-DD') AS week_start, sum(weekly_rows) AS installations,
                 sum(jobs) AS jobs
               FROM (
                 SELECT week_start, weekly_rows, jobs FROM week_counts WHERE day >= $1
                 UNION ALL
                 SELECT week_start, 1, job_count FROM weekly_stats WHERE last_received_at >= $2 AND last_received_at < $3
               ) counted GROUP BY week_start HAVING sum(weekly_rows) > 0 ORDER BY week_start`,
        values: [firstWholeDay, since, partialDayEnd],
      });
      return rows;
    },
    async jobsHistogram(since) {
      // One row per active installation: the one that opens its window carries its totals over the window.
      const { rows } = await client.query<JobsHistogramRow>({
        name: 'collector_stats_histogram',
        text: `SELECT jobs_from_here AS jobs, count(*) AS installations, sum(completed_from_here) AS completed,
                 sum(failed_from_here) AS failed
               FROM weekly_stats WHERE last_received_at >= $1 AND prev_received_at < $1
               GROUP BY jobs_from_here ORDER BY jobs_from_here`,
        values: [since],
      });
      return rows;
    },
  };
}
