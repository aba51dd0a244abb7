/**
 * How each printer kind's job ends are read, in one place beside the tracker that applies them. Sources are cited
 * where the drivers handle the quirks; the values are chosen here.
 */
import type { FailureType, PrinterType } from '../stats/events.js';

export interface TrackingPolicy {
  connection: 'mqtt' | 'http';
  /**
   * Bambu Lab: FAILED arrives with print_error 0 and the cancel code 0x0300400C follows about 5 s later (real P2S and
   * H2S captures; 4.6 s in the P2S one). Three times the longest gap seen, so a slow delta still counts, while the
   * job's end is recorded well before anyone looks.
   */
  cancelGraceMs: number;
  /** A job that goes straight to IDLE with the link up and no cancel code. */
  idleAfterActive: FailureType;
}

export const TRACKING_POLICIES: Readonly<Record<PrinterType, TrackingPolicy>> = {
  bambu_lab: { connection: 'mqtt', cancelGraceMs: 15_000, idleAfterActive: 'cancelled' },
  // Buddy keeps STOPPED or FINISHED on screen until acknowledged; a poll that saw neither most likely missed a
  // STOPPED the user cleared at once.
  prusa: { connection: 'http', cancelGraceMs: 0, idleAfterActive: 'cancelled' },
};
