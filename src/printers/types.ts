/**
 * The contract between printer drivers (bambu/, prusalink/) and the rest of the daemon (DESIGN.md "Data flow").
 * Drivers only report what they see, as PrinterUpdates; the fleet gives each printer one PrinterTracker, which turns
 * updates into usage events, and one LivePrinter, which turns them into the state shown by the API and the MQTT
 * mirror. Drivers know nothing about events, SQLite, HTTP or MQTT, and never build event metadata.
 */
import type { Logger } from 'pino';
import type {
  DisconnectReason,
  ErrorType,
  EventType,
  FileType,
  MetadataFor,
  PrinterModel,
  PrinterType,
} from '../stats/events.js';
import type { Clock } from './clock.js';

/**
 * Where a printer's job is, in terms common to every printer kind. `unknown`: the printer said something we cannot
 * place (power-on `""`, INIT, BUSY, UNKNOWN), which changes nothing.
 */
export const JOB_STATES = [
  'idle',
  'preparing',
  'printing',
  'paused',
  'finished',
  'failed',
  'cancelled',
  'error',
  'unknown',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const ACTIVE_JOB_STATES: ReadonlySet<JobState> = new Set(['preparing', 'printing', 'paused']);
export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['finished', 'failed', 'cancelled', 'error']);

/** One report or poll, reduced to what job tracking needs. */
export interface JobObservation {
  state: JobState;
  /** The printer's identity for the current job (PrusaLink job id, Bambu task/subtask id), when it has one. */
  jobKey?: string | null;
  /** Printing time the printer itself reports for the current job, in seconds. */
  printingSeconds?: number | null;
  /** The printer signalled that the user cancelled (Bambu's cancel code 0x0300400C) in this report. */
  cancelSeen?: boolean;
  /**
   * Error slugs present on the printer now (`hms_0300_0100`, `print_error_0300_8015`). A slug is counted when it
   * appears and not again while it stays; `undefined` means "this report says nothing about errors".
   */
  errorSlugs?: readonly string[];
  /**
   * The active job is one the printer runs for itself (Bambu `print_type: "system"` calibrations), not a user's
   * print job: tracked so its end is not mistaken for anything, never counted.
   */
  systemJob?: boolean;
}

/** What a printer's live state shows besides its job: the printer's own words and numbers. */
export interface LiveStatus {
  /** The printer's own state word (RUNNING, PRINTING, ...), limited to a plain word. */
  state: string | null;
  progress: number | null;
  remaining_minutes: number | null;
}

/**
 * Everything a driver tells the rest of the daemon. Problems are short, human-readable and never carry a host, serial,
 * name or message from the printer.
 */
export type PrinterUpdate =
  /** Data arrived from the printer after it was offline (or for the first time): printer_connected. */
  | { kind: 'connected' }
  /** The printer is no longer reachable: printer_disconnected (once per outage). */
  | { kind: 'disconnected'; reason: DisconnectReason }
  /** Data arrived (any message or response): last_seen. Cheap; sent for every message. */
  | { kind: 'seen' }
  /** A job observation, with the live status when the report carries one. */
  | { kind: 'observation'; observation: JobObservation; status?: LiveStatus }
  /**
   * A failure worth counting (error_occurred), at most once per cause and scope: `outage` ends with the next
   * observation, `connection` ends when the link drops.
   */
  | { kind: 'fault'; errorType: ErrorType; scope: 'outage' | 'connection' }
  /**
   * What the API shows as the printer's problem. `link` problems (unreachable, auth refused) are replaced when the
   * link changes; `notice` problems (firmware too old, ignores requests, malformed reports) stay until cleared.
   */
  | { kind: 'problem'; scope: 'link' | 'notice'; problem: string | null }
  /** A file arrived on the printer (slicer upload, PrusaLink PUT, a new file in a storage listing). */
  | { kind: 'file_uploaded'; fileType: FileType; sizeBytes?: number | null }
  /** The printer told its model (get_version, /api/version). */
  | { kind: 'model'; model: PrinterModel };

export type PrinterUpdateSink = (update: PrinterUpdate) => void;

/** Receives usage events, typed by their allow-list; the stats service's recordEvent in the daemon. */
export type EventSink = <T extends EventType>(eventType: T, metadata: MetadataFor<T>) => void;

/** Live state as shown by GET /api/v1/printers and mirrored on MQTT. Never holds serials, hosts or job names. */
export interface PrinterSnapshot {
  id: string;
  name: string;
  type: PrinterType;
  model: PrinterModel;
  online: boolean;
  /** The printer's own state word (RUNNING, PRINTING, ...) or null before the first report. */
  state: string | null;
  progress: number | null;
  remaining_minutes: number | null;
  last_seen: string | null;
  /** A short, human-readable problem (auth refused, TLS failed, unparseable reports) or null. */
  problem: string | null;
}

/**
 * What a driver received from its printer, byte for byte as it arrived (before any parsing), for diagnostic captures.
 * Link changes are included so a replay can reproduce outages.
 */
export type RawTraffic =
  /**
   * Bambu Lab: one MQTT message on the report topic; `json` is the driver's own parse of it when it is JSON (absent
   * when it was not parsed: too large, or traffic that did not come from a driver). Shared, never to be changed.
   */
  | { kind: 'mqtt'; topic: string; payload: string; json?: unknown }
  /** PrusaLink: one answered request; `status` null when there was no HTTP answer (`failure` says why). */
  | { kind: 'http'; path: string; status: number | null; body: string | null; failure?: string }
  /** The session or poll loop went up or down (Bambu CONNACK/close, PrusaLink offline after failed polls). */
  | { kind: 'link'; up: boolean; reason?: DisconnectReason };

/**
 * What every driver is given: where its updates go, its logger (the fleet adds `printer`, the driver adds its own
 * `component`), time, and an optional tap on raw traffic (captures; absent, it costs nothing).
 */
export interface DriverDeps {
  update: PrinterUpdateSink;
  logger: Logger;
  clock: Clock;
  traffic?: (entry: RawTraffic) => void;
}

export interface PrinterDriver {
  readonly id: string;
  start(): void;
  stop(): Promise<void>;
}

export type { DisconnectReason };

/** A stable, non-identifying id for a configured printer: a slug of its configured name. */
export function printerIdFromName(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return slug || 'printer';
}
