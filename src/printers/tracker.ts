/**
 * One printer's usage events, from its driver's PrinterUpdates (DESIGN.md "Usage events"). The same rules for every
 * printer kind:
 * - The first observation with a known state is a baseline: a printer already in FINISH does not count a job at every
 *   daemon start, and errors already on the printer then are known, not new. A job running at the baseline is counted
 *   when it ends (it was created before we watched, so no job_created).
 * - A reconnection is not a new baseline: a job that ended while the link was down is counted once when the printer
 *   comes back; one that vanished into IDLE over an outage was lost to a fault (`error`).
 * - Each job ends once. A job that FAILED without the cancel code is held for `cancelGraceMs`, because Bambu Lab
 *   printers send the code seconds after FAILED (real P2S and H2S captures); whichever comes first, one event.
 * - Once per cause: an error slug counts when it appears and not again while the printer still shows it; a fault
 *   counts once per outage (or per connection), never in a loop.
 * - Durations are the printer's own printing time where it reports one (the last value seen, so never an outage's
 *   time); otherwise wall-clock time since the job started, minus the time the link was down.
 */
import type { ErrorType, FailureType, MetadataFor, PrinterModel, PrinterType } from '../stats/events.js';
import type { Clock, TimerHandle } from './clock.js';
import {
  ACTIVE_JOB_STATES,
  type DisconnectReason,
  type EventSink,
  type JobObservation,
  type JobState,
  type PrinterUpdate,
} from './types.js';

export interface PrinterTrackerOptions {
  printerType: PrinterType;
  /** Read when an event fires: the model may only be known after the first report. */
  model: () => PrinterModel;
  connection: 'mqtt' | 'http';
  emit: EventSink;
  clock: Clock;
  /** How a job that goes straight to IDLE, with the link up all along and no cancel code, ended. */
  idleAfterActive?: FailureType;
  /** How long a FAILED job waits for a cancel code before it counts as failed (0: no wait). */
  cancelGraceMs?: number;
}

interface ActiveJob {
  key: string | null;
  /** Epoch ms when we saw the job start; null when it was already running at the baseline. */
  startedAt: number | null;
  /** A printer-run job (calibration): tracked, never counted. */
  system: boolean;
  cancelSeen: boolean;
  /** The printer's own printing time as last reported for this job. */
  printingSeconds: number | null;
  /** Time the link was down while this job ran, and since when it is down now. */
  outageMs: number;
  outageSince: number | null;
  crossedOutage: boolean;
}

interface HeldEnd {
  job: ActiveJob;
  printingSeconds: number | null;
  /** When the printer said FAILED: the job's end, whenever the event is recorded. */
  endedAt: number;
  timer: TimerHandle;
}

export class PrinterTracker {
  private readonly idleAfterActive: FailureType;
  private readonly cancelGraceMs: number;
  private state: JobState | null = null;
  private job: ActiveJob | null = null;
  private held: HeldEnd | null = null;
  /** Error slugs the printer shows now that are already counted (or were there at the baseline). */
  private presentErrors = new Set<string>();
  private readonly countedFaults = { outage: new Set<ErrorType>(), connection: new Set<ErrorType>() };
  private connectedAt: number | null = null;

  constructor(private readonly opts: PrinterTrackerOptions) {
    this.idleAfterActive = opts.idleAfterActive ?? 'cancelled';
    this.cancelGraceMs = opts.cancelGraceMs ?? 0;
  }

  get isOnline(): boolean {
    return this.connectedAt !== null;
  }

  get currentState(): JobState | null {
    return this.state;
  }

  /** A job is running (or held waiting for its cancel code). */
  get jobActive(): boolean {
    return this.job !== null || this.held !== null;
  }

  handle(update: PrinterUpdate): void {
    switch (update.kind) {
      case 'connected':
        this.connected();
        return;
      case 'disconnected':
        this.disconnected(update.reason);
        return;
      case 'observation':
        this.observe(update.observation);
        return;
      case 'fault':
        this.fault(update.errorType, update.scope);
        return;
      case 'file_uploaded': {
        const metadata: MetadataFor<'file_uploaded'> = {
          printer_type: this.opts.printerType,
          file_type: update.fileType,
        };
        if (update.sizeBytes != null && Number.isFinite(update.sizeBytes) && update.sizeBytes >= 0) {
          metadata.size_bytes = Math.round(update.sizeBytes);
        }
        this.opts.emit('file_uploaded', metadata);
        return;
      }
      default:
        return;
    }
  }

  /** Ends a held job now (the daemon is stopping): what we know is that it failed. */
  flush(): void {
    if (this.held) this.endHeld(false);
  }

  private connected(): void {
    if (this.connectedAt !== null) return;
    const now = this.opts.clock.now();
    this.connectedAt = now;
    if (this.job?.outageSince != null) {
      this.job.outageMs += now - this.job.outageSince;
      this.job.outageSince = null;
    }
    this.opts.emit('printer_connected', { ...this.printerFields(), connection: this.opts.connection });
  }

  private disconnected(reason: DisconnectReason): void {
    this.countedFaults.connection.clear();
    if (this.connectedAt === null) return;
    const now = this.opts.clock.now();
    const connectedSeconds = Math.max(0, Math.round((now - this.connectedAt) / 1000));
    this.connectedAt = null;
    if (this.job) {
      this.job.outageSince = now;
      this.job.crossedOutage = true;
    }
    this.opts.emit('printer_disconnected', { ...this.printerFields(), reason, connected_seconds: connectedSeconds });
  }

  private observe(observation: JobObservation): void {
    this.connected();
    this.countedFaults.outage.clear();

    // Before the transition: a full report after a reconnect can carry the cancel code and FAILED together.
    if (observation.cancelSeen) {
      if (this.held) this.endHeld(true);
      else if (this.job) this.job.cancelSeen = true;
    }
    const seconds = validSeconds(observation.printingSeconds);
    if (this.job && seconds !== null) this.job.printingSeconds = seconds;

    const next = observation.state;
    if (this.state === null) {
      this.takeBaseline(observation);
      return;
    }
    if (next !== 'unknown') {
      this.transition(next, observation, seconds);
      this.state = next;
    }
    this.countErrors(observation.errorSlugs);
  }

  private takeBaseline(observation: JobObservation): void {
    if (observation.state === 'unknown') return;
    this.state = observation.state;
    if (ACTIVE_JOB_STATES.has(observation.state)) {
      this.job = newJob(observation, null);
    }
    for (const slug of observation.errorSlugs ?? []) this.presentErrors.add(slug);
  }

  private transition(next: JobState, observation: JobObservation, seconds: number | null): void {
    const key = observation.jobKey ?? null;
    if (ACTIVE_JOB_STATES.has(next)) {
      if (this.held) this.endHeld(false);
      if (!this.job) {
        this.startJob(observation);
        return;
      }
      // A different job id while one is active: the printer moved on without us seeing the end of the last one.
      if (key !== null && this.job.key !== null && key !== this.job.key) {
        this.endJob(this.job, 'job_failed', this.job.crossedOutage ? 'error' : 'failed', null);
        this.startJob(observation);
      } else if (this.job.key === null && key !== null) {
        this.job.key = key;
      }
      return;
    }
    const job = this.job;
    if (!job) return;
    switch (next) {
      case 'finished':
        this.job = null;
        this.endJob(job, 'job_completed', null, seconds);
        break;
      case 'failed':
        this.job = null;
        if (job.cancelSeen) this.endJob(job, 'job_failed', 'cancelled', seconds);
        else if (this.cancelGraceMs > 0 && !job.system) this.holdEnd(job, seconds);
        else this.endJob(job, 'job_failed', 'failed', seconds);
        break;
      case 'cancelled':
        this.job = null;
        this.endJob(job, 'job_failed', 'cancelled', seconds);
        break;
      case 'error':
        this.job = null;
        this.endJob(job, 'job_failed', 'error', seconds);
        break;
      case 'idle': {
        this.job = null;
        const failure: FailureType = job.cancelSeen ? 'cancelled' : job.crossedOutage ? 'error' : this.idleAfterActive;
        this.endJob(job, 'job_failed', failure, null);
        break;
      }
      default:
        break;
    }
  }

  private startJob(observation: JobObservation): void {
    this.job = newJob(observation, this.opts.clock.now());
    if (!this.job.system) this.opts.emit('job_created', this.printerFields());
  }

  private holdEnd(job: ActiveJob, seconds: number | null): void {
    const timer = this.opts.clock.setTimer(() => {
      if (this.held?.timer === timer) this.endHeld(false);
    }, this.cancelGraceMs);
    this.held = { job, printingSeconds: seconds, endedAt: this.opts.clock.now(), timer };
  }

  private endHeld(cancelled: boolean): void {
    const held = this.held;
    if (!held) return;
    this.held = null;
    held.timer.cancel();
    this.endJob(held.job, 'job_failed', cancelled ? 'cancelled' : 'failed', held.printingSeconds, held.endedAt);
  }

  private endJob(
    job: ActiveJob,
    eventType: 'job_completed' | 'job_failed',
    failureType: FailureType | null,
    reportedSeconds: number | null,
    endedAt = this.opts.clock.now(),
  ): void {
    if (this.job === job) this.job = null;
    if (job.system) return;
    const duration = this.durationSeconds(job, reportedSeconds, endedAt);
    const metadata = { ...this.printerFields(), ...(duration === null ? {} : { duration_seconds: duration }) };
    if (eventType === 'job_completed') this.opts.emit('job_completed', metadata);
    else this.opts.emit('job_failed', { ...metadata, failure_type: failureType ?? 'failed' });
  }

  private durationSeconds(job: ActiveJob, reportedSeconds: number | null, endedAt: number): number | null {
    const printed = reportedSeconds ?? job.printingSeconds;
    if (printed !== null) return Math.round(printed);
    if (job.startedAt === null) return null;
    const outageMs = job.outageMs + (job.outageSince === null ? 0 : Math.max(0, endedAt - job.outageSince));
    return Math.max(0, Math.round((endedAt - job.startedAt - outageMs) / 1000));
  }

  private countErrors(slugs: readonly string[] | undefined): void {
    if (slugs === undefined) return;
    const now = new Set(slugs);
    for (const slug of this.presentErrors) if (!now.has(slug)) this.presentErrors.delete(slug);
    for (const slug of now) {
      if (this.presentErrors.has(slug)) continue;
      this.presentErrors.add(slug);
      this.opts.emit('error_occurred', {
        error_type: slug,
        component: this.component(),
        printer_type: this.opts.printerType,
      });
    }
  }

  private fault(errorType: ErrorType, scope: 'outage' | 'connection'): void {
    const counted = this.countedFaults[scope];
    if (counted.has(errorType)) return;
    counted.add(errorType);
    this.opts.emit('error_occurred', {
      error_type: errorType,
      component: this.component(),
      printer_type: this.opts.printerType,
    });
  }

  private component(): 'bambu_mqtt' | 'prusalink' {
    return this.opts.connection === 'mqtt' ? 'bambu_mqtt' : 'prusalink';
  }

  private printerFields(): { printer_type: PrinterType; printer_model: PrinterModel } {
    return { printer_type: this.opts.printerType, printer_model: this.opts.model() };
  }
}

function newJob(observation: JobObservation, startedAt: number | null): ActiveJob {
  return {
    key: observation.jobKey ?? null,
    startedAt,
    system: observation.systemJob === true,
    cancelSeen: observation.cancelSeen === true,
    printingSeconds: validSeconds(observation.printingSeconds),
    outageMs: 0,
    outageSince: null,
    crossedOutage: false,
  };
}

function validSeconds(value: number | null | undefined): number | null {
  return value !== null && value !== undefined && Number.isFinite(value) && value >= 0 ? value : null;
}
