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
import type { JobObservation, JobState } from '../types.js';
import { modelFromVersionModules } from './model.js';

/** `print_error` 0x0300400C "The task was canceled": transient, reset to 0 a few seconds later (ha-bambulab). */
export const CANCEL_PRINT_ERROR = 50348044;

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
  /** `print.command === "push_status"`: state, full (msg 0) or delta (msg 1). */
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

/** Parse one payload. Never throws. */
export function parseReport(payload: Buffer | string, maxBytes = DEFAULT_MAX_REPORT_BYTES): ParsedReport {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > maxBytes) return { kind: 'malformed', reason: 'oversized' };
  let body: unknown;
  try {
    body = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return { kind: 'malformed', reason: 'not_json' };
  }
  if (!isPlainObject(body)) return { kind: 'malformed', reason: 'not_an_object' };

  if ('print' in body) {
    const print = body.print;
    if (!isPlainObject(print)) return { kind: 'malformed', reason: 'bad_print' };
    const command = print.command;
    // A print object without a command is state too: on cancel the printer sends just
    // {"print": {"print_error": 50348044}} (ha-bambulab models.py). Acks always echo their command.
    if (command === 'push_status' || command === undefined) {
      const fields = printFieldsSchema.parse(print);
      return { kind: 'status', full: fields.msg === 0, fields };
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

const GCODE_STATES: Readonly<Record<string, JobState>> = {
  IDLE: 'idle',
  PREPARE: 'preparing',
  SLICING: 'preparing',
  INIT: 'preparing',
  RUNNING: 'printing',
  PAUSE: 'paused',
  FINISH: 'finished',
  FAILED: 'failed',
};

/** gcode_state to the common JobState; "", OFFLINE, UNKNOWN and anything new are `unknown` and change nothing. */
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
 * P1 sends only deltas and may not be asked for a full report again for five minutes.
 */
export class BambuReportState {
  readonly fields: BambuPrintState = {};
  /** The job identity the printer still showed while idle: the previous job's, not the next one's. */
  private staleKey: string | null = null;
  private previous: JobState = 'unknown';

  /** Merge a status report and describe the result for the tracker. */
  apply(report: PrintFields): JobObservation {
    const state = this.fields as Record<string, unknown>;
    for (const key in report) {
      if (key === 'msg' || key === 'sequence_id') continue;
      const value = (report as Record<string, unknown>)[key];
      if (value !== undefined) state[key] = value;
    }

    const jobState = jobStateOf(this.fields.gcode_state);
    const key = this.identity();
    if (IDLE_SET.has(jobState)) this.staleKey = key;
    else if (ACTIVE_SET.has(jobState) && IDLE_SET.has(this.previous) && key !== this.staleKey) this.staleKey = null;
    if (jobState !== 'unknown') this.previous = jobState;

    const observation: JobObservation = {
      state: jobState,
      // Ids left over from the previous job (deltas do not always carry the new ones at once) must not name this
      // one, or the tracker would see a job change mid-print.
      jobKey: ACTIVE_SET.has(jobState) && key !== this.staleKey ? key : null,
      cancelSeen: isCancel(report),
      errorSlugs: this.errorSlugs(),
    };
    return observation;
  }

  /** task, subtask or job id when the printer gives one ("0" for LAN prints). Kept in memory only. */
  private identity(): string | null {
    const f = this.fields;
    if (validId(f.task_id)) return `task:${f.task_id}`;
    if (validId(f.subtask_id)) return `subtask:${f.subtask_id}`;
    if (validId(f.job_id)) return `job:${f.job_id}`;
    return null;
  }

  private errorSlugs(): string[] {
    const slugs: string[] = [];
    for (const entry of this.fields.hms ?? []) slugs.push(hmsSlug(entry));
    const code = this.fields.print_error;
    if (code !== undefined && Number.isInteger(code) && code > 0 && code !== CANCEL_PRINT_ERROR) {
      slugs.push(printErrorSlug(code));
    }
    return slugs;
  }
}

/** The cancel code in this very report (not the merged state): in print_error, or in fail_reason on a P2S. */
function isCancel(report: PrintFields): boolean {
  return report.print_error === CANCEL_PRINT_ERROR || report.fail_reason?.includes(String(CANCEL_PRINT_ERROR)) === true;
}

const STATE_WORD = /^[A-Z_]{1,20}$/;

/** The printer's own state word for the snapshot, limited to a plain upper-case word. */
export function snapshotState(fields: BambuPrintState): string | null {
  const word = fields.gcode_state;
  if (word === undefined) return null;
  if (word === '') return 'UNKNOWN';
  const upper = word.toUpperCase();
  return STATE_WORD.test(upper) ? upper : 'UNKNOWN';
}

export function snapshotProgress(fields: BambuPrintState): number | null {
  const p = fields.mc_percent;
  return p === undefined ? null : Math.min(100, Math.max(0, Math.round(p)));
}

export function snapshotRemainingMinutes(fields: BambuPrintState): number | null {
  const m = fields.mc_remaining_time;
  return m === undefined || m < 0 ? null : Math.round(m);
}
