/**
 * The printer-independent job and connection state machine shared by the Bambu Lab and PrusaLink drivers.
 *
 * Rules (issues 3 and 4, ha-bambulab's PrintJob.print_update):
 * - The first observation this tracker ever sees is a baseline: a printer already in FINISH must not count a job at
 *   every daemon restart. A job that was running at the baseline is still counted when it ends, without a duration.
 * - A reconnection is not a new baseline: what we knew before the outage still holds, so a job that finished while
 *   the link was down is counted once when the printer comes back.
 * - Each job is counted once: transitions are only taken from an active job, and repeated terminal states change
 *   nothing.
 */
import type { DisconnectReason, EventMetadata, FailureType, PrinterModel, PrinterType } from '../stats/events.js';
import { ACTIVE_JOB_STATES, type EventSink, type JobObservation, type JobState } from './types.js';

export interface PrinterTrackerOptions {
  printerType: PrinterType;
  /** Read when an event fires: the model may only be known after the first report. */
  model: () => PrinterModel;
  connection: 'mqtt' | 'http';
  emit: EventSink;
  now?: () => number;
  /** How a job that disappears into IDLE without a terminal state is counted. */
  idleAfterActive?: FailureType;
}

interface ActiveJob {
  key: string | null;
  /** Epoch ms when we saw the job start; null when it was already running at the baseline. */
  startedAt: number | null;
  cancelSeen: boolean;
}

export class PrinterTracker {
  private readonly opts: Required<Omit<PrinterTrackerOptions, 'now'>> & { now: () => number };
  private state: JobState | null = null;
  private job: ActiveJob | null = null;
  /** Error slugs already reported for the current job (or since the last job ended). */
  private reportedErrors = new Set<string>();
  private awaitingFirstReport = false;
  private connectedAt: number | null = null;

  constructor(options: PrinterTrackerOptions) {
    this.opts = { idleAfterActive: 'cancelled', now: Date.now, ...options };
  }

  /** The link is up again; printer_connected fires with the first report that proves it. */
  connected(): void {
    // Already online (no disconnect in between): not a new connection, or printer_connected would fire twice.
    if (this.connectedAt === null) this.awaitingFirstReport = true;
  }

  disconnected(reason: DisconnectReason): void {
    this.awaitingFirstReport = false;
    if (this.connectedAt === null) return;
    const connectedSeconds = Math.max(0, Math.round((this.opts.now() - this.connectedAt) / 1000));
    this.connectedAt = null;
    this.emit('printer_disconnected', { ...this.printerFields(), reason, connected_seconds: connectedSeconds });
  }

  get isOnline(): boolean {
    return this.connectedAt !== null;
  }

  get currentState(): JobState | null {
    return this.state;
  }

  observe(observation: JobObservation): void {
    if (this.awaitingFirstReport || this.connectedAt === null) {
      this.awaitingFirstReport = false;
      this.connectedAt = this.opts.now();
      this.emit('printer_connected', { ...this.printerFields(), connection: this.opts.connection });
    }

    // Before the transition: a full report after a reconnect can carry the cancel code and FAILED together.
    if (this.job && observation.cancelSeen) this.job.cancelSeen = true;
    const next = observation.state;
    if (this.state === null) {
      this.takeBaseline(observation);
    } else if (next !== 'unknown') {
      this.transition(next, observation);
      this.state = next;
    }

    this.reportErrors(observation.errorSlugs);
  }

  private takeBaseline(observation: JobObservation): void {
    if (observation.state === 'unknown') return;
    this.state = observation.state;
    if (ACTIVE_JOB_STATES.has(observation.state)) {
      this.job = { key: observation.jobKey ?? null, startedAt: null, cancelSeen: false };
    }
  }

  private transition(next: JobState, observation: JobObservation): void {
    const key = observation.jobKey ?? null;
    if (!this.job) {
      if (ACTIVE_JOB_STATES.has(next)) this.startJob(key);
      return;
    }
    if (ACTIVE_JOB_STATES.has(next)) {
      // A different job id while one is active: the printer moved on (a reboot resets PrusaLink's ids).
      if (key !== null && this.job.key !== null && key !== this.job.key) {
        this.endJob('job_failed', 'failed', null);
        this.startJob(key);
      } else if (this.job.key === null && key !== null) {
        this.job.key = key;
      }
      return;
    }
    switch (next) {
      case 'finished':
        this.endJob('job_completed', null, observation.printingSeconds ?? null);
        break;
      case 'failed':
        this.endJob('job_failed', this.job.cancelSeen ? 'cancelled' : 'failed', observation.printingSeconds ?? null);
        break;
      case 'cancelled':
        this.endJob('job_failed', 'cancelled', observation.printingSeconds ?? null);
        break;
      case 'error':
        this.endJob('job_failed', 'error', observation.printingSeconds ?? null);
        break;
      case 'idle':
        this.endJob('job_failed', this.job.cancelSeen ? 'cancelled' : this.opts.idleAfterActive, null);
        break;
      default:
        break;
    }
  }

  private startJob(key: string | null): void {
    this.job = { key, startedAt: this.opts.now(), cancelSeen: false };
    this.reportedErrors.clear();
    this.emit('job_created', this.printerFields());
  }

  private endJob(
    eventType: 'job_completed' | 'job_failed',
    failureType: FailureType | null,
    reportedSeconds: number | null,
  ): void {
    const job = this.job;
    if (!job) return;
    this.job = null;
    const metadata: EventMetadata = this.printerFields();
    const duration = this.durationSeconds(job, reportedSeconds);
    if (duration !== null) metadata.duration_seconds = duration;
    if (failureType) metadata.failure_type = failureType;
    this.emit(eventType, metadata);
  }

  private durationSeconds(job: ActiveJob, reportedSeconds: number | null): number | null {
    if (reportedSeconds !== null && Number.isFinite(reportedSeconds) && reportedSeconds >= 0) {
      return Math.round(reportedSeconds);
    }
    if (job.startedAt === null) return null;
    return Math.max(0, Math.round((this.opts.now() - job.startedAt) / 1000));
  }

  private reportErrors(slugs: readonly string[] | undefined): void {
    for (const slug of slugs ?? []) {
      if (this.reportedErrors.has(slug)) continue;
      this.reportedErrors.add(slug);
      this.emit('error_occurred', {
        error_type: slug,
        component: this.opts.connection === 'mqtt' ? 'bambu_mqtt' : 'prusalink',
        printer_type: this.opts.printerType,
      });
    }
  }

  private printerFields(): EventMetadata {
    return { printer_type: this.opts.printerType, printer_model: this.opts.model() };
  }

  private emit(eventType: Parameters<EventSink>[0], metadata: EventMetadata): void {
    this.opts.emit(eventType, metadata);
  }
}
