import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { EventType } from '../../src/stats/events.js';
import { UsageRepository } from '../../src/stats/repository.js';
import { openTestDb } from '../helpers.js';

function seed(repository: UsageRepository, type: EventType, timestamp: string, metadata = {}) {
  const id = randomUUID();
  repository.insertEvent({ id, event_type: type, timestamp, metadata, created_at: timestamp });
  return id;
}

describe('UsageRepository', () => {
  it('inserts and reads back events with their metadata', () => {
    const repository = new UsageRepository(openTestDb().db);
    const id = seed(repository, 'job_created', '2026-11-01T10:00:00.000Z', { printer_type: 'prusa' });
    const [event] = repository.getEvents();
    expect(event).toEqual({
      id,
      event_type: 'job_created',
      timestamp: '2026-11-01T10:00:00.000Z',
      metadata: { printer_type: 'prusa' },
      submitted: false,
      submitted_at: null,
    });
  });

  it('filters by date range, type and submitted, with pagination', () => {
    const repository = new UsageRepository(openTestDb().db);
    for (let day = 1; day <= 9; day++) {
      seed(repository, day % 2 ? 'job_created' : 'job_completed', `2026-11-0${day}T00:00:00.000Z`);
    }
    expect(repository.countEvents({ start: '2026-11-03T00:00:00.000Z', end: '2026-11-05T00:00:00.000Z' })).toBe(3);
    expect(repository.countEvents({ eventType: 'job_created' })).toBe(5);
    const page = repository.getEvents({ eventType: 'job_created' }, { limit: 2, offset: 1 });
    expect(page.map((e) => e.timestamp)).toEqual(['2026-11-03T00:00:00.000Z', '2026-11-05T00:00:00.000Z']);
    repository.markSubmittedUpTo('2026-11-04T00:00:00.000Z', '2026-11-10T00:00:00.000Z');
    expect(repository.countEvents({ submitted: true })).toBe(4);
    expect(repository.countEvents({ submitted: false, eventType: 'job_completed' })).toBe(2);
  });

  it('counts by type', () => {
    const repository = new UsageRepository(openTestDb().db);
    seed(repository, 'job_created', '2026-11-01T00:00:00.000Z');
    seed(repository, 'job_created', '2026-11-02T00:00:00.000Z');
    seed(repository, 'error_occurred', '2026-11-02T00:00:00.000Z');
    expect(repository.countsByType()).toEqual({ job_created: 2, error_occurred: 1 });
    expect(repository.countsByType({ start: '2026-11-02T00:00:00.000Z' })).toEqual({
      job_created: 1,
      error_occurred: 1,
    });
  });

  it('marks submitted by id once, and by period end', () => {
    const repository = new UsageRepository(openTestDb().db);
    const a = seed(repository, 'job_created', '2026-11-01T00:00:00.000Z');
    const b = seed(repository, 'job_created', '2026-11-02T00:00:00.000Z');
    expect(repository.markSubmitted([a], '2026-11-03T00:00:00.000Z')).toBe(1);
    expect(repository.markSubmitted([a], '2026-11-04T00:00:00.000Z')).toBe(0);
    expect(repository.getEvents({ submitted: true })[0]).toMatchObject({
      id: a,
      submitted_at: '2026-11-03T00:00:00.000Z',
    });
    expect(repository.markSubmittedUpTo('2026-11-05T00:00:00.000Z', '2026-11-05T00:00:00.000Z')).toBe(1);
    expect(repository.getEvents({ submitted: true }).map((e) => e.id)).toEqual([a, b]);
  });

  it('stores, overwrites and deletes settings', () => {
    const repository = new UsageRepository(openTestDb().db);
    expect(repository.getSetting('opt_in_status')).toBeNull();
    repository.setSetting('opt_in_status', 'enabled', '2026-11-01T00:00:00.000Z');
    repository.setSetting('opt_in_status', 'disabled', '2026-11-02T00:00:00.000Z');
    expect(repository.getSetting('opt_in_status')).toBe('disabled');
    repository.deleteSetting('opt_in_status');
    expect(repository.getSetting('opt_in_status')).toBeNull();
  });

  it('deletes all events and cleans up before a cutoff, keeping settings', () => {
    const repository = new UsageRepository(openTestDb().db);
    seed(repository, 'job_created', '2025-01-01T00:00:00.000Z');
    seed(repository, 'job_created', '2026-11-01T00:00:00.000Z');
    repository.setSetting('installation_id', 'x', '2026-11-01T00:00:00.000Z');
    expect(repository.deleteEventsBefore('2026-01-01T00:00:00.000Z')).toBe(1);
    expect(repository.countEvents()).toBe(1);
    expect(repository.deleteAllEvents()).toBe(1);
    expect(repository.countEvents()).toBe(0);
    expect(repository.getSetting('installation_id')).toBe('x');
  });

  it('reads a hand-edited row with broken metadata without failing the read', () => {
    const { db } = openTestDb();
    const repository = new UsageRepository(db);
    db.prepare(
      "INSERT INTO usage_events (id, event_type, timestamp, metadata, created_at) VALUES ('x', 'job_created', '2026-11-01T00:00:00.000Z', '{broken', '2026-11-01T00:00:00.000Z')",
    ).run();
    expect(repository.getEvents()[0]?.metadata).toEqual({});
  });

  it('groups unsubmitted events for aggregation', () => {
    const repository = new UsageRepository(openTestDb().db);
    seed(repository, 'job_failed', '2026-11-01T00:00:00.000Z', { failure_type: 'cancelled', duration_seconds: 60 });
    seed(repository, 'job_failed', '2026-11-01T00:00:00.000Z', { failure_type: 'failed', duration_seconds: 30 });
    seed(repository, 'error_occurred', '2026-11-01T00:00:00.000Z', { error_type: 'auth_failed' });
    seed(repository, 'job_completed', '2026-12-01T00:00:00.000Z', { duration_seconds: 100 });
    const rows = repository.aggregateUnsubmitted('2026-11-30T00:00:00.000Z');
    expect(rows).toHaveLength(3);
    expect(rows.find((r) => r.failure_type === 'cancelled')).toMatchObject({ events: 1, duration_seconds: 60 });
    expect(rows.find((r) => r.error_type === 'auth_failed')).toMatchObject({ events: 1 });
  });
});
