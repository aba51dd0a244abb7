/**
 * The daemon's configuration: one zod schema is the single truth (STYLE.md). The file has the shape of the add-on's
 * /data/options.json; defaults < config file < environment < command-line flags.
 *
 * Each printer is validated on its own (issue 13): a printer the daemon cannot use is left out of `printers` and
 * listed in `rejected_printers` with the reason, and the daemon starts with the others. The add-on's form cannot
 * express rules between fields (Bambu Lab keys on a Prusa printer, a URL as a Bambu Lab host), so one such mistake
 * must not stop every printer; the panel and GET /api/v1/printers show it instead. The rest of the config still
 * fails fast: the add-on's schema refuses those mistakes when the user saves (tests/addon/schema-options.test.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import type { PrinterSnapshot } from './printers/types.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'notice', 'warning', 'warn', 'error', 'fatal'] as const;

/** Home Assistant leaves unset optional options out of options.json, or writes them as ""; both mean "not set". */
const unset = (v: unknown) => (v === '' || v === null ? undefined : v);
const optionalText = z.preprocess(unset, z.string().min(1).optional());

/** Required fields say so plainly instead of zod's "expected string, received undefined". */
const required = (what: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? `is required ${what}` : undefined),
});

const MAX_NAME = 64;
// Counted in code points, as the Supervisor's str/match validators (Python len) count them.
const printerName = z
  .string(required('(a unique name for the panel)'))
  .trim()
  .min(1, 'must not be empty')
  .refine((name) => [...name].length <= MAX_NAME, `at most ${MAX_NAME} characters`);

// A host name or IPv4 address, or an IPv6 address (two colons or more); one colon would be a port, which has its own key.
const BAMBU_HOST = /^(?:[^\s/:]+|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$/;
const bambuHost = z
  .string(required('(the printer’s IP address)'))
  .trim()
  .min(1, 'must not be empty')
  .max(255)
  .regex(BAMBU_HOST, 'a Bambu Lab printer is reached by its IP address or host name only (no http://, port or path)');

/** What the PrusaLink client accepts: a bare host (with port and path prefix) or an http(s) URL. */
function isPrusaLinkHost(host: string): boolean {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? host : `http://${host}`;
  try {
    const url = new URL(withScheme);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const prusaHost = z
  .string(required('(the printer’s IP address or URL)'))
  .trim()
  .min(1, 'must not be empty')
  .max(255)
  .refine(isPrusaLinkHost, 'must be an IP address, a host name or an http(s):// URL');

const timezone = z.string().refine(isValidTimezone, 'is not an IANA time zone such as Europe/Berlin');

export const bambuPrinterSchema = z.strictObject({
  name: printerName,
  type: z.literal('bambu_lab'),
  host: bambuHost,
  port: z.number().int().min(1).max(65535).default(8883),
  serial: z
    .string(required('(from the printer’s screen or Bambu Studio)'))
    .trim()
    .regex(/^[A-Za-z0-9-]{4,32}$/, 'must be the printer serial (letters and digits)'),
  access_code: z
    .string(required('(the LAN access code from the printer’s network settings)'))
    .trim()
    .min(1, 'must not be empty')
    .max(64),
  tls: z.boolean().default(true),
  verify_certificate: z.boolean().default(false),
});

export const prusaPrinterSchema = z
  .strictObject({
    name: printerName,
    type: z.literal('prusa'),
    host: prusaHost,
    username: z.preprocess(unset, z.string().min(1).default('maker')),
    password: optionalText,
    api_key: optionalText,
    poll_interval_s: z.number().int().min(1).max(3600).default(30),
  })
  .refine((p) => p.password !== undefined || p.api_key !== undefined, {
    message: 'needs a password or an api_key',
    path: ['password'],
    // Also when another field is wrong, so that one look at the problem shows everything to fix.
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  });

export const printerSchema = z.discriminatedUnion('type', [bambuPrinterSchema, prusaPrinterSchema]);

export const usageStatisticsSchema = z.strictObject({
  endpoint: z.preprocess(unset, z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  schedule: optionalText,
  retention_days: z.number().int().min(1).max(3650).default(365),
});

export const mqttSchema = z.strictObject({
  enabled: z.boolean().default(false),
  url: z.preprocess(
    unset,
    z
      .string()
      .regex(/^(mqtts?|wss?|tcp|ssl):\/\/.+/, 'must be a broker URL like mqtt://host:1883')
      .optional(),
  ),
  username: optionalText,
  password: optionalText,
  base_topic: z.preprocess(
    unset,
    z
      .string()
      .regex(/^[A-Za-z0-9_\-/]+$/, 'letters, digits, _ - / only')
      .default('printernizer'),
  ),
  discovery: z.boolean().default(true),
  discovery_prefix: z.preprocess(
    unset,
    z
      .string()
      .regex(/^[A-Za-z0-9_\-/]+$/, 'letters, digits, _ - / only')
      .default('homeassistant'),
  ),
});

/**
 * The top level. `printers` is only checked to be a list here: each printer is validated on its own by
 * validatePrinters, so that one bad printer cannot stop the others.
 */
export const configSchema = z.strictObject({
  log_level: z.enum(LOG_LEVELS).default('info'),
  timezone: z.preprocess(unset, timezone.optional()),
  printers: z.array(z.unknown()).default([]),
  usage_statistics: usageStatisticsSchema.default({ retention_days: 365 }),
  mqtt: mqttSchema.default({
    enabled: false,
    base_topic: 'printernizer',
    discovery: true,
    discovery_prefix: 'homeassistant',
  }),
  api_token: optionalText,
});

export type PrinterConfig = z.infer<typeof printerSchema>;
export type BambuPrinterConfig = z.infer<typeof bambuPrinterSchema>;
export type PrusaPrinterConfig = z.infer<typeof prusaPrinterSchema>;
export type MqttConfig = z.infer<typeof mqttSchema>;

/** A configured printer the daemon left out, and why (field names and reasons only: never a value). */
export interface RejectedPrinter {
  /** Where it is in the configured `printers` list (0-based). */
  index: number;
  /** As configured (trimmed, shortened), or "Printer N" when it has none. */
  name: string;
  /** "bambu_lab", "prusa", or what was configured instead (shortened). */
  type: string;
  problem: string;
}

export type Config = Omit<z.infer<typeof configSchema>, 'printers'> & {
  printers: PrinterConfig[];
  rejected_printers: RejectedPrinter[];
};

/** A config problem a person can fix: one line per issue, "path: reason". */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: invalid configuration\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}

const BAMBU_ONLY = ['port', 'serial', 'access_code', 'tls', 'verify_certificate'] as const;
const PRUSA_ONLY = ['username', 'password', 'api_key', 'poll_interval_s'] as const;
const TYPE_LABEL = { bambu_lab: 'Bambu Lab', prusa: 'Prusa' } as const;

/** Keeps what a person typed readable in the panel without letting a long value through. */
function shorten(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** A problem with the field it concerns (a path inside the thing checked; empty for the thing itself). */
interface Problem {
  path: readonly PropertyKey[];
  message: string;
}

function problemsOf(issues: readonly z.core.$ZodIssue[]): Problem[] {
  return issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({
          path: [...issue.path, shorten(key, 40)],
          message: 'unknown key (not a setting of this version)',
        }))
      : [{ path: issue.path, message: issue.message }],
  );
}

const line = (prefix: readonly PropertyKey[], problem: Problem) =>
  `${formatPath([...prefix, ...problem.path])}: ${problem.message}`;

type PrinterCheck = { ok: true; printer: PrinterConfig } | { ok: false; rejected: RejectedPrinter; problems: string[] };

/** One printer: the usable config, or why not (problems carry the `printers[i].` path for the start-up error). */
function validatePrinter(raw: unknown, index: number): PrinterCheck {
  const at: PropertyKey[] = ['printers', index];
  const reject = (entry: Record<string, unknown>, problems: Problem[]): PrinterCheck => {
    const name = typeof entry.name === 'string' && entry.name.trim() ? entry.name.trim() : `Printer ${index + 1}`;
    const type = typeof entry.type === 'string' ? shorten(entry.type, 32) : '';
    const problem = problems.map((p) => (p.path.length ? line([], p) : p.message)).join('; ');
    return {
      ok: false,
      rejected: { index, name: shorten(name, MAX_NAME), type, problem },
      problems: problems.map((p) => line(at, p)),
    };
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return reject({}, [{ path: [], message: 'must be a printer (name, type, host and its login)' }]);
  }
  // "" and null are how Home Assistant writes an option the user cleared.
  const entry: Record<string, unknown> = Object.fromEntries(
    Object.entries(raw).filter(([, value]) => value !== '' && value !== null),
  );
  const type = entry.type;
  if (type !== 'bambu_lab' && type !== 'prusa') {
    const message = type === undefined ? 'is required (bambu_lab or prusa)' : 'must be "bambu_lab" or "prusa"';
    return reject(entry, [{ path: ['type'], message }]);
  }
  // Keys of the other printer type: the add-on form shows every key for every printer, so this is the likely mistake.
  const foreign: string[] = (type === 'prusa' ? BAMBU_ONLY : PRUSA_ONLY).filter((key) => key in entry);
  const own = Object.fromEntries(Object.entries(entry).filter(([key]) => !foreign.includes(key)));
  const problems: Problem[] = [];
  if (foreign.length > 0) {
    const other = TYPE_LABEL[type === 'prusa' ? 'bambu_lab' : 'prusa'];
    const what = foreign.length === 1 ? `is a ${other} setting` : `are ${other} settings`;
    const them = foreign.length === 1 ? 'it' : 'them';
    problems.push({
      path: [],
      message: `${foreign.join(', ')} ${what}, not for a ${TYPE_LABEL[type]} printer (remove ${them})`,
    });
  }
  const result = (type === 'bambu_lab' ? bambuPrinterSchema : prusaPrinterSchema).safeParse(own);
  if (!result.success) problems.push(...problemsOf(result.error.issues));
  if (problems.length > 0 || !result.success) return reject(entry, problems);
  return { ok: true, printer: result.data };
}

/** Every printer on its own; a second printer with a name already used (any case) is left out too. */
export function validatePrinters(raw: readonly unknown[]): {
  printers: PrinterConfig[];
  rejected: RejectedPrinter[];
  problems: string[];
} {
  const printers: PrinterConfig[] = [];
  const rejected: RejectedPrinter[] = [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item, index) => {
    const check = validatePrinter(item, index);
    if (!check.ok) {
      rejected.push(check.rejected);
      problems.push(...check.problems);
      return;
    }
    const key = check.printer.name.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      const problem = `duplicates printers[${first}].name; printer names must be unique`;
      rejected.push({ index, name: check.printer.name, type: check.printer.type, problem: `name: ${problem}` });
      problems.push(`printers[${index}].name: ${problem}`);
      return;
    }
    seen.set(key, index);
    printers.push(check.printer);
  });
  return { printers, rejected, problems };
}

/**
 * Validates a config. Problems outside `printers` throw a ConfigError (listing the printers' problems too, so one
 * run shows everything to fix); a bad printer alone does not: it goes to `rejected_printers`.
 */
export function parseConfig(input: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(input ?? {});
  const rawPrinters = (input as { printers?: unknown } | null)?.printers;
  const checked = validatePrinters(Array.isArray(rawPrinters) ? rawPrinters : []);
  if (result.success) {
    return { ...result.data, printers: checked.printers, rejected_printers: checked.rejected };
  }
  throw new ConfigError(source, [...problemsOf(result.error.issues).map((p) => line([], p)), ...checked.problems]);
}

/** Rejected printers as entries of GET /api/v1/printers: never online, the reason in `problem`. */
export function rejectedPrinterSnapshots(
  rejected: readonly RejectedPrinter[],
): (PrinterSnapshot & { rejected: true })[] {
  return rejected.map((printer) => ({
    // Configured ids are slugs of [a-z0-9_]; the hyphen keeps these apart from them.
    id: `rejected-${printer.index}`,
    name: printer.name,
    // As configured, possibly not a known type: the panel shows it as it is.
    type: printer.type as PrinterSnapshot['type'],
    model: 'other',
    online: false,
    state: null,
    progress: null,
    remaining_minutes: null,
    last_seen: null,
    problem: `Not started: ${printer.problem}`,
    rejected: true,
  }));
}

/** Read and validate a JSON config file; a missing path means "all defaults". */
export function loadConfigFile(path: string | undefined): Config {
  if (!path) return parseConfig({});
  if (!existsSync(path)) throw new ConfigError(path, ['(file): does not exist']);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`(file): cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let json: unknown;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, [`(file): is not valid JSON (${(error as Error).message})`]);
  }
  return parseConfig(json, path);
}

export function isValidTimezone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Secrets replaced by a marker, for printing a config (`status`, logs). */
export function redactConfig(config: Config): unknown {
  return {
    ...config,
    api_token: config.api_token ? '[redacted]' : undefined,
    printers: config.printers.map((p) =>
      p.type === 'bambu_lab'
        ? { ...p, access_code: '[redacted]', serial: '[redacted]' }
        : { ...p, password: p.password ? '[redacted]' : undefined, api_key: p.api_key ? '[redacted]' : undefined },
    ),
    mqtt: { ...config.mqtt, password: config.mqtt.password ? '[redacted]' : undefined },
  };
}
