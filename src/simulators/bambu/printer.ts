/**
 * A simulated Bambu Lab printer's state machine: its report fields, jobs and timeline, in simulated seconds. No
 * sockets, no timers: the server (server.ts) moves it with `advance()` and publishes what it says through the wire
 * format (wire.ts). Where the real captures in tests/fixtures/bambu disagree with an older understanding, the
 * capture wins:
 * - a cancel on P2S/H2-class printers is FAILED with print_error 0 first and the cancel code 0x0300400C about 4.6 s
 *   later (snapcon P2S capture; bambuddy H2S capture); A1-class printers send the bare code first, sometimes twice,
 *   then FAILED (ha-bambulab pybambu/models.py); the code is reset a few seconds later, fail_reason keeps it (H2C);
 * - HMS entries stay from job to job (the P2S capture carries entries from months before); only the entry of a
 *   failure is cleared when the next job starts, as the user acknowledges it;
 * - power-on shows INIT before IDLE; calibration runs the printer starts itself run under print_type "system".
 */
import { randomInt } from 'node:crypto';

export type SimulatedModel =
  | 'X1C'
  | 'X1E'
  | 'P1P'
  | 'P1S'
  | 'A1'
  | 'A1 mini'
  | 'P2S'
  | 'H2S'
  | 'H2D'
  | 'H2C'
  | 'X2D'
  | 'A2L';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const CANCEL_PRINT_ERROR = 50348044;
/** The cancel code's low half as P2S firmware puts it in mc_print_error_code (snapcon capture). */
export const CANCEL_MC_ERROR_CODE = '16396';
/** HMS 0300_0100_0001_0007, the entry a simulated failure raises. */
export const FAILURE_HMS = { attr: 50331904, code: 65543 } as const;

/** How a model's firmware reports a cancel (see the file comment). */
export type CancelStyle = 'code_first' | 'failed_first';

interface ModelBehaviour {
  cancel: CancelStyle;
  /** The bare code comes twice before FAILED (A1, issue 12). */
  codeTwice: boolean;
  /** fail_reason carries the cancel code (H2C full report, P2S per Rdiger-36 PR #137). */
  failReason: boolean;
}

const CODE_FIRST: ModelBehaviour = { cancel: 'code_first', codeTwice: false, failReason: false };
const FAILED_FIRST: ModelBehaviour = { cancel: 'failed_first', codeTwice: false, failReason: true };

export const MODEL_BEHAVIOUR: Readonly<Record<SimulatedModel, ModelBehaviour>> = {
  X1C: CODE_FIRST,
  X1E: CODE_FIRST,
  P1P: CODE_FIRST,
  P1S: CODE_FIRST,
  A1: { ...CODE_FIRST, codeTwice: true },
  'A1 mini': { ...CODE_FIRST, codeTwice: true },
  P2S: FAILED_FIRST,
  H2S: FAILED_FIRST,
  H2D: FAILED_FIRST,
  H2C: FAILED_FIRST,
  X2D: FAILED_FIRST,
  A2L: FAILED_FIRST,
};

/** Seconds from FAILED to the cancel code on failed_first firmware (4.6 s in the real P2S capture). */
export const CANCEL_CODE_DELAY_S = 4.6;
/** Seconds until the transient code is reset to 0 ("a couple of seconds later", ha-bambulab). */
const CODE_RESET_DELAY_S = 3;

export interface StartJobOptions {
  /** Simulated length in seconds (default `jobSeconds`). */
  seconds?: number;
  outcome?: 'finish' | 'fail';
  /** LAN print: task/subtask ids are "0" and print_type "local", as for prints sent without the cloud. */
  lan?: boolean;
  /** A calibration run the printer starts itself: print_type "system", firmware G-code, no file. */
  system?: boolean;
}

export interface PrinterOptions {
  model: SimulatedModel;
  jobSeconds?: number;
  idleSeconds?: number;
  autoJobs?: boolean;
  /** gcode_state at power-on (default IDLE); INIT boots for `bootSeconds` first; RUNNING is a job half done. */
  initialState?: 'IDLE' | 'INIT' | 'FINISH' | 'FAILED' | 'RUNNING';
  bootSeconds?: number;
  /** HMS entries already on the printer at power-on (from earlier months), kept across jobs. */
  hms?: HmsEntry[];
}

export interface HmsEntry {
  attr: number;
  code: number;
  ts_boot?: number;
  ts_unix?: string;
}

/** What the server must send now, in order, besides the regular delta. */
export type Outgoing =
  /** The fields changed so far, as their own delta report, before anything else changes. */
  | { kind: 'delta' }
  /** A payload as it is; its `print` keys count as published (so the next delta does not repeat them). */
  | { kind: 'raw'; body: JsonObject };

/** Jobs as the printer ran them, for tests and the soak's bounds. */
export interface PrinterCounts {
  started: number;
  systemRuns: number;
  finished: number;
  failed: number;
  cancelled: number;
  uploads: number;
}

interface SimJob {
  totalSec: number;
  prepareSec: number;
  elapsedSec: number;
  outcome: 'finish' | 'fail';
  totalLayers: number;
  system: boolean;
  paused: boolean;
}

interface Timed {
  at: number;
  seq: number;
  fn: () => void;
  /** A reboot drops the printer's own pending steps, never a scenario's. */
  owner: 'printer' | 'scenario';
}

function randomId(): string {
  return String(randomInt(100_000_000, 999_999_999));
}

export class SimulatedPrinter {
  readonly model: SimulatedModel;
  readonly behaviour: ModelBehaviour;
  /** The report fields that change (the static ones are the wire format's). */
  readonly fields: JsonObject;
  readonly counts: PrinterCounts = { started: 0, systemRuns: 0, finished: 0, failed: 0, cancelled: 0, uploads: 0 };
  readonly outbox: Outgoing[] = [];
  /** Called when a simulated second passes with no job and autoJobs on; the server may start a scenario instead. */
  onIdle: (() => boolean) | null = null;

  private readonly jobSeconds: number;
  private readonly idleSeconds: number;
  private readonly autoJobs: boolean;
  private readonly x1Fields: boolean;
  private job: SimJob | null = null;
  private clock = 0;
  private idleSince = 0;
  private jobNumber = 0;
  private timeline: Timed[] = [];
  private timelineSeq = 0;
  private persistentHms: HmsEntry[];
  private failureHms: HmsEntry[] = [];
  /** Simulated job second at which an auto job gets cancelled. */
  private cancelAt: number | null = null;

  constructor(opts: PrinterOptions & { x1Fields: boolean }) {
    this.model = opts.model;
    this.behaviour = MODEL_BEHAVIOUR[opts.model];
    this.jobSeconds = opts.jobSeconds ?? 1800;
    this.idleSeconds = opts.idleSeconds ?? 300;
    this.autoJobs = opts.autoJobs ?? false;
    this.x1Fields = opts.x1Fields;
    this.persistentHms = (opts.hms ?? []).map((e) => ({ ...e }));
    this.fields = {
      nozzle_temper: 25.90625,
      nozzle_target_temper: 0,
      bed_temper: 23.125,
      bed_target_temper: 0,
      wifi_signal: '-42dBm',
      mc_print_stage: '1',
      mc_percent: 0,
      mc_remaining_time: 0,
      print_error: 0,
      gcode_state: 'IDLE',
      gcode_file_prepare_percent: '0',
      project_id: '0',
      profile_id: '0',
      task_id: '0',
      subtask_id: '0',
      subtask_name: '',
      gcode_file: '',
      stg_cur: 0,
      print_type: 'idle',
      layer_num: 0,
      total_layer_num: 0,
      hms: [],
    };
    if (this.x1Fields) {
      Object.assign(this.fields, {
        job_id: '',
        fail_reason: '0',
        mc_print_error_code: '0',
        stg_cur: -1,
        print_type: '',
      });
    }
    this.syncHms();
    this.powerOn(opts.initialState ?? 'IDLE', opts.bootSeconds ?? 10);
  }

  /** Simulated seconds since power-on. */
  get now(): number {
    return this.clock;
  }

  get state(): string {
    return String(this.fields.gcode_state);
  }

  get busy(): boolean {
    return this.job !== null;
  }

  /** Runs `fn` when the simulated clock reaches `now + seconds`, in order with the other timed steps. */
  after(seconds: number, fn: () => void, owner: Timed['owner'] = 'printer'): void {
    this.timeline.push({ at: this.clock + Math.max(0, seconds), seq: this.timelineSeq++, fn, owner });
    this.timeline.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** Moves simulated time on: timed steps, the running job, temperatures. */
  advance(seconds: number): void {
    const until = this.clock + seconds;
    while (this.timeline.length > 0 && (this.timeline[0] as Timed).at <= until) {
      const step = this.timeline.shift() as Timed;
      this.moveClock(step.at);
      step.fn();
    }
    this.moveClock(until);
    this.drift();
  }

  // --- jobs ----------------------------------------------------------------------------------------------------------

  startJob(opts: StartJobOptions = {}): void {
    this.jobNumber++;
    const totalSec = Math.max(1, opts.seconds ?? this.jobSeconds);
    const system = opts.system ?? false;
    const lan = (opts.lan ?? false) || system;
    this.job = {
      totalSec,
      prepareSec: Math.max(0.5, totalSec * 0.1),
      elapsedSec: 0,
      outcome: opts.outcome ?? 'finish',
      totalLayers: system ? 0 : 50 + randomInt(0, 400),
      system,
      paused: false,
    };
    if (system) this.counts.systemRuns++;
    else this.counts.started++;
    // The user acknowledged the last failure to start this one; older entries stay (P2S capture).
    this.failureHms = [];
    this.syncHms();
    const ids = lan
      ? { task_id: '0', subtask_id: '0', project_id: '0', profile_id: '0' }
      : { task_id: randomId(), subtask_id: randomId(), project_id: randomId(), profile_id: randomId() };
    const name = system ? 'auto_cali_for_user_param.gcode' : `Simulated part ${this.jobNumber}`;
    Object.assign(this.fields, {
      ...ids,
      subtask_name: name,
      gcode_file: system
        ? '/usr/etc/print/auto_cali_for_user_param.gcode'
        : this.x1Fields
          ? '/data/Metadata/plate_1.gcode'
          : `${name}.gcode.3mf`,
      // A calibration goes straight to RUNNING (bambuddy wiki, P1S capture: IDLE → RUNNING → FINISH).
      gcode_state: system ? 'RUNNING' : 'PREPARE',
      gcode_file_prepare_percent: system ? '100' : '0',
      mc_percent: 0,
      mc_remaining_time: Math.ceil(totalSec / 60),
      layer_num: 0,
      total_layer_num: this.job.totalLayers,
      print_error: 0,
      print_type: system ? 'system' : lan ? 'local' : 'cloud',
      nozzle_target_temper: 220,
      bed_target_temper: 55,
      mc_print_stage: '2',
    });
    if (this.x1Fields) this.fields.job_id = system ? '' : randomId();
  }

  /** Bambu Studio's `project_file` arrived: the echo the printer sends back, and (by default) the print starts. */
  projectFile(
    request: JsonObject,
    opts: { start?: boolean; seconds?: number; outcome?: 'finish' | 'fail' } = {},
  ): JsonObject {
    this.counts.uploads++;
    if (opts.start ?? true) this.startJob({ lan: true, seconds: opts.seconds, outcome: opts.outcome });
    return { ...request, result: 'success', reason: '' };
  }

  /** The user stops the print (screen, slicer or `stop`): the model's own cancel sequence. */
  cancel(): void {
    const job = this.job;
    if (!job) return;
    this.cancelAt = null;
    this.job = null;
    this.idleSince = this.clock;
    if (!job.system) this.counts.cancelled++;
    if (this.behaviour.cancel === 'code_first') {
      // {"print": {"print_error": 50348044}} on its own, then FAILED (ha-bambulab models.py).
      this.setCode(true);
      this.outbox.push({ kind: 'raw', body: { print: { print_error: CANCEL_PRINT_ERROR } } });
      if (this.behaviour.codeTwice) {
        this.after(1, () => this.outbox.push({ kind: 'raw', body: { print: { print_error: CANCEL_PRINT_ERROR } } }));
      }
      this.after(2, () => {
        this.toFailed();
        this.outbox.push({ kind: 'delta' });
      });
      this.after(2 + CODE_RESET_DELAY_S, () => this.setCode(false));
    } else {
      // FAILED with print_error 0 first, the code about 4.6 s later (snapcon P2S, bambuddy H2S).
      this.toFailed();
      this.outbox.push({ kind: 'delta' });
      this.after(CANCEL_CODE_DELAY_S, () => {
        this.setCode(true);
        this.outbox.push({ kind: 'delta' });
      });
      this.after(CANCEL_CODE_DELAY_S + CODE_RESET_DELAY_S, () => this.setCode(false));
    }
  }

  /** The printer gives up on the print (a fault): FAILED with an HMS entry. */
  fail(): void {
    if (!this.job) return;
    const system = this.job.system;
    this.job = null;
    this.idleSince = this.clock;
    if (!system) this.counts.failed++;
    this.failureHms = [{ ...FAILURE_HMS }];
    this.syncHms();
    this.toFailed();
  }

  pause(): boolean {
    if (!this.job || this.job.paused || this.fields.gcode_state !== 'RUNNING') return false;
    this.job.paused = true;
    this.fields.gcode_state = 'PAUSE';
    return true;
  }

  resume(): boolean {
    if (!this.job?.paused) return false;
    this.job.paused = false;
    this.fields.gcode_state = 'RUNNING';
    return true;
  }

  /** The whole list of HMS entries that stay on the printer (replaces the earlier ones). */
  setHms(entries: HmsEntry[]): void {
    this.persistentHms = entries.map((e) => ({ ...e }));
    this.syncHms();
  }

  /** Adds one HMS entry that stays (replacing one with the same attr). */
  addHms(entry: HmsEntry): void {
    this.persistentHms = [...this.persistentHms.filter((e) => e.attr !== entry.attr), { ...entry }];
    this.syncHms();
  }

  /** The user cleared an HMS entry. */
  clearHms(attr: number): void {
    this.persistentHms = this.persistentHms.filter((e) => e.attr !== attr);
    this.syncHms();
  }

  /** Power cut or reboot: the job is lost, INIT for `bootSeconds`, then IDLE. */
  reboot(bootSeconds = 10): void {
    this.job = null;
    this.cancelAt = null;
    this.idleSince = this.clock;
    this.timeline = this.timeline.filter((t) => t.owner !== 'printer');
    Object.assign(this.fields, {
      gcode_state: 'INIT',
      print_type: 'idle',
      mc_percent: 0,
      mc_remaining_time: 0,
      nozzle_target_temper: 0,
      bed_target_temper: 0,
      print_error: 0,
    });
    this.after(bootSeconds, () => {
      this.fields.gcode_state = 'IDLE';
    });
  }

  /** A print command from the request topic; the ack to echo. */
  handlePrintCommand(print: JsonObject): JsonObject {
    switch (print.command) {
      case 'pause':
        this.pause();
        break;
      case 'resume':
        this.resume();
        break;
      case 'stop':
        this.cancel();
        break;
      case 'project_file':
        return this.projectFile(print);
      default:
        break;
    }
    return { ...print, result: 'success', reason: '' };
  }

  // --- internals -----------------------------------------------------------------------------------------------------

  private powerOn(state: NonNullable<PrinterOptions['initialState']>, bootSeconds: number): void {
    switch (state) {
      case 'INIT':
        this.fields.gcode_state = 'INIT';
        this.after(bootSeconds, () => {
          this.fields.gcode_state = 'IDLE';
          this.idleSince = this.clock;
        });
        break;
      case 'FINISH':
        this.startJob();
        this.counts.started--;
        this.job = null;
        Object.assign(this.fields, { layer_num: this.fields.total_layer_num, gcode_file_prepare_percent: '100' });
        this.toFinished();
        break;
      case 'FAILED':
        this.startJob();
        this.counts.started--;
        this.job = null;
        this.toFailed();
        break;
      case 'RUNNING': {
        this.startJob();
        this.counts.started--;
        const job = this.job as SimJob | null;
        if (job) job.elapsedSec = job.totalSec / 2;
        this.runJob(0);
        break;
      }
      default:
        break;
    }
  }

  private moveClock(to: number): void {
    const seconds = to - this.clock;
    if (seconds <= 0) return;
    this.clock = to;
    if (!this.job) {
      if (this.autoJobs && this.fields.gcode_state !== 'INIT' && this.clock - this.idleSince >= this.idleSeconds) {
        if (this.onIdle?.()) return;
        const roll = randomInt(0, 10);
        this.startJob({ outcome: roll === 0 ? 'fail' : 'finish' });
        if (roll === 1 && this.job) this.cancelAt = (this.job as SimJob).totalSec * 0.5;
      }
      return;
    }
    this.runJob(seconds);
  }

  private runJob(seconds: number): void {
    const job = this.job;
    if (!job || job.paused) return;
    job.elapsedSec += seconds;
    if (this.cancelAt !== null && job.elapsedSec >= this.cancelAt) {
      this.cancel();
      return;
    }
    if (job.elapsedSec < job.prepareSec && !job.system) {
      const pct = Math.min(100, Math.floor((job.elapsedSec / job.prepareSec) * 100));
      this.fields.gcode_file_prepare_percent = String(pct);
      return;
    }
    const runSec = job.system ? job.totalSec : job.totalSec - job.prepareSec;
    const fraction = Math.min(1, (job.elapsedSec - (job.system ? 0 : job.prepareSec)) / runSec);
    if (job.outcome === 'fail' && fraction >= 0.4) {
      this.fail();
      return;
    }
    if (fraction >= 1) {
      this.job = null;
      this.idleSince = this.clock;
      if (!job.system) this.counts.finished++;
      Object.assign(this.fields, { layer_num: job.totalLayers });
      this.toFinished();
      return;
    }
    Object.assign(this.fields, {
      gcode_state: 'RUNNING',
      gcode_file_prepare_percent: '100',
      mc_print_stage: '2',
      mc_percent: Math.floor(fraction * 100),
      mc_remaining_time: Math.ceil((job.totalSec - job.elapsedSec) / 60),
      layer_num: job.system ? 0 : Math.max(1, Math.ceil(fraction * job.totalLayers)),
    });
  }

  private toFinished(): void {
    this.endFields('FINISH');
    Object.assign(this.fields, { mc_percent: 100, mc_remaining_time: 0 });
  }

  private toFailed(): void {
    this.endFields('FAILED');
  }

  private endFields(state: 'FINISH' | 'FAILED'): void {
    Object.assign(this.fields, {
      gcode_state: state,
      nozzle_target_temper: 0,
      bed_target_temper: 0,
      mc_print_stage: '1',
      print_type: 'idle',
    });
  }

  /** The transient cancel code on or off; fail_reason keeps it on firmware that has one. */
  private setCode(on: boolean): void {
    this.fields.print_error = on ? CANCEL_PRINT_ERROR : 0;
    if (this.x1Fields) this.fields.mc_print_error_code = on ? CANCEL_MC_ERROR_CODE : '0';
    if (on && this.behaviour.failReason && this.x1Fields) this.fields.fail_reason = String(CANCEL_PRINT_ERROR);
  }

  private syncHms(): void {
    this.fields.hms = [...this.persistentHms, ...this.failureHms].map((e) => ({ ...e }) as JsonObject);
  }

  /** Temperatures and signal drift so a delta goes out about every tick, as real printers do. */
  private drift(): void {
    const heating = this.job !== null;
    const nozzle = this.fields.nozzle_temper as number;
    const bed = this.fields.bed_temper as number;
    this.fields.nozzle_temper =
      Math.round((heating ? nozzle + (220 - nozzle) * 0.3 : nozzle + (25 - nozzle) * 0.1) * 32) / 32;
    this.fields.bed_temper =
      Math.round((heating ? bed + (55 - bed) * 0.3 : bed + (23 - bed) * 0.1) * 32) / 32 +
      (randomInt(0, 2) ? 0.03125 : 0);
    this.fields.wifi_signal = `-${40 + randomInt(0, 8)}dBm`;
  }
}
