/**
 * The PrusaLink sequences of issue 12 as scripts a simulated printer runs, each with the events a correct bridge
 * records for it. The demo runs them in turn; the end-to-end tests run each one against the real driver and compare.
 * Times are simulated seconds from the scenario's start.
 */
import type { ScenarioStep as GenericStep, ScenarioExpectation } from '../scenario.js';
import type { PrusaLinkFlavour, SimulatedPrusaPrinter } from './printer.js';

/** What a scenario step may touch: the printer and whether it answers at all. */
export interface ScenarioTarget {
  printer: SimulatedPrusaPrinter;
  /** Unreachable: every connection is reset (a printer rebooting, or off). */
  setReachable(on: boolean): void;
}

export type ScenarioStep = GenericStep<ScenarioTarget>;
export type { ScenarioExpectation };

export interface Scenario {
  name: ScenarioName;
  description: string;
  /** The servers it applies to. */
  flavours: readonly PrusaLinkFlavour[];
  /** Simulated seconds until everything in it has happened. */
  seconds: number;
  steps: ScenarioStep[];
  expected: ScenarioExpectation;
}

export const SCENARIO_NAMES = [
  'attention',
  'lost-job',
  'power-panic',
  'upload-and-print',
  'upload-aborted',
  'usb-swap',
  'subfolder-print',
  'sd-card-print',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

const none = { job_created: 0, job_completed: 0, job_failed: [], file_uploaded: 0, error_occurred: [] };
const both = ['buddy', 'rpi'] as const;

export const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  attention: {
    name: 'attention',
    description: 'ATTENTION on an idle printer (a warning, a fan error), then a print paused by ATTENTION and resumed',
    flavours: both,
    seconds: 900,
    steps: [
      { at: 0, run: (t) => (t.printer.idleAttention = true) },
      { at: 60, run: (t) => (t.printer.idleAttention = false) },
      { at: 120, run: (t) => t.printer.startJob({ durationS: 600 }) },
      { at: 300, run: (t) => (t.printer.state = 'ATTENTION') },
      { at: 360, run: (t) => t.printer.resume() },
    ],
    expected: { ...none, job_created: 1, job_completed: 1 },
  },
  'lost-job': {
    name: 'lost-job',
    description: 'a print lost to a reset: no answer, then IDLE; the job id is kept; the next print is a new job',
    flavours: both,
    seconds: 1000,
    steps: [
      { at: 0, run: (t) => t.printer.startJob({ durationS: 1200 }) },
      {
        at: 200,
        run: (t) => {
          t.setReachable(false);
          t.printer.reboot();
        },
      },
      { at: 260, run: (t) => t.setReachable(true) },
      { at: 500, run: (t) => t.printer.startJob({ durationS: 300 }) },
    ],
    expected: { ...none, job_created: 2, job_completed: 1, job_failed: ['error'] },
  },
  'power-panic': {
    name: 'power-panic',
    description: 'a power cut mid-print with power-panic recovery: BUSY, ATTENTION with the same job, printing again',
    flavours: ['buddy'],
    seconds: 1000,
    steps: [
      { at: 0, run: (t) => t.printer.startJob({ durationS: 700 }) },
      {
        at: 200,
        run: (t) => {
          t.setReachable(false);
          t.printer.startPowerPanic(60);
        },
      },
      { at: 230, run: (t) => t.setReachable(true) },
      { at: 400, run: (t) => t.printer.resume() },
    ],
    expected: { ...none, job_created: 1, job_completed: 1 },
  },
  'upload-and-print': {
    name: 'upload-and-print',
    description: 'an upload from the slicer with Print-After-Upload: one upload, one job',
    flavours: both,
    seconds: 900,
    steps: [
      {
        at: 0,
        run: (t) =>
          t.printer.upload({
            name: 'Slicer upload.bgcode',
            sizeBytes: 2_345_678,
            durationS: 120,
            print: true,
            printS: 600,
          }),
      },
    ],
    expected: { ...none, job_created: 1, job_completed: 1, file_uploaded: 1 },
  },
  'upload-aborted': {
    name: 'upload-aborted',
    description: 'an upload aborted half way (listed read-only meanwhile on Buddy), then one that completes',
    flavours: both,
    seconds: 700,
    steps: [
      {
        at: 0,
        run: (t) => t.printer.upload({ name: 'Aborted.bgcode', sizeBytes: 3_000_000, durationS: 300, abortAt: 0.5 }),
      },
      { at: 400, run: (t) => t.printer.upload({ name: 'Complete.bgcode', sizeBytes: 1_234_567, durationS: 120 }) },
    ],
    expected: { ...none, file_uploaded: 1 },
  },
  'usb-swap': {
    name: 'usb-swap',
    description: 'the USB stick pulled, another with files put in, one of them printed: no upload',
    flavours: ['buddy'],
    seconds: 1400,
    steps: [
      { at: 0, run: (t) => t.printer.setUsb(null) },
      {
        at: 400,
        run: (t) =>
          t.printer.setUsb([
            { name: 'Stick bracket.bgcode', sizeBytes: 812_345 },
            { name: 'Stick clip.bgcode', sizeBytes: 45_678 },
            { name: 'Gear.bgcode', sizeBytes: 98_765, folder: ['Parts'] },
          ]),
      },
      { at: 800, run: (t) => t.printer.startJob({ fileName: 'Stick clip.bgcode', durationS: 300 }) },
    ],
    expected: { ...none, job_created: 1, job_completed: 1 },
  },
  'subfolder-print': {
    name: 'subfolder-print',
    description: 'a file that was in a subfolder all along is printed: no upload',
    flavours: both,
    seconds: 500,
    steps: [{ at: 0, run: (t) => t.printer.startJob({ fileName: 'Gear.bgcode', folder: ['Parts'], durationS: 300 }) }],
    expected: { ...none, job_created: 1, job_completed: 1 },
  },
  'sd-card-print': {
    name: 'sd-card-print',
    description: 'Prusa-Link: a print from the printer’s own SD card (`/SD Card/…`): no upload',
    flavours: ['rpi'],
    seconds: 500,
    steps: [{ at: 0, run: (t) => t.printer.startJob({ storage: 'sdcard', fileName: 'BENCHY~1.GCO', durationS: 300 }) }],
    expected: { ...none, job_created: 1, job_completed: 1 },
  },
};

/** Schedules a scenario on the printer's timeline; resolves when it is over (in simulated time). */
export function runScenario(target: ScenarioTarget, scenario: Scenario): Promise<void> {
  return new Promise((resolve) => {
    for (const step of scenario.steps) {
      target.printer.at(step.at, () => {
        try {
          step.run(target);
        } catch {
          // A step that does not fit what the printer is doing (a job still running) is skipped, not fatal.
        }
      });
    }
    target.printer.at(scenario.seconds, resolve);
  });
}
