/**
 * Admission of submissions on PostgreSQL, in groups: the submissions that arrive while the database is busy with
 * earlier ones are read together (one query) and stored together (one statement, one commit), as the SQLite storage
 * commits a turn's submissions together. Every hop between the collector and the database, and every commit's flush
 * to disk, is then shared by the group instead of paid by each submission.
 *
 * The rules stay out of it: each submission's state is read, its `decide` (the rules) judges it, and the storing
 * statement writes a submission only if its installation is still as read: unknown (`INSERT ... ON CONFLICT DO
 * NOTHING`), or the same row with the same last_accepted_at (a compare-and-set `UPDATE`). One that another instance
 * changed meanwhile is not written and goes back into the queue, to be read and judged again; a submission_id that
 * another installation stored meanwhile fails the primary key, and the whole group is judged again. A group holds at
 * most one submission per installation and per submission_id (the others wait for the next group).
 */
import type pg from 'pg';
import type { SubmissionPayload } from './payload.js';
import {
  type AdmissionState,
  type IncomingSubmission,
  printerModelSet,
  printerTypeSet,
  StorageUnavailableError,
  type Verdict,
  weekStartOf,
} from './storage.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Shards of today's active_counts and week_counts rows (see migration 2), so that they are not one hot row each. */
const COUNT_SHARDS = 16;
/** Rows received this long before a submission may still open a window later (30 days plus clock skew). */
const WINDOW_MARGIN_MS = 31 * DAY_MS;
/** Times one submission is read and judged again (another instance kept changing its installation) before 503. */
const MAX_ATTEMPTS = 6;
/** Lost races: the group is judged again. */
const RETRY_CODES = new Set(['23505', '40001', '40P01']);

export type RunQuery = <R extends pg.QueryResultRow>(query: pg.QueryConfig) => Promise<pg.QueryResult<R>>;

interface Pending {
  submission: IncomingSubmission;
  decide: (state: AdmissionState) => Verdict;
  resolve: (verdict: Verdict) => void;
  reject: (err: unknown) => void;
  attempts: number;
}

interface StateRow {
  ord: number;
  id: number | null;
  secret_hash: Buffer | null;
  last_accepted_at: number | null;
  deployment_mode: string | null;
  app_version: string | null;
  country_code: string | null;
  printer_types: string | null;
  printer_models: string | null;
  week_jobs: number | null;
  owner: string | null;
}

/** The per-submission columns of the storing statement, in the order of its unnest(). */
const COLUMNS = [
  ['ord', 'integer'],
  ['known_id', 'integer'],
  ['previous', 'bigint'],
  ['installation_id', 'uuid'],
  ['secret_hash', 'bytea'],
  ['received_at', 'bigint'],
  ['first_seen', 'text'],
  ['app_version', 'text'],
  ['runtime_version', 'text'],
  ['platform', 'text'],
  ['deployment_mode', 'text'],
  ['country_code', 'text'],
  ['printer_types', 'text'],
  ['printer_models', 'text'],
  ['submission_id', 'uuid'],
  ['payload', 'text'],
  ['week_start', 'date'],
  ['job_count', 'integer'],
  ['job_completed_count', 'integer'],
  ['job_failed_count', 'integer'],
  ['job_cancelled_count', 'integer'],
  ['print_hours', 'double precision'],
  ['file_count', 'integer'],
  ['upload_count', 'integer'],
  ['uptime_hours', 'double precision'],
  ['week_jobs', 'integer'],
  ['week_existed', 'boolean'],
  ['old_deployment_mode', 'text'],
  ['old_app_version', 'text'],
  ['old_country_code', 'text'],
  ['old_printer_types', 'text'],
  ['old_printer_models', 'text'],
] as const;

/**
 * Stores the judged submissions whose installation is still as read, and returns their `ord`. Known installations
 * (known_id set) are updated only where last_accepted_at still equals `previous`; new ones are inserted unless an
 * instance registered them meanwhile. With each: the raw submission, this week's row (and the running totals of
 * earlier rows that may still open a window), and the moves in the rollups, summed over the group and written in
 * key order (so that concurrent statements never wait for each other in a cycle).
 */
const STORE = `WITH input AS (
    SELECT * FROM unnest(${COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})
      AS t (${COLUMNS.map(([name]) => name).join(', ')})
  ), updated AS (
    UPDATE installations i SET last_accepted_at = t.received_at, first_seen = t.first_seen,
      app_version = t.app_version, runtime_version = t.runtime_version, platform = t.platform,
      deployment_mode = t.deployment_mode, country_code = t.country_code, printer_types = t.printer_types,
      printer_models = t.printer_models
    FROM input t WHERE t.known_id IS NOT NULL AND i.id = t.known_id AND i.last_accepted_at = t.previous
    RETURNING i.id, t.ord
  ), inserted AS (
    INSERT INTO installations (installation_id, secret_hash, registered_at, last_accepted_at, first_seen, app_version,
      runtime_version, platform, deployment_mode, country_code, printer_types, printer_models)
    SELECT installation_id, secret_hash, received_at, received_at, first_seen, app_version, runtime_version, platform,
      deployment_mode, country_code, printer_types, printer_models
    FROM input WHERE known_id IS NULL ORDER BY installation_id
    ON CONFLICT (installation_id) DO NOTHING
    RETURNING id, installation_id
  ), written AS (
    SELECT u.id, t.* FROM updated u JOIN input t ON t.ord = u.ord
    UNION ALL
    SELECT n.id, t.* FROM inserted n JOIN input t ON t.installation_id = n.installation_id AND t.known_id IS NULL
  ), submission AS (
    INSERT INTO submissions (submission_id, installation, received_at, payload)
    SELECT submission_id, id, received_at, payload::json FROM written
  ), earlier AS (
    UPDATE weekly_stats w SET jobs_from_here = w.jobs_from_here + x.job_count,
      completed_from_here = w.completed_from_here + x.job_completed_count,
      failed_from_here = w.failed_from_here + x.job_failed_count
    FROM written x
    WHERE x.known_id IS NOT NULL AND w.installation = x.id AND w.week_start < x.week_start
      AND w.last_received_at >= x.received_at - ${WINDOW_MARGIN_MS}
  ), week AS (
    INSERT INTO weekly_stats AS w (installation, week_start, last_received_at, submission_count, job_count,
      job_completed_count, job_failed_count, job_cancelled_count, print_hours, file_count, upload_count, uptime_hours,
      prev_received_at, jobs_from_here, completed_from_here, failed_from_here)
    SELECT id, week_start, received_at, 1, job_count, job_completed_count, job_failed_count, job_cancelled_count,
      print_hours, file_count, upload_count, uptime_hours, coalesce(previous, 0), job_count, job_completed_count,
      job_failed_count
    FROM written
    ON CONFLICT (installation, week_start) DO UPDATE SET
      last_received_at = excluded.last_received_at,
      submission_count = w.submission_count + 1,
      job_count = w.job_count + excluded.job_count,
      job_completed_count = w.job_completed_count + excluded.job_completed_count,
      job_failed_count = w.job_failed_count + excluded.job_failed_count,
      job_cancelled_count = w.job_cancelled_count + excluded.job_cancelled_count,
      print_hours = w.print_hours + excluded.print_hours,
      file_count = w.file_count + excluded.file_count,
      upload_count = w.upload_count + excluded.upload_count,
      uptime_hours = w.uptime_hours + excluded.uptime_hours,
      jobs_from_here = w.jobs_from_here + excluded.job_count,
      completed_from_here = w.completed_from_here + excluded.job_completed_count,
      failed_from_here = w.failed_from_here + excluded.job_failed_count
  ), counts AS (
    -- Each installation moves to the day of its submission, from the day (and attributes) it had.
    INSERT INTO active_counts AS a (day, dimension, value, shard, installations)
    SELECT day, dimension, value, $${COLUMNS.length + 1}::smallint, sum(delta) FROM (
      SELECT (x.received_at / ${DAY_MS})::integer AS day, d.dimension, d.value, 1 AS delta FROM written x,
        LATERAL (VALUES (0, x.deployment_mode), (1, x.app_version), (2, coalesce(x.country_code, '')),
          (3, x.printer_types), (4, x.printer_models)) AS d (dimension, value)
      UNION ALL
      SELECT (x.previous / ${DAY_MS})::integer, d.dimension, d.value, -1 FROM written x,
        LATERAL (VALUES (0, x.old_deployment_mode), (1, x.old_app_version), (2, x.old_country_code),
          (3, x.old_printer_types), (4, x.old_printer_models)) AS d (dimension, value)
      WHERE x.known_id IS NOT NULL
    ) moved GROUP BY day, dimension, value HAVING sum(delta) <> 0 ORDER BY day, dimension, value
    ON CONFLICT (day, dimension, value, shard) DO UPDATE SET installations = a.installations + excluded.installations
  ), week_moves AS (
    -- This week's row of each moves to the day of its submission, with its new job count.
    INSERT INTO week_counts AS c (day, week_start, shard, weekly_rows, jobs)
    SELECT day, week_start, $${COLUMNS.length + 1}::smallint, sum(weekly_rows), sum(jobs) FROM (
      SELECT (received_at / ${DAY_MS})::integer AS day, week_start, 1 AS weekly_rows,
        coalesce(week_jobs, 0)::bigint + job_count AS jobs
      FROM written
      UNION ALL
      SELECT (previous / ${DAY_MS})::integer, week_start, -1, -week_jobs::bigint FROM written WHERE week_existed
    ) moved GROUP BY day, week_start HAVING sum(weekly_rows) <> 0 OR sum(jobs) <> 0 ORDER BY day, week_start
    ON CONFLICT (day, week_start, shard) DO UPDATE
      SET weekly_rows = c.weekly_rows + excluded.weekly_rows, jobs = c.jobs + excluded.jobs
  )
  SELECT ord FROM written`;

/** Each submission's installation (if known), this week's row of it, and who sent its submission_id. */
const READ_STATE = `SELECT q.ord, i.id, i.secret_hash, i.last_accepted_at, i.deployment_mode, i.app_version,
    i.country_code, i.printer_types, i.printer_models,
    (SELECT w.job_count FROM weekly_stats w WHERE w.installation = i.id AND w.week_start = q.week_start) AS week_jobs,
    (SELECT o.installation_id::text FROM submissions s JOIN installations o ON o.id = s.installation
     WHERE s.submission_id = q.submission_id) AS owner
  FROM unnest($1::integer[], $2::uuid[], $3::uuid[], $4::date[]) AS q (ord, installation_id, submission_id, week_start)
  LEFT JOIN installations i ON i.installation_id = q.installation_id`;

export class PostgresAdmission {
  readonly #run: RunQuery;
  readonly #maxInFlight: number;
  readonly #maxGroup: number;
  #queue: Pending[] = [];
  #inFlight = 0;
  #scheduled: NodeJS.Immediate | undefined;

  /** `run` executes one statement on a pooled connection; at most `maxInFlight` groups run at once. */
  constructor(run: RunQuery, options: { maxInFlight: number; maxGroup?: number }) {
    this.#run = run;
    this.#maxInFlight = Math.max(1, options.maxInFlight);
    this.#maxGroup = options.maxGroup ?? 64;
  }

  admit<V extends Verdict>(submission: IncomingSubmission, decide: (state: AdmissionState) => V): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.#queue.push({ submission, decide, resolve: resolve as (verdict: Verdict) => void, reject, attempts: 0 });
      this.#schedule();
    });
  }

  /** Starts groups while connections are free; what arrives meanwhile waits and goes in the next group. */
  #schedule(): void {
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined;
      while (this.#queue.length > 0 && this.#inFlight < this.#maxInFlight) {
        const group = this.#takeGroup();
        this.#inFlight++;
        void this.#admitGroup(group).finally(() => {
          this.#inFlight--;
          if (this.#queue.length > 0) this.#schedule();
        });
      }
    });
  }

  /** Up to maxGroup submissions, at most one per installation and per submission_id, oldest first. */
  #takeGroup(): Pending[] {
    const group: Pending[] = [];
    const rest: Pending[] = [];
    const installations = new Set<string>();
    const submissions = new Set<string>();
    for (const item of this.#queue) {
      const payload = item.submission.payload;
      const installationId = payload.installation.installation_id;
      if (
        group.length < this.#maxGroup &&
        !installations.has(installationId) &&
        !submissions.has(payload.submission_id)
      ) {
        installations.add(installationId);
        submissions.add(payload.submission_id);
        group.push(item);
      } else rest.push(item);
    }
    this.#queue = rest;
    return group;
  }

  async #admitGroup(group: Pending[]): Promise<void> {
    let states: Map<number, StateRow>;
    try {
      const { rows } = await this.#run<StateRow>({
        name: 'collector_admission_state',
        text: READ_STATE,
        values: [
          group.map((_, i) => i),
          group.map((p) => p.submission.payload.installation.installation_id),
          group.map((p) => p.submission.payload.submission_id),
          group.map((p) => weekStartOf(p.submission.receivedAt)),
        ],
      });
      states = new Map(rows.map((row) => [row.ord, row]));
    } catch (err) {
      for (const item of group) item.reject(err);
      return;
    }

    const writes: { item: Pending; verdict: Verdict; state: StateRow }[] = [];
    for (const [i, item] of group.entries()) {
      const state = states.get(i) as StateRow;
      let verdict: Verdict;
      try {
        verdict = item.decide({
          installation:
            state.id === null
              ? undefined
              : { secretHash: state.secret_hash as Buffer, lastAcceptedAt: state.last_accepted_at as number },
          submissionOwner: state.owner ?? undefined,
        });
      } catch (err) {
        item.reject(err);
        continue;
      }
      if (verdict.store) writes.push({ item, verdict, state });
      else item.resolve(verdict);
    }
    if (writes.length === 0) return;

    let stored: Set<number>;
    try {
      const { rows } = await this.#run<{ ord: number }>({
        name: 'collector_store_group',
        text: STORE,
        values: [...storeColumns(writes), Math.floor(Math.random() * COUNT_SHARDS)],
      });
      stored = new Set(rows.map((row) => row.ord));
    } catch (err) {
      if (!RETRY_CODES.has((err as { code?: string }).code ?? '')) {
        for (const { item } of writes) item.reject(err);
        return;
      }
      stored = new Set(); // lost a race as a whole (a submission_id taken meanwhile, a deadlock): judge all again
    }
    for (const [ord, { item, verdict }] of writes.entries()) {
      if (stored.has(ord)) item.resolve(verdict);
      else this.#retry(item);
    }
  }

  #retry(item: Pending): void {
    item.attempts++;
    if (item.attempts >= MAX_ATTEMPTS) {
      item.reject(new StorageUnavailableError('too much contention on one installation; try again later'));
      return;
    }
    this.#queue.push(item);
    this.#schedule();
  }
}

/** The storing statement's arrays, one per column of COLUMNS, `ord` being the index in `writes`. */
function storeColumns(writes: { item: Pending; state: StateRow }[]): unknown[][] {
  const columns: unknown[][] = COLUMNS.map(() => []);
  for (const [ord, { item, state }] of writes.entries()) {
    const { payload, secretHash, receivedAt } = item.submission;
    const known = state.id !== null;
    const usage = payload.usage_stats;
    const values: unknown[] = [
      ord,
      known ? state.id : null,
      known ? state.last_accepted_at : null,
      payload.installation.installation_id,
      secretHash,
      receivedAt,
      ...installationAttributes(payload),
      payload.submission_id,
      JSON.stringify(payload),
      weekStartOf(receivedAt),
      usage.job_count,
      usage.job_completed_count,
      usage.job_failed_count,
      usage.job_cancelled_count,
      usage.print_hours,
      usage.file_count,
      usage.upload_count,
      usage.uptime_hours,
      state.week_jobs ?? 0,
      state.week_jobs !== null,
      state.deployment_mode,
      state.app_version,
      known ? (state.country_code ?? '') : null,
      state.printer_types,
      state.printer_models,
    ];
    for (const [i, value] of values.entries()) (columns[i] as unknown[]).push(value);
  }
  return columns;
}

function installationAttributes(payload: SubmissionPayload): unknown[] {
  return [
    payload.installation.first_seen,
    payload.installation.app_version,
    payload.installation.runtime_version,
    payload.installation.platform,
    payload.installation.deployment_mode,
    payload.installation.country_code,
    printerTypeSet(payload),
    printerModelSet(payload),
  ];
}
