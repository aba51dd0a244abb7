/**
 * The collector's payload validator under arbitrary input and under valid payloads mutated at random paths: it never
 * throws, and whatever it accepts conforms to the AggregatedStats contract, checked here by an independent checker
 * (exact key sets, enums, bounded counts, a UUID, a country code, ordered timestamps). Issues always carry a path.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COUNTRY_CODES, createSubmissionSchema, PLATFORMS, payloadIssues } from '../../src/collector/payload.js';
import {
  DEPLOYMENT_MODES,
  ERROR_CODE_SLUG,
  ERROR_TYPES,
  FEATURES,
  PRINTER_MODELS,
  PRINTER_TYPES,
} from '../../src/stats/events.js';
import { makePayload, T0 } from '../collector/helpers.js';
import { anyValue, jsonValue, mutated, RUNS } from './arbitraries.js';

const schema = createSubmissionSchema({ now: () => T0 });
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VERSION = /^v?\d{1,4}(\.\d{1,6}){0,3}([-+][0-9A-Za-z.]{1,20})?$/;

type Obj = Record<string, unknown>;
const keysAre = (o: unknown, keys: string[]) => {
  expect(o !== null && typeof o === 'object' && !Array.isArray(o)).toBe(true);
  expect(Object.keys(o as Obj).sort()).toEqual([...keys].sort());
};
const keysWithin = (o: unknown, allowed: readonly string[]) => {
  for (const k of Object.keys(o as Obj)) expect(allowed).toContain(k);
};
const count = (v: unknown) => expect(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0).toBe(true);
const finiteNonNegative = (v: unknown) => expect(typeof v === 'number' && Number.isFinite(v) && v >= 0).toBe(true);

function conforms(p: Obj): void {
  keysAre(p, [
    'schema_version',
    'submission_id',
    'submission_timestamp',
    'installation',
    'period',
    'printer_fleet',
    'usage_stats',
    'error_summary',
  ]);
  expect(p.schema_version).toBe(1);
  expect(p.submission_id).toMatch(UUID);
  expect(p.submission_timestamp).toMatch(ISO);
  const inst = p.installation as Obj;
  keysAre(inst, [
    'installation_id',
    'first_seen',
    'app_version',
    'runtime_version',
    'platform',
    'deployment_mode',
    'country_code',
  ]);
  expect(inst.installation_id).toMatch(UUID);
  expect(inst.first_seen).toMatch(ISO);
  expect(inst.app_version).toMatch(VERSION);
  expect(inst.runtime_version).toMatch(VERSION);
  expect(PLATFORMS).toContain(inst.platform);
  expect(DEPLOYMENT_MODES).toContain(inst.deployment_mode);
  expect(inst.country_code === null || COUNTRY_CODES.has(inst.country_code as string)).toBe(true);
  const period = p.period as Obj;
  keysAre(period, ['start', 'end', 'duration_days']);
  expect(period.start).toMatch(ISO);
  expect(period.end).toMatch(ISO);
  expect(Date.parse(period.end as string)).toBeGreaterThan(Date.parse(period.start as string));
  expect(Date.parse(period.end as string) - Date.parse(period.start as string)).toBeLessThanOrEqual(31 * 86_400_000);
  finiteNonNegative(period.duration_days);
  const fleet = p.printer_fleet as Obj;
  keysAre(fleet, ['printer_count', 'printer_types', 'printer_type_counts', 'printer_model_counts']);
  count(fleet.printer_count);
  for (const t of fleet.printer_types as unknown[]) expect(PRINTER_TYPES).toContain(t);
  keysWithin(fleet.printer_type_counts, PRINTER_TYPES);
  keysWithin(fleet.printer_model_counts, PRINTER_MODELS);
  for (const v of Object.values(fleet.printer_type_counts as Obj)) count(v);
  for (const v of Object.values(fleet.printer_model_counts as Obj)) count(v);
  const usage = p.usage_stats as Obj;
  keysAre(usage, [
    'job_count',
    'job_completed_count',
    'job_failed_count',
    'job_cancelled_count',
    'print_hours',
    'file_count',
    'upload_count',
    'uptime_hours',
    'feature_usage',
  ]);
  for (const k of [
    'job_count',
    'job_completed_count',
    'job_failed_count',
    'job_cancelled_count',
    'file_count',
    'upload_count',
  ])
    count(usage[k]);
  finiteNonNegative(usage.print_hours);
  finiteNonNegative(usage.uptime_hours);
  expect(usage.job_cancelled_count as number).toBeLessThanOrEqual(usage.job_failed_count as number);
  keysWithin(usage.feature_usage, FEATURES);
  for (const v of Object.values(usage.feature_usage as Obj)) expect(typeof v).toBe('boolean');
  for (const [k, v] of Object.entries(p.error_summary as Obj)) {
    expect((ERROR_TYPES as readonly string[]).includes(k) || ERROR_CODE_SLUG.test(k), `error slug ${k}`).toBe(true);
    count(v);
  }
}

function validate(input: unknown): void {
  const result = schema.safeParse(input);
  if (result.success) conforms(result.data as unknown as Obj);
  else for (const issue of payloadIssues(result.error)) expect(typeof issue.path).toBe('string');
}

const valid = makePayload({ nowMs: T0, submissionId: randomUUID(), installationId: randomUUID() });
/** Values near the edges of what the contract allows, so mutations land both sides of it. */
const edgeValue = fc.oneof(
  fc.constantFrom(-1, 0, 1, 31, 31.0001, 100_000, 100_001, 1e308, Number.NaN, null, true, '1', '', 'DE', 'de', 'XX'),
  fc.constantFrom(...PRINTER_MODELS, ...PRINTER_TYPES, ...ERROR_TYPES, 'hms_0300_0100', 'hms_0300_0100x', 'hostname'),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
);

describe('collector payload validator (fuzz)', () => {
  it('the unmutated fixture is accepted (the properties below test something)', () => {
    expect(schema.safeParse(valid).success).toBe(true);
    conforms(schema.parse(valid) as unknown as Obj);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(anyValue, (input) => validate(input)),
      { numRuns: RUNS },
    );
  });

  it('never throws on a valid payload mutated at random paths; accepted means conforming', () => {
    fc.assert(
      fc.property(mutated(valid, fc.oneof(edgeValue, jsonValue, anyValue)), (input) => validate(input)),
      { numRuns: RUNS * 3 },
    );
  });

  it('rejects any unknown key anywhere', () => {
    const objects = ['', 'installation', 'period', 'printer_fleet', 'usage_stats'];
    fc.assert(
      fc.property(
        fc.constantFrom(...objects),
        fc.constantFrom('hostname', 'serial', 'job_name', 'ip', 'user'),
        jsonValue,
        (at, key, value) => {
          const copy = structuredClone(valid) as unknown as Obj;
          const target = at === '' ? copy : (copy[at] as Obj);
          target[key] = value;
          expect(schema.safeParse(copy).success).toBe(false);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
