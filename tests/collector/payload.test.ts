import { describe, expect, it } from 'vitest';
import { createSubmissionSchema, payloadIssues } from '../../src/collector/payload.js';
import { DAY_MS, FakeClock, makePayload, T0, withChanges } from './helpers.js';

const clock = new FakeClock(T0);
const schema = createSubmissionSchema({ now: clock.now });

function issuesOf(value: unknown) {
  const result = schema.safeParse(value);
  return result.success ? [] : payloadIssues(result.error);
}

function pathsOf(value: unknown): string[] {
  return issuesOf(value).map((issue) => issue.path);
}

describe('submission payload schema', () => {
  it('accepts a complete, well-formed payload and null as an unknown country', () => {
    expect(issuesOf(makePayload())).toEqual([]);
    expect(issuesOf(makePayload({ country_code: null }))).toEqual([]);
    expect(issuesOf(makePayload({ models: {} }))).toEqual([]);
  });

  it('rejects unknown keys at every level, naming their full path', () => {
    const payload = withChanges(makePayload(), {
      hostname: 'octopi.local',
      installation: { email: 'alice@example.com' },
      period: { timezone: 'Europe/Berlin' },
      printer_fleet: { serials: ['01S00C123456789'], printer_type_counts: { creality: 1 } },
      usage_stats: { feature_usage: { telemetry_everything: true }, file_names: ['benchy.3mf'] },
    });
    expect(pathsOf(payload).sort()).toEqual(
      [
        'hostname',
        'installation.email',
        'period.timezone',
        'printer_fleet.printer_type_counts.creality',
        'printer_fleet.serials',
        'usage_stats.feature_usage.telemetry_everything',
        'usage_stats.file_names',
      ].sort(),
    );
  });

  it('rejects printer models and error kinds outside the fixed lists', () => {
    expect(pathsOf(withChanges(makePayload(), { printer_fleet: { printer_model_counts: { 'Ender 3': 1 } } }))).toEqual([
      'printer_fleet.printer_model_counts.Ender 3',
    ]);
    expect(pathsOf(withChanges(makePayload(), { error_summary: { 'Connection refused by 10.0.0.5': 1 } }))).toEqual([
      'error_summary.Connection refused by 10.0.0.5',
    ]);
    expect(pathsOf(withChanges(makePayload(), { error_summary: { hms_0300_01000: 1 } }))).toEqual([
      'error_summary.hms_0300_01000',
    ]);
    expect(issuesOf(withChanges(makePayload(), { error_summary: { print_error_0300_400c: 3, timeout: 1 } }))).toEqual(
      [],
    );
  });

  it.each([
    ['schema_version', { schema_version: 2 }],
    ['schema_version', { schema_version: '1' }],
    ['submission_id', { submission_id: 'not-a-uuid' }],
    ['submission_timestamp', { submission_timestamp: '2025-03-03 12:00' }],
    ['submission_timestamp', { submission_timestamp: '2025-03-03T13:00:00+01:00' }],
    ['installation.installation_id', { installation: { installation_id: 42 } }],
    ['installation.app_version', { installation: { app_version: 'latest; rm -rf /' } }],
    ['installation.runtime_version', { installation: { runtime_version: 'Node.js on alice-laptop' } }],
    ['installation.platform', { installation: { platform: 'plan9' } }],
    ['installation.deployment_mode', { installation: { deployment_mode: 'kubernetes' } }],
    ['printer_fleet.printer_count', { printer_fleet: { printer_count: '2' } }],
    ['printer_fleet.printer_types.0', { printer_fleet: { printer_types: ['creality'] } }],
    ['printer_fleet.printer_types', { printer_fleet: { printer_types: ['prusa', 'prusa'] } }],
    ['usage_stats.job_count', { usage_stats: { job_count: 1.5 } }],
    ['usage_stats.print_hours', { usage_stats: { print_hours: 'many' } }],
    ['usage_stats.feature_usage.mqtt_publish', { usage_stats: { feature_usage: { mqtt_publish: 'yes' } } }],
    ['error_summary.auth_failed', { error_summary: { auth_failed: null } }],
    ['installation', { installation: null }],
  ])('rejects a wrong type or format at %s', (path, patch) => {
    expect(pathsOf(withChanges(makePayload(), patch))).toContain(path);
  });

  it.each([
    ['printer_fleet.printer_count', { printer_fleet: { printer_count: -1 } }],
    ['printer_fleet.printer_count', { printer_fleet: { printer_count: 1_000_001 } }],
    ['printer_fleet.printer_model_counts.X1C', { printer_fleet: { printer_model_counts: { X1C: -2 } } }],
    ['usage_stats.job_count', { usage_stats: { job_count: 1e9 } }],
    ['usage_stats.job_failed_count', { usage_stats: { job_failed_count: -3 } }],
    ['usage_stats.uptime_hours', { usage_stats: { uptime_hours: Number.MAX_VALUE } }],
    ['usage_stats.print_hours', { usage_stats: { print_hours: -0.5 } }],
    ['error_summary.timeout', { error_summary: { timeout: 10_000_000 } }],
    ['usage_stats.job_cancelled_count', { usage_stats: { job_failed_count: 1, job_cancelled_count: 2 } }],
  ])('rejects an out-of-range number at %s', (path, patch) => {
    expect(pathsOf(withChanges(makePayload(), patch))).toContain(path);
  });

  it('rejects a country code that is not ISO 3166-1 alpha-2', () => {
    for (const country_code of ['XX', 'de', 'DEU', 'ZZ', '', 'EU']) {
      expect(pathsOf(makePayload({ country_code }))).toEqual(['installation.country_code']);
    }
    for (const country_code of ['DE', 'US', 'JP', 'BR', 'NZ'])
      expect(pathsOf(makePayload({ country_code }))).toEqual([]);
  });

  it('rejects timestamps in the future beyond the clock skew, and accepts a slightly fast client clock', () => {
    const base = makePayload();
    const fast = (ms: number) => new Date(T0 + ms).toISOString();
    expect(pathsOf(withChanges(base, { submission_timestamp: fast(60_000) }))).toEqual([]);
    expect(pathsOf(withChanges(base, { submission_timestamp: fast(DAY_MS) }))).toContain('submission_timestamp');
    expect(pathsOf(withChanges(base, { installation: { first_seen: fast(DAY_MS) } }))).toContain(
      'installation.first_seen',
    );
    expect(pathsOf(withChanges(base, { period: { end: fast(DAY_MS), duration_days: 8 } }))).toContain('period.end');
  });

  it('rejects periods longer than 31 days, empty or reversed, or whose duration_days disagrees', () => {
    const start = (days: number) => new Date(T0 - days * DAY_MS).toISOString();
    const end = new Date(T0).toISOString();
    expect(pathsOf(withChanges(makePayload(), { period: { start: start(31), end, duration_days: 31 } }))).toEqual([]);
    expect(pathsOf(withChanges(makePayload(), { period: { start: start(40), end, duration_days: 31 } }))).toContain(
      'period.end',
    );
    expect(pathsOf(withChanges(makePayload(), { period: { start: start(40), end, duration_days: 40 } }))).toContain(
      'period.duration_days',
    );
    expect(pathsOf(withChanges(makePayload(), { period: { start: end, end, duration_days: 1 } }))).toContain(
      'period.end',
    );
    expect(pathsOf(withChanges(makePayload(), { period: { start: start(-2), end, duration_days: 2 } }))).toContain(
      'period.end',
    );
    expect(pathsOf(withChanges(makePayload(), { period: { start: start(7), end, duration_days: 20 } }))).toContain(
      'period.duration_days',
    );
    expect(pathsOf(withChanges(makePayload(), { period: { start: start(7), end, duration_days: 0 } }))).toContain(
      'period.duration_days',
    );
    // Whole-day rounding on the client is fine.
    expect(pathsOf(withChanges(makePayload(), { period: { start: start(6.6), end, duration_days: 6 } }))).toEqual([]);
  });

  it('reports missing fields by path', () => {
    const payload = makePayload() as unknown as Record<string, Record<string, unknown>>;
    delete payload['usage_stats']?.['job_count'];
    delete payload['error_summary'];
    expect(pathsOf(payload).sort()).toEqual(['error_summary', 'usage_stats.job_count']);
  });
});

describe('identifiers', () => {
  it('stores UUIDs in lower case', () => {
    const payload = makePayload();
    const upper = withChanges(payload, {
      submission_id: payload.submission_id.toUpperCase(),
      installation: { installation_id: payload.installation.installation_id.toUpperCase() },
    });
    const parsed = schema.parse(upper);
    expect(parsed.submission_id).toBe(payload.submission_id);
    expect(parsed.installation.installation_id).toBe(payload.installation.installation_id);
  });
});
