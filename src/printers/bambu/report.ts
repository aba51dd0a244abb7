/**
 * Bambu Lab report handling (PROTOCOLS.md A3/A4): parse one MQTT payload from `device/<serial>/report`, merge
 * `push_status` reports into the printer's state field by field, and reduce the merged state to a JobObservation for
 * the shared tracker. Pure and synchronous: no sockets, no timers, no events, so it is tested from the fixtures alone.
 *
 * Only the fields job tracking and the live snapshot need are kept. Job and file names (`subtask_name`,
 * `gcode_file`) are never read, so they cannot leak into events, logs or the API.
 */
import { z } from 'zod';
import type { FileType, PrinterModel } from '../../stats/events.js';
import type { JobObservation, JobState, LiveStatus } from '../types.js';
import { modelFromVersionModules } from './model.js';

/**
 * `print_error` 0x0300400C "The task was canceled". A transient signal: a printer sends it once (A1, sometimes twice,
 * before FAILED; P2S and H2S seconds after FAILED) and resets it to 0 a few seconds later (ha-bambulab
 * pybambu/models.py `PrintJob.print_update`: "A couple of seconds later print_error will be reset to zero").
 */
export const CANCEL_PRINT_ERROR = 50348044;
/** `mc_print_error_code` carries the low half of the cancel code as a decimal string (real P2S capture, snapcon). */
export const CANCEL_MC_ERROR_CODE = '16396';

/** A real full X1 report is about 25 kB; anything this large is not a printer report and is not even parsed. */
export const DEFAULT_MAX_REPORT_BYTES = 1024 * 1024;

// Field types are tolerant: printers send numbers as strings in places ("gcode_file_prepare_percent": "100"), and
// one field of the wrong type must cost only that field, never the report.
const numeric = z
  .union([
    z.number(),
    z
      .string()
      .regex(/^\s*-?\d+(\.\d+)?\s*$/)
      .transform(Number),
  ])
  .refine(Number.isFinite)
  .optional()
  .catch(undefined);
const text = z
  .union([z.string().max(256), z.number().transform(String)])
  .optional()
  .catch(undefined);
const hmsEntry = z.object({ attr: z.number().int().min(0).max(0xffffffff), code: z.number().int() });
const hmsList = z
  .array(z.unknown())
  .max(256)
  .transform((entries) => entries.flatMap((e) => (hmsEntry.safeParse(e).success ? [e as HmsEntry] : [])))
  .optional()
  .catch(undefined);

const printFieldsSchema = z.object({
  gcode_state: text,
  mc_percent: numeric,
  mc_remaining_time: numeric,
  gcode_file_prepare_percent: numeric,
  layer_num: numeric,
  total_layer_num: numeric,
  task_id: text,
  subtask_id: text,
  job_id: text,
  print_error: numeric,
  fail_reason: text,
  mc_print_error_code: text,
  print_type: text,
  hms: hmsList,
  msg: numeric,
  sequence_id: text,
});

export interface HmsEntry {
  attr: number;
  code: number;
}

/** The typed subset of a `push_status` report; a field is undefined when the report did not carry a usable value. */
export type PrintFields = z.infer<typeof printFieldsSchema>;

/** The merged state: what the printer has said so far, the latest value of each field. */
export type BambuPrintState = Omit<PrintFields, 'msg' | 'sequence_id'>;

export type ParsedReport =
  /**
   * `print.command === "push_status"`: state. `full` for a full report (msg 0: a pushall answer or a periodic full
   * push; or, on firmware that sends no `msg` at all such as the H2D, a report as large as a full one).
   */
  | { kind: 'status'; full: boolean; fields: PrintFields }
  /** A command acknowledgement under `print` (project_file, pause, ...): not state. */
  | { kind: 'ack'; command: string; sequenceId: string | null; success: boolean; fileType: FileType | null }
  /** The `get_version` reply. */
  | { kind: 'version'; model: PrinterModel | null }
  /** Valid JSON we have no use for (system, upgrade, mc_print, event, ...). */
  | { kind: 'other' }
  | { kind: 'malformed'; reason: MalformedReason };

export type MalformedReason = 'oversized' | 'not_json' | 'not_an_object' | 'bad_print' | 'bad_info';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Without `msg` (the H2D's full report has none), a report with at least this many keys is a full one: real full
 * reports carry 60 to 100 (P1P 63, A1 64, H2D 97), real deltas a handful.
 */
const FULL_REPORT_MIN_KEYS = 40;

/** Parse one payload. Never throws. */
export function parseReport(payload: Buffer | string, maxBytes = DEFAULT_MAX_REPORT_BYTES): ParsedReport {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > maxBytes) return { kind: 'malformed', reason: 'oversized' };
  return parseReportText(typeof payload === 'string' ? payload : payload.toString('utf8'));
}

/** Parse a payload already decoded (its size checked by the caller). Never throws. */
export function parseReportText(text: string): ParsedReport {
  return parseReportBody(decodeJson(text));
}

/** What JSON.parse made of a payload that is not JSON. */
export const NOT_JSON: unique symbol = Symbol('not JSON');

/** JSON.parse that answers NOT_JSON instead of throwing. */
export function decodeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/**
 * Whether a `print` object with this command is state. Acks always echo their command; a print object without one is
 * state too: on cancel the printer sends just {"print": {"print_error": 50348044}} (ha-bambulab models.py).
 */
export function isStatusCommand(command: unknown): boolean {
  return command === 'push_status' || command === undefined;
}

/** Read a payload already through decodeJson (the driver shares that one parse with the capture prelude). */
export function parseReportBody(body: unknown): ParsedReport {
  if (body === NOT_JSON) return { kind: 'malformed', reason: 'not_json' };
  if (!isPlainObject(body)) return { kind: 'malformed', reason: 'not_an_object' };

  if ('print' in body) {
    const print = body.print;
    if (!isPlainObject(print)) return { kind: 'malformed', reason: 'bad_print' };
    const command = print.command;
    if (isStatusCommand(command)) {
      const fields = printFieldsSchema.parse(print);
      const full = fields.msg === 0 || (fields.msg === undefined && Object.keys(print).length >= FULL_REPORT_MIN_KEYS);
      return { kind: 'status', full, fields };
    }
    if (typeof command !== 'string') return { kind: 'malformed', reason: 'bad_print' };
    return parseAck(command, print);
  }

  if ('info' in body) {
    const info = body.info;
    if (!isPlainObject(info)) return { kind: 'malformed', reason: 'bad_info' };
    if (info.command !== 'get_version') return { kind: 'other' };
    if (!Array.isArray(info.module)) return { kind: 'malformed', reason: 'bad_info' };
    const modules = info.module.filter(isPlainObject);
    return { kind: 'version', model: modelFromVersionModules(modules) };
  }
  return { kind: 'other' };
}

function parseAck(command: string, print: Record<string, unknown>): ParsedReport {
  const seq = print.sequence_id;
  const sequenceId = typeof seq === 'string' || typeof seq === 'number' ? String(seq) : null;
  // Acks carry result "success" (any case); a reply without one is treated as accepted.
  const result = print.result;
  const success = typeof result !== 'string' || result.toLowerCase() === 'success';
  const fileType = command === 'project_file' ? projectFileType(print) : null;
  return { kind: 'ack', command: command.slice(0, 64), sequenceId, success, fileType };
}

/**
 * The file type of a `project_file` print: the `url`/`file` (for example "file:///sdcard/part.3mf") names the file
 * sent; `param` is the plate inside it ("Metadata/plate_1.gcode" means a 3mf project). Only the type is kept.
 */
export function projectFileType(print: Record<string, unknown>): FileType {
  for (const key of ['url', 'file'] as const) {
    const value = print[key];
    if (typeof value !== 'string') continue;
    const lower = value.toLowerCase().split('?')[0] ?? '';
    if (lower.endsWith('.3mf')) return '3mf';
    if (lower.endsWith('.gcode')) return 'gcode';
  }
  const param = typeof print.param === 'string' ? print.param : '';
  if (/^metadata\/plate_\d+\.gcode$/i.test(param)) return '3mf';
  if (param.toLowerCase().endsWith('.gcode')) return 'gcode';
  return '3mf';
}

/**
 * gcode_state words to the common JobState. A job is PREPARE, SLICING, RUNNING or PAUSE: the states Bambu Studio
 * itself treats as printing (src/slic3r/GUI/DeviceManager.cpp `MachineObject::is_in_printing_status`). INIT is the
 * printer starting up (PROTOCOLS.md A3), not a job: it is `unknown`, like the power-on `""` (ha-bambulab PR #197), so
 * it neither starts nor ends one.
 */
const GCODE_STATES: Readonly<Record<string, JobState>> = {
  IDLE: 'idle',
  PREPARE: 'preparing',
  SLICING: 'preparing',
  RUNNING: 'printing',
  PAUSE: 'paused',
  FINISH: 'finished',
  FAILED: 'failed',
};

/** gcode_state to the common JobState; "", INIT, OFFLINE, UNKNOWN and anything new are `unknown` and change nothing. */
export function jobStateOf(gcodeState: string | undefined): JobState {
  if (!gcodeState) return 'unknown';
  return GCODE_STATES[gcodeState.toUpperCase()] ?? 'unknown';
}

const IDLE_SET = new Set<JobState>(['idle', 'finished', 'failed']);
const ACTIVE_SET = new Set<JobState>(['preparing', 'printing', 'paused']);

function hex(value: number, digits: number): string {
  return (value >>> 0).toString(16).padStart(digits, '0').slice(-digits);
}

/** `hms_0300_0100` from HMS attr 0x03000100: module and category only, as hex. */
export function hmsSlug(entry: HmsEntry): string {
  return `hms_${hex(entry.attr >>> 16, 4)}_${hex(entry.attr & 0xffff, 4)}`;
}

/** `print_error_0300_8015` from print_error 50364437 (0x03008015). */
export function printErrorSlug(code: number): string {
  const digits = hex(code, 8);
  return `print_error_${digits.slice(0, 4)}_${digits.slice(4)}`;
}

function validId(id: string | undefined): id is string {
  return id !== undefined && id !== '' && id !== '0';
}

/**
 * One printer's merged report state plus the bookkeeping that turns it into observations. Survives reconnects: a
 * P1 sends only deltas, so what it said before the link dropped is still the latest word until it says otherwise.
 */
export class BambuReportState {
  readonly fields: BambuPrintState = {};
  /** The job identity the printer still showed while idle: the previous job's, not the next one's. */
  private staleKey: string | null = null;
  private previous: JobState = 'unknown';
  /**
   * The last report of the running job still showed the cancel code in `fail_reason`: a leftover of an earlier cancel
   * that the firmware keeps in every full report (H2C's real FAILED report still carries it), not this job's.
   */
  private staleFailReason = false;
  private starts = 0;
  private slugCache: { hms: HmsEntry[] | undefined; code: number | undefined; slugs: readonly string[] } | null = null;

  /** How many times the printer went from anything else into a job state (PREPARE, SLICING, RUNNING, PAUSE). */
  get jobStarts(): number {
    return this.starts;
  }

  /** Merge a status report and describe the result for the tracker. */
  apply(report: PrintFields): JobObservation {
    const printErrorBefore = this.fields.print_error;
    const mcCodeBefore = this.fields.mc_print_error_code;
    const state = this.fields as Record<string, unknown>;
    for (const key in report) {
      if (key === 'msg' || key === 'sequence_id') continue;
      const value = (report as Record<string, unknown>)[key];
      if (value !== undefined) state[key] = value;
    }

    const jobState = jobStateOf(this.fields.gcode_state);
    const active = ACTIVE_SET.has(jobState);
    const key = this.identity();
    if (IDLE_SET.has(jobState)) this.staleKey = key;
    else if (active && IDLE_SET.has(this.previous) && key !== this.staleKey) this.staleKey = null;
    if (active && !ACTIVE_SET.has(this.previous)) this.starts++;
    const failReasonCancel = isCancelFailReason(this.fields.fail_reason);
    if (active) this.staleFailReason = failReasonCancel;
    if (jobState !== 'unknown') this.previous = jobState;

    // The cancel signals (PROTOCOLS.md A4). print_error 0x0300400C and mc_print_error_code "16396" are transient: a
    // cancel when they appear (ha-bambulab counts print_error only when it changes from 0), so the same value carried
    // on in later reports is not a second cancel and never marks the next job. fail_reason keeps the code long after
    // (the real H2C full report is FAILED with fail_reason "50348044" and print_error 0), so it counts only in a
    // FAILED report, and not when the job already showed it while running.
    const cancelSeen =
      (report.print_error === CANCEL_PRINT_ERROR && printErrorBefore !== CANCEL_PRINT_ERROR) ||
      (report.mc_print_error_code === CANCEL_MC_ERROR_CODE && mcCodeBefore !== CANCEL_MC_ERROR_CODE) ||
      (jobState === 'failed' && failReasonCancel && !this.staleFailReason);

    return {
      state: jobState,
      // Ids left over from the previous job (deltas do not always carry the new ones at once) must not name this
      // one, or the tracker would see a job change mid-print.
      jobKey: active && key !== this.staleKey ? key : null,
      cancelSeen,
      // Every error the printer shows now, from the merged state (a P1 delta without `hms` keeps the last list), so
      // an HMS entry that stays from job to job is one error until it clears.
      errorSlugs: this.errorSlugs(),
      // print_type "system": a run the printer starts from its own firmware G-code, not a user's print. The real H2S
      // capture (bambuddy, tap-0938BJ611001133) shows one: gcode_file "/usr/etc/print/O1S/auto_cali_for_user_param
      // .gcode", RUNNING then FAILED and the cancel code, with no project_file and no file sent; a P1S wire capture
      // (bambuddy wiki) shows the same for the `calibration` command: IDLE → RUNNING → FINISH under "system". Bambu
      // Studio tells these apart as calibration (DeviceManager.cpp `is_in_calibration`), and bambuddy stopped handling
      // them as prints (#3081, #3127). Counted, they would add jobs (and cancels) nobody printed, so the tracker
      // follows them (their end is not mistaken for a user job's) and never counts them.
      systemJob: active && this.fields.print_type?.toLowerCase() === 'system',
    };
  }

  /** task, subtask or job id when the printer gives one ("0" for LAN prints). Kept in memory only. */
  private identity(): string | null {
    const f = this.fields;
    if (validId(f.task_id)) return `task:${f.task_id}`;
    if (validId(f.subtask_id)) return `subtask:${f.subtask_id}`;
    if (validId(f.job_id)) return `job:${f.job_id}`;
    return null;
  }

  /** The slugs of what the printer shows now; the same (unmodified) array while hms and print_error stay. */
  private errorSlugs(): readonly string[] {
    const hms = this.fields.hms;
    const code = this.fields.print_error;
    if (this.slugCache && this.slugCache.hms === hms && this.slugCache.code === code) return this.slugCache.slugs;
    const slugs: string[] = [];
    for (const entry of hms ?? []) slugs.push(hmsSlug(entry));
    if (code !== undefined && Number.isInteger(code) && code > 0 && code !== CANCEL_PRINT_ERROR) {
      slugs.push(printErrorSlug(code));
    }
    this.slugCache = { hms, code, slugs };
    return slugs;
  }
}

/** fail_reason names the cancel code ("50348044" on H2C and P2S, Rdiger-36 PR #137). */
function isCancelFailReason(failReason: string | undefined): boolean {
  return failReason?.includes(String(CANCEL_PRINT_ERROR)) === true;
}

/** What the live state shows of the merged report. */
export function liveStatus(fields: BambuPrintState): LiveStatus {
  return {
    state: snapshotState(fields),
    progress: snapshotProgress(fields),
    remaining_minutes: snapshotRemainingMinutes(fields),
  };
}

const STATE_WORD = /^[A-Z_]{1,20}$/;

let lastWord: { word: string; shown: string } | null = null;

/** The printer's own state word for the snapshot, limited to a plain upper-case word. */
export function snapshotState(fields: BambuPrintState): string | null {
  const word = fields.gcode_state;
  if (word === undefined) return null;
  if (word === '') return 'UNKNOWN';
  // The same word report after report: checked once.
  if (lastWord?.word === word) return lastWord.shown;
  const upper = word.toUpperCase();
  const shown = STATE_WORD.test(upper) ? upper : 'UNKNOWN';
  lastWord = { word, shown };
  return shown;
}

export function snapshotProgress(fields: BambuPrintState): number | null {
  const p = fields.mc_percent;
  return p === undefined ? null : Math.min(100, Math.max(0, Math.round(p)));
}

export function snapshotRemainingMinutes(fields: BambuPrintState): number | null {
  const m = fields.mc_remaining_time;
  return m === undefined || m < 0 ? null : Math.round(m);
}
