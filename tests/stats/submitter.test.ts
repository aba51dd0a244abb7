import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createSubmissionSchema } from '../../src/collector/payload.js';
import { MIN_SUBMISSION_PERIOD_MS, SETTINGS } from '../../src/stats/service.js';
import { installationUrl, parseRetryAfter, type SubmitterOptions, UsageSubmitter } from '../../src/stats/submitter.js';
import { testService } from '../helpers.js';
import { closedPortUrl, type RecordedRequest, recordingSleep, startStub } from './http-stub.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const job = { printer_type: 'bambu_lab', printer_model: 'X1C' } as const;

/** An opted-in service with two days of events: 2 jobs created, 1 completed. */
function setup(options: { env?: NodeJS.ProcessEnv } = {}) {
  const ctx = testService({ env: options.env ?? {} });
  ctx.service.optIn();
  ctx.clock.advance(DAY);
  ctx.service.recordEvent('job_created', job);
  ctx.service.recordEvent('job_created', job);
  ctx.service.recordEvent('job_completed', { ...job, duration_seconds: 3600 });
  ctx.clock.advance(DAY);
  return ctx;
}

function submitterFor(
  ctx: ReturnType<typeof setup>,
  endpoint: string | undefined,
  extra: Partial<SubmitterOptions> = {},
) {
  const { waits, sleep } = recordingSleep();
  const submitter = new UsageSubmitter({
    service: ctx.service,
    endpoint,
    logger: pino({ level: 'silent' }),
    sleep,
    random: () => 0.5,
    now: ctx.clock.now,
    ...extra,
  });
  return { submitter, waits };
}

const bodyOf = (request: RecordedRequest) =>
  JSON.parse(request.body) as Record<string, never> & {
    submission_id: string;
    period: { start: string; end: string; duration_days: number };
    usage_stats: { job_count: number; job_completed_count: number };
  };

/** The collector's own validation, against the test clock. */
const schemaAt = (ctx: { clock: { now: () => Date } }) =>
  createSubmissionSchema({ now: () => ctx.clock.now().getTime() });

const errorEvents = (ctx: ReturnType<typeof setup>) =>
  ctx.repository.getEvents({ eventType: 'error_occurred' }).map((e) => e.metadata);

describe('UsageSubmitter: success', () => {
  it('posts the aggregate with the bearer secret and marks exactly the covered events', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 200, body: { accepted: true, duplicate: false } }]);
    const { submitter } = submitterFor(ctx, stub.url);

    const outcome = await submitter.submit();

    expect(outcome).toMatchObject({ success: true, reason: 'submitted', attempts: 1, marked_events: 4 });
    expect(stub.requests).toHaveLength(1);
    const [request] = stub.requests;
    expect(request!.method).toBe('POST');
    expect(request!.headers.authorization).toBe(`Bearer ${ctx.service.submissionSecret()}`);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.body).not.toContain(ctx.service.submissionSecret()!);
    const body = bodyOf(request!);
    expect(schemaAt(ctx).safeParse(body).error?.issues).toBeUndefined();
    expect(body.submission_id).toBe(outcome.submission_id);
    expect(body.usage_stats).toMatchObject({ job_count: 2, job_completed_count: 1 });
    expect(ctx.repository.countEvents({ submitted: false })).toBe(0);
    expect(ctx.service.getSetting(SETTINGS.lastSubmission)).toBe(body.period.end);
    expect(ctx.service.getStatus().last_error).toBeNull();
  });

  it('leaves events recorded while the request runs for the next submission', async () => {
    const ctx = setup();
    const stub = await startStub(() => {
      ctx.service.recordEvent('job_created', job); // arrives during the HTTP request
      return { status: 200, body: { accepted: true } };
    });
    const { submitter } = submitterFor(ctx, stub.url);
    await submitter.submit();
    expect(ctx.repository.countEvents({ submitted: false })).toBe(1);

    ctx.clock.advance(7 * DAY);
    await submitter.submit();
    const second = bodyOf(stub.requests[1]!);
    expect(second.usage_stats.job_count).toBe(1);
    expect(second.period.start).toBe(bodyOf(stub.requests[0]!).period.end);
    expect(ctx.repository.countEvents({ submitted: false })).toBe(1); // the one recorded during the 2nd request
  });

  it('sends at most the last 31 days and marks older unsubmitted events without sending them', async () => {
    const ctx = testService({ env: {} });
    ctx.service.optIn();
    ctx.service.recordEvent('job_created', job); // will be 60 days old
    ctx.clock.advance(50 * DAY);
    ctx.service.recordEvent('job_created', job);
    ctx.clock.advance(10 * DAY);
    const stub = await startStub([{ status: 200, body: {} }]);
    const { submitter } = submitterFor(ctx as ReturnType<typeof setup>, stub.url);
    await submitter.submit();
    const body = bodyOf(stub.requests[0]!);
    expect(Date.parse(body.period.end) - Date.parse(body.period.start)).toBe(31 * DAY);
    expect(body.period.duration_days).toBe(31);
    expect(body.usage_stats.job_count).toBe(1);
    expect(schemaAt(ctx).safeParse(body).error?.issues).toBeUndefined();
    expect(ctx.repository.countEvents({ submitted: false })).toBe(0);
  });

  it('stretches a period shorter than 10 minutes (submit right after opt-in) so the collector accepts it', async () => {
    const ctx = testService({ env: {} });
    ctx.service.optIn();
    ctx.clock.advance(1000);
    const stub = await startStub([{ status: 200, body: {} }]);
    const { submitter } = submitterFor(ctx as ReturnType<typeof setup>, stub.url);
    await submitter.submit();
    const body = bodyOf(stub.requests[0]!);
    expect(Date.parse(body.period.end) - Date.parse(body.period.start)).toBe(MIN_SUBMISSION_PERIOD_MS);
    expect(schemaAt(ctx).safeParse(body).error?.issues).toBeUndefined();
  });
});

describe('UsageSubmitter: retries', () => {
  it('retries 5xx and 429 with backoff, honours Retry-After, and keeps one submission_id', async () => {
    const ctx = setup();
    const stub = await startStub([
      { status: 500 },
      { status: 429, headers: { 'retry-after': '600' } },
      { status: 503 },
      { status: 200, body: { accepted: true } },
    ]);
    const { submitter, waits } = submitterFor(ctx, stub.url);
    const outcome = await submitter.submit();
    expect(outcome).toMatchObject({ success: true, attempts: 4 });
    expect(new Set(stub.requests.map((r) => bodyOf(r).submission_id)).size).toBe(1);
    expect(new Set(stub.requests.map((r) => r.body)).size).toBe(1); // the same payload each time
    // random 0.5 → no jitter: 1 min, then max(4 min, Retry-After 10 min), then 15 min
    expect(waits).toEqual([60_000, 600_000, 900_000]);
    expect(ctx.repository.countEvents({ submitted: false })).toBe(0);
  });

  it('applies jitter of up to ±25% around the base delays', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 502 }, { status: 502 }, { status: 200, body: {} }]);
    let calls = 0;
    const { submitter, waits } = submitterFor(ctx, stub.url, { random: () => (calls++ === 0 ? 0 : 0.999999) });
    await submitter.submit();
    expect(waits[0]).toBe(45_000);
    expect(waits[1]).toBeCloseTo(300_000, -1);
  });

  it('gives up after 5 tries against a collector that is down: clear status, nothing marked, one error event', async () => {
    const ctx = setup();
    const { submitter, waits } = submitterFor(ctx, await closedPortUrl());
    const pendingBefore = ctx.repository.countEvents({ submitted: false });

    const outcome = await submitter.submit();
    expect(outcome).toMatchObject({ success: false, reason: 'failed', attempts: 5 });
    expect(waits).toEqual([60_000, 240_000, 900_000, 2_400_000]);
    expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThan(50 * 60_000);
    const status = ctx.service.getStatus();
    expect(status.last_error).toMatch(/after 5 tries: network error ECONNREFUSED/);
    expect(status.last_submission).toBeNull();
    expect(errorEvents(ctx)).toEqual([{ error_type: 'submission_failed', component: 'submission' }]);
    // the error event itself is new and unsubmitted; nothing was marked
    expect(ctx.repository.countEvents({ submitted: false })).toBe(pendingBefore + 1);

    await submitter.submit(); // still down next week: no second error event for the same outage
    expect(errorEvents(ctx)).toHaveLength(1);
  });

  it('times out a collector that does not answer', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 200, hang: true }]);
    const { submitter } = submitterFor(ctx, stub.url, { timeoutMs: 200 });
    const started = Date.now();
    const outcome = await submitter.submit({ maxAttempts: 1 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(outcome).toMatchObject({ success: false, reason: 'failed' });
    expect(outcome.message).toMatch(/timeout/);
    expect(ctx.repository.countEvents({ submitted: true })).toBe(0);
  });

  it('does not retry a 4xx: records error_occurred submission_rejected once', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 422, body: { error: { code: 'validation_failed', message: 'x' } } }]);
    const { submitter, waits } = submitterFor(ctx, stub.url);
    const outcome = await submitter.submit();
    expect(outcome).toMatchObject({ success: false, reason: 'rejected', attempts: 1 });
    expect(stub.requests).toHaveLength(1);
    expect(waits).toEqual([]);
    expect(ctx.service.getStatus().last_error).toMatch(/HTTP 422 validation_failed/);
    expect(errorEvents(ctx)).toEqual([{ error_type: 'submission_rejected', component: 'submission' }]);
    expect(ctx.repository.countEvents({ submitted: true })).toBe(0);
  });

  it('defers without an error event when the collector asks to wait longer than an hour', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 429, headers: { 'retry-after': '21600' } }]);
    const { submitter, waits } = submitterFor(ctx, stub.url);
    const outcome = await submitter.submit();
    expect(outcome).toMatchObject({ success: false, reason: 'deferred', attempts: 1 });
    expect(waits).toEqual([]);
    expect(errorEvents(ctx)).toEqual([]);
    expect(ctx.service.getStatus().last_error).toMatch(/wait 360 min/);
  });

  it('cancelPending stops a sleeping backoff at once; nothing is marked or reported', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 500 }]);
    const { submitter } = submitterFor(ctx, stub.url, { sleep: undefined }); // the real, hour-long wait
    const running = submitter.submit();
    await expect.poll(() => submitter.nextRetryAt()).not.toBeNull();
    expect(submitter.busy()).toBe(true);
    const started = Date.now();
    ctx.service.optOut();
    submitter.cancelPending();
    const outcome = await running;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(outcome).toMatchObject({ success: false, reason: 'cancelled' });
    expect(stub.requests).toHaveLength(1);
    expect(submitter.busy()).toBe(false);
    expect(ctx.repository.countEvents({ submitted: true })).toBe(0);
    expect(errorEvents(ctx)).toEqual([]);
  });

  it('stops retrying when the user opted out from another process', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 500 }]);
    const { submitter } = submitterFor(ctx, stub.url, {
      sleep: async () => {
        ctx.service.optOut();
      },
    });
    const outcome = await submitter.submit();
    expect(outcome.reason).toBe('cancelled');
    expect(stub.requests).toHaveLength(1);
  });
});

describe('UsageSubmitter: refusals and submitNow', () => {
  it('refuses without opt-in, with DO_NOT_TRACK, or without an endpoint, and sends nothing', async () => {
    const stub = await startStub([{ status: 200 }]);
    const fresh = testService({ env: {} });
    const notOptedIn = submitterFor(fresh as ReturnType<typeof setup>, stub.url).submitter;
    expect(await notOptedIn.submitNow()).toMatchObject({ success: false, reason: 'not_opted_in', status: 409 });
    const dnt = submitterFor(setup({ env: { DO_NOT_TRACK: '1' } }), stub.url).submitter;
    expect(await dnt.submitNow()).toMatchObject({ success: false, reason: 'do_not_track', status: 409 });
    const noEndpoint = submitterFor(setup(), undefined).submitter;
    const outcome = await noEndpoint.submitNow();
    expect(outcome).toMatchObject({ success: false, reason: 'no_endpoint' });
    expect(outcome.message).toMatch(/endpoint/);
    expect(stub.requests).toHaveLength(0);
  });

  it('answers after the first try, keeps retrying in the background, and allows one attempt at a time', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 503 }, { status: 200, body: {} }]);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { submitter } = submitterFor(ctx, stub.url, { sleep: () => gate });
    const first = await submitter.submitNow();
    expect(first).toMatchObject({ success: false, reason: 'failed' });
    expect(first.message).toMatch(/HTTP 503\); retrying in 1 min \(try 2 of 5\)/);
    expect(await submitter.submitNow()).toMatchObject({ success: false, reason: 'in_progress', status: 409 });
    release();
    await expect.poll(() => ctx.service.getStatus().last_submission).not.toBeNull();
    expect(stub.requests).toHaveLength(2);
  });

  it('never logs the secret or payload contents', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 500 }, { status: 422 }]);
    const lines: string[] = [];
    const logger = pino(
      { level: 'trace' },
      new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const { submitter } = submitterFor(ctx, stub.url, { logger });
    await submitter.submit();
    await submitter.deleteRemote();
    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(0);
    expect(log).not.toContain(ctx.service.submissionSecret()!);
    expect(log).not.toContain(ctx.service.installationId()!);
    expect(log).not.toContain('job_count');
  });
});

describe('UsageSubmitter: remote deletion', () => {
  it('sends DELETE to the sibling installations URL with the secret; 404 counts as done', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 404, body: { error: { code: 'not_found' } } }]);
    const { submitter } = submitterFor(ctx, stub.url);
    expect(await submitter.deleteRemote()).toMatchObject({ success: true });
    expect(stub.requests[0]).toMatchObject({
      method: 'DELETE',
      url: `/v1/installations/${ctx.service.installationId()}`,
    });
    expect(stub.requests[0]!.headers.authorization).toBe(`Bearer ${ctx.service.submissionSecret()}`);
  });

  it('reports a refused or failed deletion and counts it once as an error', async () => {
    const ctx = setup();
    const stub = await startStub([{ status: 403 }]);
    const { submitter } = submitterFor(ctx, stub.url);
    const outcome = await submitter.deleteRemote();
    expect(outcome).toMatchObject({ success: false });
    expect(outcome.message).toMatch(/HTTP 403/);
    expect(errorEvents(ctx)).toEqual([{ error_type: 'remote_delete_failed', component: 'submission' }]);
    const down = submitterFor(ctx, await closedPortUrl()).submitter;
    expect((await down.deleteRemote()).message).toMatch(/could not be reached/);
  });

  it('derives the deletion URL from the endpoint', () => {
    const id = '6f1c2c2e-8a1b-4c1d-9e2f-0a1b2c3d4e5f';
    expect(installationUrl('https://c.example/v1/submit', id)).toBe(`https://c.example/v1/installations/${id}`);
    expect(installationUrl('https://c.example/stats/v1/submit?x=1', id)).toBe(
      `https://c.example/stats/v1/installations/${id}`,
    );
    expect(installationUrl('https://c.example/ingest', id)).toBe(`https://c.example/v1/installations/${id}`);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    const now = Date.parse('2026-11-02T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Mon, 02 Nov 2026 10:05:00 GMT', now)).toBe(300_000);
    expect(parseRetryAfter('Mon, 02 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
