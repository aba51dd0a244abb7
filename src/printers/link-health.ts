/**
 * The health of one driver's link to its printer, the same for MQTT sessions and HTTP polling: whether the printer is
 * online, the problem to show while it is not, and how long to wait before the next try. It turns its own changes
 * into PrinterUpdates (connected, disconnected, link problems), so the two drivers cannot disagree on what
 * "online" means.
 */
import type { DisconnectReason } from '../stats/events.js';
import type { Clock } from './clock.js';
import type { PrinterUpdateSink } from './types.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** 0..1; defaults to Math.random (tests pass a fixed one). */
  random?: () => number;
}

export class LinkHealth {
  private up = false;
  private lastSeenAt: number | null = null;
  private failures = 0;
  private currentProblem: string | null = null;

  constructor(
    private readonly sink: PrinterUpdateSink,
    private readonly clock: Clock,
    private readonly backoff: BackoffOptions,
  ) {}

  get online(): boolean {
    return this.up;
  }

  get lastSeen(): number | null {
    return this.lastSeenAt;
  }

  get problem(): string | null {
    return this.currentProblem;
  }

  /** Failed tries since the printer last answered. */
  get failureCount(): number {
    return this.failures;
  }

  /** The printer answered: online (printer_connected if it was not), problem cleared, backoff reset. */
  seen(): void {
    this.lastSeenAt = this.clock.now();
    this.failures = 0;
    // An answer ends any link problem, also one from a failed try too short to count as an outage.
    this.setProblem(null);
    if (!this.up) {
      this.up = true;
      this.sink({ kind: 'connected' });
    }
    this.sink({ kind: 'seen' });
  }

  /** A try failed; the problem is shown whether or not the printer was online. Returns the failures in a row. */
  failed(problem: string): number {
    this.failures++;
    this.setProblem(problem);
    return this.failures;
  }

  /** The printer is gone: printer_disconnected once per outage. */
  down(reason: DisconnectReason, problem?: string): void {
    if (problem !== undefined) this.setProblem(problem);
    if (!this.up) return;
    this.up = false;
    this.sink({ kind: 'disconnected', reason });
  }

  setProblem(problem: string | null): void {
    if (problem === this.currentProblem) return;
    this.currentProblem = problem;
    this.sink({ kind: 'problem', scope: 'link', problem });
  }

  /**
   * The delay before the next try: doubling from initialMs up to maxMs with equal jitter (half fixed, half random),
   * so printers that come back together do not retry in lockstep. Grows with the failures counted by failed().
   */
  nextBackoffMs(): number {
    const { initialMs, maxMs } = this.backoff;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, this.failures - 1), 30));
    const random = this.backoff.random ?? Math.random;
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
  }
}
