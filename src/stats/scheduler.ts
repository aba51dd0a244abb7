/**
 * When to submit: on `usage_statistics.schedule` (node-cron), and once shortly after start when the last submission
 * is older than the schedule's period. Runs only while the user is opted in and DO_NOT_TRACK is not set (checked at
 * each run, so an opt-in or opt-out needs no restart).
 *
 * Without a configured schedule the default is weekly on Monday, at an hour (03–05) and minute derived from the
 * installation id, so installations do not all arrive at the collector at once. A configured schedule is used as is.
 */
import { createHash } from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { UsageStatsService } from './service.js';
import { SETTINGS } from './settings-keys.js';

export const DEFAULT_SCHEDULE = '0 3 * * 1';
export const CATCH_UP_DELAY_MS = 5 * 60_000;
const WEEK_MS = 7 * 24 * 3600 * 1000;
const RECHECK_MS = 3600 * 1000;

/** What the scheduler needs of the submitter. */
export interface ScheduledSubmitter {
  submit(): Promise<unknown>;
  busy(): boolean;
  nextRetryAt(): Date | null;
}

export interface SchedulerOptions {
  service: UsageStatsService;
  submitter: ScheduledSubmitter;
  logger: Logger;
  /** `usage_statistics.schedule`; undefined: weekly at a time spread by installation id. */
  schedule?: string;
  /** IANA zone the cron expression is read in; the process's zone when absent. */
  timezone?: string | null;
  catchUpDelayMs?: number;
  now?: () => Date;
}

/** The default weekly schedule with its minute and hour (3, 4 or 5) taken from a hash of the installation id. */
export function spreadSchedule(installationId: string | null): string {
  if (!installationId) return DEFAULT_SCHEDULE;
  const hash = createHash('sha256').update(installationId).digest();
  const minute = hash.readUInt16BE(0) % 60;
  const hour = 3 + (hash[2]! % 3);
  return `${minute} ${hour} * * 1`;
}

export class SubmissionScheduler {
  private readonly service: UsageStatsService;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private task: ScheduledTask | null = null;
  private periodMs = WEEK_MS;
  private catchUpTimer: NodeJS.Timeout | null = null;
  private catchUpAt: Date | null = null;
  private recheckTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly configured: string | undefined;

  constructor(private readonly options: SchedulerOptions) {
    this.service = options.service;
    this.logger = options.logger.child({ component: 'scheduler' });
    this.now = options.now ?? (() => new Date());
    this.configured = options.schedule?.trim() || undefined;
    if (this.configured && !cron.validate(this.configured)) {
      this.logger.error('usage_statistics.schedule is not a valid cron expression; using the weekly default');
      this.configured = undefined;
    }
  }

  /** The cron expression in use now (it changes once, when the first opt-in creates the installation id). */
  expression(): string {
    return this.configured ?? spreadSchedule(this.service.installationId());
  }

  /** The time between two scheduled runs (a week for the default). */
  period(): number {
    return this.periodMs;
  }

  start(): void {
    this.syncTask();
    // An opt-in while running may create the installation id: move to its spread time.
    this.unsubscribe = this.service.onRecorded((event) => {
      if (event.event_type === 'feature_enabled' && event.metadata.feature === 'usage_statistics') this.syncTask();
    });
    const delay = this.options.catchUpDelayMs ?? CATCH_UP_DELAY_MS;
    this.catchUpAt = new Date(this.now().getTime() + delay);
    this.catchUpTimer = setTimeout(() => {
      this.catchUpTimer = null;
      this.catchUpAt = null;
      void this.run('catch_up');
    }, delay);
    this.catchUpTimer.unref?.();
    // An opt-in made by the CLI beside this daemon creates the installation id where onRecorded cannot see it.
    this.recheckTimer = setInterval(() => this.syncTask(), RECHECK_MS);
    this.recheckTimer.unref?.();
  }

  /** Stops the timers; an attempt already running is the submitter's to cancel. */
  stop(): void {
    if (this.catchUpTimer) clearTimeout(this.catchUpTimer);
    this.catchUpTimer = null;
    this.catchUpAt = null;
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.recheckTimer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    void this.task?.destroy();
    this.task = null;
  }

  /** The next submission this daemon will make (a waiting retry, the catch-up run, or the schedule), ISO or null. */
  nextSubmission(): string | null {
    // A read: it shows the schedule as last set, and never moves it (start, opt-in and the hourly check do).
    if (!this.service.collectionActive()) return null;
    const candidates: number[] = [];
    const retry = this.options.submitter.nextRetryAt();
    if (retry) candidates.push(retry.getTime());
    if (this.catchUpAt && this.due(this.catchUpAt.getTime(), this.periodMs)) candidates.push(this.catchUpAt.getTime());
    const next = this.task?.getNextRun();
    if (next) candidates.push(next.getTime());
    return candidates.length ? new Date(Math.min(...candidates)).toISOString() : null;
  }

  /** Runs the decision now (the cron tick and the catch-up timer call this; tests may too). */
  async run(kind: 'scheduled' | 'catch_up'): Promise<void> {
    try {
      this.syncTask();
      if (!this.service.collectionActive()) return;
      // A retry or a manual submission under way covers this run.
      if (this.options.submitter.busy()) return;
      // The catch-up runs only when a whole period has passed; the scheduled run skips when a catch-up (or a manual
      // submission) already went out within half a period, so a restart never doubles a week.
      const minAge = kind === 'catch_up' ? this.periodMs : this.periodMs / 2;
      if (!this.due(this.now().getTime(), minAge)) {
        this.logger.debug({ kind }, 'submission not due');
        return;
      }
      this.logger.info({ kind }, 'submitting usage statistics');
      await this.options.submitter.submit();
    } catch (error) {
      this.logger.error({ err: error }, 'the scheduled submission failed');
    }
  }

  /** Whether the last submission (or, before the first, the opt-in) is at least `minAge` before `at`. */
  private due(at: number, minAge: number): boolean {
    const reference =
      this.service.getSetting(SETTINGS.lastSubmission) ?? this.service.getSetting(SETTINGS.firstSeen) ?? null;
    if (reference === null) return true;
    return at - Date.parse(reference) >= minAge;
  }

  private syncTask(): void {
    const expression = this.expression();
    if (this.task && this.task.getPattern() === expression) return;
    void this.task?.destroy();
    const task = cron.createTask(expression, () => this.run('scheduled'), {
      name: 'usage-statistics-submission',
      timezone: this.options.timezone ?? undefined,
      noOverlap: true,
      unref: true,
      logger: {
        info: (message) => this.logger.debug(message),
        warn: (message) => this.logger.warn(message),
        error: (message) => this.logger.error(String(message)),
        debug: (message) => this.logger.debug(String(message)),
      },
    });
    this.task = task;
    const [first, second] = task.getNextRuns(2);
    this.periodMs = first && second ? second.getTime() - first.getTime() : WEEK_MS;
    void task.start();
    this.logger.debug({ expression }, 'submission schedule set');
  }
}
