/**
 * The collector past one machine (issue 14 "Numbers"), on a throwaway PostgreSQL (Debian's package, started by
 * tests/collector/postgres.ts with its default durability: fsync on, synchronous commit):
 *  1. accepted submissions per second, each from a distinct installation, with every collector instance in its own
 *     process and the load from another process: SQLite one instance (baseline: a bare Hono JSON echo process),
 *     PostgreSQL one instance (baseline: SQLite), PostgreSQL two instances (baseline: PostgreSQL one instance), and
 *     where the CPU went during the two-instance run (every process, from /proc);
 *  2. uncached GET /v1/stats over 100,000 and 1,000,000 installations on PostgreSQL (baseline: the same queries run
 *     directly, without the snapshot, k-suppression, JSON and HTTP).
 * Run alone with `node --import tsx bench/collector-pg.ts`; BENCH_QUICK=1 runs small sizes in seconds. Without
 * PostgreSQL installed the PostgreSQL rows are left out and one row says so.
 *
 * The same file is the entry of the child processes: `--instance` (one collector) and `--load` (the load generator).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type pg from 'pg';
import pino from 'pino';
import { hashSecret } from '../src/collector/auth.js';
import { startCollector } from '../src/collector/server.js';
import { ACTIVE_WINDOW_DAYS } from '../src/collector/stats.js';
import { openCollectorStorage, printerModelSet, printerTypeSet } from '../src/collector/storage.js';
import { type PostgresCollectorStorage, REBUILD_STATS_ROLLUPS } from '../src/collector/storage-postgres.js';
import { PG_BIN_DIR, POSTGRES_MISSING_REASON, PostgresCluster } from '../tests/collector/postgres.js';
import { payloadFor, seeded } from './collector.js';
import type { BenchRow } from './types.js';
import { median, round, row, sized } from './util.js';

const SUBMISSIONS = sized(8_000, 300);
const WARMUP = sized(1_000, 50);
const CONCURRENCY = 32;
const STATS_SIZES = sized([100_000, 1_000_000], [2_000]);
const STATS_RUNS = sized(7, 3);
const DAY_MS = 24 * 60 * 60 * 1000;
const here = fileURLToPath(import.meta.url);
const CLOCK_TICKS = 100; // USER_HZ on Linux
/** The rows this module measures on PostgreSQL (three submission rows, the CPU row, the stats rows). */
const PG_ROWS = 4 + STATS_SIZES.length;

// ---------------------------------------------------------------------------------------------------------------
// Child process roles.

/** `--instance '{"database":...}'`: one collector; prints `READY <port>` and stops on SIGTERM. */
async function instanceMain(options: { database?: string; dataDir?: string; echo?: boolean }): Promise<void> {
  let stop: () => Promise<void>;
  let port: number;
  if (options.echo) {
    // The floor: the same server stack parsing the same JSON and answering, nothing else.
    const { serve } = await import('@hono/node-server');
    const { Hono } = await import('hono');
    const app = new Hono();
    app.post('/v1/submit', async (c) => {
      const body = (await c.req.json()) as { submission_id: string };
      return c.json({ accepted: true, duplicate: false, submission_id: body.submission_id });
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    port = (server.address() as { port: number }).port;
    stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  } else {
    const collector = await startCollector({
      ...options,
      logger: pino({ level: 'silent' }),
      rateLimit: { burst: 1e9, perSecond: 1e9 }, // one loopback client sends everything
    });
    port = collector.port;
    stop = () => collector.stop();
  }
  process.stdout.write(`READY ${port}\n`);
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
}

interface LoadResult {
  accepted: number;
  seconds: number;
  failures: number;
  /** Requests sent again after the server closed their keep-alive connection. */
  retries: number;
}

/**
 * `--load '{"urls":[...],"warmup":W,"count":N,"seed":S}'`: builds W + N distinct submissions, sends the first W
 * (warming up the instances and their connections), waits for `GO` on stdin, sends the N with CONCURRENCY keep-alive
 * connections spread over the instances, and prints the result as JSON.
 */
async function loadMain(options: { urls: string[]; warmup: number; count: number; seed: number }): Promise<void> {
  const now = Date.now();
  const random = seeded(options.seed);
  const bodies = Array.from({ length: options.warmup + options.count }, () => ({
    body: JSON.stringify(payloadFor(random, now)),
    secret: randomBytes(32).toString('base64url'),
  }));
  const newAgents = () => options.urls.map(() => new Agent({ keepAlive: true, maxSockets: CONCURRENCY }));
  let agents = newAgents();
  let next = 0;
  let accepted = 0;
  let failures = 0;
  let retries = 0;
  const send = async (index: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await sendOnce(index, attempt > 1);
      } catch (err) {
        // A keep-alive connection the server closed just as a request went out: nothing was processed, send again.
        if (attempt >= 3 || (err as { code?: string }).code !== 'ECONNRESET') throw err;
        retries++;
      }
    }
  };
  const sendOnce = (index: number, retry: boolean) =>
    new Promise<void>((resolve, reject) => {
      const item = bodies[index] as { body: string; secret: string };
      const which = index % options.urls.length;
      const target = new URL(options.urls[which] as string);
      const req = request(
        {
          agent: agents[which],
          host: target.hostname,
          port: target.port,
          path: '/v1/submit',
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(item.body),
            authorization: `Bearer ${item.secret}`,
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            text += d;
          });
          res.on('end', () => {
            // A retry may find its first attempt stored after all (a duplicate): accepted once either way.
            if (res.statusCode === 200 && (retry || text.includes('"duplicate":false'))) accepted++;
            else failures++;
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(item.body);
    });
  const sendAll = (end: number) =>
    Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < end) await send(next++);
      }),
    );
  await sendAll(options.warmup);
  accepted = 0;
  failures = 0;
  // Fresh connections for the measured run: idle ones may time out on the server while we wait for GO.
  for (const agent of agents) agent.destroy();
  agents = newAgents();
  process.stdout.write('PREPARED\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const started = performance.now();
  await sendAll(bodies.length);
  const seconds = (performance.now() - started) / 1000;
  for (const agent of agents) agent.destroy();
  const result: LoadResult = { accepted, seconds, failures, retries };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting from /proc, so the two-instance run can say where the machine's time went.

function procTimes(pid: number): { own: number; children: number; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return {
      ppid: Number(fields[1]),
      own: Number(fields[11]) + Number(fields[12]),
      children: Number(fields[13]) + Number(fields[14]),
    };
  } catch {
    return undefined;
  }
}

/** CPU ticks of a process tree rooted at `root` (live descendants plus the reaped ones its cutime counts). */
function treeTicks(root: number): number {
  const all = new Map<number, { own: number; children: number; ppid: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const times = procTimes(Number(name));
    if (times) all.set(Number(name), times);
  }
  let total = 0;
  const visit = (pid: number) => {
    const times = all.get(pid);
    if (!times) return;
    total += times.own + (pid === root ? times.children : 0);
    for (const [child, t] of all) if (t.ppid === pid) visit(child);
  };
  visit(root);
  return total;
}

interface CpuProbe {
  label: string;
  root: number;
}

/** Busy and total jiffies of the whole machine (every process, ours or not), from /proc/stat. */
function machineJiffies(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

function cpuSampler(probes: CpuProbe[]) {
  const start = probes.map((p) => treeTicks(p.root));
  const machineStart = machineJiffies();
  const wallStart = performance.now();
  return () => {
    const seconds = (performance.now() - wallStart) / 1000;
    const machine = machineJiffies();
    return {
      processes: probes.map((p, i) => ({
        label: p.label,
        percentOfCore: ((treeTicks(p.root) - (start[i] as number)) / CLOCK_TICKS / seconds) * 100,
      })),
      /** How busy the whole machine was, as a percentage of all its cores (other users' work included). */
      machineBusyPercent: ((machine.busy - machineStart.busy) / Math.max(1, machine.total - machineStart.total)) * 100,
    };
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The parent side.

function spawnRole(role: '--instance' | '--load', options: object): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', here, role, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

function waitForLine(child: ChildProcess, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (d: Buffer) => {
      buffer += d;
      const line = buffer.split('\n').find((l) => l.startsWith(prefix));
      if (line) {
        child.stdout?.off('data', onData);
        resolve(line.slice(prefix.length).trim());
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${prefix.trim()} never came (exit ${code})`)));
  });
}

async function startInstances(options: object, n: number) {
  const children = Array.from({ length: n }, () => spawnRole('--instance', options));
  const ports = await Promise.all(children.map((child) => waitForLine(child, 'READY ')));
  return {
    children,
    urls: ports.map((port) => `http://127.0.0.1:${port}`),
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

async function runLoad(urls: string[], count: number, seed: number, probes: CpuProbe[] = []) {
  const load = spawnRole('--load', { urls, warmup: WARMUP, count, seed });
  await waitForLine(load, 'PREPARED');
  const sample = cpuSampler([...probes, { label: 'load generator', root: load.pid as number }]);
  load.stdin?.write('GO\n');
  const result = JSON.parse(await waitForLine(load, 'RESULT ')) as LoadResult;
  const cpu = sample();
  if (result.failures > 0) throw new Error(`${result.failures} of ${count} submissions were not accepted`);
  return { perSecond: result.accepted / result.seconds, seconds: result.seconds, cpu, retries: result.retries };
}

/** Accepted submissions per second on `n` instances of `options` (after a warm-up run). */
async function throughput(options: object, n: number, seed: number, probes: (pids: number[]) => CpuProbe[] = () => []) {
  const instances = await startInstances(options, n);
  try {
    return await runLoad(instances.urls, SUBMISSIONS, seed, probes(instances.children.map((c) => c.pid as number)));
  } finally {
    await instances.stop();
  }
}

function postmasterPid(cluster: PostgresCluster): number {
  return Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

async function freshDatabase(cluster: PostgresCluster, name: string): Promise<string> {
  await cluster.query(`DROP DATABASE IF EXISTS ${name}`);
  await cluster.query(`CREATE DATABASE ${name}`);
  return cluster.url({ database: name });
}

export async function submissionRows(cluster: PostgresCluster | undefined): Promise<BenchRow[]> {
  const note = `${SUBMISSIONS} distinct installations after a ${WARMUP}-submission warm-up, ${CONCURRENCY} keep-alive connections from a separate load process, each instance its own process`;
  const echo = await throughput({ echo: true }, 1, 1);
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-collector-pg-'));
  let sqlite: Awaited<ReturnType<typeof throughput>>;
  try {
    sqlite = await throughput({ dataDir }, 1, 2);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  const rows = [
    row(
      'collector_scale.accepted_per_s_sqlite_1',
      Math.round(sqlite.perSecond),
      'req/s',
      Math.round(echo.perSecond),
      `${note}; baseline: a bare Hono JSON echo process`,
    ),
  ];
  if (!cluster) return rows;

  const postmaster = postmasterPid(cluster);
  const probes = (pids: number[]): CpuProbe[] => [
    { label: 'postgres', root: postmaster },
    ...pids.map((pid, i) => ({ label: `collector ${i + 1}`, root: pid })),
  ];
  const one = await throughput({ database: await freshDatabase(cluster, 'bench_one') }, 1, 3, probes);
  const two = await throughput({ database: await freshDatabase(cluster, 'bench_two') }, 2, 4, probes);
  const profile = (run: typeof two) => {
    const total = run.cpu.processes.reduce((n, p) => n + p.percentOfCore, 0);
    const parts = run.cpu.processes.map((p) => `${p.label} ${Math.round(p.percentOfCore)}%`).join(', ');
    const perSubmission = (total / 100 / run.perSecond) * 1000;
    return `CPU ${parts} of one core = ${Math.round(total)}% (${round(perSubmission, 2)} ms of CPU per accepted submission); the whole machine was ${Math.round(run.cpu.machineBusyPercent)}% busy (all ${machineCores()} cores, every process)${run.retries > 0 ? `; ${run.retries} requests resent after the server closed an idle connection` : ''}`;
  };
  rows.push(
    row(
      'collector_scale.accepted_per_s_pg_1',
      Math.round(one.perSecond),
      'req/s',
      Math.round(sqlite.perSecond),
      `${note}; pool of 10 connections per instance; baseline: SQLite, one instance; ${profile(one)}`,
    ),
    row(
      'collector_scale.accepted_per_s_pg_2',
      Math.round(two.perSecond),
      'req/s',
      Math.round(one.perSecond),
      `${note}; load spread evenly over both; baseline: PostgreSQL, one instance; ${profile(two)}`,
    ),
    row(
      'collector_scale.pg_2_run_cpu',
      Math.round(two.cpu.processes.reduce((n, p) => n + p.percentOfCore, 0)),
      '% of one core',
      machineCores() * 100,
      `the processes of the two-instance run (postgres, both collectors, the load generator); baseline: every core of the machine; the machine as a whole (other users included) was ${Math.round(two.cpu.machineBusyPercent)}% busy`,
    ),
  );
  return rows;
}

function machineCores(): number {
  return readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('processor')).length;
}

// ---------------------------------------------------------------------------------------------------------------
// /v1/stats over many installations.

/** Printer type and model sets as the daemon's payloads produce them, to draw installations from in SQL. */
function fleetSets(n: number): { types: string[]; models: string[] } {
  const random = seeded(7);
  const types: string[] = [];
  const models: string[] = [];
  for (let i = 0; i < n; i++) {
    const payload = payloadFor(random, Date.now());
    types.push(printerTypeSet(payload));
    models.push(printerModelSet(payload));
  }
  return { types, models };
}

/**
 * Adds installations (up to `total`) straight in SQL, in the shape the collector stores: each last accepted within
 * the last 27 days, every other one with a second weekly row 8 days earlier (as bench/collector.ts seeds SQLite).
 * Seeding through the collector would take an hour at a million; the rollups are then derived from the rows.
 */
export async function seedInstallations(
  client: pg.PoolClient,
  from: number,
  total: number,
  now: number,
): Promise<void> {
  const { types, models } = fleetSets(500);
  const secret = hashSecret('bench-secret-bench-secret-bench-secret');
  const batch = 100_000;
  await client.query('SET statement_timeout = 0'); // bulk statements; RESET below restores the collector's limit
  await client.query('SELECT setseed(0.42)');
  for (let start = from; start < total; start += batch) {
    const count = Math.min(batch, total - start);
    await client.query(
      `INSERT INTO installations (installation_id, secret_hash, registered_at, last_accepted_at, first_seen,
         app_version, runtime_version, platform, deployment_mode, country_code, printer_types, printer_models)
       SELECT gen_random_uuid(), $1, at, at, '2025-01-01T00:00:00.000Z',
         (ARRAY['0.1.0','0.1.1','0.2.0','0.2.1','0.3.0','0.3.1-beta.1','0.4.0'])[1 + floor(r1 ^ 2 * 7)::int],
         'v20.11.1', 'linux',
         (ARRAY['homeassistant','homeassistant','docker','standalone'])[1 + floor(r2 ^ 2 * 4)::int],
         CASE WHEN r3 < 0.05 THEN NULL ELSE
           (ARRAY['DE','US','GB','FR','NL','PL','CZ','IT','ES','SE','AT','CH','CA','AU','JP','BR'])[1 + floor(r3 ^ 2 * 16)::int]
         END,
         ($3::text[])[fleet], ($4::text[])[fleet]
       FROM (SELECT $2::bigint - floor(random() * 27 * ${DAY_MS})::bigint AS at, random() AS r1, random() AS r2,
               random() AS r3, 1 + floor(random() * ${types.length})::int AS fleet
             FROM generate_series(1, $5)) g`,
      [secret, now, types, models, count],
    );
  }
  const week = (ms: string) => `date_trunc('week', to_timestamp(${ms} / 1000.0) AT TIME ZONE 'UTC')::date`;
  const counts = `c + f, c, f, least(f, 1), round((random() * 100)::numeric, 1)::float8, floor(random() * 20)::int,
    floor(random() * 10)::int, 168`;
  for (const [offset, filter] of [
    ['0', 'true'],
    [`${8 * DAY_MS}`, 'i.id % 2 = 1'],
  ] as const) {
    await client.query(
      `INSERT INTO weekly_stats (installation, week_start, last_received_at, submission_count, job_count,
         job_completed_count, job_failed_count, job_cancelled_count, print_hours, file_count, upload_count,
         uptime_hours)
       SELECT id, ${week(`(last_accepted_at - ${offset})`)}, last_accepted_at - ${offset}, 1, ${counts}
       FROM (SELECT i.id, i.last_accepted_at, floor(random() * 30)::int AS c, floor(random() * 4)::int AS f
             FROM installations i WHERE i.id > $1 AND ${filter}) s`,
      [from],
    );
  }
  // Rows written behind the statements' back: derive the rollups from them, as migration 2 does on existing data.
  await client.query(`BEGIN; ${REBUILD_STATS_ROLLUPS}; COMMIT`);
  // What autovacuum does in production after a bulk load: planner statistics, and the visibility map that lets the
  // statistics read indexes without visiting the table.
  for (const table of ['installations', 'weekly_stats', 'active_counts']) await client.query(`VACUUM ANALYZE ${table}`);
  await client.query('RESET statement_timeout');
}

/** The statistics' queries as plain SQL, run directly: the floor under GET /v1/stats. */
async function rawStatsQueries(client: pg.PoolClient, since: number): Promise<void> {
  await client.query('SELECT count(*) FROM installations WHERE last_accepted_at >= $1', [since]);
  for (const column of ['deployment_mode', 'app_version', 'country_code', 'printer_types', 'printer_models']) {
    await client.query(`SELECT ${column}, count(*) FROM installations WHERE last_accepted_at >= $1 GROUP BY 1`, [
      since,
    ]);
  }
  await client.query(
    `SELECT week_start, count(*), sum(job_count) FROM weekly_stats WHERE last_received_at >= $1 GROUP BY 1`,
    [since],
  );
  await client.query(
    `SELECT sum(job_count), sum(job_completed_count), sum(job_failed_count) FROM weekly_stats
     WHERE last_received_at >= $1 GROUP BY installation`,
    [since],
  );
}

async function timed(work: () => Promise<unknown>, runs: number): Promise<number> {
  await work(); // warm the caches and the prepared statements
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  return median(times);
}

export async function statsRows(cluster: PostgresCluster): Promise<BenchRow[]> {
  const now = Date.now();
  const database = await freshDatabase(cluster, 'bench_stats');
  const logger = pino({ level: 'silent' });
  const storage = await openCollectorStorage({ database, logger }); // runs the migrations
  const collector = await startCollector({ storage, logger, now: () => now, statsCacheMs: 0 });
  const seeder = await (storage as PostgresCollectorStorage).connect();
  const rows: BenchRow[] = [];
  try {
    let seeded = 0;
    for (const size of STATS_SIZES) {
      const started = performance.now();
      await seedInstallations(seeder, seeded, size, now);
      seeded = size;
      const seedSeconds = (performance.now() - started) / 1000;
      const since = now - ACTIVE_WINDOW_DAYS * DAY_MS;
      const baseline = await timed(() => rawStatsQueries(seeder, since), STATS_RUNS);
      let installations = 0;
      const value = await timed(async () => {
        const body = (await (await fetch(`${collector.url}/v1/stats`)).json()) as { installations: number };
        installations = body.installations;
      }, STATS_RUNS);
      if (installations !== size) throw new Error(`stats saw ${installations} installations, not ${size}`);
      const label = size >= 1_000_000 ? `${size / 1_000_000}m` : `${size / 1000}k`;
      rows.push(
        row(
          `collector_scale.pg_stats_ms_${label}_installations`,
          round(value, 1),
          'ms',
          round(baseline, 1),
          `uncached GET /v1/stats over HTTP, median of ${STATS_RUNS}; ${size} installations, ${Math.round(size * 1.5)} weekly rows (seeded in SQL in ${seedSeconds.toFixed(1)} s, then VACUUM ANALYZE); baseline: the same counts as plain GROUP BYs run directly (no snapshot, no suppression, no HTTP); goal under ${size >= 1_000_000 ? '1,000' : '200'} ms`,
        ),
      );
    }
  } finally {
    seeder.release();
    await collector.stop();
  }
  return rows;
}

export async function run(): Promise<BenchRow[]> {
  if (!PG_BIN_DIR) {
    process.stderr.write(`[collector-pg] ${POSTGRES_MISSING_REASON}\n`);
    return [
      ...(await submissionRows(undefined)),
      row(
        'collector_scale.postgres_rows_measured',
        0,
        'rows',
        PG_ROWS,
        `the PostgreSQL rows were left out: ${POSTGRES_MISSING_REASON}`,
      ),
    ];
  }
  // Production-like durability (fsync, synchronous commit); memory sized for a small dedicated server.
  const cluster = await PostgresCluster.start({ settings: { shared_buffers: "'512MB'", max_connections: 100 } });
  try {
    return [...(await submissionRows(cluster)), ...(await statsRows(cluster))];
  } finally {
    await cluster.destroy();
  }
}

const role = process.argv[2];
if (role === '--instance') await instanceMain(JSON.parse(process.argv[3] as string));
else if (role === '--load') await loadMain(JSON.parse(process.argv[3] as string));
else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await run()) {
    console.log(
      `${r.name}: ${r.value} ${r.unit} (baseline ${r.baseline} ${r.unit}, ratio ${r.ratio.toFixed(3)})` +
        (r.note ? `\n  ${r.note}` : ''),
    );
  }
}
