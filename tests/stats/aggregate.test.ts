import { describe, expect, it } from 'vitest';
import { testService } from '../helpers.js';

describe('aggregate_stats', () => {
  it('builds the DESIGN.md payload with counts, hours, fleet and errors', () => {
    const { service, clock } = testService({
      fleet: () => [
        { type: 'bambu_lab', model: 'X1C' },
        { type: 'bambu_lab', model: 'P1S' },
        { type: 'prusa', model: 'MK4' },
      ],
      features: () => ({ mqtt_publish: true, ha_discovery: false }),
    });
    const { installation_id } = service.optIn();
    service.recordEvent('job_created', {});
    service.recordEvent('job_created', {});
    service.recordEvent('job_created', {});
    service.recordEvent('job_completed', { duration_seconds: 5400 });
    service.recordEvent('job_failed', { failure_type: 'cancelled', duration_seconds: 1800 });
    service.recordEvent('job_failed', { failure_type: 'failed' });
    service.recordEvent('file_uploaded', { file_type: '3mf' });
    service.recordEvent('file_downloaded', { file_type: 'gcode' });
    service.recordEvent('error_occurred', { error_type: 'hms_0300_0100', component: 'bambu_mqtt' });
    service.recordEvent('error_occurred', { error_type: 'hms_0300_0100', component: 'bambu_mqtt' });
    service.recordEvent('error_occurred', { error_type: 'auth_failed', component: 'prusalink' });
    clock.advance(2 * 3600_000);
    const payload = service.aggregateStats();
    expect(payload).toMatchObject({
      schema_version: 1,
      submission_timestamp: '2026-11-02T12:00:00.000Z',
      installation: {
        installation_id,
        first_seen: '2026-11-02T10:00:00.000Z',
        app_version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        runtime_version: process.versions.node,
        deployment_mode: expect.stringMatching(/^(docker|standalone)$/),
        country_code: 'DE',
      },
      period: { start: '2026-11-02T10:00:00.000Z', end: '2026-11-02T11:59:59.999Z', duration_days: 0.08 },
      printer_fleet: {
        printer_count: 3,
        printer_types: ['bambu_lab', 'prusa'],
        printer_type_counts: { bambu_lab: 2, prusa: 1 },
        printer_model_counts: { X1C: 1, P1S: 1, MK4: 1 },
      },
      usage_stats: {
        job_count: 3,
        job_completed_count: 1,
        job_failed_count: 2,
        job_cancelled_count: 1,
        print_hours: 2,
        file_count: 2,
        upload_count: 1,
        uptime_hours: 2,
        feature_usage: { mqtt_publish: true, ha_discovery: false, usage_statistics: true },
      },
      error_summary: { hms_0300_0100: 2, auth_failed: 1 },
    });
    expect(payload.submission_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Object.keys(payload).sort()).toEqual(
      [
        'error_summary',
        'installation',
        'period',
        'printer_fleet',
        'schema_version',
        'submission_id',
        'submission_timestamp',
        'usage_stats',
      ].sort(),
    );
  });

  it('counts nothing twice across two submissions and skips nothing', () => {
    const { service, clock } = testService();
    service.optIn();
    service.recordEvent('job_created', {});
    clock.advance(1000);
    const first = service.aggregateStats();
    service.recordEvent('job_created', {});
    service.markSubmitted(first.period.end);
    clock.advance(1000);
    service.recordEvent('job_created', {});
    clock.advance(1000);
    const second = service.aggregateStats();
    expect(first.usage_stats.job_count).toBe(1);
    expect(second.usage_stats.job_count).toBe(2);
    expect(second.period.start).toBe(first.period.end);
  });

  it('counts uptime of finished runs only inside the period', () => {
    const { service, clock } = testService({ startedAt: new Date('2026-11-02T10:00:00.000Z') });
    service.optIn();
    // A run of 10 h that ended now; the period started 4 h ago (the last submission).
    clock.advance(4 * 3600_000);
    const end = clock.now().toISOString();
    service.markSubmitted(new Date(Date.parse(end) - 4 * 3600_000).toISOString());
    service.recordEvent('app_shutdown', { uptime_seconds: 36_000 });
    const payload = service.aggregateStats({ end });
    expect(payload.usage_stats.uptime_hours).toBe(4 + 4);
  });

  it('maps UTC to no country and reports null', () => {
    const { service } = testService({ timezone: 'UTC' });
    expect(service.aggregateStats().installation.country_code).toBeNull();
  });
});
