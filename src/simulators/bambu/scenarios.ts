/**
 * The sequences of issue 12 as scripts a simulated Bambu Lab printer can run, each with the events a correct bridge
 * records for it. The demo runs them in turn; the end-to-end tests run each one against the real driver and compare.
 * Times are simulated seconds from the scenario's start; the printer's model decides how it cancels (P2S/H2: FAILED
 * first, the code seconds later; A1: the code first, twice).
 */
import type { ScenarioStep as GenericStep, ScenarioExpectation } from '../scenario.js';
import type { HmsEntry, SimulatedPrinter } from './printer.js';
import { studioProjectFile } from './wire.js';

/** What a scenario step may touch: the printer and what the server around it does. */
export interface ScenarioTarget {
  printer: SimulatedPrinter;
  /** Unreachable: clients dropped, new connections reset. */
  setReachable(on: boolean): void;
  /** Firmware that ignores pushall and get_version (BambuStudio #4154). */
  ignoreRequests(on: boolean): void;
  /** Publish a payload on the report topic as the printer would. */
  publish(body: Record<string, unknown>): void;
}

export type ScenarioStep = GenericStep<ScenarioTarget>;
export type { ScenarioExpectation };

export interface Scenario {
  name: ScenarioName;
  description: string;
  /** Simulated seconds until everything in it has happened (the last job ended). */
  seconds: number;
  steps: ScenarioStep[];
  expected: ScenarioExpectation;
}

export const SCENARIO_NAMES = [
  'cancel',
  'slicer-prints',
  'outage-print-ends',
  'ignores-requests',
  'hms-stays',
  'power-cut-init',
  'system-calibration',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** An HMS entry a real P2S carried for months (0500_0600, also on the real X2D report). */
export const OLD_HMS: HmsEntry = { attr: 83887616, code: 131184, ts_boot: 33429, ts_unix: '20260708111841' };

const none = { job_created: 0, job_completed: 0, job_failed: [], file_uploaded: 0, error_occurred: [] };

/** A print sent from the slicer: the printer echoes Studio's project_file (sequence_id "20001") and starts. */
function slicerPrint(target: ScenarioTarget, seconds: number, echoes = 1): void {
  const ack = target.printer.projectFile(studioProjectFile('3mf'), { seconds });
  for (let i = 0; i < echoes; i++) target.publish({ print: ack });
}

export const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  cancel: {
    name: 'cancel',
    description: 'a print cancelled half way, in the model’s own order of FAILED and the cancel code',
    seconds: 700,
    steps: [
      { at: 0, run: (t) => t.printer.startJob({ seconds: 1200 }) },
      { at: 600, run: (t) => t.printer.cancel() },
    ],
    expected: { ...none, job_created: 1, job_failed: ['cancelled'] },
  },
  'slicer-prints': {
    name: 'slicer-prints',
    description: 'three prints sent from Bambu Studio, every one with sequence_id "20001"; the first ack echoed',
    seconds: 1000,
    steps: [
      { at: 0, run: (t) => slicerPrint(t, 250, 2) },
      { at: 300, run: (t) => slicerPrint(t, 250) },
      { at: 600, run: (t) => slicerPrint(t, 250) },
    ],
    expected: { ...none, job_created: 3, job_completed: 3, file_uploaded: 3 },
  },
  'outage-print-ends': {
    name: 'outage-print-ends',
    description: 'the link drops mid-print, the print finishes while it is down, the next starts after it is back',
    seconds: 1300,
    steps: [
      // LAN prints (ids "0" on P1 and A1): nothing but the full report after reconnecting tells the two apart.
      { at: 0, run: (t) => t.printer.startJob({ seconds: 400, lan: true }) },
      { at: 100, run: (t) => t.setReachable(false) },
      { at: 600, run: (t) => t.setReachable(true) },
      { at: 1000, run: (t) => t.printer.startJob({ seconds: 250, lan: true }) },
    ],
    expected: { ...none, job_created: 2, job_completed: 2 },
  },
  'ignores-requests': {
    name: 'ignores-requests',
    description: 'cloud-mode firmware that ignores pushall and get_version; a new session, then a print from deltas',
    seconds: 600,
    steps: [
      { at: 0, run: (t) => t.ignoreRequests(true) },
      { at: 1, run: (t) => t.setReachable(false) },
      { at: 30, run: (t) => t.setReachable(true) },
      { at: 200, run: (t) => t.printer.startJob({ seconds: 300 }) },
      { at: 599, run: (t) => t.ignoreRequests(false) },
    ],
    expected: { ...none, job_created: 1, job_completed: 1 },
  },
  'hms-stays': {
    name: 'hms-stays',
    description: 'an HMS entry appears and stays through two prints, is cleared, and appears again',
    seconds: 900,
    steps: [
      { at: 0, run: (t) => t.printer.addHms(OLD_HMS) },
      { at: 10, run: (t) => t.printer.startJob({ seconds: 250 }) },
      { at: 300, run: (t) => t.printer.startJob({ seconds: 250 }) },
      { at: 600, run: (t) => t.printer.clearHms(OLD_HMS.attr) },
      { at: 650, run: (t) => t.printer.addHms(OLD_HMS) },
      { at: 890, run: (t) => t.printer.clearHms(OLD_HMS.attr) },
    ],
    expected: { ...none, job_created: 2, job_completed: 2, error_occurred: ['hms_0500_0600', 'hms_0500_0600'] },
  },
  'power-cut-init': {
    name: 'power-cut-init',
    description: 'a power cut mid-print: the printer comes back through INIT to IDLE; the next print counts',
    seconds: 900,
    steps: [
      { at: 0, run: (t) => t.printer.startJob({ seconds: 1200 }) },
      {
        at: 200,
        run: (t) => {
          t.setReachable(false);
          t.printer.reboot(120);
        },
      },
      { at: 260, run: (t) => t.setReachable(true) },
      { at: 500, run: (t) => t.printer.startJob({ seconds: 250 }) },
    ],
    expected: { ...none, job_created: 2, job_completed: 1, job_failed: ['error'] },
  },
  'system-calibration': {
    name: 'system-calibration',
    description: 'calibration runs the printer starts itself (print_type "system"), one cancelled; then a print',
    seconds: 1000,
    steps: [
      { at: 0, run: (t) => t.printer.startJob({ system: true, seconds: 200 }) },
      { at: 300, run: (t) => t.printer.startJob({ system: true, seconds: 600 }) },
      { at: 400, run: (t) => t.printer.cancel() },
      { at: 700, run: (t) => t.printer.startJob({ seconds: 250 }) },
    ],
    expected: { ...none, job_created: 1, job_completed: 1 },
  },
};

/** Schedules a scenario on the printer's timeline; resolves when its last job has ended. */
export function runScenario(target: ScenarioTarget, scenario: Scenario): Promise<void> {
  return new Promise((resolve) => {
    for (const step of scenario.steps) target.printer.after(step.at, () => step.run(target), 'scenario');
    target.printer.after(scenario.seconds, resolve, 'scenario');
  });
}
