/**
 * PrusaLink responses, parsed leniently (PROTOCOLS.md B2/B3): unknown keys are ignored, every field but the few we
 * need is optional and a wrong type in an optional field costs only that field. Then mapped to what the tracker
 * and the snapshot need: a JobObservation, the printer model, and storage/file facts without names leaving here.
 */
import { z } from 'zod';
import type { PrinterModel } from '../../stats/events.js';
import type { JobObservation, JobState } from '../types.js';

const optNumber = z.number().finite().optional().catch(undefined);
const optString = z.string().optional().catch(undefined);

export const versionSchema = z.object({
  api: z.string(),
  server: optString,
  original: optString,
  text: optString,
  hostname: optString,
  firmware: optString,
  printer: optString,
  nozzle_diameter: optNumber,
});
export type PrusaLinkVersion = z.infer<typeof versionSchema>;

const jobIdSchema = z.union([z.number().int(), z.string().regex(/^\d{1,12}$/)]);

export const statusJobSchema = z.object({
  id: jobIdSchema,
  progress: optNumber,
  time_remaining: optNumber,
  time_printing: optNumber,
});

const storageEntrySchema = z.object({
  path: optString,
  name: optString,
  read_only: z.boolean().optional().catch(undefined),
});

export const statusSchema = z.object({
  // A job without a usable id is as good as none (the tracker keeps the last key).
  job: statusJobSchema.optional().catch(undefined),
  // Buddy sends one object, Prusa-Link on a Raspberry Pi a list.
  storage: z
    .union([storageEntrySchema, z.array(storageEntrySchema)])
    .optional()
    .catch(undefined),
  printer: z.object({ state: z.string() }),
});
export type PrusaLinkStatus = z.infer<typeof statusSchema>;

export const jobSchema = z.object({
  id: jobIdSchema,
  state: optString,
  time_printing: optNumber,
  file: z
    .object({
      name: optString,
      display_name: optString,
      path: optString,
      size: optNumber,
    })
    .optional()
    .catch(undefined),
});
export type PrusaLinkJob = z.infer<typeof jobSchema>;

const fileEntrySchema = z.object({
  name: z.string(),
  display_name: optString,
  type: optString,
  size: optNumber,
  m_timestamp: optNumber,
});

export const filesListingSchema = z.object({
  // v1 folder listing; the legacy API called it `files`.
  children: z.array(z.unknown()).optional().catch(undefined),
  files: z.array(z.unknown()).optional().catch(undefined),
});

export type ParseResult<T> = { ok: true; value: T } | { ok: false };

/** JSON.parse + schema; false for HTML, truncated bodies and anything off-shape. */
export function parseBody<T>(schema: z.ZodType<T>, body: string): ParseResult<T> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false };
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false };
}

/** printer.state → tracker state; anything unlisted (BUSY, UNKNOWN, new firmware words) changes nothing. */
export function mapPrinterState(state: string): JobState {
  switch (state.toUpperCase()) {
    case 'IDLE':
    case 'READY':
      return 'idle';
    case 'PRINTING':
      return 'printing';
    case 'PAUSED':
    case 'ATTENTION':
      return 'paused';
    case 'FINISHED':
      return 'finished';
    case 'STOPPED':
      return 'cancelled';
    case 'ERROR':
      return 'error';
    default:
      return 'unknown';
  }
}

/** The printer's state word for the snapshot: kept only if it looks like a state word. */
export function stateWord(state: string): string {
  return /^[A-Za-z_]{1,24}$/.test(state) ? state.toUpperCase() : 'UNKNOWN';
}

export function jobIdOf(status: PrusaLinkStatus): string | null {
  return status.job ? String(status.job.id) : null;
}

export function toJobObservation(status: PrusaLinkStatus, jobKey = jobIdOf(status)): JobObservation {
  const printing = status.job?.time_printing;
  return {
    state: mapPrinterState(status.printer.state),
    jobKey,
    printingSeconds: printing !== undefined && printing >= 0 ? Math.round(printing) : null,
  };
}

/** Writable storages as listing paths (`usb`, `local`); Buddy's read-only flag is honoured, `sdcard` skipped. */
export function writableStorages(status: PrusaLinkStatus): string[] {
  const entries = status.storage === undefined ? [] : Array.isArray(status.storage) ? status.storage : [status.storage];
  const names: string[] = [];
  for (const entry of entries) {
    if (entry.read_only) continue;
    const fromPath = (entry.path ?? '').replace(/^\/+|\/+$/g, '');
    const name = fromPath || entry.name;
    if (name && /^[A-Za-z0-9_-]{1,32}$/.test(name) && !names.includes(name)) names.push(name);
  }
  return names;
}

export interface ListedFile {
  /** Key for the seen-set, kept in memory only: `/usb/tablet~1.bgc`. */
  key: string;
  /** Name to take the file type from (the long one when present); never leaves the driver. */
  typeName: string;
  size: number | null;
}

export function fileKey(dir: string, name: string): string {
  return `/${dir}/${name}`.replace(/\/+/g, '/').toLowerCase();
}

/** Print files in a storage listing, folders skipped. Entries that do not parse are skipped one by one. */
export function listedFiles(storage: string, listing: z.infer<typeof filesListingSchema>): ListedFile[] {
  const out: ListedFile[] = [];
  for (const raw of listing.children ?? listing.files ?? []) {
    const entry = fileEntrySchema.safeParse(raw);
    if (!entry.success) continue;
    const type = (entry.data.type ?? '').toUpperCase();
    if (type === 'FOLDER' || type === 'DIR' || type === 'DIRECTORY') continue;
    out.push({
      key: fileKey(storage, entry.data.name),
      typeName: entry.data.display_name ?? entry.data.name,
      size: entry.data.size ?? null,
    });
  }
  return out;
}

/** The job's file, from /api/v1/job, in the same key space as listedFiles. */
export function jobFile(job: PrusaLinkJob): ListedFile | null {
  const f = job.file;
  if (!f?.name) return null;
  return {
    key: fileKey(f.path ?? '', f.name),
    typeName: f.display_name ?? f.name,
    size: f.size ?? null,
  };
}

/** Prusa Connect printer type codes (`"printer": "1.4.0"` in /api/version from Buddy 6.5.x). */
const PRINTER_TYPE_CODES: Record<string, PrinterModel> = {
  '1.2.5': 'MK2.5',
  '1.2.6': 'MK2.5',
  '1.3.0': 'MK3',
  '1.3.1': 'MK3S',
  '1.3.5': 'MK3.5',
  '1.3.9': 'MK3.9',
  '1.4.0': 'MK4',
  '1.4.1': 'MK4S',
  '2.1.0': 'MINI',
  '3.1.0': 'XL',
  '7.1.0': 'CORE One',
};

/** Ordered: longer names first so MK4S is not read as MK4, CORE One L not as CORE One. */
const NAME_HINTS: ReadonlyArray<[RegExp, PrinterModel]> = [
  [/core[\s_-]?one[\s_-]?l\b/, 'CORE One L'],
  [/core[\s_-]?one/, 'CORE One'],
  [/mk4s/, 'MK4S'],
  [/mk4/, 'MK4'],
  [/mk3[._-]?9/, 'MK3.9'],
  [/mk3[._-]?5/, 'MK3.5'],
  [/mk3s/, 'MK3S'],
  [/mk2[._-]?5/, 'MK2.5'],
  [/mk3/, 'MK3'],
  [/mini/, 'MINI'],
  [/(^|[^a-z])xl([^a-z]|$)|prusaxl/, 'XL'],
];

function modelFromName(text: string | undefined): PrinterModel | null {
  if (!text) return null;
  const lower = text.toLowerCase();
  for (const [re, model] of NAME_HINTS) if (re.test(lower)) return model;
  return null;
}

/**
 * The model from /api/version: the Connect type code when present (Buddy ≥ 6.5.1), then `original`
 * (`PrusaLink I3MK3S` on a Raspberry Pi), then the factory hostname (`prusa-mk4`, `PrusaXL`) as a last hint.
 * The hostname is only matched here, never kept.
 */
export function modelFromVersion(version: PrusaLinkVersion): PrinterModel {
  const code = version.printer?.match(/^\d+\.\d+\.\d+/)?.[0];
  if (code && PRINTER_TYPE_CODES[code]) return PRINTER_TYPE_CODES[code];
  return modelFromName(version.original) ?? modelFromName(version.hostname) ?? 'other';
}
