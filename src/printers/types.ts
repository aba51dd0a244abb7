/**
 * The contract between printer drivers (bambu/, prusalink/) and the rest of the daemon. Drivers translate a
 * printer's protocol into JobObservations for the shared tracker and keep a live PrinterSnapshot; they know nothing
 * about events, SQLite, HTTP or MQTT.
 */
import type { DisconnectReason, EventMetadata, EventType, PrinterModel, PrinterType } from '../stats/events.js';

/**
 * Where a printer's job is, in terms common to every printer kind. `unknown`: the printer said something we cannot
 * place (power-on `""`, BUSY, UNKNOWN), which changes nothing.
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

/** One report or poll, reduced to what job tracking needs. */
export interface JobObservation {
  state: JobState;
  /** The printer's identity for the current job (PrusaLink job id, Bambu task/subtask id), when it has one. */
  jobKey?: string | null;
  /** Printing time the printer itself reports for the current job, in seconds. */
  printingSeconds?: number | null;
  /** Bambu: the transient cancel code 0x0300400C was seen in this report. */
  cancelSeen?: boolean;
  /** Error slugs present in this report (`hms_0300_0100`, `print_error_0300_400c`, ...). */
  errorSlugs?: readonly string[];
}

/** Receives usage events; the stats service's record_event in the daemon, an array in tests. */
export type EventSink = (eventType: EventType, metadata: EventMetadata) => void;

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

export interface PrinterDriver {
  readonly id: string;
  start(): void;
  stop(): Promise<void>;
  snapshot(): PrinterSnapshot;
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
