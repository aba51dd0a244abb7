/**
 * The usage-event contract (DESIGN.md "Usage events"): twelve event types and, for each, an allow-list of metadata
 * keys whose values are enums, bounded numbers or booleans. Nothing free-form can pass, so no name, path, serial,
 * host or message can ever reach the database through an event.
 */
import { z } from 'zod';

export const EVENT_TYPES = [
  'app_start',
  'app_shutdown',
  'job_created',
  'job_completed',
  'job_failed',
  'file_downloaded',
  'file_uploaded',
  'printer_connected',
  'printer_disconnected',
  'error_occurred',
  'feature_enabled',
  'feature_disabled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const PRINTER_TYPES = ['bambu_lab', 'prusa'] as const;
export type PrinterType = (typeof PRINTER_TYPES)[number];

export const PRINTER_MODELS = [
  'X1C',
  'X1E',
  'X1',
  'P1P',
  'P1S',
  'P2S',
  'A1',
  'A1 mini',
  'H2D',
  'H2S',
  'H2C',
  'X2D',
  'A2L',
  'MK4',
  'MK4S',
  'MK3.9',
  'MK3.9S',
  'MK3.5',
  'MK3.5S',
  'MK3S',
  'MK3',
  'MK2.5',
  'MK2.5S',
  'MINI',
  'XL',
  'CORE One',
  'CORE One L',
  'other',
] as const;
export type PrinterModel = (typeof PRINTER_MODELS)[number];

export const DEPLOYMENT_MODES = ['homeassistant', 'docker', 'standalone'] as const;
export type DeploymentMode = (typeof DEPLOYMENT_MODES)[number];

export const FAILURE_TYPES = ['failed', 'cancelled', 'error'] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

export const FILE_TYPES = ['3mf', 'gcode', 'bgcode', 'stl', 'other'] as const;
export type FileType = (typeof FILE_TYPES)[number];

export const CONNECTION_KINDS = ['mqtt', 'http'] as const;
export const DISCONNECT_REASONS = ['timeout', 'closed', 'auth', 'network', 'error'] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

export const COMPONENTS = ['bambu_mqtt', 'prusalink', 'submission', 'database', 'api', 'mqtt_publish'] as const;
export type Component = (typeof COMPONENTS)[number];

export const FEATURES = ['usage_statistics', 'mqtt_publish', 'ha_discovery', 'api_token'] as const;
export type Feature = (typeof FEATURES)[number];

/** The fixed list of error slugs; printer error codes are added as hex-only slugs (see ERROR_CODE_SLUG). */
export const ERROR_TYPES = [
  'auth_failed',
  'connection_failed',
  'tls_failed',
  'timeout',
  'report_unparseable',
  'response_unparseable',
  'http_error',
  'submission_rejected',
  'submission_failed',
  'remote_delete_failed',
  'database_full',
  'database_error',
  'broker_unavailable',
  'publish_failed',
  'print_error',
  'internal_error',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

/**
 * Printer-reported codes become slugs made only of hex digits, e.g. `hms_0300_0100` (HMS module/category) or
 * `print_error_0300_400c`: they identify a class of fault and cannot carry personal data.
 */
export const ERROR_CODE_SLUG = /^(hms|print_error)_[0-9a-f]{4}_[0-9a-f]{4}$/;

const errorType = z.union([z.enum(ERROR_TYPES), z.string().regex(ERROR_CODE_SLUG)]);
const count = z.number().int().min(0).max(1e12);
const seconds = z
  .number()
  .int()
  .min(0)
  .max(10 * 365 * 24 * 3600);
const printerFields = { printer_type: z.enum(PRINTER_TYPES), printer_model: z.enum(PRINTER_MODELS) };

/** Version strings are constrained to dotted numbers so nothing else can hide in them. */
const version = z.string().regex(/^v?\d{1,4}(\.\d{1,6}){0,3}([-+][0-9A-Za-z.]{1,20})?$/);

export const METADATA_SCHEMAS = {
  app_start: {
    app_version: version,
    deployment_mode: z.enum(DEPLOYMENT_MODES),
    platform: z.enum(['linux', 'darwin', 'win32', 'freebsd', 'openbsd', 'other']),
    arch: z.enum(['x64', 'arm64', 'arm', 'ia32', 'other']),
    runtime_version: version,
  },
  app_shutdown: { uptime_seconds: seconds },
  job_created: { ...printerFields },
  job_completed: { ...printerFields, duration_seconds: seconds },
  job_failed: { ...printerFields, duration_seconds: seconds, failure_type: z.enum(FAILURE_TYPES) },
  file_uploaded: { printer_type: z.enum(PRINTER_TYPES), file_type: z.enum(FILE_TYPES), size_bytes: count },
  file_downloaded: { printer_type: z.enum(PRINTER_TYPES), file_type: z.enum(FILE_TYPES), size_bytes: count },
  printer_connected: { ...printerFields, connection: z.enum(CONNECTION_KINDS) },
  printer_disconnected: { ...printerFields, reason: z.enum(DISCONNECT_REASONS), connected_seconds: seconds },
  error_occurred: { error_type: errorType, component: z.enum(COMPONENTS), printer_type: z.enum(PRINTER_TYPES) },
  feature_enabled: { feature: z.enum(FEATURES) },
  feature_disabled: { feature: z.enum(FEATURES) },
} satisfies Record<EventType, Record<string, z.ZodType>>;

export type MetadataValue = string | number | boolean;
export type EventMetadata = Record<string, MetadataValue>;

type MetadataSchemas = typeof METADATA_SCHEMAS;

/**
 * The metadata an event of type T may carry, from its allow-list: a misspelt or disallowed key, or a value of the
 * wrong kind, is a compile error where the event is recorded. Every key is optional (a job running at the baseline
 * has no duration); the schemas still check values at run time.
 */
export type MetadataFor<T extends EventType> = {
  [K in keyof MetadataSchemas[T]]?: MetadataSchemas[T][K] extends z.ZodType ? z.output<MetadataSchemas[T][K]> : never;
};

export interface UsageEvent {
  id: string;
  event_type: EventType;
  timestamp: string;
  metadata: EventMetadata;
  submitted: boolean;
  submitted_at: string | null;
}

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

export interface SanitizedMetadata {
  metadata: EventMetadata;
  /** Keys that were removed, either not allow-listed or with a value that failed its schema. */
  dropped: string[];
}

/**
 * Keep only allow-listed keys whose values pass their schema. Works key by key so one bad value does not cost the
 * good ones; never throws, whatever `input` is.
 */
export function sanitizeMetadata(eventType: EventType, input: unknown): SanitizedMetadata {
  const allowed: Record<string, z.ZodType> = METADATA_SCHEMAS[eventType];
  const metadata: EventMetadata = {};
  const dropped: string[] = [];
  if (input === null || input === undefined) return { metadata, dropped };
  if (typeof input !== 'object' || Array.isArray(input)) return { metadata, dropped: ['<not an object>'] };
  try {
    for (const [key, value] of Object.entries(input)) {
      const schema = Object.hasOwn(allowed, key) ? allowed[key] : undefined;
      const parsed = schema?.safeParse(value);
      if (parsed?.success) metadata[key] = parsed.data as MetadataValue;
      else dropped.push(key);
    }
  } catch {
    // An object that throws when read (a getter, a Proxy): keep nothing from it.
    return { metadata: {}, dropped: ['<unreadable>'] };
  }
  return { metadata, dropped };
}

/** Map a file name or extension to the allow-listed file type without keeping the name. */
export function fileTypeOf(fileName: string | null | undefined): FileType {
  const lower = (fileName ?? '').toLowerCase();
  if (lower.endsWith('.3mf')) return '3mf';
  if (lower.endsWith('.bgcode') || lower.endsWith('.bgc')) return 'bgcode';
  if (lower.endsWith('.gcode') || lower.endsWith('.gco') || lower.endsWith('.g')) return 'gcode';
  if (lower.endsWith('.stl')) return 'stl';
  return 'other';
}
