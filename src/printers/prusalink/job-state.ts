/**
 * A PrusaLink printer's job as the tracker needs it, from /api/v1/status bodies alone (no HTTP here): status in,
 * JobObservation and live state out, plus "a job started that we did not see before" so the driver can look at its
 * file. The PrusaLink counterpart of Bambu's BambuReportState.
 *
 * Quirks it handles (issue 12, PrusaLink items 1 and 3):
 * - ATTENTION without a job is a dialog on an idle printer, not a job (status.ts mapPrinterState).
 * - Buddy never reports ERROR for a job lost to a red-screen error, a reset or a power cut: the printer stops
 *   answering and comes back IDLE. Job ids are kept in EEPROM (Buddy marlin_server.cpp: `config_store().job_id`
 *   reserved before the job starts; Prusa-Link job.py writes it with `D3 Ax0D05`), so an id is never handed out twice
 *   and there is no "same id, new job" to guess at. An active job followed by a poll without an answer and then IDLE
 *   is therefore reported as `error`, whether or not the gap was long enough to count as a disconnection; the tracker
 *   takes the duration from the last `time_printing` it saw.
 * - Another job id after an unanswered poll: the printer was reset between two jobs; the one before was lost too.
 * - Power-panic recovery keeps the job: the printer comes back BUSY (PowerPanic_acFault/_Resume) or ATTENTION
 *   (PowerPanic_AwaitingResume) with the same `job.id`, then PRINTING. Neither ends or replaces the job.
 */
import { ACTIVE_JOB_STATES, type JobObservation, type LiveStatus } from '../types.js';
import { mapPrinterState, type PrusaLinkStatus, stateWord } from './status.js';

export interface JobStateUpdate {
  observation: JobObservation;
  status: LiveStatus;
  /**
   * The id of a job that is running now and was not running at the last observation (not at the first one: that is
   * the baseline). Its file may have been uploaded just before; the driver reads /api/v1/job to find out.
   */
  newJobId: string | null;
  /**
   * The job that was running before a poll went unanswered, when the printer now runs another one: it was lost
   * (a reset between two jobs), and the driver reports it as `error` before this observation.
   */
  lostJobKey: string | null;
}

export class PrusaLinkJobState {
  private baselineTaken = false;
  private active = false;
  private activeKey: string | null = null;
  /** A poll went unanswered while the job was active: the printer may have rebooted since. */
  private gap = false;

  /** One good /api/v1/status. */
  apply(status: PrusaLinkStatus): JobStateUpdate {
    const job = status.job;
    const key = job ? String(job.id) : null;
    let state = mapPrinterState(status.printer.state, job !== undefined);
    if (state === 'idle' && this.active && this.gap) state = 'error';

    const isActive = ACTIVE_JOB_STATES.has(state);
    const newJobId =
      this.baselineTaken && isActive && key !== null && (!this.active || key !== this.activeKey) ? key : null;
    const lostJobKey =
      this.active && this.gap && newJobId !== null && this.activeKey !== null && this.activeKey !== key
        ? this.activeKey
        : null;
    if (state !== 'unknown') {
      this.baselineTaken = true;
      this.active = isActive;
      this.activeKey = isActive ? (key ?? this.activeKey) : null;
      this.gap = false;
    }

    const printing = job?.time_printing;
    const remaining = job?.time_remaining;
    return {
      observation: {
        state,
        jobKey: key,
        printingSeconds: printing !== undefined && printing >= 0 ? Math.round(printing) : null,
      },
      status: {
        state: stateWord(status.printer.state),
        progress: job?.progress ?? null,
        remaining_minutes: remaining !== undefined && remaining >= 0 ? Math.round(remaining / 60) : null,
      },
      newJobId,
      lostJobKey,
    };
  }

  /** A poll got no usable answer. */
  noAnswer(): void {
    if (this.active) this.gap = true;
  }

  /** A job is running as far as the last observation said. */
  get jobActive(): boolean {
    return this.active;
  }
}
