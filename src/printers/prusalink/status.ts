/**
 * PrusaLink responses, parsed leniently (PROTOCOLS.md B2/B3): unknown keys are ignored, every field but the few we
 * need is optional and a wrong type in an optional field costs only that field. Two servers send them: Buddy firmware
 * (MINI, MK4 family, MK3.5, XL, CORE One; Prusa-Firmware-Buddy lib/WUI) and Prusa-Link on a Raspberry Pi (MK3S,
 * MK2.5; prusa/link/web). Where they differ, the schema takes both shapes; the quirks are handled in job-state.ts,
 * files.ts and model.ts.
 */
import { z } from 'zod';
import type { JobState } from '../types.js';

const optNumber = z.number().finite().optional().catch(undefined);
const optString = z.string().optional().catch(undefined);
const optBoolean = z.boolean().optional().catch(undefined);
/** Buddy renders some sizes as strings (`"size":"754535"`, transfer_renderer.cpp); Prusa-Link as numbers. */
const optSize = z
  .union([
    z.number().finite(),
    z
      .string()
      .regex(/^\d{1,15}$/)
      .transform(Number),
  ])
  .optional()
  .catch(undefined);

/** GET /api/version: Buddy basic_gets.cpp get_version; Prusa-Link prusa/link/web/main.py api_version. */
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

const idSchema = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,12}$/)]);

/** `job` of /api/v1/status (Buddy status_renderer.cpp; Prusa-Link main.py api_status, nulls filtered out). */
export const statusJobSchema = z.object({
  id: idSchema,
  progress: optNumber,
  time_remaining: optNumber,
  time_printing: optNumber,
});

/**
 * `transfer` of /api/v1/status, present while a file is being transferred to the printer (an upload from the slicer or
 * the web page, or a download from Prusa Connect). Buddy (status_renderer.cpp) sends `transferred`, Prusa-Link
 * (main.py api_status) and the OpenAPI spec `data_transferred`; neither sends the file's name or size here.
 */
export const statusTransferSchema = z.object({
  id: idSchema,
  time_transferring: optNumber,
  progress: optNumber,
  transferred: optNumber,
  data_transferred: optNumber,
});
export type PrusaLinkStatusTransfer = z.infer<typeof statusTransferSchema>;

const storageEntrySchema = z.object({
  path: optString,
  name: optString,
  read_only: optBoolean,
});
export type PrusaLinkStorageEntry = z.infer<typeof storageEntrySchema>;

export const statusSchema = z.object({
  // A job without a usable id is as good as none (the tracker keeps the last key).
  job: statusJobSchema.optional().catch(undefined),
  // Buddy sends one object, Prusa-Link on a Raspberry Pi a list.
  storage: z
    .union([storageEntrySchema, z.array(storageEntrySchema)])
    .optional()
    .catch(undefined),
  transfer: statusTransferSchema.optional().catch(undefined),
  printer: z.object({ state: z.string() }),
});
export type PrusaLinkStatus = z.infer<typeof statusSchema>;

const refsSchema = z
  .object({
    // Absent (not null) on Buddy while the file is still being uploaded (file_info.cpp renderStateV1).
    download: z.string().nullable().optional().catch(undefined),
  })
  .optional()
  .catch(undefined);

/**
 * GET /api/v1/job (204 without a job). Buddy (basic_gets.cpp get_job_v1): `name` is the 8.3 short name, `path` its
 * directory (`/usb`, `/usb/PARTS`). Prusa-Link (main.py job_info): `name` the long name and `path` the WHOLE path under
 * the storages' display names (`/PrusaLink gcodes/Benchy.gcode`, `/SD Card/BENCHY~1.GCO`), plus `display_path`.
 */
export const jobSchema = z.object({
  id: idSchema,
  state: optString,
  time_printing: optNumber,
  file: z
    .object({
      name: optString,
      display_name: optString,
      path: optString,
      display_path: optString,
      size: optSize,
      m_timestamp: optNumber,
    })
    .optional()
    .catch(undefined),
});
export type PrusaLinkJob = z.infer<typeof jobSchema>;

/** GET /api/v1/transfer (204 without a transfer): Buddy transfer_renderer.cpp renderStateV1, Prusa-Link files.py. */
export const transferSchema = z.object({
  type: optString,
  display_name: optString,
  /** Buddy: the directory of the destination (`/usb`, `/usb/PARTS`); Prusa-Link: always `/local`. */
  path: optString,
  size: optSize,
  progress: optNumber,
  to_print: optBoolean,
});
export type PrusaLinkTransfer = z.infer<typeof transferSchema>;

/** GET /api/v1/storage: Buddy basic_gets.cpp get_storage (`available` = a USB stick is in), Prusa-Link files.py. */
export const storageListSchema = z.object({
  storage_list: z.array(
    z.object({
      path: optString,
      name: optString,
      read_only: optBoolean,
      available: optBoolean,
    }),
  ),
});

/** One entry of a folder listing, GET /api/v1/files/{storage}/{folder}. Parsed one by one in files.ts. */
export const listingEntrySchema = z.object({
  name: z.string(),
  display_name: optString,
  type: optString,
  ro: optBoolean,
  size: optSize,
  m_timestamp: optNumber,
  refs: refsSchema,
});
export type PrusaLinkListingEntry = z.infer<typeof listingEntrySchema>;

export const filesListingSchema = z.object({
  // v1 folder listing; the legacy API called it `files`.
  children: z.array(z.unknown()).optional().catch(undefined),
  files: z.array(z.unknown()).optional().catch(undefined),
});
export type PrusaLinkListing = z.infer<typeof filesListingSchema>;

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

/**
 * printer.state → job state, as Buddy's printer_state.cpp and Prusa-Link's state manager use the words:
 * - ATTENTION is a dialog waiting for the user. During a job (the status carries `job`: Buddy's has_job() is true for
 *   ATTENTION only while the Printing or PrintPreview dialog is up) it holds the job like a pause; without a job
 *   (Buddy: a warning while idle, printer_state.cpp get_state; Prusa-Link: a fan error while idle, state_manager.py
 *   fan_error) it is no job at all and changes nothing.
 * - BUSY (selftest, preheat, power-panic and crash recovery), UNKNOWN and words not listed change nothing.
 */
export function mapPrinterState(state: string, hasJob: boolean): JobState {
  switch (state.toUpperCase()) {
    case 'IDLE':
    case 'READY':
      return 'idle';
    case 'PRINTING':
      return 'printing';
    case 'PAUSED':
      return 'paused';
    case 'ATTENTION':
      return hasJob ? 'paused' : 'unknown';
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

/** The printer's state word for the live state: kept only if it looks like a state word. */
export function stateWord(state: string): string {
  return /^[A-Za-z_]{1,24}$/.test(state) ? state.toUpperCase() : 'UNKNOWN';
}

/** Writable storages as listing paths (`usb`, `local`); read-only ones (`sdcard`) cannot receive uploads. */
export function writableStorages(status: PrusaLinkStatus): string[] {
  const names: string[] = [];
  for (const entry of storageEntries(status)) {
    if (entry.read_only) continue;
    const name = storagePathName(entry);
    if (name && !names.includes(name)) names.push(name);
  }
  return names;
}

/** Every storage the status names, Buddy's single object or Prusa-Link's list alike. */
export function storageEntries(status: PrusaLinkStatus): PrusaLinkStorageEntry[] {
  return status.storage === undefined ? [] : Array.isArray(status.storage) ? status.storage : [status.storage];
}

/** `/usb/` → `usb`, `/local` → `local`; null when it is not a plain word (nothing else goes into a request path). */
export function storagePathName(entry: { path?: string; name?: string }): string | null {
  const fromPath = (entry.path ?? '').replace(/^\/+|\/+$/g, '');
  const name = fromPath || entry.name || '';
  return /^[A-Za-z0-9_-]{1,32}$/.test(name) ? name : null;
}
