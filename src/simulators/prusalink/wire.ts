/**
 * Response bodies of the simulated printer, byte for byte the way the two PrusaLink servers render them (issue 12:
 * the simulator must answer as the firmware does, or it only agrees with our own understanding):
 * - Buddy firmware (Prusa-Firmware-Buddy lib/WUI): compact JSON from the segmented_json macros, fixed decimals where
 *   the firmware uses JSON_FIELD_FFIXED (`"progress":37.00`), keys in the renderer's order. Sources per body below.
 * - Prusa-Link (prusa/link/web): Python's json.dumps (`", "` and `": "` separators), dicts in insertion order,
 *   None filtered where the handler calls filter_null.
 * Pure functions of the printer's state; no HTTP here.
 */
import type { PrusaLinkSimModel, SimFile, SimFolder, SimStorage, SimulatedPrusaPrinter } from './printer.js';

/** A number the firmware renders with a fixed number of decimals. */
class Fixed {
  constructor(
    readonly value: number,
    readonly digits: number,
  ) {}
}
const fixed = (value: number, digits: number) => new Fixed(value, digits);

type Json = null | boolean | number | string | Fixed | Json[] | { [key: string]: Json | undefined };

/** Buddy: compact; Python: json.dumps defaults. Undefined members are left out. */
export function render(value: Json, style: 'buddy' | 'python'): string {
  const comma = style === 'python' ? ', ' : ',';
  const colon = style === 'python' ? ': ' : ':';
  const walk = (v: Json): string => {
    if (v instanceof Fixed) return v.value.toFixed(v.digits);
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map(walk).join(comma)}]`;
    const parts: string[] = [];
    for (const [k, member] of Object.entries(v)) {
      if (member === undefined) continue;
      parts.push(`${JSON.stringify(k)}${colon}${walk(member)}`);
    }
    return `{${parts.join(comma)}}`;
  };
  return walk(value);
}

export interface WireOptions {
  model: PrusaLinkSimModel;
  /** Buddy firmware version: 6.5.3 and newer send `printer` and `firmware` in /api/version; before 4.7.0 no API v1. */
  firmware: string;
  /** Prusa-Link: says "Unknown printer type" until it has talked to the printer. */
  printerTypeKnown: boolean;
}

/** Factory host names (Buddy src/common/config.h LAN_HOSTNAME_DEF) and Connect type codes (printer_model_data.hpp). */
const BUDDY_MODELS: Record<
  Exclude<PrusaLinkSimModel, 'MK3S'>,
  { hostname: string; oldHostname: string; code?: string }
> = {
  MK4: { hostname: 'prusa-mk4', oldHostname: 'PrusaMK4', code: '1.4.0' },
  MK4S: { hostname: 'prusa-mk4', oldHostname: 'PrusaMK4', code: '1.4.1' },
  'MK3.9': { hostname: 'prusa-mk4', oldHostname: 'PrusaMK4', code: '1.3.9' },
  'MK3.9S': { hostname: 'prusa-mk4', oldHostname: 'PrusaMK4', code: '1.3.10' },
  'MK3.5': { hostname: 'prusa-mk3-5', oldHostname: 'PrusaMK4', code: '1.3.5' },
  'MK3.5S': { hostname: 'prusa-mk3-5', oldHostname: 'PrusaMK4', code: '1.3.6' },
  // pyprusalink types.py: XL and MINI lack `printer` and `firmware` even on 6.5.x.
  MINI: { hostname: 'prusa-mini', oldHostname: 'PrusaMINI' },
  XL: { hostname: 'prusa-xl', oldHostname: 'PrusaXL' },
  'CORE One': { hostname: 'prusa-core-one', oldHostname: 'prusa-core-one', code: '7.1.0' },
  'CORE One L': { hostname: 'prusa-core-one', oldHostname: 'prusa-core-one', code: '8.1.0' },
};

export function buddyHostname(o: WireOptions): string {
  const m = BUDDY_MODELS[o.model as keyof typeof BUDDY_MODELS] ?? BUDDY_MODELS.MK4;
  return versionAtLeast(o.firmware, '6.1.0') ? m.hostname : m.oldHostname;
}

/** Buddy before 4.7.0 has no /api/v1/status (lib/WUI/link_content/prusa_link_api.cpp at v4.6.4). */
export function hasApiV1(o: WireOptions): boolean {
  return versionAtLeast(o.firmware, '4.7.0');
}

export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split(/[.+-]/).map((n) => Number.parseInt(n, 10) || 0);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

// --- /api/version --------------------------------------------------------------------------------------------------

/** Buddy basic_gets.cpp get_version (+ `firmware`/`printer` from 6.5.1/6.5.3, pyprusalink test_get_version). */
export function buddyVersion(o: WireOptions): string {
  const m = BUDDY_MODELS[o.model as keyof typeof BUDDY_MODELS] ?? BUDDY_MODELS.MK4;
  const withCode = m.code !== undefined && versionAtLeast(o.firmware, o.model === 'CORE One L' ? '6.5.1' : '6.5.3');
  return render(
    {
      api: '2.0.0',
      server: '2.1.2',
      nozzle_diameter: fixed(0.4, 2),
      text: 'PrusaLink',
      hostname: buddyHostname(o),
      firmware: withCode ? `${o.firmware}+12780` : undefined,
      printer: withCode ? m.code : undefined,
      capabilities: { 'upload-by-put': true },
    },
    'buddy',
  );
}

/** Prusa-Link prusa/link/web/main.py api_version (no filter_null: `firmware` is null before the printer is known). */
export function prusaLinkVersion(o: WireOptions): string {
  return render(
    {
      api: '2.0.0',
      server: '0.8.1',
      original: o.printerTypeKnown ? 'PrusaLink I3MK3S' : 'Unknown printer type',
      text: 'PrusaLink 0.8.1',
      firmware: o.printerTypeKnown ? '3.14.1-8237' : null,
      sdk: '0.8.0',
      capabilities: { 'upload-by-put': true },
      hostname: 'prusa-mk3s',
    },
    'python',
  );
}

// --- /api/v1/status ------------------------------------------------------------------------------------------------

function jobNumbers(p: SimulatedPrusaPrinter): { progress: number; remaining: number; printing: number } | null {
  const j = p.job;
  if (!j) return null;
  const total = Number.isFinite(j.durationS) ? j.durationS : 3600;
  return {
    progress: Math.min(100, (j.printedS / total) * 100),
    remaining: Math.max(0, Math.round(total - j.printedS)),
    printing: Math.round(j.printedS),
  };
}

/** Buddy lib/WUI/nhttp/status_renderer.cpp: `job` only while has_job(), `transfer` while one runs. */
export function buddyStatus(p: SimulatedPrusaPrinter): string {
  const n = p.hasJob() ? jobNumbers(p) : null;
  const printing = n !== null;
  const t = p.transfer;
  return render(
    {
      job:
        n && p.job
          ? {
              id: p.job.id,
              progress: fixed(n.progress, 2),
              time_remaining: n.remaining,
              time_printing: n.printing,
            }
          : undefined,
      storage: { path: '/usb/', name: 'usb', read_only: false },
      transfer: t
        ? {
            id: t.id,
            time_transferring: Math.round(t.elapsedS),
            progress: fixed((t.transferred / Math.max(1, t.size)) * 100, 2),
            transferred: t.transferred,
          }
        : undefined,
      printer: {
        state: p.reportedState(),
        temp_bed: fixed(printing ? 60.1 : 24.3, 1),
        target_bed: fixed(printing ? 60 : 0, 1),
        temp_nozzle: fixed(printing ? 214.8 : 25.1, 1),
        target_nozzle: fixed(printing ? 215 : 0, 1),
        axis_z: fixed(printing ? 5 : 1.8, 1),
        // Left out while printing (`!marlin_client::is_printing()`).
        axis_x: printing ? undefined : fixed(7.9, 1),
        axis_y: printing ? undefined : fixed(8.4, 1),
        flow: 100,
        speed: 100,
        fan_hotend: printing ? 5000 : 0,
        fan_print: printing ? 2500 : 0,
      },
    },
    'buddy',
  );
}

/** Prusa-Link main.py api_status: storage list, printer, camera (none here), job while not IDLE, transfer; no nulls. */
export function prusaLinkStatus(p: SimulatedPrusaPrinter): string {
  const n = p.hasJob() ? jobNumbers(p) : null;
  const state = p.reportedState();
  const moving = state === 'PRINTING' || state === 'BUSY';
  const t = p.transfer;
  return render(
    {
      storage: [
        { path: '/local', read_only: false, free_space: 28_248_391_680, name: 'PrusaLink gcodes' },
        { path: '/sdcard', read_only: true, name: 'SD Card' },
      ],
      printer: {
        state,
        temp_nozzle: n ? 214.8 : 25.1,
        temp_bed: n ? 60.1 : 24.3,
        axis_z: n ? 5.0 : 1.8,
        flow: 100,
        speed: 100,
        fan_hotend: n ? 5000 : 0,
        fan_print: n ? 2500 : 0,
        status_connect: { ok: true, message: 'OK' },
        status_printer: { ok: true, message: 'OK' },
        target_nozzle: n ? 215.0 : 0.0,
        target_bed: n ? 60.0 : 0.0,
        axis_x: moving ? undefined : 7.9,
        axis_y: moving ? undefined : 8.4,
      },
      job:
        n && p.job
          ? { id: p.job.id, progress: n.progress, time_remaining: n.remaining, time_printing: n.printing }
          : undefined,
      transfer: t
        ? {
            id: t.id,
            time_transferring: Math.round(t.elapsedS),
            progress: Math.round((t.transferred / Math.max(1, t.size)) * 10000) / 100,
            data_transferred: t.transferred,
          }
        : undefined,
    },
    'python',
  );
}

// --- /api/v1/job ---------------------------------------------------------------------------------------------------

/** Buddy basic_gets.cpp get_job_v1: ATTENTION is PAUSED here; `name` the short name, `path` its folder. */
export function buddyJob(p: SimulatedPrusaPrinter): string | null {
  const j = p.job;
  const n = jobNumbers(p);
  if (!j || !n || !p.hasJob()) return null;
  const folder = `/${[j.storage.name, ...j.folder].join('/')}`;
  const sfnPath = `${folder}/${j.file.name}`;
  const shown = p.reportedState();
  return render(
    {
      id: j.id,
      state: shown === 'ATTENTION' ? 'PAUSED' : shown,
      progress: fixed(n.progress, 2),
      time_remaining: n.remaining,
      time_printing: n.printing,
      file: {
        refs: { icon: `/thumb/s${sfnPath}`, thumbnail: `/thumb/l${sfnPath}`, download: sfnPath },
        name: j.file.name,
        display_name: j.file.display_name,
        path: folder,
        size: j.file.size,
        m_timestamp: j.file.m_timestamp,
      },
    },
    'buddy',
  );
}

/**
 * Prusa-Link main.py job_info: `path` is the whole path under the storage's display name, file name included
 * (`/PrusaLink gcodes/Benchy.gcode`, `/SD Card/BENCHY~1.GCO`); refs from lib/files.py local_refs / sdcard_refs.
 */
export function prusaLinkJob(p: SimulatedPrusaPrinter): string | null {
  const j = p.job;
  const n = jobNumbers(p);
  if (!j || !n || !p.hasJob()) return null;
  const path = `/${[j.storage.display, ...j.folder, j.file.name].join('/')}`;
  const local = j.storage.name === 'local';
  return render(
    {
      file: {
        name: j.file.name,
        display_name: j.file.name,
        path,
        display_path: path,
        size: j.file.size,
        m_timestamp: j.file.m_timestamp,
        refs: local
          ? { download: `/api/files/local${path}/raw`, icon: null, thumbnail: null }
          : { download: null, icon: null, thumbnail: null },
        meta: {},
      },
      id: j.id,
      state: p.reportedState(),
      progress: n.progress,
      time_remaining: n.remaining,
      time_printing: n.printing,
      inaccurate_estimates: false,
    },
    'python',
  );
}

// --- /api/v1/files -------------------------------------------------------------------------------------------------

/**
 * Buddy lib/WUI/nhttp/file_info.cpp DirRenderer::renderStateV1: no `size` in listings; a file still being
 * transferred (its partial file is a folder) shows as a read-only file whose refs lack `download`; folders have no
 * refs. The USB root has no m_timestamp (stat() fails on the FAT root); a missing stick lists as an empty folder
 * (FileType::Empty, rendered from an empty DirState: no name to show).
 */
export function buddyListing(storage: SimStorage, path: string[], folder: SimFolder | null): string {
  if (!storage.available || !folder) {
    return render({ type: 'FOLDER', ro: false, name: '', children: [] }, 'buddy');
  }
  const dir = `/${[storage.name, ...path].join('/')}`;
  const children: Json[] = [];
  for (const f of folder.files) {
    children.push({
      name: f.name,
      ro: f.partial,
      type: 'PRINT_FILE',
      m_timestamp: f.m_timestamp,
      refs: {
        icon: `/thumb/s${dir}/${f.name}`,
        thumbnail: `/thumb/l${dir}/${f.name}`,
        download: f.partial ? undefined : `${dir}/${f.name}`,
      },
      display_name: f.display_name,
    });
  }
  for (const d of folder.folders) {
    children.push({
      name: d.name,
      ro: false,
      type: 'FOLDER',
      m_timestamp: d.m_timestamp,
      display_name: d.display_name,
    });
  }
  return render(
    {
      type: 'FOLDER',
      ro: false,
      m_timestamp: path.length > 0 ? folder.m_timestamp : undefined,
      name: path.length > 0 ? folder.name : storage.name,
      children,
    },
    'buddy',
  );
}

/**
 * Prusa-Link web/files.py file_info: the SDK's File.to_dict (type, name, ro, m_timestamp, size; children one level
 * deep) plus display_name, children's refs from local_refs/sdcard_refs. Partial uploads are hidden files
 * (`.name.part`, lib/files.py partfilepath) the SDK skips, so they never show.
 */
export function prusaLinkListing(storage: SimStorage, path: string[], folder: SimFolder): string {
  const display = `/${[storage.display, ...path].join('/')}`;
  const size = (f: SimFolder): number =>
    f.files.reduce((s, x) => s + (x.partial ? 0 : x.size), 0) + f.folders.reduce((s, x) => s + size(x), 0);
  const children: Json[] = [];
  for (const f of folder.files) {
    if (f.partial) continue;
    children.push({
      type: 'PRINT_FILE',
      name: f.name,
      ro: storage.readOnly,
      m_timestamp: f.m_timestamp,
      size: f.size,
      display_name: f.name,
      refs:
        storage.name === 'local'
          ? { download: `/api/files/local${display}/${f.name}/raw`, icon: null, thumbnail: null }
          : { download: null, icon: null, thumbnail: null },
    });
  }
  for (const d of folder.folders) {
    children.push({
      type: 'FOLDER',
      name: d.name,
      ro: storage.readOnly,
      m_timestamp: d.m_timestamp,
      size: size(d),
      display_name: d.name,
    });
  }
  return render(
    {
      type: 'FOLDER',
      name: path.length > 0 ? folder.name : storage.display,
      ro: storage.readOnly,
      m_timestamp: folder.m_timestamp,
      size: size(folder),
      children,
      display_name: path.length > 0 ? folder.name : storage.display,
    },
    'python',
  );
}

/** Buddy FileRenderer::renderStateV1 / Prusa-Link file_info for one file. */
export function fileInfo(p: SimulatedPrusaPrinter, storage: SimStorage, path: string[], f: SimFile): string {
  if (p.buddy) {
    const sfn = `/${[storage.name, ...path, f.name].join('/')}`;
    return render(
      {
        name: f.name,
        ro: f.partial,
        type: 'PRINT_FILE',
        m_timestamp: f.m_timestamp,
        size: f.size,
        refs: { icon: `/thumb/s${sfn}`, thumbnail: `/thumb/l${sfn}`, download: sfn },
        display_name: f.display_name,
      },
      'buddy',
    );
  }
  const display = `/${[storage.display, ...path, f.name].join('/')}`;
  return render(
    {
      type: 'PRINT_FILE',
      name: f.name,
      ro: storage.readOnly,
      m_timestamp: f.m_timestamp,
      size: f.size,
      display_name: f.name,
      refs: { download: `/api/files/local${display}/raw`, icon: null, thumbnail: null },
      meta: {},
    },
    'python',
  );
}

// --- /api/v1/storage, /api/v1/transfer, /api/v1/info ---------------------------------------------------------------

/** Buddy basic_gets.cpp get_storage; Prusa-Link files.py storage_info. */
export function storageList(p: SimulatedPrusaPrinter): string {
  if (p.buddy) {
    const usb = p.storages[0]!;
    return render(
      {
        storage_list: [{ path: '/usb/', name: 'usb', type: 'USB', read_only: false, available: usb.available }],
      },
      'buddy',
    );
  }
  return render(
    {
      storage_list: [
        {
          type: 'LOCAL',
          path: '/local',
          available: true,
          free_space: 28_248_391_680,
          total_space: 31_132_934_144,
          read_only: false,
          name: 'PrusaLink gcodes',
          print_files: 2_055_759,
          system_files: 0,
        },
        {
          type: 'SDCARD',
          path: '/sdcard',
          available: true,
          read_only: true,
          name: 'SD Card',
          print_files: 0,
          system_files: 0,
        },
      ],
    },
    'python',
  );
}

/**
 * Buddy transfer_renderer.cpp renderStateV1 (`size` as a string, `path` the destination's folder); Prusa-Link
 * files.py transfer_info (`path` always "/local").
 */
export function transferBody(p: SimulatedPrusaPrinter): string | null {
  const t = p.transfer;
  if (!t) return null;
  const progress = (t.transferred / Math.max(1, t.size)) * 100;
  const remaining = Math.max(0, Math.round(t.durationS - t.elapsedS));
  if (p.buddy) {
    return render(
      {
        type: t.type,
        display_name: t.file.display_name,
        path: `/${[t.storage.name, ...t.folder].join('/')}`,
        size: String(t.size),
        progress: fixed(progress, 2),
        transferred: t.transferred,
        time_remaining: remaining,
        time_transferring: Math.round(t.elapsedS),
        to_print: t.toPrint,
      },
      'buddy',
    );
  }
  return render(
    {
      type: t.type,
      display_name: t.file.name,
      path: '/local',
      url: null,
      size: t.size,
      progress: Math.round(progress * 100) / 100,
      transferred: t.transferred,
      time_remaining: remaining,
      time_transferring: Math.round(t.elapsedS),
      to_print: t.toPrint,
    },
    'python',
  );
}

/** Buddy basic_gets.cpp get_info; Prusa-Link main.py api_info. */
export function infoBody(p: SimulatedPrusaPrinter, o: WireOptions): string {
  if (p.buddy) {
    return render(
      {
        nozzle_diameter: fixed(0.4, 2),
        mmu: false,
        serial: 'SIM-0000-0000',
        hostname: buddyHostname(o),
        min_extrusion_temp: 170,
      },
      'buddy',
    );
  }
  return render(
    {
      name: 'Simulated MK3S',
      location: '',
      farm_mode: false,
      network_error_chime: false,
      nozzle_diameter: 0.4,
      min_extrusion_temp: 170,
      serial: 'SIM-0000-0000',
      hostname: 'prusa-mk3s',
      port: 80,
    },
    'python',
  );
}

// --- legacy (OctoPrint-style) --------------------------------------------------------------------------------------

/** Buddy basic_gets.cpp get_job_octoprint when idle: `"job": null,"progress": null` written by hand (JSON_CONTROL). */
export function buddyLegacyJob(p: SimulatedPrusaPrinter): string {
  const j = p.hasJob() ? p.job : null;
  const n = jobNumbers(p);
  if (!j || !n) return '{"state":"Operational","job": null,"progress": null}';
  const sfnPath = `/${[j.storage.name, ...j.folder, j.file.name].join('/')}`;
  return render(
    {
      state: p.reportedState() === 'PAUSED' ? 'Paused' : 'Printing',
      job: {
        estimatedPrintTime: n.printing + n.remaining,
        file: { name: j.file.display_name, path: sfnPath, display: j.file.display_name },
      },
      progress: { printTimeLeft: n.remaining, completion: fixed(n.progress / 100, 2), printTime: n.printing },
    },
    'buddy',
  );
}

/** Buddy basic_gets.cpp get_printer (the fields Home Assistant reads, and the state flags). */
export function buddyLegacyPrinter(p: SimulatedPrusaPrinter): string {
  const printing = p.hasJob();
  return render(
    {
      telemetry: {
        'temp-bed': fixed(24.3, 1),
        'temp-nozzle': fixed(25.1, 1),
        'print-speed': 100,
        'z-height': fixed(1.8, 1),
        material: 'PLA',
      },
      state: {
        text: printing ? 'Printing' : 'Operational',
        flags: {
          link_state: printing ? 'PRINTING' : undefined,
          operational: !printing,
          paused: false,
          printing,
          cancelling: false,
          pausing: false,
          error: false,
          sdReady: false,
          closedOnError: false,
          ready: !printing,
          busy: false,
        },
      },
    },
    'buddy',
  );
}
