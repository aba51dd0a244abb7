/**
 * The daemon's configuration: one zod schema is the single truth (STYLE.md). The file has the shape of the add-on's
 * /data/options.json; defaults < config file < environment < command-line flags.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'notice', 'warning', 'warn', 'error', 'fatal'] as const;

/** Home Assistant writes unset optional strings as "" in options.json; treat them as absent. */
const optionalText = z.preprocess((v) => (v === '' || v === null ? undefined : v), z.string().min(1).optional());

const printerName = z.string().trim().min(1, 'must not be empty').max(64, 'at most 64 characters');
const host = z.string().trim().min(1, 'must not be empty').max(255);

const timezone = z.string().refine(isValidTimezone, 'is not an IANA time zone such as Europe/Berlin');

export const bambuPrinterSchema = z.strictObject({
  name: printerName,
  type: z.literal('bambu_lab'),
  host,
  port: z.number().int().min(1).max(65535).default(8883),
  serial: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9-]{4,32}$/, 'must be the printer serial (letters and digits)'),
  access_code: z.string().trim().min(1, 'must not be empty').max(64),
  tls: z.boolean().default(true),
  verify_certificate: z.boolean().default(false),
});

export const prusaPrinterSchema = z
  .strictObject({
    name: printerName,
    type: z.literal('prusa'),
    host,
    username: z.preprocess((v) => (v === '' || v === null ? undefined : v), z.string().min(1).default('maker')),
    password: optionalText,
    api_key: optionalText,
    poll_interval_s: z.number().int().min(1).max(3600).default(30),
  })
  .refine((p) => p.password !== undefined || p.api_key !== undefined, {
    message: 'needs a password or an api_key',
    path: ['password'],
  });

export const printerSchema = z.discriminatedUnion('type', [bambuPrinterSchema, prusaPrinterSchema]);

export const usageStatisticsSchema = z.strictObject({
  endpoint: z.preprocess(
    (v) => (v === '' || v === null ? undefined : v),
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  ),
  schedule: optionalText,
  retention_days: z.number().int().min(1).max(3650).default(365),
});

export const mqttSchema = z.strictObject({
  enabled: z.boolean().default(false),
  url: z.preprocess(
    (v) => (v === '' || v === null ? undefined : v),
    z
      .string()
      .regex(/^(mqtts?|wss?|tcp|ssl):\/\/.+/, 'must be a broker URL like mqtt://host:1883')
      .optional(),
  ),
  username: optionalText,
  password: optionalText,
  base_topic: z
    .string()
    .regex(/^[A-Za-z0-9_\-/]+$/, 'letters, digits, _ - / only')
    .default('printernizer'),
  discovery: z.boolean().default(true),
  discovery_prefix: z
    .string()
    .regex(/^[A-Za-z0-9_\-/]+$/, 'letters, digits, _ - / only')
    .default('homeassistant'),
});

export const configSchema = z
  .strictObject({
    log_level: z.enum(LOG_LEVELS).default('info'),
    timezone: z.preprocess((v) => (v === '' || v === null ? undefined : v), timezone.optional()),
    printers: z.array(printerSchema).default([]),
    usage_statistics: usageStatisticsSchema.default({ retention_days: 365 }),
    mqtt: mqttSchema.default({
      enabled: false,
      base_topic: 'printernizer',
      discovery: true,
      discovery_prefix: 'homeassistant',
    }),
    api_token: optionalText,
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.printers.forEach((printer, index) => {
      const key = printer.name.toLowerCase();
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['printers', index, 'name'],
          message: `duplicates printers[${first}].name; printer names must be unique`,
        });
      } else seen.set(key, index);
    });
  });

export type Config = z.infer<typeof configSchema>;
export type PrinterConfig = z.infer<typeof printerSchema>;
export type BambuPrinterConfig = z.infer<typeof bambuPrinterSchema>;
export type PrusaPrinterConfig = z.infer<typeof prusaPrinterSchema>;
export type MqttConfig = z.infer<typeof mqttSchema>;

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

export function parseConfig(input: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys
        .map((key) => `${formatPath([...issue.path, key])}: unknown key (not a setting of this version)`)
        .join('\n  ');
    }
    if (issue.code === 'invalid_union' && issue.path.at(-1) === 'type') {
      return `${formatPath(issue.path)}: must be "bambu_lab" or "prusa"`;
    }
    return `${formatPath(issue.path)}: ${issue.message}`;
  });
  throw new ConfigError(source, problems);
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
