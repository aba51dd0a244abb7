import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CATCH_UP_DELAY_MS,
  DEFAULT_SCHEDULE,
  type ScheduledSubmitter,
  SubmissionScheduler,
  spreadSchedule,
} from '../../src/stats/scheduler.js';
import { SETTINGS, type UsageStatsService } from '../../src/stats/service.js';
import { testService } from '../helpers.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** A Tuesday. */
const START = '2026-11-03T10:00:00.000Z';

/** Records when it was asked to submit, and marks like a successful submission would. */
function fakeSubmitter(service: UsageStatsService) {
  const calls: string[] = [];
  let retryAt: Date | null = null;
  const submitter: ScheduledSubmitter & { calls: string[]; setRetry(at: Date | null): void } = {
    calls,
    busy: () => false,
    nextRetryAt: () => retryAt,
    setRetry: (at) => {
      retryAt = at;
    },
    submit: async () => {
      calls.push(new Date().toISOString());
      service.markSubmitted(new Date(Date.now() - 1).toISOString());
      return { success: true };
    },
  };
  return submitter;
}

function setup(options: { optIn?: boolean; env?: NodeJS.ProcessEnv; schedule?: string } = {}) {
  const ctx = testService({ env: options.env ?? {}, now: () => new Date() });
  if (options.optIn ?? true) ctx.service.optIn();
  const submitter = fakeSubmitter(ctx.service);
  const schedulers: SubmissionScheduler[] = [];
  const makeScheduler = () => {
    const scheduler = new SubmissionScheduler({
      service: ctx.service,
      submitter,
      logger: pino({ level: 'silent' }),
      schedule: options.schedule,
      timezone: 'UTC',
    });
    schedulers.push(scheduler);
    return scheduler;
  };
  return { ...ctx, submitter, makeScheduler, schedulers };
}

const stopAll: (() => void)[] = [];
beforeEach(() => {
  vi.useFakeTimers({ now: new Date(START) });
});
afterEach(() => {
  for (const stop of stopAll.splice(0)) stop();
  vi.useRealTimers();
});

function started(ctx: ReturnType<typeof setup>): SubmissionScheduler {
  const scheduler = ctx.makeScheduler();
  scheduler.start();
  stopAll.push(() => scheduler.stop());
  return scheduler;
}

const setLastSubmission = (ctx: ReturnType<typeof setup>, iso: string) =>
  ctx.service.setSetting(SETTINGS.lastSubmission, iso);

describe('spreadSchedule', () => {
  it('is deterministic per installation and spreads installations over minutes and hours', () => {
    const id = '6f1c2c2e-8a1b-4c1d-9e2f-0a1b2c3d4e5f';
    expect(spreadSchedule(id)).toBe(spreadSchedule(id));
    expect(spreadSchedule(null)).toBe(DEFAULT_SCHEDULE);
    const slots = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const expression = spreadSchedule(crypto.randomUUID());
      const [minute, hour, dom, month, dow] = expression.split(' ');
      expect(Number(minute)).toBeGreaterThanOrEqual(0);
      expect(Number(minute)).toBeLessThan(60);
      expect(['3', '4', '5']).toContain(hour);
      expect([dom, month, dow]).toEqual(['*', '*', '1']);
      slots.add(`${hour}:${minute}`);
    }
    expect(slots.size).toBeGreaterThan(80);
  });
});

describe('SubmissionScheduler', () => {
  it('submits weekly on Monday at the installation’s spread time, only when due', async () => {
    const ctx = setup();
    setLastSubmission(ctx, '2026-11-02T04:00:00.000Z'); // yesterday: no catch-up
    const scheduler = started(ctx);
    const expression = spreadSchedule(ctx.service.installationId());
    expect(scheduler.expression()).toBe(expression);
    expect(scheduler.period()).toBe(7 * DAY);

    await vi.advanceTimersByTimeAsync(CATCH_UP_DELAY_MS + MIN);
    expect(ctx.submitter.calls).toEqual([]);

    await vi.advanceTimersByTimeAsync(21 * DAY);
    expect(ctx.submitter.calls).toHaveLength(3);
    const [minute, hour] = expression.split(' ').map(Number);
    for (const at of ctx.submitter.calls) {
      const date = new Date(at);
      expect(date.getUTCDay()).toBe(1);
      expect([date.getUTCHours(), date.getUTCMinutes()]).toEqual([hour, minute]);
    }
  });

  it('catches up once a few minutes after start when the last submission is older than a week', async () => {
    const ctx = setup();
    setLastSubmission(ctx, '2026-10-26T04:00:00.000Z'); // 8 days ago
    started(ctx);
    await vi.advanceTimersByTimeAsync(CATCH_UP_DELAY_MS - 1000);
    expect(ctx.submitter.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(ctx.submitter.calls).toEqual(['2026-11-03T10:05:00.000Z']);
  });

  it('a daemon that was off for a month submits once, not four times', async () => {
    const ctx = setup();
    setLastSubmission(ctx, '2026-10-03T10:00:00.000Z');
    started(ctx);
    await vi.advanceTimersByTimeAsync(3 * DAY); // to Friday: only the catch-up
    expect(ctx.submitter.calls).toHaveLength(1);
  });

  it('a daemon that restarts every day (and is down at night) still submits weekly', async () => {
    const ctx = setup();
    setLastSubmission(ctx, '2026-11-02T03:30:00.000Z'); // Monday
    for (let day = 0; day < 21; day++) {
      const scheduler = ctx.makeScheduler();
      scheduler.start();
      await vi.advanceTimersByTimeAsync(10 * HOUR); // up 10:00–20:00, never at the Monday slot
      scheduler.stop();
      await vi.advanceTimersByTimeAsync(14 * HOUR);
    }
    expect(ctx.submitter.calls).toEqual([
      '2026-11-09T10:05:00.000Z',
      '2026-11-16T10:05:00.000Z',
      '2026-11-23T10:05:00.000Z',
    ]);
  });

  it('skips the scheduled run when a catch-up went out within half a period', async () => {
    const ctx = setup();
    vi.setSystemTime(new Date('2026-11-01T10:00:00.000Z')); // Sunday
    setLastSubmission(ctx, '2026-10-20T04:00:00.000Z');
    started(ctx);
    await vi.advanceTimersByTimeAsync(2 * DAY);
    expect(ctx.submitter.calls).toEqual(['2026-11-01T10:05:00.000Z']); // Monday's slot skipped
    await vi.advanceTimersByTimeAsync(7 * DAY);
    expect(ctx.submitter.calls).toHaveLength(2);
  });

  it('does nothing while not opted in or with DO_NOT_TRACK, and shows no next submission', async () => {
    for (const ctx of [setup({ optIn: false }), setup({ env: { DO_NOT_TRACK: '1' } })]) {
      const scheduler = started(ctx);
      expect(scheduler.nextSubmission()).toBeNull();
      await vi.advanceTimersByTimeAsync(15 * DAY);
      expect(ctx.submitter.calls).toEqual([]);
    }
  });

  it('moves to the spread time when the user opts in while running', async () => {
    const ctx = setup({ optIn: false });
    const scheduler = started(ctx);
    expect(scheduler.expression()).toBe(DEFAULT_SCHEDULE);
    ctx.service.optIn();
    expect(scheduler.expression()).toBe(spreadSchedule(ctx.service.installationId()));
    const next = new Date(scheduler.nextSubmission()!);
    const [minute, hour] = scheduler.expression().split(' ').map(Number);
    expect([next.getUTCDay(), next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, hour, minute]);
    // The fresh opt-in is not a month-old backlog: no catch-up
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(ctx.submitter.calls).toEqual([]);
  });

  it('a read never moves the schedule: an opt-in made by another process is picked up by the hourly check', async () => {
    const ctx = setup({ optIn: false });
    const scheduler = started(ctx);
    // The CLI's opt-in beside the daemon: settings written, no event this process sees.
    ctx.service.setSetting(SETTINGS.optInStatus, 'enabled');
    ctx.service.setSetting(SETTINGS.installationId, 'a0b1c2d3-0000-4000-8000-000000000001');
    ctx.service.setSetting(SETTINGS.firstSeen, START);
    const before = scheduler.nextSubmission();
    expect(scheduler.nextSubmission()).toBe(before);
    expect(new Date(before!).getUTCHours()).toBe(3);
    expect(new Date(before!).getUTCMinutes()).toBe(0);
    await vi.advanceTimersByTimeAsync(HOUR);
    const [minute, hour] = spreadSchedule('a0b1c2d3-0000-4000-8000-000000000001').split(' ').map(Number);
    const after = new Date(scheduler.nextSubmission()!);
    expect([after.getUTCDay(), after.getUTCHours(), after.getUTCMinutes()]).toEqual([1, hour, minute]);
  });

  it('reports the next submission: a pending retry, the catch-up, or the next slot', async () => {
    const ctx = setup();
    setLastSubmission(ctx, '2026-11-02T04:00:00.000Z');
    const scheduler = started(ctx);
    const slot = scheduler.nextSubmission()!;
    expect(new Date(slot).getUTCDay()).toBe(1);
    expect(Date.parse(slot)).toBeGreaterThan(Date.parse('2026-11-09T00:00:00Z'));

    setLastSubmission(ctx, '2026-10-01T04:00:00.000Z');
    expect(scheduler.nextSubmission()).toBe('2026-11-03T10:05:00.000Z');

    ctx.submitter.setRetry(new Date('2026-11-03T10:01:00.000Z'));
    expect(scheduler.nextSubmission()).toBe('2026-11-03T10:01:00.000Z');
  });

  it('uses a configured schedule as is, and falls back to the default on an invalid one', () => {
    const daily = started(setup({ schedule: '15 2 * * *' }));
    expect(daily.expression()).toBe('15 2 * * *');
    expect(daily.period()).toBe(DAY);
    const ctx = setup({ schedule: 'every monday' });
    expect(started(ctx).expression()).toBe(spreadSchedule(ctx.service.installationId()));
  });

  it('stop() leaves no timer behind', async () => {
    const ctx = setup();
    const scheduler = ctx.makeScheduler();
    scheduler.start();
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    scheduler.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(30 * DAY);
    expect(ctx.submitter.calls).toEqual([]);
  });
});
