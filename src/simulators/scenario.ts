/** What every simulator scenario has in common, whatever the printer kind. */
import type { FailureType } from '../stats/events.js';

/** One scripted action, at a simulated second, on a kind's own target (its printer and server controls). */
export interface ScenarioStep<Target> {
  at: number;
  run: (target: Target) => void;
}

/** The events a correct bridge records for a scenario (besides printer_connected/disconnected). */
export interface ScenarioExpectation {
  job_created: number;
  job_completed: number;
  job_failed: FailureType[];
  file_uploaded: number;
  error_occurred: string[];
}
