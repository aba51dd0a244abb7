/**
 * The submission payload (DESIGN.md "Submission and collector"), validated strictly: every object rejects unknown
 * keys, every count is a bounded non-negative integer, every string is an enum, a UUID, an ISO UTC timestamp or a
 * constrained version, so nothing free-form (a host name, an e-mail, a path) can ever reach the collector's storage.
 *
 * Shared with the daemon: its preview tests parse what it would submit with `submissionSchema`.
 */
import ct from 'countries-and-timezones';
import { z } from 'zod';
import { PAYLOAD_SCHEMA_VERSION } from '../stats/aggregate.js';
import {
  DEPLOYMENT_MODES,
  ERROR_CODE_SLUG,
  ERROR_TYPES,
  FEATURES,
  PRINTER_MODELS,
  PRINTER_TYPES,
} from '../stats/events.js';

export { PAYLOAD_SCHEMA_VERSION };
/** A client clock may run this far ahead of ours before its timestamps count as "in the future". */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
export const MAX_PERIOD_DAYS = 31;
const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * `duration_days` may be rounded, floored or ceiled by the client (Printernizer uses whole days, the daemon may use
 * fractions), so it must agree with end - start to within one day.
 */
const DURATION_TOLERANCE_DAYS = 1;

/** ISO 3166-1 alpha-2 codes, from the same package the daemon uses to derive the country from its time zone. */
export const COUNTRY_CODES: ReadonlySet<string> = new Set(Object.keys(ct.getAllCountries()));

export const PLATFORMS = ['linux', 'darwin', 'win32', 'freebsd', 'openbsd', 'other'] as const;

const MAX_PRINTERS = 1_000;
/** Generous per-period ceilings: far above any real fleet, low enough that one installation cannot skew the sums. */
const MAX_JOBS = 100_000;
const MAX_FILES = 1_000_000;
const MAX_HOURS = MAX_PRINTERS * 24 * (MAX_PERIOD_DAYS + 1);
const MAX_ERROR_KINDS = 200;

const printerCount = z.number().int().min(0).max(MAX_PRINTERS);
const jobCount = z.number().int().min(0).max(MAX_JOBS);
const fileCount = z.number().int().min(0).max(MAX_FILES);
const hours = z.number().min(0).max(MAX_HOURS);
const timestamp = z.iso.datetime({ offset: false, local: false });
/** Dotted numbers with an optional short pre-release/build tag, like events.ts: nothing else can hide in them. */
const version = z.string().regex(/^v?\d{1,4}(\.\d{1,6}){0,3}([-+][0-9A-Za-z.]{1,20})?$/, 'Expected a version');
const countryCode = z
  .string()
  .refine((code) => COUNTRY_CODES.has(code), 'Expected an ISO 3166-1 alpha-2 country code (upper case) or null')
  .nullable();
const errorSlug = z.union([z.enum(ERROR_TYPES), z.string().regex(ERROR_CODE_SLUG)]);

/** Stored and compared in lower case, so DELETE /v1/installations/<id> finds it however it was written. */
const uuid = z.uuid().toLowerCase();

const installation = z.strictObject({
  installation_id: uuid,
  first_seen: timestamp,
  app_version: version,
  runtime_version: version,
  platform: z.enum(PLATFORMS),
  deployment_mode: z.enum(DEPLOYMENT_MODES),
  country_code: countryCode,
});

const period = z
  .strictObject({
    start: timestamp,
    end: timestamp,
    duration_days: z.number().gt(0).max(MAX_PERIOD_DAYS),
  })
  .superRefine((p, ctx) => {
    const lengthMs = Date.parse(p.end) - Date.parse(p.start);
    if (!(lengthMs > 0)) {
      ctx.addIssue({ code: 'custom', path: ['end'], message: 'Period end must be after its start' });
      return;
    }
    if (lengthMs > MAX_PERIOD_DAYS * DAY_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['end'],
        message: `Period must not be longer than ${MAX_PERIOD_DAYS} days`,
      });
    }
    if (Math.abs(lengthMs / DAY_MS - p.duration_days) > DURATION_TOLERANCE_DAYS) {
      ctx.addIssue({ code: 'custom', path: ['duration_days'], message: 'duration_days does not match start and end' });
    }
  });

const printerFleet = z.strictObject({
  printer_count: printerCount,
  printer_types: z
    .array(z.enum(PRINTER_TYPES))
    .max(PRINTER_TYPES.length)
    .refine((types) => new Set(types).size === types.length, 'Printer types must be unique'),
  printer_type_counts: z.partialRecord(z.enum(PRINTER_TYPES), printerCount),
  printer_model_counts: z.partialRecord(z.enum(PRINTER_MODELS), printerCount),
});

const usageStats = z
  .strictObject({
    job_count: jobCount,
    job_completed_count: jobCount,
    job_failed_count: jobCount,
    job_cancelled_count: jobCount,
    print_hours: hours,
    file_count: fileCount,
    upload_count: fileCount,
    uptime_hours: hours,
    feature_usage: z.partialRecord(z.enum(FEATURES), z.boolean()),
  })
  .superRefine((u, ctx) => {
    // DESIGN.md: job_failed_count counts every failed job, cancelled ones included.
    if (u.job_cancelled_count > u.job_failed_count) {
      ctx.addIssue({
        code: 'custom',
        path: ['job_cancelled_count'],
        message: 'job_cancelled_count must not exceed job_failed_count (failed includes cancelled)',
      });
    }
  });

const errorSummary = z
  .record(errorSlug, jobCount)
  .refine((summary) => Object.keys(summary).length <= MAX_ERROR_KINDS, `At most ${MAX_ERROR_KINDS} error kinds`);

export interface SubmissionSchemaOptions {
  /** The collector's clock, in ms since the epoch; timestamps later than now + skew are rejected. */
  now?: () => number;
  maxClockSkewMs?: number;
}

/** Builds the payload schema against a clock, so "not in the future" is testable with a fake one. */
export function createSubmissionSchema(options: SubmissionSchemaOptions = {}) {
  const now = options.now ?? Date.now;
  const skew = options.maxClockSkewMs ?? MAX_CLOCK_SKEW_MS;
  return z
    .strictObject({
      schema_version: z.literal(PAYLOAD_SCHEMA_VERSION),
      submission_id: uuid,
      submission_timestamp: timestamp,
      installation,
      period,
      printer_fleet: printerFleet,
      usage_stats: usageStats,
      error_summary: errorSummary,
    })
    .superRefine((s, ctx) => {
      const latest = now() + skew;
      const future = (path: (string | number)[], value: string, what: string) => {
        if (Date.parse(value) > latest) ctx.addIssue({ code: 'custom', path, message: `${what} is in the future` });
      };
      future(['submission_timestamp'], s.submission_timestamp, 'submission_timestamp');
      future(['installation', 'first_seen'], s.installation.first_seen, 'first_seen');
      future(['period', 'end'], s.period.end, 'Period end');
      if (Date.parse(s.period.end) > Date.parse(s.submission_timestamp) + skew) {
        ctx.addIssue({
          code: 'custom',
          path: ['period', 'end'],
          message: 'Period ends after the submission timestamp',
        });
      }
    });
}

/** The schema against the real clock: what the daemon's preview must satisfy. */
export const submissionSchema = createSubmissionSchema();
export type SubmissionPayload = z.infer<typeof submissionSchema>;

export interface PayloadIssue {
  /** Dotted field path, e.g. `installation.country_code` or `usage_stats.hostname` for an unknown key. */
  path: string;
  message: string;
}

/**
 * Flattens zod issues to `{ path, message }`; an unknown key is reported at its own path (zod reports it at the
 * parent), so the client sees exactly which field to remove.
 */
export function payloadIssues(error: z.ZodError): PayloadIssue[] {
  const out: PayloadIssue[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...base, key].join('.'), message: 'Unknown field' });
    } else if (issue.code === 'invalid_key') {
      out.push({ path: base.join('.'), message: 'Unknown field' });
    } else {
      out.push({ path: base.join('.') || '(root)', message: issue.message });
    }
  }
  return out;
}
