/**
 * The PrusaLink bridge for one printer (issue 4): polls /api/v1/status with one request in flight, feeds the shared
 * PrinterTracker (which owns every job and connection event), and reports new files itself. Connection handling:
 * three failed polls in a row make the printer disconnected; while offline the interval doubles up to 5 minutes,
 * refused credentials are rechecked every 5 minutes; each cause is logged and counted once per outage.
 */
import type { Logger } from 'pino';
import { type ErrorType, fileTypeOf, type PrinterModel } from '../../stats/events.js';
import { PrinterTracker } from '../tracker.js';
import {
  ACTIVE_JOB_STATES,
  type DisconnectReason,
  type EventSink,
  type JobState,
  type PrinterDriver,
  type PrinterSnapshot,
} from '../types.js';
import { PrusaLinkClient, type RequestFailure } from './client.js';
import {
  filesListingSchema,
  jobFile,
  jobIdOf,
  jobSchema,
  type ListedFile,
  listedFiles,
  modelFromVersion,
  type PrusaLinkStatus,
  parseBody,
  stateWord,
  statusSchema,
  toJobObservation,
  versionSchema,
  writableStorages,
} from './status.js';

export interface PrusaLinkDriverOptions {
  /** Already the slug of the configured name. */
  id: string;
  name: string;
  /** Bare host or URL with scheme and port. */
  host: string;
  username: string;
  password: string;
  /** Empty string: use Digest. */
  apiKey: string;
  pollIntervalS: number;
  /** Interval while a job runs (5 s); never slower than pollIntervalS. */
  activePollIntervalS?: number;
  /** Deadline per request, digest retry included (5000). */
  timeoutMs?: number;
  /** Storage listings at most this often (300). */
  filesIntervalS?: number;
  /** Failed polls in a row before the printer counts as disconnected (3). */
  failuresBeforeOffline?: number;
  /** Upper bound of the offline backoff (300). */
  maxBackoffS?: number;
  /** How often refused credentials are tried again (300). */
  authRecheckS?: number;
}

/** The part of PrinterTracker the driver uses; tests may hand in their own. */
export type JobTracker = Pick<PrinterTracker, 'connected' | 'observe' | 'disconnected'>;

export interface PrusaLinkDriverDeps {
  emit: EventSink;
  logger: Logger;
  tracker?: JobTracker;
  now?: () => number;
  /** Called for each HTTP request sent (the benchmark counts them). */
  onRequest?: () => void;
}

/** What went wrong in a poll, as the driver classifies it. */
type PollFailure = RequestFailure | { kind: 'unparseable' };

interface Cause {
  key: string;
  reason: DisconnectReason;
  problem: string;
  /** Counted once per outage as error_occurred; transient causes (timeouts, 503) are not. */
  errorType?: ErrorType;
  message: string;
}

/** A job id seen again with printing time this much lower is a new job: the printer rebooted and reset its ids. */
const PRINTING_TIME_REGRESSION_S = 30;
const MAX_SEEN_FILES = 10_000;
const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['finished', 'cancelled', 'error', 'failed']);

export class PrusaLinkDriver implements PrinterDriver {
  readonly id: string;
  private readonly log: Logger;
  private readonly emit: EventSink;
  private readonly tracker: JobTracker;
  private readonly now: () => number;
  private readonly client: PrusaLinkClient | null;

  private readonly baseMs: number;
  private readonly activeMs: number;
  private readonly timeoutMs: number;
  private readonly filesMs: number;
  private readonly threshold: number;
  private readonly maxBackoffMs: number;
  private readonly authRecheckMs: number;

  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private abort = new AbortController();
  private inFlight: Promise<void> | null = null;

  // connection
  private online = false;
  private failures = 0;
  private versionRead = false;
  /** Causes already logged in the current outage, and error types already counted in it. */
  private outageCauses = new Set<string>();
  private outageErrors = new Set<ErrorType>();

  // printer and job
  private model: PrinterModel = 'other';
  private observedOnce = false;
  private active = false;
  private lastJobId: string | null = null;
  private lastJobKey: string | null = null;
  private lastPrintingS: number | null = null;
  private generation = 0;

  // files
  private storages: string[] = [];
  private readonly listedStorages = new Set<string>();
  private readonly seenFiles = new Set<string>();
  private lastListingAt: number | null = null;

  // snapshot
  private state: string | null = null;
  private progress: number | null = null;
  private remainingMinutes: number | null = null;
  private lastSeen: number | null = null;
  private problem: string | null = null;

  constructor(
    private readonly opts: PrusaLinkDriverOptions,
    deps: PrusaLinkDriverDeps,
  ) {
    this.id = opts.id;
    this.emit = deps.emit;
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'prusalink', printer: opts.id });
    this.tracker =
      deps.tracker ??
      new PrinterTracker({
        printerType: 'prusa',
        model: () => this.model,
        connection: 'http',
        emit: deps.emit,
        now: this.now,
      });
    this.baseMs = Math.max(1, opts.pollIntervalS * 1000);
    this.activeMs = Math.min(this.baseMs, (opts.activePollIntervalS ?? 5) * 1000);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.filesMs = (opts.filesIntervalS ?? 300) * 1000;
    this.threshold = Math.max(1, opts.failuresBeforeOffline ?? 3);
    this.maxBackoffMs = (opts.maxBackoffS ?? 300) * 1000;
    this.authRecheckMs = (opts.authRecheckS ?? 300) * 1000;

    let client: PrusaLinkClient | null = null;
    try {
      client = new PrusaLinkClient({
        host: opts.host,
        username: opts.username || 'maker',
        password: opts.password,
        apiKey: opts.apiKey || undefined,
        timeoutMs: this.timeoutMs,
        onRequest: deps.onRequest,
      });
    } catch {
      this.problem = 'invalid host';
    }
    this.client = client;
  }

  start(): void {
    if (this.running) return;
    if (!this.client) {
      this.log.error('PrusaLink host is not a valid host name or http(s) URL; this printer is not polled');
      return;
    }
    this.running = true;
    this.abort = new AbortController();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort.abort();
    await this.inFlight;
    this.client?.close();
  }

  snapshot(): PrinterSnapshot {
    return {
      id: this.opts.id,
      name: this.opts.name,
      type: 'prusa',
      model: this.model,
      online: this.online,
      state: this.state,
      progress: this.progress,
      remaining_minutes: this.remainingMinutes,
      last_seen: this.lastSeen === null ? null : new Date(this.lastSeen).toISOString(),
      problem: this.problem,
    };
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const started = performance.now();
      this.inFlight = this.poll()
        .catch((err: unknown) => {
          // A bug, not the printer: keep polling at the normal pace.
          this.log.error({ err: err instanceof Error ? err.name : 'unknown' }, 'PrusaLink poll crashed');
          return this.baseMs;
        })
        .then((next) => {
          this.inFlight = null;
          // Fixed rate without overlap: the time the poll took counts towards the interval.
          this.schedule(Math.max(0, next - (performance.now() - started)));
        });
    }, delayMs);
  }

  /** One poll; resolves to the delay before the next. */
  private async poll(): Promise<number> {
    const client = this.client!;
    const signal = this.abort.signal;

    if (!this.versionRead) {
      const res = await client.get('/api/version', signal);
      if (res.ok) {
        const version = parseBody(versionSchema, res.body);
        if (!version.ok) return this.failed({ kind: 'unparseable' });
        this.model = modelFromVersion(version.value);
      } else if (!(res.failure.kind === 'http' && res.failure.status === 404)) {
        return this.failed(res.failure);
      }
      this.versionRead = true;
    }

    const res = await client.get('/api/v1/status', signal);
    if (!res.ok) return this.failed(res.failure);
    const status = parseBody(statusSchema, res.body);
    if (!status.ok) return this.failed({ kind: 'unparseable' });

    const newJob = this.observe(status.value);
    if (newJob) await this.checkJobFile(newJob, signal);
    await this.checkListings(signal);
    return this.active ? this.activeMs : this.baseMs;
  }

  /** A good status: connection bookkeeping, the tracker, the snapshot. Returns the job id if a new job started. */
  private observe(status: PrusaLinkStatus): string | null {
    if (!this.online) {
      this.online = true;
      this.tracker.connected();
      this.log.info('PrusaLink printer connected');
    }
    if (this.outageCauses.size > 0) this.log.info('PrusaLink printer answers again');
    this.failures = 0;
    this.outageCauses.clear();
    this.outageErrors.clear();
    this.problem = null;
    this.lastSeen = this.now();

    const jobId = jobIdOf(status);
    const printingS = status.job?.time_printing ?? null;
    if (
      jobId !== null &&
      jobId === this.lastJobId &&
      printingS !== null &&
      this.lastPrintingS !== null &&
      printingS + PRINTING_TIME_REGRESSION_S < this.lastPrintingS
    ) {
      this.generation++;
    }
    const jobKey = jobId === null ? null : this.generation > 0 ? `${jobId}~${this.generation}` : jobId;
    const observation = toJobObservation(status, jobKey);
    const mapped: JobState = observation.state;
    // New: a running job with another id, or with any id after the printer was between jobs (a reboot can hand out
    // the same id again). Prusa-Link on a Pi may keep the job in FINISHED: that is not a new one.
    const isNewJob =
      this.observedOnce &&
      jobKey !== null &&
      ACTIVE_JOB_STATES.has(mapped) &&
      (jobKey !== this.lastJobKey || !this.active);
    // FINISHED/STOPPED/ERROR carry no job, so no time_printing: the job's duration is the printer's own printing
    // time as last seen while it ran (at most one poll short), not the wall clock with pauses and outages.
    if (jobId === null && this.active && TERMINAL_STATES.has(mapped)) observation.printingSeconds = this.lastPrintingS;
    this.tracker.observe(observation);
    this.observedOnce = true;
    if (jobId !== null) {
      this.lastJobId = jobId;
      this.lastJobKey = jobKey;
      this.lastPrintingS = printingS;
    }

    if (mapped !== 'unknown') this.active = ACTIVE_JOB_STATES.has(mapped);
    this.state = stateWord(status.printer.state);
    const job = status.job;
    this.progress = job?.progress ?? null;
    this.remainingMinutes =
      job?.time_remaining !== undefined && job.time_remaining >= 0 ? Math.round(job.time_remaining / 60) : null;
    this.storages = writableStorages(status);
    return isNewJob ? jobId : null;
  }

  private failed(failure: PollFailure): number {
    if (failure.kind === 'aborted') return 0; // stopping
    this.failures++;
    const cause = describe(failure);
    this.problem = cause.problem;
    if (!this.outageCauses.has(cause.key)) {
      this.outageCauses.add(cause.key);
      this.log.warn({ kind: failure.kind, status: statusOf(failure), code: codeOf(failure) }, cause.message);
      if (cause.errorType && !this.outageErrors.has(cause.errorType)) {
        this.outageErrors.add(cause.errorType);
        this.emit('error_occurred', { error_type: cause.errorType, component: 'prusalink', printer_type: 'prusa' });
      }
    } else {
      this.log.debug({ kind: failure.kind, status: statusOf(failure), failures: this.failures }, 'poll failed again');
    }

    if (this.failures < this.threshold) return this.active ? this.activeMs : this.baseMs;
    if (this.online) {
      this.online = false;
      this.versionRead = false;
      this.client?.resetAuth(); // a printer that comes back has most likely rebooted and forgotten our nonce
      this.tracker.disconnected(cause.reason);
      this.log.warn({ reason: cause.reason }, 'PrusaLink printer disconnected after repeated failed polls');
    }
    if (failure.kind === 'auth') return this.authRecheckMs;
    const doublings = this.failures - this.threshold + 1;
    return Math.min(this.baseMs * 2 ** Math.min(doublings, 20), this.maxBackoffMs);
  }

  /** A new job: if its file was never seen (not in a listing, not printed before), it was uploaded. */
  private async checkJobFile(jobId: string, signal: AbortSignal): Promise<void> {
    const res = await this.client!.get('/api/v1/job', signal);
    if (!res.ok || res.status !== 200) return; // best effort: 204 means the job is already over
    const job = parseBody(jobSchema, res.body);
    if (!job.ok || String(job.value.id) !== jobId) return;
    const file = jobFile(job.value);
    if (file) this.sawFile(file, true);
  }

  private async checkListings(signal: AbortSignal): Promise<void> {
    if (this.storages.length === 0) return;
    const now = this.now();
    if (this.lastListingAt !== null && now - this.lastListingAt < this.filesMs) return;
    this.lastListingAt = now;
    for (const storage of this.storages) {
      const res = await this.client!.get(`/api/v1/files/${storage}/`, signal);
      if (!res.ok || res.status !== 200) {
        this.log.debug({ status: res.ok ? res.status : statusOf(res.failure) }, 'storage listing unavailable');
        continue;
      }
      const listing = parseBody(filesListingSchema, res.body);
      if (!listing.ok) continue;
      // The first listing of a storage is a baseline: those files were there before we watched.
      const baseline = !this.listedStorages.has(storage);
      for (const file of listedFiles(storage, listing.value)) this.sawFile(file, !baseline);
      this.listedStorages.add(storage);
    }
  }

  private sawFile(file: ListedFile, record: boolean): void {
    if (this.seenFiles.has(file.key)) return;
    if (this.seenFiles.size >= MAX_SEEN_FILES) {
      const oldest = this.seenFiles.values().next().value;
      if (oldest !== undefined) this.seenFiles.delete(oldest);
    }
    this.seenFiles.add(file.key);
    if (!record) return;
    const metadata: Record<string, string | number> = { printer_type: 'prusa', file_type: fileTypeOf(file.typeName) };
    if (file.size !== null && file.size >= 0) metadata['size_bytes'] = Math.round(file.size);
    this.emit('file_uploaded', metadata);
  }
}

function statusOf(f: PollFailure): number | undefined {
  return 'status' in f ? f.status : undefined;
}

function codeOf(f: PollFailure): string | undefined {
  return 'code' in f ? f.code : undefined;
}

function describe(f: PollFailure): Cause {
  switch (f.kind) {
    case 'auth':
      return {
        key: 'auth',
        reason: 'auth',
        problem: `auth refused (HTTP ${f.status ?? 401}): check the user, password or API key`,
        errorType: 'auth_failed',
        message: 'PrusaLink printer refused the credentials; checking again every 5 minutes',
      };
    case 'stale':
      return {
        key: 'stale',
        reason: 'error',
        problem: 'digest nonce rejected as stale on every request',
        errorType: 'http_error',
        message: 'PrusaLink printer calls every digest nonce stale, even a fresh one',
      };
    case 'timeout':
      return {
        key: 'timeout',
        reason: 'timeout',
        problem: 'no answer within the timeout',
        message: 'PrusaLink printer did not answer in time',
      };
    case 'network':
      return {
        key: 'network',
        reason: 'network',
        problem: `cannot connect${f.code ? ` (${f.code})` : ''}`,
        message: 'PrusaLink printer is not reachable',
      };
    case 'unparseable':
    case 'too_large':
      return {
        key: 'unparseable',
        reason: 'error',
        problem: 'unparseable response (not PrusaLink JSON)',
        errorType: 'response_unparseable',
        message: 'PrusaLink printer sent a response that is not the expected JSON',
      };
    case 'http':
      if (f.status === 503) {
        return {
          key: 'http_503',
          reason: 'error',
          problem: 'printer busy (HTTP 503)',
          message: 'PrusaLink printer is not ready (HTTP 503)',
        };
      }
      return {
        key: `http_${f.status}`,
        reason: 'error',
        problem: `HTTP ${f.status}`,
        errorType: 'http_error',
        message: 'PrusaLink printer answered with an HTTP error',
      };
    case 'aborted':
      return { key: 'aborted', reason: 'closed', problem: 'stopped', message: 'stopped' };
  }
}
