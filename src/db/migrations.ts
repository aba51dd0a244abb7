/**
 * Numbered schema migrations, applied in order inside one transaction each; PRAGMA user_version records the last one
 * applied. Append new migrations, never edit a released one.
 */
import type Database from 'better-sqlite3';

export const MIGRATIONS: readonly string[] = [
  // 1: DESIGN.md "Database"
  `
  CREATE TABLE usage_events (
    id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    metadata TEXT,
    submitted INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT,
    created_at TEXT NOT NULL
  );
  CREATE INDEX idx_usage_events_event_type ON usage_events(event_type);
  CREATE INDEX idx_usage_events_timestamp ON usage_events(timestamp);
  CREATE INDEX idx_usage_events_submitted ON usage_events(submitted);
  CREATE TABLE usage_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  `,
  // 2: the submission payload reads only unsubmitted events. A partial index over exactly what it groups and sums
  // (the metadata classes as indexed expressions, so json_extract is not re-run per row) lets aggregate_stats read a
  // small index in group order instead of every table row; the second serves MIN(timestamp) and mark-submitted.
  // The expressions must stay identical to the ones in UsageRepository's aggregate query.
  `
  CREATE INDEX idx_usage_events_unsubmitted_aggregate ON usage_events (
    event_type,
    (CASE WHEN event_type = 'job_failed' THEN json_extract(metadata, '$.failure_type') END),
    (CASE WHEN event_type = 'error_occurred' THEN json_extract(metadata, '$.error_type') END),
    timestamp,
    (CASE WHEN event_type IN ('job_completed', 'job_failed') THEN json_extract(metadata, '$.duration_seconds') END)
  ) WHERE submitted = 0;
  CREATE INDEX idx_usage_events_unsubmitted_timestamp ON usage_events (timestamp) WHERE submitted = 0;
  `,
];

/** The local database's schema version: how many migrations have run (PRAGMA user_version). */
export const DB_SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database, migrations: readonly string[] = MIGRATIONS): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(
      `database schema version ${current} is newer than this program knows (${migrations.length}); upgrade printernizer-stats`,
    );
  }
  for (let version = current; version < migrations.length; version++) {
    const apply = db.transaction(() => {
      db.exec(migrations[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    });
    apply();
  }
  return migrations.length;
}
