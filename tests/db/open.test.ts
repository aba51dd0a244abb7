import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrate, SCHEMA_VERSION } from '../../src/db/migrations.js';
import { DatabaseOpenError, openDatabase } from '../../src/db/open.js';
import { openTestDb, tempDir } from '../helpers.js';

describe('database', () => {
  it('opens with WAL, NORMAL sync and foreign keys, at the current schema version', () => {
    const { db } = openTestDb();
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const columns = db
      .prepare('PRAGMA table_info(usage_events)')
      .all()
      .map((c) => (c as { name: string }).name);
    expect(columns).toEqual(['id', 'event_type', 'timestamp', 'metadata', 'submitted', 'submitted_at', 'created_at']);
    const indexes = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_events' AND sql IS NOT NULL")
      .all();
    expect(indexes).toHaveLength(3);
  });

  it('applies only new migrations, in order, and refuses a newer schema', () => {
    const { db } = openTestDb();
    const extra = [...Array(SCHEMA_VERSION).fill('SELECT 1'), 'CREATE TABLE later (x)'];
    expect(migrate(db, extra)).toBe(SCHEMA_VERSION + 1);
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'later'").pluck().get()).toBe(1);
    expect(() => migrate(db)).toThrow(/newer than this program knows/);
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
