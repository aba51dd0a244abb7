/**
 * Collector benchmarks (issue 5 "Numbers"):
 *  1. accepted submissions per second on loopback, each from a distinct installation, beside a bare Hono endpoint
 *     on the same server stack that parses the same JSON bodies and answers (the HTTP + JSON floor);
 *  2. GET /v1/stats with 100,000 installations stored (uncached), beside the raw GROUP BY queries the statistics
 *     need, run directly on better-sqlite3 (the SQL floor).
 * Run alone with `node --import tsx bench/collector.ts`; BENCH_QUICK=1 runs small sizes in seconds (for the tests).
 * PostgreSQL and several instances: bench/collector-pg.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import pino from 'pino';
import { hashSecret } from '../src/collector/auth.js';
import type { SubmissionPayload } from '../src/collector/payload.js';
import { startCollector } from '../src/collector/server.js';
import { ACTIVE_WINDOW_DAYS } from '../src/collector/stats.js';
import { weekStartOf } from '../src/collector/storage.js';
import { DB_FILE_NAME, SqliteCollectorStorage } from '../src/collector/storage-sqlite.js';
import type { BenchRow } from './types.js';
import { sized } from './util.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const SUBMISSIONS = sized(5_000, 300);
const WARMUP = sized(500, 50);
const CONCURRENCY = 32;
const STATS_INSTALLATIONS = sized(100_000, 2_000);
const STATS_RUNS = sized(15, 3);

const MODELS = ['X1C', 'P1S', 'P1P', 'A1', 'A1 mini', 'H2D', 'MK4', 'MK4S', 'MINI', 'XL', 'CORE One'] as const;
const COUNTRIES = ['DE', 'US', 'GB', 'FR', 'NL', 'PL', 'CZ', 'IT', 'ES', 'SE', 'AT', 'CH', 'CA', 'AU', 'JP', 'BR'];
const VERSIONS = ['0.1.0', '0.1.1', '0.2.0', '0.2.1', '0.3.0', '0.3.1-beta.1', '0.4.0'];
const MODES = ['homeassistant', 'homeassistant', 'docker', 'standalone'] as const;

/** Deterministic pseudo-random numbers, so every run stores the same data. */
export function seeded(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

export function payloadFor(random: () => number, now: number): SubmissionPayload {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() ** 2 * list.length)] as T;
  const models: Record<string, number> = {};
  const printerCount = 1 + Math.floor(random() * 3);
  for (let i = 0; i < printerCount; i++) {
    const model = pick(MODELS);
    models[model] = (models[model] ?? 0) + 1;
  }
  const typeCounts: Record<string, number> = {};
  for (const [model, n] of Object.entries(models)) {
    const type = /^(MK|MINI|XL|CORE)/.test(model) ? 'prusa' : 'bambu_lab';
    typeCounts[type] = (typeCounts[type] ?? 0) + n;
  }
  const failed = Math.floor(random() * 4);
  const completed = Math.floor(random() * 30);
  return {
    schema_version: 1,
    submission_id: randomUUID(),
    submission_timestamp: new Date(now).toISOString(),
    installation: {
      installation_id: randomUUID(),
      first_seen: new Date(now - 90 * DAY_MS).toISOString(),
      app_version: pick(VERSIONS),
      runtime_version: 'v20.11.1',
      platform: 'linux',
      deployment_mode: pick(MODES),
      country_code: random() < 0.05 ? null : pick(COUNTRIES),
    },
    period: { start: new Date(now - 7 * DAY_MS).toISOString(), end: new Date(now).toISOString(), duration_days: 7 },
    printer_fleet: {
      printer_count: printerCount,
      printer_types: Object.keys(typeCounts),
      printer_type_counts: typeCounts,
      printer_model_counts: models,
    },
    usage_stats: {
      job_count: completed + failed,
      job_completed_count: completed,
      job_failed_count: failed,
      job_cancelled_count: Math.min(failed, 1),
      print_hours: Math.round(random() * 1000) / 10,
      file_count: Math.floor(random() * 20),
      upload_count: Math.floor(random() * 10),
      uptime_hours: 168,
      feature_usage: { usage_statistics: true, mqtt_publish: random() < 0.5 },
    },
    error_summary: random() < 0.3 ? { connection_failed: 1 } : {},
  } as SubmissionPayload;
}

/** POSTs every body with at most CONCURRENCY in flight over keep-alive connections; returns requests per second. */
async function blast(url: string, bodies: { body: string; secret: string }[]): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const target = new URL(url);
  let next = 0;
  let failures = 0;
  const one = (item: { body: string; secret: string }) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(item.body),
            authorization: `Bearer ${item.secret}`,
          },
        },
        (res) => {
          if (res.statusCode !== 200) failures++;
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(item.body);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) await one(bodies[next++] as { body: string; secret: string });
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  if (failures > 0) throw new Error(`${failures} of ${bodies.length} requests were not answered 200`);
  return bodies.length / seconds;
}

async function submissionThroughput(): Promise<BenchRow> {
  const now = Date.now();
  const random = seeded(1);
  const makeBodies = (n: number) =>
    Array.from({ length: n }, () => ({
      body: JSON.stringify(payloadFor(random, now)),
      secret: randomBytes(32).toString('base64url'),
    }));
  const warmup = makeBodies(WARMUP);
  const bodies = makeBodies(SUBMISSIONS);

  // Baseline: the same stack (node-server + Hono), parsing the same JSON and answering, nothing else.
  const echo = new Hono();
  echo.post('/v1/submit', async (c) => {
    const body = (await c.req.json()) as SubmissionPayload;
    return c.json({ accepted: true, duplicate: false, submission_id: body.submission_id });
  });
  const echoServer = serve({ fetch: echo.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => echoServer.once('listening', () => resolve()));
  const echoUrl = `http://127.0.0.1:${(echoServer.address() as AddressInfo).port}/v1/submit`;

  const dataDir = mkdtempSync(join(tmpdir(), 'bench-collector-'));
  const collector = await startCollector({
    dataDir,
    logger: pino({ level: 'silent' }),
    rateLimit: { burst: 1e9, perSecond: 1e9 }, // one loopback client sends everything
  });
  try {
    await blast(echoUrl, warmup);
    await blast(`${collector.url}/v1/submit`, warmup);
    const baseline = await blast(echoUrl, bodies);
    const value = await blast(`${collector.url}/v1/submit`, bodies);
    return {
      name: 'collector.submissions_per_second',
      value: Math.round(value),
      unit: 'req/s',
      baseline: Math.round(baseline),
      ratio: value / baseline,
      note: `${SUBMISSIONS} distinct installations, ${CONCURRENCY} keep-alive connections; baseline: bare Hono JSON echo`,
    };
  } finally {
    await collector.stop();
    await new Promise<void>((resolve) => echoServer.close(() => resolve()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function statsTime(): Promise<BenchRow[]> {
  const now = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-collector-stats-'));
  try {
    // Seed through the storage layer the server uses: every installation submitted once in the window, half of
    // them twice (two weekly rows), spread over the last four weeks.
    const storage = new SqliteCollectorStorage(dataDir);
    const random = seeded(2);
    const secretHash = hashSecret('bench-secret-bench-secret-bench-secret');
    const seedStarted = performance.now();
    storage.db.transaction(() => {
      for (let i = 0; i < STATS_INSTALLATIONS; i++) {
        const receivedAt = now - Math.floor(random() * 27 * DAY_MS);
        const payload = payloadFor(random, receivedAt);
        storage.recordSubmission(payload, secretHash, receivedAt - 8 * DAY_MS * (i % 2));
        if (i % 2 === 1) storage.recordSubmission({ ...payload, submission_id: randomUUID() }, secretHash, receivedAt);
      }
    })();
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    await storage.close();

    // Baseline: the raw GROUP BYs behind the numbers, no suppression, no JSON, no HTTP.
    const db = new Database(join(dataDir, DB_FILE_NAME), { readonly: true });
    const since = now - ACTIVE_WINDOW_DAYS * DAY_MS;
    const week = weekStartOf(since);
    const raw = [
      ...['deployment_mode', 'app_version', 'country_code', 'printer_types', 'printer_models'].map((column) =>
        db.prepare(`SELECT ${column}, count(*) FROM installations WHERE last_accepted_at >= ? GROUP BY ${column}`),
      ),
    ];
    const weekly = db.prepare(
      `SELECT week_start, count(*), sum(job_count) FROM weekly_stats
       WHERE week_start >= ? AND last_received_at >= ? GROUP BY week_start`,
    );
    const perInstallation = db.prepare(
      `SELECT sum(job_count), sum(job_completed_count), sum(job_failed_count) FROM weekly_stats
       WHERE last_received_at >= ? GROUP BY installation`,
    );
    const baselineRuns: number[] = [];
    for (let run = 0; run < STATS_RUNS; run++) {
      const started = performance.now();
      for (const statement of raw) statement.all(since);
      weekly.all(week, since);
      perInstallation.all(since);
      baselineRuns.push(performance.now() - started);
    }
    db.close();

    const collector = await startCollector({
      dataDir,
      logger: pino({ level: 'silent' }),
      now: () => now,
      statsCacheMs: 0,
    });
    const runs: number[] = [];
    let installations = 0;
    try {
      for (let run = 0; run < STATS_RUNS; run++) {
        const started = performance.now();
        const res = await fetch(`${collector.url}/v1/stats`);
        const body = (await res.json()) as { installations: number };
        runs.push(performance.now() - started);
        installations = body.installations;
      }
    } finally {
      await collector.stop();
    }
    if (installations !== STATS_INSTALLATIONS) throw new Error(`stats saw ${installations} installations`);

    const cached = await startCollector({ dataDir, logger: pino({ level: 'silent' }), now: () => now });
    const cachedRuns: number[] = [];
    try {
      await (await fetch(`${cached.url}/v1/stats`)).arrayBuffer();
      for (let run = 0; run < STATS_RUNS; run++) {
        const started = performance.now();
        await (await fetch(`${cached.url}/v1/stats`)).arrayBuffer();
        cachedRuns.push(performance.now() - started);
      }
    } finally {
      await cached.stop();
    }

    const value = medianOf(runs);
    const baseline = medianOf(baselineRuns);
    const cachedValue = medianOf(cachedRuns);
    return [
      {
        name: `collector.stats_ms_${STATS_INSTALLATIONS / 1000}k_installations`,
        value: Math.round(value * 10) / 10,
        unit: 'ms',
        baseline: Math.round(baseline * 10) / 10,
        ratio: value / baseline,
        note: `uncached GET /v1/stats over HTTP, median of ${STATS_RUNS}; ${STATS_INSTALLATIONS} installations and ${
          STATS_INSTALLATIONS * 1.5
        } weekly rows (seeded in ${seedSeconds.toFixed(1)} s); baseline: the same GROUP BYs written plainly and run directly on better-sqlite3 (planner's own index choice, no suppression, no HTTP)`,
      },
      {
        name: 'collector.stats_ms_cached',
        value: Math.round(cachedValue * 100) / 100,
        unit: 'ms',
        baseline: Math.round(value * 10) / 10,
        ratio: cachedValue / value,
        note: 'GET /v1/stats within the 60 s cache; baseline: the uncached request',
      },
    ];
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchRow[]> {
  return [await submissionThroughput(), ...(await statsTime())];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const row of await run()) {
    console.log(
      `${row.name}: ${row.value} ${row.unit} (baseline ${row.baseline} ${row.unit}, ratio ${row.ratio.toFixed(2)})` +
        (row.note ? `\n  ${row.note}` : ''),
    );
  }
}
