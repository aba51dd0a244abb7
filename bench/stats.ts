/**
 * Issue 2 numbers: record_event through the service vs raw prepared better-sqlite3 inserts of the same rows, and
 * aggregate_stats over 1,000,000 events vs the equivalent raw GROUP BY queries on the same schema, each measured in
 * this run, rounds alternating so that load from other processes falls on both sides alike.
 *
 *   node --import tsx bench/stats.ts
 *   STATS_BENCH_EVENTS=20000 STATS_BENCH_AGGREGATE=200000 node --import tsx bench/stats.ts
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { openDatabase } from '../src/db/open.js';
import { silentLogger } from '../src/log.js';
import { UsageRepository } from '../src/stats/repository.js';
import { UsageStatsService } from '../src/stats/service.js';
import type { BenchRow } from './types.js';
import { median, round, row, sized } from './util.js';

const META = { printer_type: 'bambu_lab', printer_model: 'X1C', duration_seconds: 3600 } as const;
const TYPES = ['job_created', 'job_completed', 'job_failed', 'file_uploaded', 'error_occurred', 'printer_connected'];
const INSERT_ROUNDS = 3;
const AGGREGATE_ROUNDS = sized(5, 3);
const TARGET_MS = 1000;

const INSERT_SQL =
  'INSERT INTO usage_events (id, event_type, timestamp, metadata, submitted, created_at) VALUES (?, ?, ?, ?, 0, ?)';

/** What aggregate_stats computes, as plain SQL on the same schema: the grouped counts and sums, the finished runs'
 * uptime and the period start. The planner picks its own indexes. */
const RAW_GROUP_BY = `
  SELECT event_type,
         CASE WHEN event_type = 'job_failed' THEN json_extract(metadata, '$.failure_type') END,
         CASE WHEN event_type = 'error_occurred' THEN json_extract(metadata, '$.error_type') END,
         COUNT(*),
         SUM(CASE WHEN event_type IN ('job_completed', 'job_failed') THEN json_extract(metadata, '$.duration_seconds') END)
  FROM usage_events WHERE submitted = 0 AND timestamp <= @end GROUP BY 1, 2, 3`;
const RAW_UPTIME = `
  SELECT SUM(json_extract(metadata, '$.uptime_seconds')) FROM usage_events
  WHERE event_type = 'app_shutdown' AND submitted = 0 AND timestamp <= @end`;
const RAW_START = 'SELECT MIN(timestamp) FROM usage_events WHERE submitted = 0';

function rawAggregate(db: Database.Database, indexed: boolean): () => void {
  const on = (sql: string, index: string) =>
    db.prepare(indexed ? sql.replace('FROM usage_events', `FROM usage_events INDEXED BY ${index}`) : sql);
  const groupBy = on(RAW_GROUP_BY, 'idx_usage_events_unsubmitted_aggregate');
  const uptime = on(RAW_UPTIME, 'idx_usage_events_event_type');
  const start = on(RAW_START, 'idx_usage_events_unsubmitted_timestamp');
  const end = new Date().toISOString();
  return () => {
    groupBy.all({ end });
    uptime.get({ end });
    start.get();
  };
}

function timeMs(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

async function recordEvent(dir: string): Promise<BenchRow> {
  const n = Number(process.env.STATS_BENCH_EVENTS ?? sized(20_000, 2_000));
  const raw = openDatabase(join(dir, 'raw.db'));
  const db = openDatabase(join(dir, 'service.db'));
  try {
    const insert = raw.prepare(INSERT_SQL);
    const service = new UsageStatsService({ repository: new UsageRepository(db), logger: silentLogger(), env: {} });
    const rawRates: number[] = [];
    const serviceRates: number[] = [];
    for (let r = 0; r < INSERT_ROUNDS; r++) {
      rawRates.push(
        n /
          (timeMs(() => {
            for (let i = 0; i < n; i++) {
              const ts = new Date().toISOString();
              insert.run(randomUUID(), 'job_completed', ts, JSON.stringify(META), ts);
            }
          }) /
            1000),
      );
      serviceRates.push(
        n /
          (timeMs(() => {
            for (let i = 0; i < n; i++) service.recordEvent('job_completed', META);
          }) /
            1000),
      );
    }
    return row(
      'record_event',
      Math.round(median(serviceRates)),
      'events/s',
      Math.round(median(rawRates)),
      `through UsageStatsService (allow-list, one autocommit insert each, WAL); baseline: raw prepared inserts of the same rows; median of ${INSERT_ROUNDS} alternating rounds of ${n}; target ratio >= 0.5`,
    );
  } finally {
    raw.close();
    db.close();
  }
}

async function aggregate(dir: string): Promise<BenchRow[]> {
  const count = Number(process.env.STATS_BENCH_AGGREGATE ?? sized(1_000_000, 20_000));
  const big = openDatabase(join(dir, 'big.db'));
  try {
    const insert = big.prepare(INSERT_SQL);
    const insertMs = timeMs(() =>
      big.transaction(() => {
        for (let i = 0; i < count; i++) {
          // One daemon restart per 10,000 events: an app_shutdown with its uptime, as the payload's uptime needs.
          const type = i % 10_000 === 9_999 ? 'app_shutdown' : (TYPES[i % TYPES.length] as string);
          const ts = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
          const meta =
            type === 'job_failed'
              ? { ...META, failure_type: i % 2 ? 'cancelled' : 'failed' }
              : type === 'error_occurred'
                ? { error_type: 'hms_0300_0100', component: 'bambu_mqtt' }
                : type === 'app_shutdown'
                  ? { uptime_seconds: 9_999 }
                  : META;
          insert.run(String(i), type, ts, JSON.stringify(meta), ts);
        }
      })(),
    );
    const service = new UsageStatsService({ repository: new UsageRepository(big), logger: silentLogger(), env: {} });
    const plain = rawAggregate(big, false);
    const floor = rawAggregate(big, true);
    const serviceMs: number[] = [];
    const plainMs: number[] = [];
    const floorMs: number[] = [];
    let jobs = 0;
    for (let r = 0; r < AGGREGATE_ROUNDS; r++) {
      plainMs.push(timeMs(plain));
      serviceMs.push(
        timeMs(() => {
          jobs = service.aggregateStats().usage_stats.job_count;
        }),
      );
      floorMs.push(timeMs(floor));
    }
    if (jobs < count / TYPES.length - 1) throw new Error(`aggregate_stats counted ${jobs} jobs`);
    const value = round(median(serviceMs), 1);
    const label = count % 1_000_000 === 0 ? `${count / 1_000_000}m` : `${count / 1000}k`;
    const shape = `${count} unsubmitted events (6 types + app_shutdown, seeded in ${round(insertMs / 1000, 1)} s), median of ${AGGREGATE_ROUNDS} alternating rounds; target < ${TARGET_MS} ms and ratio < 2`;
    return [
      row(
        `aggregate_stats_${label}`,
        value,
        'ms',
        round(median(plainMs), 1),
        `${shape}; baseline: the same GROUP BY, uptime and MIN queries written plainly on the same schema (planner's own index choice)`,
      ),
      row(
        `aggregate_stats_${label}_vs_index`,
        value,
        'ms',
        round(median(floorMs), 1),
        'baseline: the same raw queries, each forced onto the index the repository uses (the SQL floor); the ratio is the service overhead',
      ),
    ];
  } finally {
    big.close();
  }
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-stats-'));
  try {
    return [await recordEvent(dir), ...(await aggregate(dir))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const r of await run()) console.log(JSON.stringify(r));
}
