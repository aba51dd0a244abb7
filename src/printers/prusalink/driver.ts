/**
 * The PrusaLink bridge for one printer: polls /api/v1/status with one request in flight and reports what it sees as
 * PrinterUpdates (DESIGN.md "Data flow"); the fleet's tracker turns them into events. What a status means for the job
 * is decided in job-state.ts, which files arrived in files.ts, the model in model.ts, all from response bodies alone.
 *
 * Connection handling: three failed polls in a row make the printer disconnected (LinkHealth); while offline the
 * interval doubles (with jitter) up to 5 minutes, refused credentials are rechecked every 5 minutes; each cause is
 * logged once per outage and counted (error_occurred) by the tracker at most once per outage. Every timer runs on the
 * injected clock and every request goes through the injected transport, so a replay of recorded responses drives
 * this same code on a manual clock.
 */
import type { Logger } from 'pino';
import { type DisconnectReason, type ErrorType, PRINTER_MODELS, type PrinterModel } from '../../stats/events.js';
import type { Clock, TimerHandle } from '../clock.js';
import { LinkHealth } from '../link-health.js';
import type { DriverDeps, PrinterDriver, PrinterUpdate, RawTraffic } from '../types.js';
import { type GetResult, PrusaLinkClient, type PrusaLinkTransport, type RequestFailure } from './client.js';
import { type FileArrival, type FileHint, PrusaLinkFiles } from './files.js';
import { PrusaLinkJobState } from './job-state.js';
import { FAMILY_MEMBERS, type ModelReading, modelFromVersion } from './model.js';
import {
  filesListingSchema,
  jobSchema,
  parseBody,
  statusSchema,
  storageListSchema,
  storagePathName,
  transferSchema,
  versionSchema,
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
  /** How often a printer whose firmware lacks PrusaLink API v1 is asked again (300). */
  legacyRecheckS?: number;
  /** How often /api/version is read again while Prusa-Link does not know its printer yet (60). */
  modelRecheckS?: number;
  /** Replaces HTTP: a replay of recorded responses, a test's scripted printer. */
  transport?: PrusaLinkTransport;
  /** Called for each HTTP request the built-in client sends (the benchmark counts them). */
  onRequest?: () => void;
  /** 0..1 for the backoff's jitter (tests pass a fixed one). */
  random?: () => number;
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

/** Buddy before 4.7.0 serves only the legacy /api/printer and /api/job, which carry no job id (issue 12, item 6). */
export const LEGACY_FIRMWARE_PROBLEM = "PrusaLink API v1 needed: update the printer's firmware to 4.7 or newer";
export const INVALID_HOST_PROBLEM = 'invalid host';

export class PrusaLinkDriver implements PrinterDriver {
  readonly id: string;
  private readonly log: Logger;
  private readonly send: (update: PrinterUpdate) => void;
  private readonly traffic: ((entry: RawTraffic) => void) | undefined;
  private readonly clock: Clock;
  private readonly transport: PrusaLinkTransport | null;
  private readonly health: LinkHealth;
  private readonly jobState = new PrusaLinkJobState();
  private readonly files = new PrusaLinkFiles();

  private readonly baseMs: number;
  private readonly activeMs: number;
  private readonly filesMs: number;
  private readonly threshold: number;
  private readonly authRecheckMs: number;
  private readonly legacyRecheckMs: number;
  private readonly modelRecheckMs: number;

  private running = false;
  private timer: TimerHandle | null = null;
  private abort = new AbortController();
  private inFlight: Promise<void> | null = null;

  private versionRead = false;
  private modelRecheckAt: number | null = null;
  private model: PrinterModel | null = null;
  private readonly saidOnce = new Set<string>();
  /** Causes already logged in the current outage. */
  private readonly outageCauses = new Set<string>();
  private legacyShown = false;
  private lastListingAt: number | null = null;

  constructor(opts: PrusaLinkDriverOptions, deps: DriverDeps) {
    this.id = opts.id;
    this.send = deps.update;
    this.traffic = deps.traffic;
    this.clock = deps.clock;
    // The fleet's logger already names the printer.
    this.log = deps.logger.child({ component: 'prusalink' });
    this.baseMs = Math.max(1, opts.pollIntervalS * 1000);
    this.activeMs = Math.min(this.baseMs, (opts.activePollIntervalS ?? 5) * 1000);
    this.filesMs = (opts.filesIntervalS ?? 300) * 1000;
    this.threshold = Math.max(1, opts.failuresBeforeOffline ?? 3);
    this.authRecheckMs = (opts.authRecheckS ?? 300) * 1000;
    this.legacyRecheckMs = (opts.legacyRecheckS ?? 300) * 1000;
    this.modelRecheckMs = (opts.modelRecheckS ?? 60) * 1000;
    this.health = new LinkHealth(this.send, this.clock, {
      initialMs: this.baseMs,
      maxMs: Math.max(this.baseMs, (opts.maxBackoffS ?? 300) * 1000),
      random: opts.random,
    });

    let transport: PrusaLinkTransport | null = opts.transport ?? null;
    if (!transport) {
      try {
        transport = new PrusaLinkClient({
          host: opts.host,
          username: opts.username || 'maker',
          password: opts.password,
          apiKey: opts.apiKey || undefined,
          timeoutMs: opts.timeoutMs ?? 5000,
          onRequest: opts.onRequest,
        });
      } catch {
        transport = null;
      }
    }
    this.transport = transport;
  }

  start(): void {
    if (this.running) return;
    if (!this.transport) {
      this.log.error('PrusaLink host is not a valid host name or http(s) URL; this printer is not polled');
      this.send({ kind: 'problem', scope: 'notice', problem: INVALID_HOST_PROBLEM });
      return;
    }
    this.running = true;
    this.abort = new AbortController();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
    this.abort.abort();
    await this.inFlight;
    this.transport?.close?.();
  }

  /** Resolves when no poll is in flight (a replay or a test moves its clock on after each one). */
  whenIdle(): Promise<void> {
    return this.inFlight ?? Promise.resolve();
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimer(() => {
      this.timer = null;
      const started = this.clock.now();
      this.inFlight = this.poll()
        .catch((err: unknown) => {
          // A bug, not the printer: keep polling at the normal pace.
          this.log.error({ err: err instanceof Error ? err.name : 'unknown' }, 'PrusaLink poll crashed');
          return this.baseMs;
        })
        .then((next) => {
          this.inFlight = null;
          // Fixed rate without overlap: the time the poll took counts towards the interval.
          this.schedule(Math.max(0, next - (this.clock.now() - started)));
        });
    }, delayMs);
  }

  /** One poll; resolves to the delay before the next. */
  private async poll(): Promise<number> {
    const signal = this.abort.signal;

    if (!this.versionRead || (this.modelRecheckAt !== null && this.clock.now() >= this.modelRecheckAt)) {
      const res = await this.get('/api/version', signal);
      if (res.ok) {
        const version = parseBody(versionSchema, res.body);
        if (!version.ok) return this.failed({ kind: 'unparseable' });
        this.applyModel(modelFromVersion(version.value));
      } else if (!(res.failure.kind === 'http' && res.failure.status === 404)) {
        return this.failed(res.failure);
      }
      this.versionRead = true;
    }

    const res = await this.get('/api/v1/status', signal);
    if (!res.ok) {
      if (res.failure.kind === 'http' && res.failure.status === 404) return this.legacyFirmware();
      return this.failed(res.failure);
    }
    const status = parseBody(statusSchema, res.body);
    if (!status.ok) return this.failed({ kind: 'unparseable' });

    this.answered();
    if (this.legacyShown) {
      this.legacyShown = false;
      this.send({ kind: 'problem', scope: 'notice', problem: null });
    }
    const update = this.jobState.apply(status.value);
    this.files.storages(status.value);
    const newTransfer = this.files.statusTransfer(status.value.transfer);
    if (newTransfer !== null) await this.readTransfer(newTransfer, signal);
    if (update.lostJobKey !== null) {
      this.send({ kind: 'observation', observation: { state: 'error', jobKey: update.lostJobKey } });
    }
    // The new job's file before the job: it arrived first.
    if (update.newJobId !== null) await this.checkJobFile(update.newJobId, signal);
    this.send({ kind: 'observation', observation: update.observation, status: update.status });
    await this.checkListings(signal);
    return this.jobState.jobActive ? this.activeMs : this.baseMs;
  }

  /** A good answer: online, problem cleared, outage over. */
  private answered(): void {
    const wasOnline = this.health.online;
    this.health.seen();
    // A poll that failed while the printer still counted as online left its problem showing.
    this.health.setProblem(null);
    if (!wasOnline) {
      this.traffic?.({ kind: 'link', up: true });
      this.log.info('PrusaLink printer connected');
    }
    if (this.outageCauses.size > 0) {
      this.log.info('PrusaLink printer answers again');
      this.outageCauses.clear();
    }
  }

  /**
   * /api/v1/status is 404: Buddy firmware before 4.7.0. It answers, so it is online, but there is nothing to track:
   * the legacy /api/job has no job id and says "Operational" for finished and cancelled jobs alike. Shown as a
   * problem, logged once, never counted as an error; asked again every few minutes in case the firmware was updated.
   */
  private legacyFirmware(): number {
    this.answered();
    if (!this.legacyShown) {
      this.legacyShown = true;
      this.send({ kind: 'problem', scope: 'notice', problem: LEGACY_FIRMWARE_PROBLEM });
      this.sayOnce(
        'legacy',
        'warn',
        'PrusaLink printer has no API v1 (/api/v1/status answers 404): firmware before 4.7.0; jobs and files are not tracked until it is updated',
      );
    }
    // A firmware update comes with a reboot: read the version again then.
    this.versionRead = false;
    return this.legacyRecheckMs;
  }

  private failed(failure: PollFailure): number {
    if (failure.kind === 'aborted') return 0; // stopping
    this.jobState.noAnswer();
    const cause = describe(failure);
    const failures = this.health.failed(cause.problem);
    if (!this.outageCauses.has(cause.key)) {
      this.outageCauses.add(cause.key);
      this.log.warn({ kind: failure.kind, status: statusOf(failure), code: codeOf(failure) }, cause.message);
    } else {
      this.log.debug({ kind: failure.kind, status: statusOf(failure), failures }, 'poll failed again');
    }
    if (cause.errorType) this.send({ kind: 'fault', errorType: cause.errorType, scope: 'outage' });

    if (failures < this.threshold) return this.jobState.jobActive ? this.activeMs : this.baseMs;
    if (this.health.online) {
      this.health.down(cause.reason);
      this.traffic?.({ kind: 'link', up: false, reason: cause.reason });
      this.versionRead = false;
      this.transport?.resetAuth?.(); // a printer that comes back has most likely rebooted and forgotten our nonce
      this.log.warn({ reason: cause.reason }, 'PrusaLink printer disconnected after repeated failed polls');
    }
    if (failure.kind === 'auth') return this.authRecheckMs;
    return this.health.nextBackoffMs();
  }

  private applyModel(reading: ModelReading): void {
    this.modelRecheckAt = reading.recheck ? this.clock.now() + this.modelRecheckMs : null;
    if (reading.model !== this.model && PRINTER_MODELS.includes(reading.model)) {
      this.model = reading.model;
      this.send({ kind: 'model', model: reading.model });
    }
    if (reading.family) {
      this.sayOnce(
        `family:${reading.family}`,
        'info',
        `PrusaLink printer is known only by its factory host name, which the ${FAMILY_MEMBERS[reading.family]} share; counted as model "other" until its firmware reports the model (6.5.3 or newer)`,
      );
    }
    if (reading.recheck) {
      this.sayOnce(
        'unknown_type',
        'info',
        'Prusa-Link does not know its printer yet ("Unknown printer type"); reading the model again every minute',
      );
    }
  }

  /** The details of a transfer just seen in the status: its file's name, folder and size. */
  private async readTransfer(id: string, signal: AbortSignal): Promise<void> {
    const res = await this.get('/api/v1/transfer', signal);
    if (!res.ok || res.status !== 200) return; // 204: already over
    const details = parseBody(transferSchema, res.body);
    if (details.ok) this.files.transferDetails(id, details.value);
  }

  /** A job that was not running before: its file may just have been uploaded. */
  private async checkJobFile(jobId: string, signal: AbortSignal): Promise<void> {
    const res = await this.get('/api/v1/job', signal);
    if (!res.ok || res.status !== 200) return; // best effort: 204 means the job is already over
    const job = parseBody(jobSchema, res.body);
    if (!job.ok || String(job.value.id) !== jobId) return;
    const result = this.files.jobFile(job.value);
    this.arrived(result.arrivals);
    if (result.listFolder !== null) {
      const folder = result.listFolder;
      const root = this.files.roots.some((r) => r.toLowerCase() === folder.toLowerCase());
      const available = root ? ((await this.storageAvailability(signal)).get(folder.toLowerCase()) ?? null) : undefined;
      await this.list(folder, signal, available, result.hint);
      if (root) this.lastListingAt = this.clock.now();
    }
  }

  private async checkListings(signal: AbortSignal): Promise<void> {
    const roots = this.files.roots;
    const now = this.clock.now();
    const due = roots.length > 0 && (this.lastListingAt === null || now - this.lastListingAt >= this.filesMs);
    // Most polls: nothing to list, nothing allocated.
    if (!due && !this.files.wantsListing) return;
    const wanted = this.files.takeWanted();
    const folders = due ? [...roots] : [];
    for (const folder of wanted)
      if (!folders.some((f) => f.toLowerCase() === folder.toLowerCase())) folders.push(folder);
    if (folders.length === 0) return;
    if (due) this.lastListingAt = now;
    const rootKeys = new Set(roots.map((r) => r.toLowerCase()));
    const available = folders.some((f) => rootKeys.has(f.toLowerCase()))
      ? await this.storageAvailability(signal)
      : undefined;
    for (const folder of folders) {
      const isRoot = rootKeys.has(folder.toLowerCase());
      await this.list(folder, signal, isRoot ? (available?.get(folder.toLowerCase()) ?? null) : undefined, null);
    }
  }

  /** /api/v1/storage: whether each storage's medium is in (Buddy: a USB stick). Empty when it cannot be read. */
  private async storageAvailability(signal: AbortSignal): Promise<Map<string, boolean>> {
    const map = new Map<string, boolean>();
    const res = await this.get('/api/v1/storage', signal);
    if (!res.ok || res.status !== 200) return map;
    const parsed = parseBody(storageListSchema, res.body);
    if (!parsed.ok) return map;
    for (const entry of parsed.value.storage_list) {
      const name = storagePathName(entry);
      if (name && entry.available !== undefined) map.set(`/${name}`.toLowerCase(), entry.available);
    }
    return map;
  }

  /** `available`: for a storage root, what /api/v1/storage said (null: nothing); undefined for a subfolder. */
  private async list(
    folder: string,
    signal: AbortSignal,
    available: boolean | null | undefined,
    hint: FileHint | null,
  ): Promise<void> {
    const isRoot = available !== undefined;
    // Roots as `/api/v1/files/usb/`: Buddy drops the trailing slash (file_info.cpp FileInfo), Prusa-Link routes
    // `<storage>/` (web/files.py). Folder names are percent-encoded (Prusa-Link's may hold spaces).
    const path = `/api/v1/files${folder.split('/').map(encodeURIComponent).join('/')}${isRoot ? '/' : ''}`;
    const res = await this.get(path, signal);
    if (!res.ok || res.status !== 200) {
      this.log.debug({ status: res.ok ? res.status : statusOf(res.failure) }, 'storage listing unavailable');
      return;
    }
    const listing = parseBody(filesListingSchema, res.body);
    if (!listing.ok) return;
    this.arrived(this.files.listing(folder, listing.value, available, hint));
  }

  private arrived(arrivals: readonly FileArrival[]): void {
    for (const arrival of arrivals) {
      this.send({ kind: 'file_uploaded', fileType: arrival.fileType, sizeBytes: arrival.sizeBytes });
    }
  }

  /** One request, reported to the traffic tap as it was answered. */
  private async get(path: string, signal: AbortSignal): Promise<GetResult> {
    const res = await this.transport!.get(path, signal);
    if (this.traffic) {
      if (res.ok) this.traffic({ kind: 'http', path, status: res.status, body: res.body });
      else if (res.failure.kind !== 'aborted') this.traffic(failureTraffic(path, res));
    }
    return res;
  }

  private sayOnce(key: string, level: 'info' | 'warn', message: string): void {
    if (this.saidOnce.has(key)) return;
    this.saidOnce.add(key);
    this.log[level](message);
  }
}

function failureTraffic(path: string, res: Extract<GetResult, { ok: false }>): RawTraffic {
  const f = res.failure;
  // An HTTP answer (401, 404, 500 ...) is its status and body; `failure` says what else went wrong.
  const failure = f.kind === 'http' || f.kind === 'auth' ? undefined : f.code ? `${f.kind} ${f.code}` : f.kind;
  const entry: RawTraffic = { kind: 'http', path, status: f.status ?? null, body: res.body ?? null };
  if (failure !== undefined) entry.failure = failure;
  return entry;
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
