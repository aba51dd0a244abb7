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
