/**
 * The collector's storage contract: one interface, two implementations (storage-sqlite.ts, the embedded default,
 * one file beside one process; storage-postgres.ts, one database shared by several collector instances).
 *
 * Storage knows SQL, transactions and locks, and nothing of the rules. The rules (who may write, when, what is
 * public) live in rules.ts and stats.ts and reach storage as plain functions: `admit` reads an installation's state,
 * asks the rules' `decide`, and stores only what the rules allow, and only if no other admission of the same
 * installation (in any process) changed that state meanwhile; `snapshot` hands the statistics one consistent view.
 */
import type { Logger } from 'pino';
import type { SubmissionPayload } from './payload.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface RetentionOptions {
  /** Raw submissions older than this are deleted (issue 5: at most 90 days). */
  rawSubmissionDays: number;
  /** Weekly rows and installations silent for this long are deleted with their secret hash. */
  installationDays: number;
}
export const DEFAULT_RETENTION: RetentionOptions = { rawSubmissionDays: 90, installationDays: 365 };

/** Separator of the printer type and model set columns; models contain spaces and dots but never a bar. */
export const SET_SEPARATOR = '|';

/** The public distributions, by the column that holds them. */
export const DIMENSIONS = [
  'deployment_mode',
  'app_version',
  'country_code',
  'printer_types',
  'printer_models',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export interface InstallationAuth {
  secretHash: Buffer;
  lastAcceptedAt: number;
}

/** What the rules see of an installation when they judge one of its submissions. */
export interface AdmissionState {
  /** The installation as stored (committed, or earlier in the same commit), if it is known. */
  installation: InstallationAuth | undefined;
  /** The installation that sent this submission_id, if the submission is stored. */
  submissionOwner: string | undefined;
}

export interface IncomingSubmission {
  payload: SubmissionPayload;
  /** Stored as the installation's secret hash on first contact; a known installation keeps its stored one. */
  secretHash: Buffer;
  receivedAt: number;
}

/** A decision of the rules; storage only reads `store`, and hands the whole decision back. */
export interface Verdict {
  store: boolean;
}

export interface DeletionVerdict {
  delete: boolean;
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
  /** True when another instance was pruning at the same moment, so this one left it to that one. */
  skipped?: boolean;
}

/** The reads behind /v1/stats; every call of one `snapshot` sees the same committed data. */
export interface StatsView {
  activeInstallationCount(since: number): Promise<number>;
  /** Active installations per value of each public dimension (one pass where the database allows it). */
  activeDistributions(since: number): Promise<Record<Dimension, GroupCountRow[]>>;
  /** Weeks with a row received inside the window: contributing installations and their jobs, by week. */
  jobsPerWeek(since: number): Promise<WeekRow[]>;
  /** How many active installations created how many jobs over the window, ordered by jobs. */
  jobsHistogram(since: number): Promise<JobsHistogramRow[]>;
}

export interface CollectorStorage {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Judges and stores one submission atomically. `decide` is called with the installation's state as stored; the
   * submission is stored only when the verdict says `store` and only if that state is still the stored one when it
   * is written (SQLite: the same transaction; PostgreSQL: a compare-and-set in the storing statement), else `decide`
   * is called again on the new state. So no other admission of the same installation, on any instance, can slip in
   * between. The promise resolves with the verdict only after the commit. `decide` must be synchronous and free of
   * side effects.
   */
  admit<V extends Verdict>(submission: IncomingSubmission, decide: (state: AdmissionState) => V): Promise<V>;
  /**
   * Removes an installation with its submissions and weekly rows when `decide`, given what is stored (or undefined),
   * says so; resolves with the verdict after the commit. A removal changes `removalVersion()` in the same commit.
   */
  deleteInstallation<V extends DeletionVerdict>(
    installationId: string,
    decide: (installation: InstallationAuth | undefined) => V,
  ): Promise<V>;
  /** Changes whenever data was removed on request; public numbers computed under another value are stale. */
  removalVersion(): Promise<number>;
  /** Runs `read` against one consistent view of the stored data. */
  snapshot<T>(read: (view: StatsView) => Promise<T>): Promise<T>;
  /** Deletes what is past retention; one instance at a time. */
  prune(now: number, retention: RetentionOptions): Promise<PruneResult>;
  /** Touches the database (GET /v1/health). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The database is unreachable or went away during a request: answered 503, retried by the client later. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

/** The configured database cannot be used at start-up (bad URL, refused login, unreachable): one line, exit 2. */
export class CollectorDatabaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CollectorDatabaseError';
  }
}

/** Monday 00:00 UTC of the week containing `ms`, as `YYYY-MM-DD`. */
export function weekStartOf(ms: number): string {
  const date = new Date(ms);
  const daysSinceMonday = (date.getUTCDay() + 6) % 7;
  const monday = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() - daysSinceMonday);
  return new Date(monday).toISOString().slice(0, 10);
}

export function printerTypeSet(payload: SubmissionPayload): string {
  const fleet = payload.printer_fleet;
  const types = new Set<string>(fleet.printer_types);
  for (const [type, n] of Object.entries(fleet.printer_type_counts)) if ((n ?? 0) > 0) types.add(type);
  return [...types].sort().join(SET_SEPARATOR);
}

export function printerModelSet(payload: SubmissionPayload): string {
  return Object.entries(payload.printer_fleet.printer_model_counts)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([model]) => model)
    .sort()
    .join(SET_SEPARATOR);
}

/** The cut-off times of a retention policy at `now`. */
export function retentionCutoffs(now: number, retention: RetentionOptions) {
  return {
    submissionsBefore: now - retention.rawSubmissionDays * DAY_MS,
    installationsBefore: now - retention.installationDays * DAY_MS,
  };
}

export interface OpenStorageOptions {
  /** SQLite: the directory of `collector.sqlite` (used when no database URL is given). */
  dataDir?: string;
  /** PostgreSQL: a `postgres://` or `postgresql://` URL; takes precedence over dataDir. */
  database?: string;
  logger: Logger;
}

/**
 * Opens (and migrates) the configured storage. The PostgreSQL client is loaded only when a database URL is given,
 * so the embedded collector never loads it.
 */
export async function openCollectorStorage(options: OpenStorageOptions): Promise<CollectorStorage> {
  if (options.database) {
    const { PostgresCollectorStorage } = await import('./storage-postgres.js');
    return PostgresCollectorStorage.open(options.database, { logger: options.logger });
  }
  if (!options.dataDir) throw new Error('The collector needs a data directory or a database URL');
  const { SqliteCollectorStorage } = await import('./storage-sqlite.js');
  return new SqliteCollectorStorage(options.dataDir, { logger: options.logger });
}
