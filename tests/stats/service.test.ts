import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_SUBMISSION_PERIOD_MS, MIN_SUBMISSION_PERIOD_MS, SETTINGS } from '../../src/stats/service.js';
import { testService } from '../helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('UsageStatsService: opt-in and opt-out', () => {
  it('is opted out by default, with no installation id', () => {
    const { service } = testService();
    expect(service.isOptedIn()).toBe(false);
    expect(service.installationId()).toBeNull();
    expect(service.getLocalStats()).toMatchObject({
      installation_id: null,
      first_seen: null,
      opt_in_status: 'disabled',
    });
  });

  it('creates the installation id and secret once and keeps them on later opt-ins', () => {
    const { service } = testService();
    const first = service.optIn();
    expect(first.installation_id).toMatch(UUID);
    const secret = service.submissionSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    service.optOut();
    const second = service.optIn();
    expect(second.installation_id).toBe(first.installation_id);
    expect(service.submissionSecret()).toBe(secret);
  });

  it('records feature_enabled and feature_disabled only on real changes', () => {
    const { service, repository } = testService();
    service.optIn();
    service.optIn();
    service.optOut();
    service.optOut();
    expect(repository.getEvents().map((e) => [e.event_type, e.metadata.feature])).toEqual([
      ['feature_enabled', 'usage_statistics'],
      ['feature_disabled', 'usage_statistics'],
    ]);
  });

  it('opt-out keeps local data', () => {
    const { service } = testService();
    service.optIn();
    service.recordEvent('job_created', { printer_type: 'prusa', printer_model: 'MK4' });
    service.optOut();
    expect(service.getLocalStats().total_events).toBe(3);
  });

  it('DO_NOT_TRACK forces collection off whatever the setting', () => {
    const { service } = testService({ env: { DO_NOT_TRACK: '1' } });
    service.optIn();
    expect(service.isOptedIn()).toBe(true);
    expect(service.getStatus()).toMatchObject({ opted_in: true, collection_active: false, do_not_track: true });
  });
});

describe('UsageStatsService: recording', () => {
  it('records whether or not the user opted in', () => {
    const { service } = testService();
    expect(service.recordEvent('job_created', { printer_type: 'bambu_lab', printer_model: 'P1S' })).not.toBeNull();
    expect(service.getLocalStats().total_events).toBe(1);
  });

  it('drops metadata outside the allow-list and keeps the event', () => {
    const { service, repository } = testService();
    service.recordUntrusted('job_completed', {
      printer_type: 'bambu_lab',
      printer_model: 'X1C',
      duration_seconds: 120,
      job_name: 'secret-prototype.3mf',
    });
    expect(repository.getEvents()[0]?.metadata).toEqual({
      printer_type: 'bambu_lab',
      printer_model: 'X1C',
      duration_seconds: 120,
    });
    expect(service.droppedMetadataKeys).toBe(1);
  });

  it('never throws into the caller: unknown types are refused and counted', () => {
    const { service } = testService();
    expect(() => service.recordUntrusted('rm -rf', {})).not.toThrow();
    expect(service.recordUntrusted('rm -rf', {})).toBeNull();
    expect(service.recordFailures).toBe(2);
  });

  it('keeps events in memory while the database refuses writes and flushes them later', () => {
    const { service, db, repository } = testService();
    db.exec(
      `CREATE TRIGGER full BEFORE INSERT ON usage_events BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`,
    );
    expect(() => service.recordEvent('job_created', { printer_type: 'prusa' })).not.toThrow();
    service.recordEvent('job_completed', { printer_type: 'prusa' });
    expect(service.pendingInMemory()).toBe(2);
    db.exec('DROP TRIGGER full');
    service.recordEvent('job_created', { printer_type: 'prusa' });
    expect(service.pendingInMemory()).toBe(0);
    expect(repository.getEvents().map((e) => e.event_type)).toEqual([
      'job_created',
      'error_occurred',
      'job_completed',
      'job_created',
    ]);
    expect(repository.getEvents({ eventType: 'error_occurred' })[0]?.metadata).toEqual({
      error_type: 'database_full',
      component: 'database',
    });
  });

  it('tells listeners about each stored event, and survives a failing listener', () => {
    const { service } = testService();
    const seen: string[] = [];
    service.onRecorded(() => {
      throw new Error('listener bug');
    });
    const off = service.onRecorded((e) => seen.push(e.event_type));
    service.recordEvent('app_start', {});
    off();
    service.recordEvent('app_shutdown', {});
    expect(seen).toEqual(['app_start']);
  });
});

describe('UsageStatsService: local stats, export, delete, cleanup', () => {
  it('counts this week and by type', () => {
    const { service, clock } = testService();
    service.recordEvent('job_created', {});
    clock.advance(10 * 86_400_000);
    service.recordEvent('job_created', {});
    service.recordEvent('job_completed', {});
    service.recordEvent('job_failed', { failure_type: 'cancelled' });
    service.recordEvent('file_uploaded', { file_type: '3mf' });
    service.recordEvent('file_downloaded', { file_type: 'gcode' });
    service.recordEvent('error_occurred', { error_type: 'auth_failed' });
    service.recordEvent('printer_connected', {});
    const stats = service.getLocalStats();
    expect(stats.total_events).toBe(8);
    expect(stats.this_week).toEqual({
      job_count: 1,
      job_completed_count: 1,
      job_failed_count: 1,
      file_count: 2,
      upload_count: 1,
      error_count: 1,
      printer_connect_count: 1,
    });
    expect(stats.events_by_type.job_created).toBe(2);
  });

  it('exports every event and the settings, without the submission secret', () => {
    const { service } = testService();
    const { installation_id } = service.optIn();
    service.recordEvent('job_created', { printer_type: 'prusa', printer_model: 'MK4' });
    const exported = service.exportStats();
    expect(exported.export_version).toBe(1);
    expect(exported.settings).toEqual({
      opt_in_status: 'enabled',
      installation_id,
      first_seen: '2026-11-02T10:00:00.000Z',
      last_submission: null,
    });
    expect(exported.events.map((e) => e.event_type)).toEqual(['feature_enabled', 'job_created']);
    expect(Object.keys(exported.events[0]!).sort()).toEqual(['event_type', 'id', 'metadata', 'submitted', 'timestamp']);
    expect(JSON.stringify(exported)).not.toContain(service.submissionSecret()!);
  });

  it('deletes all events and keeps the privacy choice', () => {
    const { service } = testService();
    service.optIn();
    service.recordEvent('job_created', {});
    expect(service.deleteAllStats()).toBe(2);
    expect(service.getLocalStats()).toMatchObject({ total_events: 0, opt_in_status: 'enabled' });
  });

  it('removes only events older than the retention period', () => {
    const { service, clock } = testService();
    service.recordEvent('job_created', {});
    clock.advance(400 * 86_400_000);
    service.recordEvent('job_created', {});
    expect(service.cleanup(365)).toBe(1);
    expect(service.getLocalStats().total_events).toBe(1);
  });

  it('marks a submission: events covered, last_submission set, error cleared', () => {
    const { service, clock, repository } = testService();
    service.optIn();
    service.recordEvent('job_created', {});
    service.setLastSubmissionError('collector answered 503');
    const end = clock.now().toISOString();
    clock.advance(1000);
    service.recordEvent('job_created', {});
    expect(service.markSubmitted(end)).toBe(2);
    expect(service.getStatus()).toMatchObject({ last_submission: end, last_error: null, pending_events: 1 });
    expect(repository.getSetting(SETTINGS.lastSubmission)).toBe(end);
  });
});

describe('privacy: adversarial metadata never reaches storage, export or payload', () => {
  const SECRETS = [
    '01S00C000000000',
    '12345678',
    'hunter2',
    '192.168.1.20',
    'alice@example.com',
    'Benchy_final.3mf',
    'workshop-printer.local',
  ];

  it('holds none of the seeded values anywhere', () => {
    const { service, path, db } = testService();
    service.optIn();
    const hostile = {
      printer_type: 'bambu_lab',
      printer_model: SECRETS[0],
      serial: SECRETS[0],
      access_code: SECRETS[1],
      password: SECRETS[2],
      host: SECRETS[3],
      user: SECRETS[4],
      file_name: SECRETS[5],
      error_message: `failed on ${SECRETS[6]}`,
      nested: { host: SECRETS[3] },
      duration_seconds: SECRETS[1],
      failure_type: SECRETS[4],
      error_type: SECRETS[5],
      component: SECRETS[6],
      file_type: SECRETS[5],
      feature: SECRETS[2],
    };
    for (const type of [
      'job_created',
      'job_completed',
      'job_failed',
      'file_uploaded',
      'error_occurred',
      'feature_enabled',
      'printer_disconnected',
    ] as const) {
      service.recordUntrusted(type, hostile);
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    const haystacks = [
      readFileSync(path).toString('latin1'),
      JSON.stringify(service.exportStats()),
      JSON.stringify(service.aggregateStats()),
      JSON.stringify(service.getLocalStats()),
    ];
    for (const haystack of haystacks) for (const secret of SECRETS) expect(haystack).not.toContain(secret);
  });
});

describe('UsageStatsService: the submission period', () => {
  it('keeps the preview within the 31 days the collector accepts, naming what would be dropped', () => {
    const { service, clock } = testService();
    service.optIn();
    service.recordEvent('job_created', { printer_type: 'prusa' });
    clock.advance(40 * 24 * 3600 * 1000);
    service.recordEvent('job_created', { printer_type: 'prusa' });
    const period = service.submissionPeriod();
    expect(Date.parse(period.end) - Date.parse(period.start)).toBe(MAX_SUBMISSION_PERIOD_MS);
    expect(period.dropBefore).toBe(period.start);
    const payload = service.submissionPayload();
    expect(payload.period.duration_days).toBe(31);
    // The 40-day-old job is outside the window; only the recent one is in the preview.
    expect(payload.usage_stats.job_count).toBe(1);
  });

  it('stretches a period shorter than 10 minutes back to 10 minutes', () => {
    const { service } = testService();
    service.optIn();
    const period = service.submissionPeriod();
    expect(Date.parse(period.end) - Date.parse(period.start)).toBe(MIN_SUBMISSION_PERIOD_MS);
    expect(period.dropBefore).toBeNull();
  });
});
