/**
 * The diagnostic capture file (DESIGN.md "Captures"): versioned JSON Lines.
 *
 * Line 1, the header: `{format: "printernizer-capture", version: 1, printer_type, model, firmware, daemon_version,
 * started_at, session, ...}`. Then, in arrival order, each with `t` = milliseconds since started_at:
 * - traffic, redacted (redact.ts): `{t, kind: "mqtt", topic, payload}`, `{t, kind: "http", path, status, body}`,
 *   `{t, kind: "link", up, reason?}`; a body that was not JSON is `text` instead (a length-only placeholder), and
 *   `prelude: true` marks the printer's state as the daemon knew it when a capture joined a running session;
 * - `{t, kind: "event", event_type, metadata}`: what the daemon recorded for this printer meanwhile;
 * - `{t, kind: "printer", model, firmware}`: the model or firmware as learned during the capture;
 * - `{t, kind: "note", note}`: a fixed note for readers (the printer disconnected, came back);
 * - `{t, kind: "end", reason}`: the last line of a capture that ended normally.
 *
 * The reader names the first bad line and stops; it reads every version up to its own and refuses newer ones.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  DISCONNECT_REASONS,
  EVENT_TYPES,
  type EventMetadata,
  type EventType,
  PRINTER_MODELS,
  PRINTER_TYPES,
  type PrinterModel,
  type PrinterType,
} from '../stats/events.js';
import type { RedactedTraffic } from './redact.js';

export const CAPTURE_FORMAT = 'printernizer-capture';
/** The version this code writes, and the newest it reads. */
export const CAPTURE_VERSION = 1;

/**
 * `started`: the capture began with the printer's session (standalone capture, converted fixtures), so a replay sees
 * everything the driver saw. `joined`: it joined a session the daemon already had; the prelude lines carry what the
 * daemon knew at that moment.
 */
export const SESSION_KINDS = ['started', 'joined'] as const;
export type SessionKind = (typeof SESSION_KINDS)[number];

export const END_REASONS = [
  'time_up',
  'stopped',
  'daemon_stopping',
  'disk_full',
  'file_too_large',
  'write_failed',
] as const;
export type EndReason = (typeof END_REASONS)[number];

export const NOTES = ['printer_disconnected', 'printer_reconnected', 'prelude_end'] as const;
export type Note = (typeof NOTES)[number];

/** A firmware version as a capture may hold it: dotted numbers and short build tags only. */
export const FIRMWARE_SHAPE = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}$/;

export interface CaptureHeader {
  format: typeof CAPTURE_FORMAT;
  version: number;
  printer_type: PrinterType;
  model: PrinterModel;
  firmware: string | null;
  daemon_version: string;
  started_at: string;
  session: SessionKind;
  /** PrusaLink: the configured poll interval, so a replay polls at the same pace. */
  poll_interval_s?: number;
  /** The planned length. */
  minutes?: number;
}

export type TrafficLine = { t: number; prelude?: boolean } & RedactedTraffic;
export interface EventLine {
  t: number;
  kind: 'event';
  event_type: EventType;
  metadata: EventMetadata;
}
export interface PrinterLine {
  t: number;
  kind: 'printer';
  model: PrinterModel;
  firmware: string | null;
}
export interface NoteLine {
  t: number;
  kind: 'note';
  note: Note;
}
export interface EndLine {
  t: number;
  kind: 'end';
  reason: EndReason;
}
export type CaptureLine = TrafficLine | EventLine | PrinterLine | NoteLine | EndLine;

export interface Capture {
  header: CaptureHeader;
  lines: CaptureLine[];
  /** The capture has its end line (a capture cut short by a full disk or a crash has not). */
  complete: boolean;
}

/** A capture file that cannot be read: names its line (1-based) where there is one. */
export class CaptureFormatError extends Error {
  constructor(
    readonly line: number | null,
    detail: string,
  ) {
    super(line === null ? detail : `line ${line}: ${detail}`);
    this.name = 'CaptureFormatError';
  }
}

/** A capture written by a newer printernizer-stats than this one. */
export class CaptureVersionError extends CaptureFormatError {
  constructor(readonly version: number) {
    super(
      1,
      `this capture was written by a newer printernizer-stats (capture format version ${version}); this version ` +
        `reads format versions up to ${CAPTURE_VERSION}: update printernizer-stats to replay it`,
    );
    this.name = 'CaptureVersionError';
  }
}

const time = z.number().finite().min(0);
const headerSchema = z.object({
  format: z.literal(CAPTURE_FORMAT),
  version: z.number().int().min(1),
  printer_type: z.enum(PRINTER_TYPES),
  model: z.enum(PRINTER_MODELS),
  firmware: z.string().regex(FIRMWARE_SHAPE).nullable(),
  daemon_version: z.string().min(1).max(40),
  started_at: z.iso.datetime(),
  session: z.enum(SESSION_KINDS).default('started'),
  poll_interval_s: z.number().int().min(1).max(3600).optional(),
  minutes: z
    .number()
    .positive()
    .max(24 * 60)
    .optional(),
});

const lineSchema = z.discriminatedUnion('kind', [
  z.object({
    t: time,
    kind: z.literal('mqtt'),
    topic: z.string().max(256),
    payload: z.unknown().optional(),
    text: z.string().max(64).optional(),
    prelude: z.boolean().optional(),
  }),
  z.object({
    t: time,
    kind: z.literal('http'),
    path: z.string().max(2048),
    status: z.number().int().min(100).max(599).nullable(),
    body: z.unknown().optional(),
    text: z.string().max(64).optional(),
    failure: z.string().max(80).optional(),
    prelude: z.boolean().optional(),
  }),
  z.object({
    t: time,
    kind: z.literal('link'),
    up: z.boolean(),
    reason: z.enum(DISCONNECT_REASONS).optional(),
    prelude: z.boolean().optional(),
  }),
  z.object({
    t: time,
    kind: z.literal('event'),
    event_type: z.enum(EVENT_TYPES),
    metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  }),
  z.object({
    t: time,
    kind: z.literal('printer'),
    model: z.enum(PRINTER_MODELS),
    firmware: z.string().regex(FIRMWARE_SHAPE).nullable(),
  }),
  z.object({ t: time, kind: z.literal('note'), note: z.enum(NOTES) }),
  z.object({ t: time, kind: z.literal('end'), reason: z.enum(END_REASONS) }),
]);

/**
 * Upgrades from each older version to the next, applied in order to every raw line (the header included) before
 * validation, so a capture from an older daemon replays in a newer one. Empty while version 1 is the only one.
 */
const UPGRADES: Readonly<Record<number, (raw: Record<string, unknown>, index: number) => Record<string, unknown>>> = {};

/** One line as written: JSON and a newline. */
export function serializeLine(line: CaptureHeader | CaptureLine): string {
  return `${JSON.stringify(line)}\n`;
}

function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}

/** Parses a whole capture; throws CaptureFormatError naming the first bad line. */
export function parseCapture(text: string): Capture {
  const rawLines = text.split('\n');
  const endsWithNewline = text.endsWith('\n');
  let header: CaptureHeader | null = null;
  let sourceVersion = CAPTURE_VERSION;
  const lines: CaptureLine[] = [];
  let complete = false;
  let lastT = 0;

  for (let index = 0; index < rawLines.length; index++) {
    const lineNumber = index + 1;
    const raw = rawLines[index]!.replace(/\r$/, '');
    if (raw.trim() === '') continue;
    if (complete) throw new CaptureFormatError(lineNumber, 'content after the end line');
    const isLast = index === rawLines.length - 1;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      if (isLast && !endsWithNewline) {
        throw new CaptureFormatError(lineNumber, 'the file ends in the middle of this line: the capture is truncated');
      }
      throw new CaptureFormatError(lineNumber, 'not valid JSON');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new CaptureFormatError(lineNumber, 'not a JSON object');
    }
    let object = json as Record<string, unknown>;

    if (header === null) {
      if (object.format !== CAPTURE_FORMAT) {
        throw new CaptureFormatError(lineNumber, `not a printernizer-stats capture (no "${CAPTURE_FORMAT}" header)`);
      }
      const version = object.version;
      if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
        throw new CaptureFormatError(lineNumber, 'the header has no valid format version');
      }
      if (version > CAPTURE_VERSION) throw new CaptureVersionError(version);
      sourceVersion = version;
      object = upgrade(object, sourceVersion, index);
      const parsed = headerSchema.safeParse(object);
      if (!parsed.success) throw new CaptureFormatError(lineNumber, `invalid header (${issueText(parsed.error)})`);
      header = { ...parsed.data, format: CAPTURE_FORMAT, version: CAPTURE_VERSION };
      continue;
    }

    object = upgrade(object, sourceVersion, index);
    const parsed = lineSchema.safeParse(object);
    if (!parsed.success) throw new CaptureFormatError(lineNumber, `invalid line (${issueText(parsed.error)})`);
    const line = parsed.data as CaptureLine;
    if (line.t < lastT)
      throw new CaptureFormatError(lineNumber, `time goes backwards (${line.t} ms after ${lastT} ms)`);
    lastT = line.t;
    if (line.kind === 'end') complete = true;
    lines.push(line);
  }
  if (header === null) throw new CaptureFormatError(null, 'the file is empty: no capture header');
  return { header, lines, complete };
}

function upgrade(raw: Record<string, unknown>, from: number, index: number): Record<string, unknown> {
  let value = raw;
  for (let version = from; version < CAPTURE_VERSION; version++) {
    const step = UPGRADES[version];
    if (step) value = step(value, index);
  }
  return value;
}

/** Reads and parses a capture file; an unreadable file is a CaptureFormatError without a line. */
export function readCaptureFile(path: string): Capture {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CaptureFormatError(null, `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseCapture(text);
}

/** The events a capture holds, in order. */
export function capturedEvents(capture: Capture): EventLine[] {
  return capture.lines.filter((line): line is EventLine => line.kind === 'event');
}

/** The capture's length in ms: its end line, else its last line. */
export function captureDurationMs(capture: Capture): number {
  return capture.lines.at(-1)?.t ?? 0;
}
