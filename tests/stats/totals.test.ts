import { describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/db/open.js';
import { testService } from '../helpers.js';

const META = { printer_type: 'bambu_lab', printer_model: 'X1C' } as const;

function setup() {
  const t = testService();
  /** What a plain count over the table says, to compare the kept totals with. */
  const counted = () => ({
    byType: t.repository.countsByType(),
    printSeconds: t.repository.sumMetadata('duration_seconds'),
  });
  const kept = () => ({
    byType: t.service.getLocalStats().events_by_type,
    printSeconds: t.service.totalPrintSeconds(),
  });
  return { ...t, counted, kept };
}

describe('all-time totals (GET /local and the MQTT summary)', () => {
  it('follow the events the service records without counting them again', () => {
    const { service, repository, counted, kept } = setup();
    service.recordEvent('job_created', META);
    expect(kept()).toEqual(counted());
    const recount = vi.spyOn(repository, 'totalsByType');
    service.recordEvent('job_completed', { ...META, duration_seconds: 3600 });
    service.recordEvent('job_failed', { ...META, duration_seconds: 600, failure_type: 'cancelled' });
    service.recordEvent('job_created', META);
    expect(kept()).toEqual(counted());
    expect(kept()).toEqual({ byType: { job_created: 2, job_completed: 1, job_failed: 1 }, printSeconds: 4200 });
    expect(service.getLocalStats().total_events).toBe(4);
    expect(recount).not.toHaveBeenCalled();
  });

  it('count again after any change the service did not make as one recorded insert', () => {
    const { service, repository, counted, kept, clock } = setup();
    service.recordEvent('job_completed', { ...META, duration_seconds: 100 });
    expect(kept()).toEqual(counted());

    // Through the same connection, around the service (a test fixture, a tool).
    repository.insertEvent({
      id: 'direct',
      event_type: 'job_completed',
      timestamp: '2020-01-01T00:00:00.000Z',
      metadata: { ...META, duration_seconds: 50 },
      created_at: '2020-01-01T00:00:00.000Z',
    });
    expect(kept()).toEqual({ byType: { job_completed: 2 }, printSeconds: 150 });

    // Retention cleanup and a settings write, then an event recorded after them.
    clock.advance(400 * 86_400_000);
    expect(service.cleanup(365)).toBe(2);
    service.optIn();
    service.recordEvent('job_created', META);
    expect(kept()).toEqual(counted());
    expect(kept().byType).toEqual({ job_created: 1, feature_enabled: 1 });

    expect(service.deleteAllStats()).toBe(2);
    expect(kept()).toEqual({ byType: {}, printSeconds: 0 });
    service.recordEvent('job_completed', { ...META, duration_seconds: 7 });
    expect(kept()).toEqual({ byType: { job_completed: 1 }, printSeconds: 7 });
  });

  it('count again after another connection changed the file (the CLI beside the daemon)', () => {
    const { service, path, counted, kept } = setup();
    service.recordEvent('job_created', META);
    service.recordEvent('job_created', META);
    expect(kept().byType).toEqual({ job_created: 2 });

    const other = openDatabase(path);
    try {
      other.prepare('DELETE FROM usage_events WHERE rowid = (SELECT MIN(rowid) FROM usage_events)').run();
      expect(kept()).toEqual(counted());
      expect(kept().byType).toEqual({ job_created: 1 });
      // The other connection's change lands between two recorded events: the next read still counts it.
      service.recordEvent('job_created', META);
      other
        .prepare(
          "INSERT INTO usage_events (id, event_type, timestamp, metadata, submitted, created_at) VALUES ('cli', 'job_failed', ?, ?, 0, ?)",
        )
        .run(
          '2026-11-01T00:00:00.000Z',
          JSON.stringify({ ...META, duration_seconds: 9, failure_type: 'failed' }),
          '2026-11-01T00:00:00.000Z',
        );
      service.recordEvent('job_created', META);
      expect(kept()).toEqual(counted());
      expect(kept()).toEqual({ byType: { job_created: 3, job_failed: 1 }, printSeconds: 9 });
    } finally {
      other.close();
    }
  });

  it('start from what the file already holds (a restart)', () => {
    const first = testService();
    first.service.recordEvent('job_completed', { ...META, duration_seconds: 60 });
    first.service.recordEvent('job_created', META);
    first.db.close();
    const dir = first.path.slice(0, first.path.lastIndexOf('/'));
    const again = testService({ dir });
    expect(again.service.totalPrintSeconds()).toBe(60);
    expect(again.service.getLocalStats()).toMatchObject({
      total_events: 2,
      events_by_type: { job_completed: 1, job_created: 1 },
    });
  });
});

describe('this week’s counts (the last 7 days, GET /local and the MQTT summary)', () => {
  const WEEK_MS = 7 * 86_400_000;
  /** What `this_week` means, from a plain count of the window. */
  function weekFromCount(repository: ReturnType<typeof setup>['repository'], now: Date) {
    const c = repository.countsByType({ start: new Date(now.getTime() - WEEK_MS).toISOString() });
    return {
      job_count: c.job_created ?? 0,
      job_completed_count: c.job_completed ?? 0,
      job_failed_count: c.job_failed ?? 0,
      file_count: (c.file_uploaded ?? 0) + (c.file_downloaded ?? 0),
      upload_count: c.file_uploaded ?? 0,
      error_count: c.error_occurred ?? 0,
      printer_connect_count: c.printer_connected ?? 0,
    };
  }

  it('match a count of the window at every read, as the window moves across hours and days', () => {
    const { service, repository, clock } = setup();
    service.getLocalStats(); // loaded once, here
    const fullLoads = vi.spyOn(repository, 'totalsByType');
    const hourlyLoads = vi.spyOn(repository, 'hourlyCountsSince');
    const windowReads = vi.spyOn(repository, 'countsByType');
    let step = 0;
    // Nine days in steps of 37 minutes: events land in every part of an hour, and leave the window at every part.
    for (let t = 0; t < 9 * 86_400_000; t += 37 * 60_000, step++) {
      clock.advance(37 * 60_000);
      service.recordEvent('job_created', META);
      if (step % 3 === 0) service.recordEvent('job_completed', { ...META, duration_seconds: 60 });
      if (step % 5 === 0) service.recordEvent('file_uploaded', { ...META, file_type: '3mf' });
      if (step % 7 === 0)
        service.recordEvent('error_occurred', { error_type: 'printer_error', component: 'bambu_mqtt' });
      if (step % 4 === 0) {
        const expected = weekFromCount(repository, clock.now());
        windowReads.mockClear();
        expect(service.getLocalStats().this_week).toEqual(expected);
        // Only the hour the window starts in is read from the database.
        for (const [filter] of windowReads.mock.calls) {
          const span = Date.parse(filter?.end ?? '') - Date.parse(filter?.start ?? '');
          expect(span).toBeLessThan(3_600_000);
        }
      }
    }
    expect(service.getLocalStats().this_week.job_count).toBeGreaterThan(200);
    expect(fullLoads).not.toHaveBeenCalled();
    expect(hourlyLoads).not.toHaveBeenCalled();
  });

  it('count again after a change from elsewhere, and read an hour boundary exactly once', () => {
    const { service, repository, clock, path } = setup();
    clock.set('2026-11-10T12:00:00.000Z');
    service.recordEvent('job_created', META); // exactly on the hour
    clock.set('2026-11-10T12:59:59.999Z');
    service.recordEvent('job_created', META);
    clock.set('2026-11-17T12:00:00.000Z'); // the window starts exactly at the first event
    expect(service.getLocalStats().this_week.job_count).toBe(2);
    clock.set('2026-11-17T12:00:00.001Z');
    expect(service.getLocalStats().this_week.job_count).toBe(1);
    clock.set('2026-11-17T13:00:00.000Z');
    expect(service.getLocalStats().this_week.job_count).toBe(0);

    service.recordEvent('job_failed', { ...META, duration_seconds: 5, failure_type: 'failed' });
    const other = openDatabase(path);
    try {
      other
        .prepare(
          "INSERT INTO usage_events (id, event_type, timestamp, metadata, submitted, created_at) VALUES ('cli', 'job_created', ?, ?, 0, ?)",
        )
        .run('2026-11-16T08:30:00.000Z', JSON.stringify(META), '2026-11-16T08:30:00.000Z');
    } finally {
      other.close();
    }
    expect(service.getLocalStats().this_week).toEqual(weekFromCount(repository, clock.now()));
    expect(service.getLocalStats().this_week).toMatchObject({ job_count: 1, job_failed_count: 1 });
  });
});
