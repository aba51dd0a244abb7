/**
 * Redaction of what a printer sends, before a byte of it is written to a diagnostic capture (issue 16). Fails closed:
 * a string passes only when its key is on the protocol's allow-list of enum-like fields (states, stages, commands,
 * model names, version numbers) and it still looks like such a value; every other string becomes a stable
 * placeholder (`<str:7>`; the same value gets the same placeholder within one capture, so "the same file printed
 * twice" stays visible). File names keep their extension (`<file:3>.3mf`), paths keep the protocol's own segments
 * (`/usb/<str:2>/<file:3>.BGC`), ids keep their "no id" sentinels ("0", ""). An e-mail address, IP or MAC address,
 * URL or host name inside an allow-listed value still costs the whole value. Keys that look like data (file names
 * used as keys) are replaced like values. Non-JSON bodies are replaced whole.
 *
 * Numbers and booleans pass (they are measurements and flags), except under keys that hold addresses (Bambu's `net`
 * carries the IP as a number).
 */
import type { DisconnectReason, RawTraffic } from '../printers/types.js';

export type CaptureProtocol = 'bambu' | 'prusalink';

/** How an allow-listed string value must look to pass. */
type ValueShape = 'enum' | 'digits' | 'hex' | 'version' | 'module' | 'factory_hostname';

const SHAPES: Readonly<Record<ValueShape, RegExp>> = {
  // A word or a few: states, commands, model and product names, signal strengths ("-53dBm").
  enum: /^[A-Za-z0-9+-][A-Za-z0-9 _.,:/+()~-]{0,63}$/,
  // Codes and sequence numbers ("50348044", "16396", "20001").
  digits: /^-?\d{1,20}$/,
  // Feature bitmaps (`fun` "3EC1AFFF9CFF", `stat` "40258000").
  hex: /^[0-9A-Fa-f]{1,24}$/,
  // "01.08.02.00", "6.5.3+12780", "PrusaLink 0.7.2", "AP05".
  version: /^[0-9A-Za-z][0-9A-Za-z .+_-]{0,39}$/,
  // Bambu get_version module names ("ota", "ams/0", "n3s/128"): the known codes only, a name field being generic.
  module:
    /^(ota|esp32|mc|mc-sub|th|ap|ap2|ahb|ams|ams_f1|n3f|n3s|wtm|eef|ext|smc|tm|xm|ixmj|rv1126|laser|cutter|aux)(\/\d{1,3})?$/,
  // The factory default host names that PrusaLink's model detection reads ("prusa-mk4", "PrusaXL"); a name the user
  // chose is never one of these and is redacted.
  factory_hostname: /^(prusa[-_]?)?(mk4s?|mk3[._-]?[59]s?|mk3s?|mk2[._-]?5s?|mini\+?|xl|core[-_]?one([-_]?l)?)$/i,
};

/** Allow-listed keys and the shape their string values must have. Keys are matched wherever they appear. */
const ALLOWED: Readonly<Record<CaptureProtocol, Readonly<Record<string, ValueShape>>>> = {
  bambu: {
    // envelope and acknowledgements
    command: 'enum',
    result: 'enum',
    sequence_id: 'digits',
    msg: 'digits',
    // job state and stages
    gcode_state: 'enum',
    print_type: 'enum',
    mc_print_stage: 'digits',
    mc_print_sub_stage: 'digits',
    gcode_file_prepare_percent: 'digits',
    mc_print_error_code: 'digits',
    fail_reason: 'digits',
    print_error: 'digits',
    stg_cur: 'digits',
    // printer facts
    wifi_signal: 'enum',
    lifecycle: 'enum',
    mess_production_state: 'enum',
    nozzle_type: 'enum',
    nozzle_diameter: 'version',
    fun: 'hex',
    stat: 'hex',
    // get_version modules: names ("ota", "ams/0"), versions, product names and project codes
    name: 'module',
    sw_ver: 'version',
    hw_ver: 'version',
    loader_ver: 'version',
    ota_ver: 'version',
    product_name: 'enum',
    project_name: 'enum',
    // lights_report, upload and upgrade states
    node: 'enum',
    mode: 'enum',
    status: 'enum',
    spd_lvl: 'digits',
  },
  prusalink: {
    // /api/version
    api: 'version',
    server: 'version',
    text: 'version',
    original: 'enum',
    printer: 'version',
    firmware: 'version',
    hostname: 'factory_hostname',
    // states and kinds
    state: 'enum',
    type: 'enum',
    link_state: 'enum',
  },
};

/**
 * Values that pass wherever they appear: the protocol's storage and folder names, which the drivers compare paths
 * against (PrusaLink's "/PrusaLink gcodes" display root, Buddy's `usb`).
 */
const SAFE_VALUES: ReadonlySet<string> = new Set(['usb', 'local', 'sdcard', 'USB', 'PrusaLink gcodes', 'SD Card']);

/** Path segments that belong to the protocols (API paths, storage roots, Bambu's internal 3mf layout). */
const SAFE_SEGMENTS: ReadonlySet<string> = new Set([
  '',
  '.',
  'api',
  'v1',
  'files',
  'file',
  'job',
  'status',
  'version',
  'info',
  'storage',
  'transfer',
  'printer',
  'thumb',
  's',
  'l',
  'pause',
  'resume',
  'continue',
  'usb',
  'local',
  'sdcard',
  'USB',
  'PrusaLink gcodes',
  'SD Card',
  'Metadata',
  'data',
  'mnt',
  'cache',
  'emmc',
  'device',
  'report',
  'request',
  'usr',
  'etc',
  'print',
  'model',
  'timelapse',
]);
const PLATE_FILE = /^plate_\d{1,3}\.gcode$/;
/** Numbers as path segments (`/api/v1/job/129/pause`); a number standing alone is judged as a value instead. */
const NUMERIC_SEGMENT = /^\d{1,12}$/;

const SAFE_SCHEMES: ReadonlySet<string> = new Set(['ftp', 'ftps', 'file', 'http', 'https', 'brtc', 'rtsp', 'rtsps']);
const SAFE_AUTHORITIES: ReadonlySet<string> = new Set(['', 'emmc', 'sdcard', 'usb']);

/** Extensions kept on file placeholders (at most two, as in `.gcode.3mf`); anything else is dropped with the name. */
const FILE_EXTENSIONS: ReadonlySet<string> = new Set([
  '3mf',
  'gcode',
  'bgcode',
  'bgc',
  'gco',
  'g',
  'stl',
  'step',
  'stp',
  'obj',
  'amf',
  'ply',
  'png',
  'jpg',
  'jpeg',
  'json',
  'txt',
  'zip',
  'bin',
]);

/** Job and task ids: equality matters to job tracking, the value does not; "no id" sentinels stay as they are. */
const ID_KEYS: ReadonlySet<string> = new Set([
  'task_id',
  'subtask_id',
  'job_id',
  'project_id',
  'profile_id',
  'design_id',
  'model_id',
  'lan_task_id',
]);
const ID_SENTINELS: ReadonlySet<string> = new Set(['', '0', '-1']);

/** Keys whose value is replaced whatever its type: addresses as numbers, network and camera settings. */
const DENIED_KEYS: ReadonlySet<string> = new Set([
  'ip',
  'mask',
  'gateway',
  'gw',
  'dns',
  'mac',
  'ssid',
  'bssid',
  'net',
  'ipcam',
  'rtsp_url',
]);

/** A small decimal number written as a string ("100", "0.4", "-1"): a measurement, too short to be a code. */
const SMALL_NUMBER = /^-?\d{1,6}(\.\d{1,6})?$/;
/** Object keys that are field names; anything else (a file name used as a key) is data. */
const FIELD_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,39}$/;

// Detectors for personal data inside values that otherwise look allow-listed.
const EMAIL = /[^\s@]@[^\s@]|@[A-Za-z0-9-]+\./;
const IPV4 = /(?<![\d.])(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?![\d.])/;
const IPV6 = /(?<![0-9A-Za-z:])[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Za-z:])/;
const MAC = /(?<![0-9A-Fa-f])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}(?![0-9A-Fa-f])/;
const URL_SCHEME = /[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const HOST = /(?<![A-Za-z0-9-])[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*\.[A-Za-z][A-Za-z0-9-]{1,62}(?![A-Za-z0-9-])/;

/** True when a value carries something that looks like an address, a URL or a host, wherever in it. */
export function looksPersonal(value: string): boolean {
  return (
    EMAIL.test(value) ||
    IPV4.test(value) ||
    MAC.test(value) ||
    URL_SCHEME.test(value) ||
    HOST.test(value) ||
    IPV6.test(value)
  );
}

/**
 * `str`: names and free text (one map, so a folder named in a path and in a listing gets one placeholder); `file`: file
 * names, with their extension appended; `id`: job and task ids; `host`: the authority of a URL.
 */
type PlaceholderKind = 'str' | 'file' | 'id' | 'host';

/** One capture's redaction: the same value always gets the same placeholder within it. */
export class Redactor {
  private readonly allowed: Readonly<Record<string, ValueShape>>;
  private readonly maps: Record<PlaceholderKind, Map<string, string>> = {
    str: new Map(),
    file: new Map(),
    id: new Map(),
    host: new Map(),
  };

  constructor(readonly protocol: CaptureProtocol) {
    this.allowed = ALLOWED[protocol];
  }

  /** A parsed JSON value with every string outside the allow-list replaced; never returns the input object itself. */
  value(input: unknown, key: string | null = null): unknown {
    if (input === null || typeof input === 'boolean') return input;
    if (typeof input === 'number') return key !== null && DENIED_KEYS.has(key) ? '<redacted>' : input;
    if (typeof input === 'string') return this.string(input, key);
    if (key !== null && DENIED_KEYS.has(key)) return '<redacted>';
    if (Array.isArray(input)) return input.map((item) => this.value(item, key));
    if (typeof input === 'object') {
      const out: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(input as Record<string, unknown>)) {
        const safeName = FIELD_NAME.test(name) ? name : this.freeText(name);
        out[safeName] = this.value(value, FIELD_NAME.test(name) ? name : null);
      }
      return out;
    }
    return '<redacted>';
  }

  /** One string value under `key` (null inside arrays of arrays or under a redacted key). */
  string(value: string, key: string | null): string {
    if (value === '') return value;
    if (key !== null) {
      if (DENIED_KEYS.has(key)) return '<redacted>';
      if (ID_KEYS.has(key)) return ID_SENTINELS.has(value) ? value : this.placeholder('id', value);
      const shape = this.allowed[key];
      if (shape && SHAPES[shape].test(value) && (shape === 'factory_hostname' || !looksPersonal(value))) return value;
    }
    if (SAFE_VALUES.has(value)) return value;
    if (SMALL_NUMBER.test(value)) return value;
    return this.freeText(value);
  }

  /** Text that is not allow-listed: a URL, a path or a file name keeps its structure; anything else is replaced. */
  freeText(value: string): string {
    if (value.length > 2048) return this.placeholder('str', value);
    const url = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(value);
    if (url) {
      const scheme = url[1]!.toLowerCase();
      if (!SAFE_SCHEMES.has(scheme)) return this.placeholder('str', value);
      const authority = SAFE_AUTHORITIES.has(url[2]!) ? url[2]! : this.placeholder('host', url[2]!.toLowerCase());
      // Query and fragment are dropped: they carry tokens more often than anything a replay needs.
      return `${scheme}://${authority}${this.path(url[3]!)}`;
    }
    // A path: absolute (display names have spaces: "/SD Card/BENCHY~1.GCO") or one word with slashes. A sentence
    // that happens to contain a slash is free text and replaced whole.
    if (value.includes('/') && (value.startsWith('/') || !/\s/.test(value))) return this.path(value);
    if (/\s/.test(value) && fileExtension(value) === null) return this.placeholder('str', value.toLowerCase());
    return this.segment(value);
  }

  /** A path, segment by segment: protocol segments stay, names become placeholders (the same name, the same one). */
  path(value: string): string {
    const query = value.indexOf('?');
    const path = query >= 0 ? value.slice(0, query) : value;
    const redacted = path
      .split('/')
      .map((segment) => {
        const decoded = decodeSegment(segment);
        return NUMERIC_SEGMENT.test(decoded) ? decoded : this.segment(decoded);
      })
      .join('/');
    if (query < 0) return redacted;
    const params = value
      .slice(query + 1)
      .split('&')
      .map((pair) => {
        const [name = '', ...rest] = pair.split('=');
        const safeName = FIELD_NAME.test(name) ? name : this.placeholder('str', name);
        return rest.length === 0 ? safeName : `${safeName}=${this.string(rest.join('='), safeName)}`;
      });
    return `${redacted}?${params.join('&')}`;
  }

  private segment(segment: string): string {
    if (SAFE_SEGMENTS.has(segment) || PLATE_FILE.test(segment)) return segment;
    const extension = fileExtension(segment);
    // Lower-cased: printer storage is FAT, where `BENCHY~1.GCO` and `benchy~1.gco` are one file.
    if (extension !== null) return `${this.placeholder('file', segment.toLowerCase())}${extension}`;
    return this.placeholder('str', segment.toLowerCase());
  }

  private placeholder(kind: PlaceholderKind, value: string): string {
    const map = this.maps[kind];
    let placeholder = map.get(value);
    if (placeholder === undefined) {
      placeholder = `<${kind}:${map.size + 1}>`;
      map.set(value, placeholder);
    }
    return placeholder;
  }

  /** A Bambu topic with the serial replaced: `device/<serial>/report`. */
  topic(topic: string): string {
    const match = /^device\/[^/]+\/(report|request)$/.exec(topic);
    return match ? `device/<serial>/${match[1]}` : this.path(topic);
  }

  /** A text body: JSON is redacted field by field; anything else is replaced whole, keeping only its length. */
  body(text: string): { json: unknown } | { text: string } {
    if (text.trim() === '') return { text: '' };
    try {
      return { json: this.value(JSON.parse(text)) };
    } catch {
      return { text: `<non-json:${Buffer.byteLength(text)} bytes>` };
    }
  }

  /** A short failure word from a driver ("timeout", "network ECONNREFUSED"); anything else is replaced. */
  failure(value: string): string {
    return /^[a-z_]{1,32}([ :][A-Z0-9_]{1,32})?$/.test(value) ? value : this.placeholder('str', value);
  }

  /** One raw traffic entry as a capture line body (without `t`). */
  traffic(entry: RawTraffic): RedactedTraffic {
    switch (entry.kind) {
      case 'mqtt': {
        const payload = this.body(entry.payload);
        return 'json' in payload
          ? { kind: 'mqtt', topic: this.topic(entry.topic), payload: payload.json }
          : { kind: 'mqtt', topic: this.topic(entry.topic), text: payload.text };
      }
      case 'http': {
        const line: RedactedTraffic = { kind: 'http', path: this.path(entry.path), status: entry.status };
        if (entry.body !== null) {
          const body = this.body(entry.body);
          if ('json' in body) line.body = body.json;
          else line.text = body.text;
        }
        if (entry.failure !== undefined) line.failure = this.failure(entry.failure);
        return line;
      }
      case 'link':
        return entry.reason === undefined
          ? { kind: 'link', up: entry.up }
          : { kind: 'link', up: entry.up, reason: entry.reason };
    }
  }
}

/** Traffic as written to a capture: redacted, JSON bodies as values, other bodies as a replacement text. */
export type RedactedTraffic =
  | { kind: 'mqtt'; topic: string; payload?: unknown; text?: string }
  | { kind: 'http'; path: string; status: number | null; body?: unknown; text?: string; failure?: string }
  | { kind: 'link'; up: boolean; reason?: DisconnectReason };

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `.3mf`, `.gcode.3mf`, `.BGC` (case kept): the known extensions at the end of a name, or null. */
function fileExtension(name: string): string | null {
  const parts = name.split('.');
  if (parts.length < 2) return null;
  const kept: string[] = [];
  for (let i = parts.length - 1; i >= 1 && kept.length < 2; i--) {
    const part = parts[i]!;
    if (!FILE_EXTENSIONS.has(part.toLowerCase())) break;
    kept.unshift(part);
  }
  // A name that is only an extension (".gcode") or that kept nothing is not a file name.
  if (kept.length === 0 || parts.slice(0, parts.length - kept.length).join('.') === '') return null;
  return `.${kept.join('.')}`;
}
