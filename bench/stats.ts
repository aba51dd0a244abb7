/**
 * Issue 2 numbers: record_event through the service vs raw prepared better-sqlite3 inserts of the same rows, and
 * aggregate_stats over 1,000,000 events vs the equivalent raw GROUP BY query, each measured in this run.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/db/open.js';
import { silentLogger } from '../src/log.js';
import { UsageRepository } from '../src/stats/repository.js';
import { UsageStatsService } from '../src/stats/service.js';
import type { BenchRow } from './types.js';

const META = { printer_type: 'bambu_lab', printer_model: 'X1C', duration_seconds: 3600 };

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-stats-'));
  try {
    const n = Number(process.env.STATS_BENCH_EVENTS ?? 50_000);
    const raw = openDatabase(join(dir, 'raw.db'));
    const insert = raw.prepare(
      'INSERT INTO usage_events (id, event_type, timestamp, metadata, submitted, created_at) VALUES (?, ?, ?, ?, 0, ?)',
    );
    let t = performance.now();
    for (let i = 0; i < n; i++) {
      const ts = new Date().toISOString();
      insert.run(randomUUID(), 'job_completed', ts, JSON.stringify(META), ts);
    }
    const rawRate = n / ((performance.now() - t) / 1000);

    const db = openDatabase(join(dir, 'service.db'));
    const service = new UsageStatsService({ repository: new UsageRepository(db), logger: silentLogger(), env: {} });
    t = performance.now();
    for (let i = 0; i < n; i++) service.recordEvent('job_completed', META);
    const serviceRate = n / ((performance.now() - t) / 1000);

    // 1,000,000 events of a realistic mix, inserted in one transaction.
    const million = Number(process.env.STATS_BENCH_AGGREGATE ?? 1_000_000);
    const big = openDatabase(join(dir, 'big.db'));
    const types = [
      'job_created',
      'job_completed',
      'job_failed',
      'file_uploaded',
      'error_occurred',
      'printer_connected',
    ];
    const bigInsert = big.prepare(
      'INSERT INTO usage_events (id, event_type, timestamp, metadata, submitted, created_at) VALUES (?, ?, ?, ?, 0, ?)',
    );
    big.transaction(() => {
      for (let i = 0; i < million; i++) {
        const type = types[i % types.length]!;
        const ts = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
        const meta =
          type === 'job_failed'
            ? { ...META, failure_type: i % 2 ? 'cancelled' : 'failed' }
            : type === 'error_occurred'
              ? { error_type: 'hms_0300_0100', component: 'bambu_mqtt' }
              : META;
        bigInsert.run(String(i), type, ts, JSON.stringify(meta), ts);
      }
    })();
    const bigService = new UsageStatsService({ repository: new UsageRepository(big), logger: silentLogger(), env: {} });
    t = performance.now();
    big
      .prepare(
        `SELECT event_type, json_extract(metadata, '$.failure_type'), json_extract(metadata, '$.error_type'), COUNT(*),
                SUM(json_extract(metadata, '$.duration_seconds')) FROM usage_events WHERE submitted = 0 GROUP BY 1, 2, 3`,
      )
      .all();
    const rawAggregateMs = performance.now() - t;
    t = performance.now();
    bigService.aggregateStats();
    const aggregateMs = performance.now() - t;
    raw.close();
    db.close();
    big.close();
    return [
      {
        name: 'record_event (events/s)',
        value: serviceRate,
        unit: '/s',
        baseline: rawRate,
        ratio: serviceRate / rawRate,
        note: 'target ratio >= 0.5',
      },
      {
        name: `aggregate_stats over ${million} events`,
        value: aggregateMs,
        unit: 'ms',
        baseline: rawAggregateMs,
        ratio: aggregateMs / rawAggregateMs,
        note: 'target ratio < 2 and < 1000 ms',
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
