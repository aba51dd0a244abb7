/**
 * Sends the aggregate (DESIGN.md "Submission and collector") to `usage_statistics.endpoint` and asks the collector to
 * delete this installation's data on request. The bearer secret and the payload are never logged.
 *
 * One attempt = one payload with one `submission_id`, built once and sent unchanged on every retry: if the collector
 * stored an earlier try whose answer was lost, the retry answers `duplicate` and the same period is marked, so events
 * are never counted twice. Only a 2xx marks events submitted, up to exactly the payload's `period.end`; events
 * recorded while the request runs are later than that end and stay for the next submission.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AggregatedStats } from './aggregate.js';
import type { ErrorType } from './events.js';
import type { UsageStatsService } from './service.js';

const MINUTE_MS = 60_000;

export const SUBMIT_TIMEOUT_MS = 10_000;
/** Waits between the 5 tries: about an hour in all, each stretched or shrunk by up to 25% (jitter). */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1, 4, 15, 40].map((m) => m * MINUTE_MS);
/** A Retry-After longer than this is not waited for in-process; the next scheduled run tries again. */
export const MAX_RETRY_AFTER_MS = 60 * MINUTE_MS;

export type SubmissionReason =
  | 'submitted'
  | 'not_opted_in'
  | 'do_not_track'
  | 'no_endpoint'
  | 'no_secret'
  | 'in_progress'
  | 'rejected'
  | 'failed'
  | 'deferred'
  | 'cancelled';

export interface SubmissionOutcome {
  success: boolean;
  message: string;
  reason: SubmissionReason;
  /** A fitting HTTP status for callers that answer over HTTP (409 not opted in or busy, 503 no endpoint, 502 ...). */
  status?: number;
  attempts: number;
  submission_id?: string;
  marked_events?: number;
}

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export interface SubmitterOptions {
  service: UsageStatsService;
  /** `usage_statistics.endpoint`, e.g. https://collector.example/v1/submit; undefined disables submission. */
  endpoint: string | undefined;
  logger: Logger;
  timeoutMs?: number;
  /** Waits before the 2nd, 3rd, ... try; its length + 1 is the number of tries. */
  retryDelaysMs?: readonly number[];
  maxRetryAfterMs?: number;
  /** Injectable for tests: how to wait (must reject when the signal aborts), randomness and the clock. */
  sleep?: Sleep;
  random?: () => number;
  now?: () => Date;
  fetch?: typeof fetch;
}

/** The parts of a collector answer the client looks at. */
interface CollectorAnswer {
  duplicate?: unknown;
  error?: { code?: unknown };
}

type TryResult =
  | { kind: 'ok'; status: number; duplicate: boolean }
  | { kind: 'rejected'; status: number; code: string | null }
  | { kind: 'transient'; detail: string; status?: number; retryAfterMs?: number }
  | { kind: 'cancelled' };

/** A cancellable wait on the global timers (so vitest's fake timers can drive it). */
export const abortableSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref?.();
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** DELETE goes to the sibling of the submit URL: …/v1/submit → …/v1/installations/<id>; else <origin>/v1/…. */
export function installationUrl(endpoint: string, installationId: string): string {
  const url = new URL(endpoint);
  const id = encodeURIComponent(installationId);
  url.search = '';
  url.hash = '';
  url.pathname = /\/submit\/?$/.test(url.pathname)
    ? url.pathname.replace(/\/submit\/?$/, `/installations/${id}`)
    : `/v1/installations/${id}`;
  return url.toString();
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return code && /^[A-Z_]{2,40}$/.test(code) ? `network error ${code}` : 'network error';
}

function minutes(ms: number): string {
  return ms < MINUTE_MS ? `${Math.ceil(ms / 1000)} s` : `${Math.round(ms / MINUTE_MS)} min`;
}

export class UsageSubmitter {
  private readonly service: UsageStatsService;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly retryDelaysMs: readonly number[];
  private readonly maxRetryAfterMs: number;
  private readonly sleep: Sleep;
  private readonly random: () => number;
  private readonly now: () => Date;
  private readonly fetch: typeof fetch;
  private current: { controller: AbortController; done: Promise<SubmissionOutcome> } | null = null;
  private retryAt: Date | null = null;
  /** error_occurred is recorded once per cause until a submission succeeds again, never once per try. */
  private readonly reportedCauses = new Set<ErrorType>();

  constructor(private readonly options: SubmitterOptions) {
    this.service = options.service;
    this.logger = options.logger.child({ component: 'submission' });
    this.timeoutMs = options.timeoutMs ?? SUBMIT_TIMEOUT_MS;
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS;
    this.sleep = options.sleep ?? abortableSleep;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => new Date());
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  get endpoint(): string | undefined {
    return this.options.endpoint;
  }

  /** Whether an attempt (a request or a backoff wait) is under way. */
  busy(): boolean {
    return this.current !== null;
  }

  /** When the pending retry will be sent, if one is waiting. */
  nextRetryAt(): Date | null {
    return this.current ? this.retryAt : null;
  }

  /**
   * One attempt with retries (the scheduler's call). `maxAttempts` 1 is a single try without backoff (the CLI).
   * Never rejects.
   */
  submit(options: { maxAttempts?: number; onFirstTry?: (outcome: SubmissionOutcome) => void } = {}) {
    const refusal = this.refusal();
    if (refusal) return Promise.resolve(refusal);
    const controller = new AbortController();
    const done = this.attempt(controller.signal, options).finally(() => {
      if (this.current?.controller === controller) this.current = null;
      this.retryAt = null;
    });
    this.current = { controller, done };
    return done;
  }

  /**
   * POST /submit: answers after the first try. When it failed for a transient reason, the retries go on in the
   * background and the answer says so.
   */
  submitNow(): Promise<SubmissionOutcome> {
    return new Promise((resolve) => {
      this.submit({ onFirstTry: resolve }).then(resolve);
    });
  }

  /** Opt-out: stops a waiting retry or a running request at once; nothing is marked. */
  cancelPending(): void {
    if (!this.current) return;
    this.logger.info('pending submission cancelled');
    this.current.controller.abort(new Error('submission cancelled'));
  }

  /** Cancels and waits until the attempt has finished writing (the daemon's stop, before the database closes). */
  async stop(): Promise<void> {
    const current = this.current;
    if (!current) return;
    current.controller.abort(new Error('stopping'));
    await current.done;
  }

  /** DELETE <…>/v1/installations/<id> with the bearer secret; 404 (nothing stored) counts as done. */
  async deleteRemote(): Promise<{ success: boolean; message: string }> {
    this.cancelPending();
    const endpoint = this.options.endpoint;
    if (!endpoint)
      return { success: false, message: 'No collector endpoint is configured (usage_statistics.endpoint).' };
    const installationId = this.service.installationId();
    if (!installationId) return { success: true, message: 'This installation never had an id; nothing to delete.' };
    const secret = this.service.submissionSecret();
    if (!secret) return { success: false, message: 'No submission secret is stored; the collector cannot verify us.' };
    let status: number;
    try {
      const response = await this.fetch(installationUrl(endpoint, installationId), {
        method: 'DELETE',
        headers: { authorization: `Bearer ${secret}` },
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
      status = response.status;
      await response.body?.cancel();
    } catch (error) {
      const detail = (error as Error)?.name === 'TimeoutError' ? 'timeout' : describeNetworkError(error);
      return this.remoteDeleteFailed(`The collector could not be reached (${detail}); remote data was not deleted.`);
    }
    if ((status >= 200 && status < 300) || status === 404) {
      this.logger.info({ status }, 'collector deleted this installation’s data');
      return { success: true, message: 'The collector deleted this installation’s data.' };
    }
    return this.remoteDeleteFailed(`The collector refused the deletion (HTTP ${status}).`);
  }

  private remoteDeleteFailed(message: string): { success: false; message: string } {
    this.logger.warn(message);
    this.service.recordEvent('error_occurred', { error_type: 'remote_delete_failed', component: 'submission' });
    return { success: false, message };
  }

  private refusal(): SubmissionOutcome | null {
    const refuse = (reason: SubmissionReason, status: number, message: string): SubmissionOutcome => ({
      success: false,
      reason,
      status,
      message,
      attempts: 0,
    });
    // The user's choice first: without opt-in, a missing endpoint is not what stands in the way.
    if (!this.service.isOptedIn()) return refuse('not_opted_in', 409, 'Opt in before submitting statistics.');
    if (this.service.doNotTrack()) return refuse('do_not_track', 409, 'DO_NOT_TRACK is set; submission is off.');
    if (!this.options.endpoint)
      return refuse('no_endpoint', 503, 'No collector endpoint is configured (usage_statistics.endpoint).');
    if (!this.service.submissionSecret())
      return refuse('no_secret', 500, 'No submission secret is stored; opt out and in again.');
    if (this.current) return refuse('in_progress', 409, 'A submission is already in progress.');
    return null;
  }

  /**
   * The period covers the events not yet submitted. Splitting a backlog over 31 days would need several accepted
   * submissions (one per 6 hours), so unsubmitted events older than the window are marked submitted without being
   * sent: dropped from the statistics, never counted later.
   */
  private buildPayload(submissionId: string): AggregatedStats {
    const { dropBefore } = this.service.submissionPeriod();
    if (dropBefore) {
      const skipped = this.service.markSubmitted(dropBefore);
      this.logger.info({ skipped }, 'events older than 31 days were dropped from the submission');
    }
    return this.service.submissionPayload(submissionId);
  }

  /** The collector only asked to wait: remembered as the last error, but not counted as a fault. */
  private deferred(message: string, attempts: number, submissionId: string): SubmissionOutcome {
    this.service.setLastSubmissionError(message);
    return { success: false, reason: 'deferred', status: 503, message, attempts, submission_id: submissionId };
  }

  private async attempt(
    signal: AbortSignal,
    options: { maxAttempts?: number; onFirstTry?: (outcome: SubmissionOutcome) => void },
  ): Promise<SubmissionOutcome> {
    const maxAttempts = Math.max(1, options.maxAttempts ?? this.retryDelaysMs.length + 1);
    const submissionId = randomUUID();
    let payload: AggregatedStats;
    try {
      payload = this.buildPayload(submissionId);
    } catch (error) {
      this.logger.error({ err: error }, 'building the submission failed');
      return this.failed(
        'failed',
        'Building the submission failed (database error).',
        0,
        submissionId,
        'internal_error',
      );
    }
    const body = JSON.stringify(payload);
    const periodEnd = payload.period.end;

    for (let tries = 1; ; tries++) {
      if (!this.service.collectionActive()) return this.cancelled(tries - 1, submissionId);
      const result = await this.post(body, signal);
      if (result.kind === 'cancelled') return this.cancelled(tries - 1, submissionId);

      if (result.kind === 'ok') {
        const marked = this.service.markSubmitted(periodEnd);
        this.reportedCauses.clear();
        this.logger.info({ status: result.status, tries, marked, duplicate: result.duplicate }, 'statistics submitted');
        return {
          success: true,
          reason: 'submitted',
          status: 200,
          message: `Statistics submitted (${marked} events covered).`,
          attempts: tries,
          submission_id: submissionId,
          marked_events: marked,
        };
      }

      if (result.kind === 'rejected') {
        const code = result.code ? ` ${result.code}` : '';
        this.logger.warn({ status: result.status, code: result.code }, 'the collector rejected the submission');
        return this.failed(
          'rejected',
          `The collector rejected the submission (HTTP ${result.status}${code}); it is not retried.`,
          tries,
          submissionId,
          'submission_rejected',
        );
      }

      // transient
      if (result.retryAfterMs !== undefined && result.retryAfterMs > this.maxRetryAfterMs) {
        const message = `The collector asked to wait ${minutes(result.retryAfterMs)} (HTTP ${result.status ?? 429}); the next scheduled submission will try again.`;
        this.logger.info({ status: result.status, tries }, 'submission deferred by the collector');
        return this.deferred(message, tries, submissionId);
      }
      if (tries >= maxAttempts) {
        if (result.status === 429) {
          // The collector's rate limit is not a fault worth counting; the next run will get through.
          const message = `The collector is rate limiting (HTTP 429) after ${tries} ${tries === 1 ? 'try' : 'tries'}; try again later.`;
          return this.deferred(message, tries, submissionId);
        }
        this.logger.warn({ tries, detail: result.detail }, 'submission failed; giving up until the next run');
        return this.failed(
          'failed',
          `Submission failed after ${tries} ${tries === 1 ? 'try' : 'tries'}: ${result.detail}. No event was marked submitted.`,
          tries,
          submissionId,
          'submission_failed',
        );
      }
      const base = this.retryDelaysMs[Math.min(tries - 1, this.retryDelaysMs.length - 1)] ?? MINUTE_MS;
      const delay = Math.max(Math.round(base * (0.75 + 0.5 * this.random())), result.retryAfterMs ?? 0);
      this.retryAt = new Date(this.now().getTime() + delay);
      this.logger.info({ tries, detail: result.detail, retry_in_ms: delay }, 'submission failed; retrying later');
      options.onFirstTry?.({
        success: false,
        reason: 'failed',
        status: 502,
        message: `Submission failed (${result.detail}); retrying in ${minutes(delay)} (try ${tries + 1} of ${maxAttempts}).`,
        attempts: tries,
        submission_id: submissionId,
      });
      try {
        await this.sleep(delay, signal);
      } catch {
        return this.cancelled(tries, submissionId);
      }
      this.retryAt = null;
    }
  }

  /** One HTTP try with the timeout; classifies the answer without reading more than a small error body. */
  private async post(body: string, cancel: AbortSignal): Promise<TryResult> {
    if (cancel.aborted) return { kind: 'cancelled' };
    const secret = this.service.submissionSecret();
    if (!secret) return { kind: 'rejected', status: 401, code: 'no_secret' };
    let response: Response;
    try {
      response = await this.fetch(this.options.endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
        body,
        signal: AbortSignal.any([cancel, AbortSignal.timeout(this.timeoutMs)]),
        redirect: 'error',
      });
    } catch (error) {
      if (cancel.aborted) return { kind: 'cancelled' };
      if ((error as Error)?.name === 'TimeoutError') return { kind: 'transient', detail: 'timeout' };
      return { kind: 'transient', detail: describeNetworkError(error) };
    }
    const status = response.status;
    let answer: CollectorAnswer | null = null;
    try {
      answer = (await response.json()) as CollectorAnswer | null;
    } catch {
      answer = null; // not JSON, or the connection broke: the status decides
    }
    if (status >= 200 && status < 300) return { kind: 'ok', status, duplicate: answer?.duplicate === true };
    if (status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.now().getTime());
      return { kind: 'transient', detail: `HTTP ${status}`, status, retryAfterMs };
    }
    const code =
      typeof answer?.error?.code === 'string' && /^[a-z_]{1,40}$/.test(answer.error.code) ? answer.error.code : null;
    return { kind: 'rejected', status, code };
  }

  private failed(
    reason: SubmissionReason,
    message: string,
    attempts: number,
    submissionId: string,
    errorType: ErrorType,
  ): SubmissionOutcome {
    this.service.setLastSubmissionError(message);
    if (!this.reportedCauses.has(errorType)) {
      this.reportedCauses.add(errorType);
      this.service.recordEvent('error_occurred', { error_type: errorType, component: 'submission' });
    }
    return { success: false, reason, status: 502, message, attempts, submission_id: submissionId };
  }

  private cancelled(attempts: number, submissionId: string): SubmissionOutcome {
    return {
      success: false,
      reason: 'cancelled',
      status: 409,
      message: 'The submission was cancelled (opted out or stopping); nothing was marked submitted.',
      attempts,
      submission_id: submissionId,
    };
  }
}
