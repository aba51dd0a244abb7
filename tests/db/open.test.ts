import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { DB_SCHEMA_VERSION, MIGRATIONS, migrate } from '../../src/db/migrations.js';
import { DatabaseOpenError, openDatabase } from '../../src/db/open.js';
import { UsageRepository } from '../../src/stats/repository.js';
import { openTestDb, tempDir } from '../helpers.js';

describe('database', () => {
  it('opens with WAL, NORMAL sync and foreign keys, at the current schema version', () => {
    const { db } = openTestDb();
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('user_version', { simple: true })).toBe(DB_SCHEMA_VERSION);
    const columns = db
      .prepare('PRAGMA table_info(usage_events)')
      .all()
      .map((c) => (c as { name: string }).name);
    expect(columns).toEqual(['id', 'event_type', 'timestamp', 'metadata', 'submitted', 'submitted_at', 'created_at']);
    const indexes = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_events' AND sql IS NOT NULL ORDER BY name",
      )
      .pluck()
      .all();
    expect(indexes).toEqual([
      'idx_usage_events_event_type',
      'idx_usage_events_submitted',
      'idx_usage_events_timestamp',
      'idx_usage_events_unsubmitted_aggregate',
      'idx_usage_events_unsubmitted_timestamp',
    ]);
  });

  it('applies only new migrations, in order, and refuses a newer schema', () => {
    const { db } = openTestDb();
    const extra = [...Array(DB_SCHEMA_VERSION).fill('SELECT 1'), 'CREATE TABLE later (x)'];
    expect(migrate(db, extra)).toBe(DB_SCHEMA_VERSION + 1);
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'later'").pluck().get()).toBe(1);
    expect(() => migrate(db)).toThrow(/newer than this program knows/);
  });

  it('migrates a version 1 database to the current version, keeping its events and settings', () => {
    const dir = tempDir();
    const path = join(dir, 'usage_stats.db');
    const v1 = new Database(path);
    migrate(v1, MIGRATIONS.slice(0, 1));
    v1.prepare(
      `INSERT INTO usage_events (id, event_type, timestamp, metadata, submitted, created_at)
       VALUES ('a', 'job_failed', '2026-01-01T00:00:00.000Z', '{"failure_type":"cancelled","duration_seconds":60}', 0, '2026-01-01T00:00:00.000Z'),
              ('b', 'job_completed', '2026-01-02T00:00:00.000Z', '{"duration_seconds":3600}', 1, '2026-01-02T00:00:00.000Z')`,
    ).run();
    v1.prepare("INSERT INTO usage_settings (key, value, updated_at) VALUES ('opt_in_status', 'enabled', 'x')").run();
    v1.close();

    const db = openDatabase(path);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(DB_SCHEMA_VERSION);
      expect(db.prepare('SELECT id FROM usage_events ORDER BY id').pluck().all()).toEqual(['a', 'b']);
      expect(db.prepare("SELECT value FROM usage_settings WHERE key = 'opt_in_status'").pluck().get()).toBe('enabled');
      // The aggregate reads the new partial index, which holds the migrated unsubmitted event only.
      const rows = new UsageRepository(db).aggregateUnsubmitted('2027-01-01T00:00:00.000Z');
      expect(rows).toEqual([
        { event_type: 'job_failed', failure_type: 'cancelled', error_type: null, events: 1, duration_seconds: 60 },
      ]);
    } finally {
      db.close();
    }
  });

  it('refuses a corrupt file with a clear error and leaves it untouched', () => {
    const dir = tempDir();
    const path = join(dir, 'usage_stats.db');
    const garbage = Buffer.from('this is not a database, it is a shopping list\n'.repeat(200));
    writeFileSync(path, garbage);
    expect(() => openDatabase(path)).toThrow(DatabaseOpenError);
    expect(() => openDatabase(path)).toThrow(/not a SQLite database.*left untouched/);
    expect(readFileSync(path).equals(garbage)).toBe(true);
  });

  it('refuses an unwritable data directory clearly', () => {
    if (process.getuid?.() === 0) {
      // root ignores permission bits; a path under a regular file is unwritable for everyone.
      const dir = tempDir();
      writeFileSync(join(dir, 'file'), '');
      expect(() => openDatabase(join(dir, 'file', 'sub', 'usage_stats.db'))).toThrow(/is not writable/);
      return;
    }
    const dir = tempDir();
    chmodSync(dir, 0o500);
    expect(() => openDatabase(join(dir, 'sub', 'usage_stats.db'))).toThrow(/is not writable/);
  });
});
