/**
 * A print farm on one daemon (issue 15, part 1): the built daemon (dist/), started as the add-on starts it (the node
 * flags of rootfs/.../printernizer-stats/run), carrying 300 simulated Bambu Lab printers (a TLS MQTT session each, a
 * report a second) and 200 PrusaLink printers (polled every 10 s, digest auth), with the MQTT mirror on (mosquitto on
 * loopback when installed, else aedes), while jobs start and end on every printer. The simulators, the broker and the
 * baseline reader run in processes of their own, so the daemon's CPU and RSS, read from /proc, are its own.
 *
 * In order:
 * 1. idle scaling: with every printer idle (no job anywhere; the Bambu reports still come every second, as real ones
 *    do), the daemon's CPU with half the farm and with all of it, each beside a reader process that receives and
 *    parses the same reports and polls and does nothing else (bench/farm-reader.ts): the cost of the reports
 *    themselves. The daemon adds no per-second work per printer when its CPU grows with the farm as the reader's does;
 * 2. the farm for `--minutes N` (FARM_MINUTES, 10 by default) with jobs running: the daemon's CPU (average and the
 *    busiest minute), RSS (first vs last minute, peak), and the latency of GET /api/v1/printers and
 *    /api/v1/usage-stats/local, each asked every 200 ms meanwhile;
 * 3. jobs: no new job after the window, the running ones end (cancelled after a cap), the daemon stops, and the job
 *    events in its SQLite file are compared with the simulators' own counts. Any difference fails the module.
 *
 *   npm run build && npm run bench -- --only farm --minutes 10
 *   BENCH_QUICK=1 npm run bench -- --only farm          # 10 Bambu Lab + 5 PrusaLink, seconds
 *   FARM_CPU_PROF=/tmp/prof npm run bench -- --only farm --minutes 2   # the farm daemon under --cpu-prof
 *   FARM_BAMBU=150 FARM_PRUSA=100 ...                  # another farm size
 *   FARM_DAEMON_FLAGS='--max-semi-space-size=2 --heap-growing-percent=30' ...   # other node flags than the add-on's
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { databasePath } from '../src/db/open.js';
import { addonLaunchEnvironment, daemonNodeFlags } from './addon-launch.js';
import { Helper } from './farm-ipc.js';
import type { ReaderCounts, ReaderOptions } from './farm-reader.js';
import type {
  BambuFarmOptions,
  BambuPrinterInfo,
  FarmCounts,
  FarmJobCounts,
  PrusaFarmOptions,
} from './farm-simulators.js';
import { build, procStatus } from './idle-memory.js';
import type { BenchRow } from './types.js';
import { bambuPrinterConfigs, median, round, row, sized, sleep } from './util.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const SIMULATORS = join(ROOT, 'bench', 'farm-simulators.ts');
const READER = join(ROOT, 'bench', 'farm-reader.ts');

const BAMBU = Number(process.env.FARM_BAMBU ?? sized(300, 10));
const PRUSA = Number(process.env.FARM_PRUSA ?? sized(200, 5));
/** Bambu Lab simulators per process: 150 brokers ticking every second keep one process well below a core. */
const BAMBU_PER_PROCESS = 150;
const POLL_S = sized(10, 1);
const ACCESS_CODE = 'farm1234';
const PASSWORD = 'farm-password';

const TARGET_CPU_PERCENT = 10;
const TARGET_RSS_MB = 150;
const TARGET_P99_MS = 50;
const API_INTERVAL_MS = 200;
/** Samples of the daemon's CPU time and RSS; windows of WINDOW_S make the per-minute figures. */
const SAMPLE_S = sized(5, 1);
const WINDOW_S = sized(60, 5);
const ONLINE_TIMEOUT_S = sized(180, 60);
const IDLE_WARMUP_S = sized(20, 2);
const IDLE_MEASURE_S = sized(45, 3);
/** Running jobs get this long to end by themselves after the window; what still runs then is cancelled. */
const DRAIN_CAP_S = sized(150, 20);
/** For the daemon to see the last ends: a Bambu report within a second, a PrusaLink poll within 5 s while a job ran. */
const SETTLE_S = sized(12, 4);
const CLOCK_TICKS_PER_S = 100;

/**
 * Jobs: Bambu Lab 1-2 minutes at 10x (600-1200 simulated seconds, pauses of 20-40 s; the simulator fails 10% and
 * cancels 10%), PrusaLink 1-2 minutes (pauses of 20-40 s; 12% stopped, 5% failed part-way). Each printer runs several
 * jobs in 10 minutes, so jobs start and end throughout; quick mode: jobs of 3-9 s.
 */
const BAMBU_JOBS = sized(
  { speed: 10, jobSeconds: [600, 1200] as [number, number], idleSeconds: [200, 400] as [number, number] },
  // 30x: a tick is 30 simulated seconds, so a pause (3-4 s) spans several reports. With a pause of one tick a cancelled
  // job's FAILED and the next job's PREPARE would leave in the same delta, and FAILED never reach the wire.
  { speed: 30, jobSeconds: [90, 150] as [number, number], idleSeconds: [90, 120] as [number, number] },
);
const PRUSA_JOBS = sized(
  { jobSeconds: [60, 120] as [number, number], idleSeconds: [20, 40] as [number, number] },
  { jobSeconds: [6, 9] as [number, number], idleSeconds: [2, 3] as [number, number] },
);

const log = (line: string) => process.stderr.write(`[farm] ${line}\n`);
const loads = () => os.loadavg().map((n) => round(n, 2));

function minutesFromArgs(): number | undefined {
  const i = process.argv.indexOf('--minutes');
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

/** utime + stime of a process (every thread), in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function findExecutable(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function helper(name: string, script: string, args: string[], nodeFlags: string[] = [], env = process.env): Helper {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
    env,
  });
  return new Helper(name, child);
}

interface Broker {
  url: string;
  kind: string;
  stop(): Promise<void>;
}

/** The mirror's broker on loopback: mosquitto when installed (as the tests use), else aedes in its own process. */
async function startBroker(dir: string): Promise<Broker> {
  const mosquitto = findExecutable('mosquitto');
  if (!mosquitto) {
    const aedes = helper('broker', SIMULATORS, ['--broker']);
    const { port } = (await aedes.ready) as { port: number };
    return { url: `mqtt://127.0.0.1:${port}`, kind: 'aedes', stop: () => aedes.stop() };
  }
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      // Started as root, mosquitto drops to its own user, which cannot read a private temp directory.
      process.getuid?.() === 0 ? 'user root' : '',
      'persistence false',
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child = spawn(mosquitto, ['-c', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (open) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`mosquitto did not start on port ${port}`);
    await sleep(50);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    kind: 'mosquitto',
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/**
 * Preloaded into the farm daemon (with --expose-gc): on SIGWINCH a full GC, then the V8 heap still in use, as one
 * marked line on stderr. Asked for twice only, so that retained memory can be told from the heap V8 merely keeps.
 */
const HEAP_PROBE = `process.on('SIGWINCH', () => { globalThis.gc?.(); process._rawDebug('FARM_HEAP ' + process.memoryUsage().heapUsed); });`;
export const HEAP_PROBE_FLAGS = ['--expose-gc', '--import', `data:text/javascript,${encodeURIComponent(HEAP_PROBE)}`];

interface Daemon {
  child: ChildProcess;
  pid: number;
  port: number;
  dataDir: string;
  /** Log lines at warn level or above so far. */
  warnings(): number;
  /** MB of V8 heap in use right after a full GC (needs HEAP_PROBE_FLAGS); null when it does not answer. */
  heapAfterGc(): Promise<number | null>;
  /** The last lines of its output. */
  tail(): string;
  /** SIGTERM, and how it went. */
  stop(): Promise<{ code: number | string | null; ms: number }>;
}

interface FarmPrinters {
  bambu: BambuPrinterInfo[];
  prusa: { url: string }[];
}

function daemonConfig(printers: FarmPrinters, brokerUrl: string): unknown {
  return {
    log_level: 'info',
    timezone: 'Europe/Berlin',
    printers: [
      ...bambuPrinterConfigs(printers.bambu, ACCESS_CODE),
      ...printers.prusa.map((sim, i) => ({
        name: `Prusa ${i}`,
        type: 'prusa',
        host: sim.url,
        username: 'maker',
        password: PASSWORD,
        poll_interval_s: POLL_S,
      })),
    ],
    mqtt: { enabled: true, url: brokerUrl, discovery: true },
  };
}

/** The built daemon as the add-on starts it, on a free loopback port, with its own data directory. */
async function startDaemon(printers: FarmPrinters, brokerUrl: string, flags: string[], dir: string): Promise<Daemon> {
  const dataDir = mkdtempSync(join(dir, 'daemon-'));
  const configPath = join(dataDir, 'farm-options.json');
  writeFileSync(configPath, JSON.stringify(daemonConfig(printers, brokerUrl)));
  const args = [...flags, join('dist', 'src', 'cli.js'), 'run', '--config', configPath, '--data-dir', dataDir];
  const child = spawn(process.execPath, [...args, '--port', '0', '--host', '127.0.0.1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...addonLaunchEnvironment(),
      // As the image sets them (Dockerfile ENV), and nothing from the caller's shell that would change the daemon.
      NODE_ENV: 'production',
      SQLITE_TMPDIR: os.tmpdir(),
      DO_NOT_TRACK: '1',
      PRINTERNIZER_CONFIG: '',
      PORT: '',
      HOST: '',
      MQTT_URL: '',
      MQTT_USERNAME: '',
      MQTT_PASSWORD: '',
    },
  });
  let warnings = 0;
  let tail = '';
  let heapLine: ((bytes: number) => void) | null = null;
  const keep = (line: string) => {
    tail = `${tail}${line}\n`.slice(-6000);
  };
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon did not start within 60 s:\n${tail}`)), 60_000);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.startsWith('FARM_HEAP ')) heapLine?.(Number(line.slice('FARM_HEAP '.length)));
      else keep(line);
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      keep(line);
      let entry: { level?: number; msg?: string; port?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if ((entry.level ?? 0) >= 40) warnings++;
      if (entry.msg === 'printernizer-stats is running' && entry.port) {
        clearTimeout(timer);
        resolve(entry.port);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the daemon exited (${code}):\n${tail}`));
    });
  });
  return {
    child,
    pid: child.pid as number,
    port,
    dataDir,
    warnings: () => warnings,
    heapAfterGc() {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), 5000);
        heapLine = (bytes) => {
          clearTimeout(timer);
          heapLine = null;
          resolve(round(bytes / 1048576, 1));
        };
        child.kill('SIGWINCH');
      });
    },
    tail: () => tail,
    async stop() {
      const started = performance.now();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
      return { code, ms: Math.round(performance.now() - started) };
    },
  };
}

/** Waits until the daemon shows `expected` printers online (or the timeout); returns how many are. */
async function waitOnline(port: number, expected: number, timeoutS: number): Promise<number> {
  const deadline = performance.now() + timeoutS * 1000;
  let online = 0;
  while (performance.now() < deadline) {
    try {
      const body = (await (await fetch(`http://127.0.0.1:${port}/api/v1/printers`)).json()) as {
        printers: { online: boolean }[];
      };
      online = body.printers.filter((p) => p.online).length;
      if (online >= expected) return online;
    } catch {
      // not answering yet
    }
    await sleep(1000);
  }
  return online;
}

/** CPU of each process over `seconds`, in % of one core, read side by side. */
async function cpuOver(pids: number[], seconds: number): Promise<number[]> {
  const before = pids.map(cpuTicks);
  const started = performance.now();
  await sleep(seconds * 1000);
  const wall = (performance.now() - started) / 1000;
  return pids.map((pid, i) => ((cpuTicks(pid) - (before[i] as number)) / CLOCK_TICKS_PER_S / wall) * 100);
}

interface IdleMeasure {
  bambu: number;
  prusa: number;
  online: number;
  daemonCpu: number;
  readerCpu: number;
  readerReportsPerS: number;
  daemonRssMb: number;
  /** What holding the same sessions and parsing the same reports takes, nothing else: the floor of the daemon's RSS. */
  readerRssMb: number;
}

/** Every printer idle: the daemon and the reader over the same printers, side by side. */
async function measureIdle(daemon: Daemon, printers: FarmPrinters, flags: string[]): Promise<IdleMeasure> {
  const total = printers.bambu.length + printers.prusa.length;
  const online = await waitOnline(daemon.port, total, ONLINE_TIMEOUT_S);
  const options: ReaderOptions = {
    bambu: printers.bambu,
    accessCode: ACCESS_CODE,
    prusa: printers.prusa,
    password: PASSWORD,
    pollS: POLL_S,
  };
  const reader = helper('reader', READER, [JSON.stringify(options)], flags, addonLaunchEnvironment());
  try {
    await reader.ready;
    await sleep(IDLE_WARMUP_S * 1000);
    const before = await reader.call<ReaderCounts>('counts');
    const started = performance.now();
    const [daemonCpu, readerCpu] = (await cpuOver([daemon.pid, reader.pid], IDLE_MEASURE_S)) as [number, number];
    const after = await reader.call<ReaderCounts>('counts');
    const seconds = (performance.now() - started) / 1000;
    const measured: IdleMeasure = {
      bambu: printers.bambu.length,
      prusa: printers.prusa.length,
      online,
      daemonCpu,
      readerCpu,
      readerReportsPerS: (after.reports - before.reports) / seconds,
      daemonRssMb: procStatus(daemon.pid).rssKb / 1024,
      readerRssMb: procStatus(reader.pid).rssKb / 1024,
    };
    log(
      `idle ${measured.bambu} Bambu + ${measured.prusa} PrusaLink (${online} online): daemon ${round(daemonCpu, 2)}%, ` +
        `reader ${round(readerCpu, 2)}% (${round(measured.readerReportsPerS, 1)} reports/s); RSS daemon ` +
        `${round(measured.daemonRssMb, 1)} MB, reader ${round(measured.readerRssMb, 1)} MB; load ${loads().join('/')}`,
    );
    return measured;
  } finally {
    await reader.stop();
  }
}

interface Latencies {
  printers: number[];
  local: number[];
  errors: number;
}

/** Asks both endpoints every API_INTERVAL_MS until `until()`; the time to the last byte of each answer. */
async function pollApi(port: number, until: () => boolean): Promise<Latencies> {
  const out: Latencies = { printers: [], local: [], errors: 0 };
  const endpoints = [
    ['printers', `http://127.0.0.1:${port}/api/v1/printers`],
    ['local', `http://127.0.0.1:${port}/api/v1/usage-stats/local`],
  ] as const;
  let next = performance.now();
  while (!until()) {
    for (const [key, url] of endpoints) {
      const started = performance.now();
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        if (!res.ok) out.errors++;
        out[key].push(performance.now() - started);
      } catch {
        out.errors++;
      }
    }
    next += API_INTERVAL_MS;
    await sleep(Math.max(0, next - performance.now()));
  }
  return out;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

interface Sample {
  t: number;
  ticks: number;
  rssKb: number;
}

/** Job events in the daemon's database (read after it stopped). */
interface Recorded {
  created: number;
  completed: number;
  failed: number;
  byFailure: Record<string, number>;
  events: number;
  errors: number;
}

function recordedJobs(dataDir: string): Recorded {
  const db = new Database(databasePath(dataDir), { readonly: true, fileMustExist: true });
  try {
    const byType = new Map(
      (
        db.prepare('SELECT event_type, COUNT(*) AS n FROM usage_events GROUP BY event_type').all() as {
          event_type: string;
          n: number;
        }[]
      ).map((r) => [r.event_type, r.n] as const),
    );
    const failures = db
      .prepare(
        `SELECT json_extract(metadata, '$.failure_type') AS failure, COUNT(*) AS n FROM usage_events
         WHERE event_type = 'job_failed' GROUP BY 1`,
      )
      .all() as { failure: string; n: number }[];
    return {
      created: byType.get('job_created') ?? 0,
      completed: byType.get('job_completed') ?? 0,
      failed: byType.get('job_failed') ?? 0,
      byFailure: Object.fromEntries(failures.map((f) => [f.failure, f.n])),
      events: [...byType.values()].reduce((a, b) => a + b, 0),
      errors: byType.get('error_occurred') ?? 0,
    };
  } finally {
    db.close();
  }
}

function subtract(a: FarmJobCounts, b: FarmJobCounts): FarmJobCounts {
  return {
    started: a.started - b.started,
    completed: a.completed - b.completed,
    failed: a.failed - b.failed,
    cancelled: a.cancelled - b.cancelled,
    running: a.running,
  };
}

export async function run(): Promise<BenchRow[]> {
  const minutes = minutesFromArgs() ?? Number(process.env.FARM_MINUTES ?? sized(10, 0.25));
  if (!(minutes > 0)) throw new Error('--minutes / FARM_MINUTES must be a positive number');
  const windowS = minutes * 60;
  const built = build();
  // FARM_DAEMON_FLAGS replaces the add-on's flags for the daemon and the reader (trying another V8 setting).
  const override = process.env.FARM_DAEMON_FLAGS;
  const flags = daemonNodeFlags(override);
  const profileDir = process.env.FARM_CPU_PROF;
  const farmFlags = [
    ...flags,
    ...HEAP_PROBE_FLAGS,
    // A sample every 4 ms: the 1 ms default doubled the daemon's CPU and blurred what it measured.
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=4000'] : []),
  ];
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-farm-'));
  const loadAtStart = loads();
  log(
    `${BAMBU} Bambu Lab + ${PRUSA} PrusaLink printers, ${minutes} min; daemon flags '${flags.join(' ')}'` +
      `${override === undefined ? ' (the add-on run script)' : ' (FARM_DAEMON_FLAGS)'}; ${built}`,
  );
  log(`load ${loadAtStart.join('/')} on ${os.cpus().length} cores`);

  const helpers: Helper[] = [];
  const daemons: Daemon[] = [];
  let broker: Broker | null = null;
  try {
    broker = await startBroker(dir);
    // The simulators, in processes of their own, started side by side.
    const bambuHelpers: Helper[] = [];
    for (let first = 0; first < BAMBU; first += BAMBU_PER_PROCESS) {
      const options: BambuFarmOptions = {
        count: Math.min(BAMBU_PER_PROCESS, BAMBU - first),
        first,
        accessCode: ACCESS_CODE,
        ...BAMBU_JOBS,
      };
      bambuHelpers.push(helper(`bambu-${first}`, SIMULATORS, ['--bambu', JSON.stringify(options)]));
    }
    const prusaOptions: PrusaFarmOptions = {
      count: PRUSA,
      password: PASSWORD,
      ...PRUSA_JOBS,
      stopShare: 0.12,
      errorShare: 0.05,
      seed: 15,
    };
    const prusaHelper = helper('prusalink', SIMULATORS, ['--prusalink', JSON.stringify(prusaOptions)]);
    const simHelpers = [...bambuHelpers, prusaHelper];
    helpers.push(...simHelpers);
    const simStarted = performance.now();
    const printers: FarmPrinters = {
      bambu: (await Promise.all(bambuHelpers.map((h) => h.ready))).flat() as BambuPrinterInfo[],
      prusa: (await prusaHelper.ready) as { url: string }[],
    };
    log(`simulators up in ${round((performance.now() - simStarted) / 1000, 1)} s; broker: ${broker.kind}`);
    const allCounts = async () => {
      const [bambu, prusa] = await Promise.all([
        Promise.all(bambuHelpers.map((h) => h.call<FarmCounts>('counts'))),
        prusaHelper.call<FarmCounts>('counts'),
      ]);
      const sum = (list: FarmCounts[]): FarmCounts => ({
        jobs: {
          started: list.reduce((n, c) => n + c.jobs.started, 0),
          completed: list.reduce((n, c) => n + c.jobs.completed, 0),
          failed: list.reduce((n, c) => n + c.jobs.failed, 0),
          cancelled: list.reduce((n, c) => n + c.jobs.cancelled, 0),
          running: list.reduce((n, c) => n + c.jobs.running, 0),
        },
        served: list.reduce((n, c) => n + c.served, 0),
        clients: list.reduce((n, c) => n + c.clients, 0),
        systemRuns: list.reduce((n, c) => n + c.systemRuns, 0),
        unexpectedEnds: list.reduce((n, c) => n + c.unexpectedEnds, 0),
      });
      return { bambu: sum(bambu), prusa: prusa };
    };

    // --- 1. idle scaling: half the farm, then the whole farm (whose daemon then runs the jobs) ------------------
    const half: FarmPrinters = {
      bambu: printers.bambu.slice(0, Math.ceil(printers.bambu.length / 2)),
      prusa: printers.prusa.slice(0, Math.ceil(printers.prusa.length / 2)),
    };
    const halfDaemon = await startDaemon(half, broker.url, flags, dir);
    daemons.push(halfDaemon);
    const idleHalf = await measureIdle(halfDaemon, half, flags);
    await halfDaemon.stop();

    const daemon = await startDaemon(printers, broker.url, farmFlags, dir);
    daemons.push(daemon);
    const startedAt = performance.now();
    const idleFull = await measureIdle(daemon, printers, flags);
    const online = await waitOnline(daemon.port, BAMBU + PRUSA, 1);
    if (online < BAMBU + PRUSA) log(`only ${online} of ${BAMBU + PRUSA} printers online before the jobs start`);

    // --- 2. the farm with jobs ---------------------------------------------------------------------------------
    const countsAtStart = await allCounts();
    await Promise.all(simHelpers.map((h) => h.call('jobs', { on: true })));
    const farmStart = performance.now();
    const elapsed = () => (performance.now() - farmStart) / 1000;
    const samples: Sample[] = [];
    const take = () => samples.push({ t: elapsed(), ticks: cpuTicks(daemon.pid), rssKb: procStatus(daemon.pid).rssKb });
    take();
    const loadByMinute: number[][] = [];
    let heapFirst: number | null = null;
    const api = pollApi(daemon.port, () => elapsed() >= windowS);
    while (elapsed() < windowS) {
      const nextSample = Math.min(windowS, (Math.floor(elapsed() / SAMPLE_S) + 1) * SAMPLE_S);
      await sleep(Math.max(0, nextSample - elapsed()) * 1000);
      if (daemon.child.exitCode !== null) throw new Error(`the daemon exited during the run:\n${daemon.tail()}`);
      take();
      const last = samples[samples.length - 1] as Sample;
      if (Math.round(last.t) % WINDOW_S === 0 || last.t >= windowS) {
        loadByMinute.push(loads());
        // Retained heap once the first minute's jobs run (not in a longer window's last sample, read below).
        if (heapFirst === null && last.t < windowS - 1) heapFirst = await daemon.heapAfterGc();
        const c = await allCounts();
        log(
          `t=${Math.round(last.t)}s rss=${round(last.rssKb / 1024, 1)}MB cpu so far ${round(((last.ticks - (samples[0] as Sample).ticks) / CLOCK_TICKS_PER_S / last.t) * 100, 2)}% ` +
            `jobs bambu ${JSON.stringify(subtract(c.bambu.jobs, countsAtStart.bambu.jobs))} prusa ${JSON.stringify(subtract(c.prusa.jobs, countsAtStart.prusa.jobs))} load ${loads().join('/')}`,
        );
      }
    }
    const latencies = await api;
    const heapEnd = await daemon.heapAfterGc();
    const countsAtEnd = await allCounts();
    const rssSamples = samples.slice(1);

    // --- 3. every job recorded once ----------------------------------------------------------------------------
    await Promise.all(simHelpers.map((h) => h.call('jobs', { on: false })));
    const drainStart = performance.now();
    let running = Number.POSITIVE_INFINITY;
    while (performance.now() - drainStart < DRAIN_CAP_S * 1000) {
      const c = await allCounts();
      running = c.bambu.jobs.running + c.prusa.jobs.running;
      if (running === 0) break;
      await sleep(1000);
    }
    let cancelledAtCap = 0;
    if (running > 0) {
      cancelledAtCap = running;
      log(`${running} jobs still running after ${DRAIN_CAP_S} s: cancelling them`);
      await Promise.all(simHelpers.map((h) => h.call('cancel')));
    }
    const drainS = round((performance.now() - drainStart) / 1000, 1);
    await sleep(SETTLE_S * 1000);
    const finalCounts = await allCounts();
    const warnings = daemon.warnings();
    const stopped = await daemon.stop();
    const recorded = recordedJobs(daemon.dataDir);
    const bambuJobs = subtract(finalCounts.bambu.jobs, countsAtStart.bambu.jobs);
    const prusaJobs = subtract(finalCounts.prusa.jobs, countsAtStart.prusa.jobs);
    const expected = {
      created: bambuJobs.started + prusaJobs.started,
      completed: bambuJobs.completed + prusaJobs.completed,
      failed: bambuJobs.failed + bambuJobs.cancelled + prusaJobs.failed + prusaJobs.cancelled,
      // Bambu FAILED without the cancel code is "failed", its cancel sequence "cancelled"; PrusaLink STOPPED is
      // "cancelled", ERROR "error".
      byFailure: {
        cancelled: bambuJobs.cancelled + prusaJobs.cancelled,
        failed: bambuJobs.failed,
        error: prusaJobs.failed,
      } as Record<string, number>,
    };

    // --- the numbers ------------------------------------------------------------------------------------------
    const first = samples[0] as Sample;
    const last = samples[samples.length - 1] as Sample;
    const cpuAvg = ((last.ticks - first.ticks) / CLOCK_TICKS_PER_S / (last.t - first.t)) * 100;
    const perWindow: number[] = [];
    for (let from = 0; from + WINDOW_S <= windowS + 0.5; from += WINDOW_S) {
      const a = samples.find((s) => s.t >= from - 0.5);
      const b = samples.find((s) => s.t >= from + WINDOW_S - 0.5);
      if (a && b && b.t > a.t) perWindow.push(((b.ticks - a.ticks) / CLOCK_TICKS_PER_S / (b.t - a.t)) * 100);
    }
    const cpuMax = perWindow.length > 0 ? Math.max(...perWindow) : cpuAvg;
    const rssMb = (s: Sample) => s.rssKb / 1024;
    const firstMinute = rssSamples.filter((s) => s.t <= WINDOW_S + 0.5).map(rssMb);
    const lastMinute = rssSamples.filter((s) => s.t >= windowS - WINDOW_S - 0.5).map(rssMb);
    const rssPeak = Math.max(...rssSamples.map(rssMb));
    const windowWall = last.t - first.t;
    const reportsPerS = (countsAtEnd.bambu.served - countsAtStart.bambu.served) / windowWall;
    const requestsPerS = (countsAtEnd.prusa.served - countsAtStart.prusa.served) / windowWall;
    const apiRequests = latencies.printers.length + latencies.local.length;
    const loadAtEnd = loads();
    const loadNote =
      `load 1/5/15 min ${loadAtStart.join('/')} at start, ${loadByMinute.map((l) => l[0]).join(', ')} at each ` +
      `${WINDOW_S} s, ${loadAtEnd.join('/')} at the end (${os.cpus().length} cores)`;
    const farmNote =
      `${BAMBU} Bambu Lab (TLS MQTT, 1 report/s, ${BAMBU_JOBS.speed}x clock) + ${PRUSA} PrusaLink (digest, ` +
      `poll_interval_s ${POLL_S}; 5 s while printing) simulators in ${simHelpers.length} processes, MQTT mirror to ` +
      `${broker.kind} with discovery, daemon 'node ${flags.join(' ')} dist/src/cli.js run' (${built}; plus --expose-gc and a probe for two forced GCs), ` +
      `${minutes} min with jobs after ${round((farmStart - startedAt) / 1000, 0)} s start-up ` +
      `and idle measurement; ${online} online; ${warnings} warn/error log lines; ${apiRequests} API requests ` +
      `(${round((apiRequests / windowWall) * 1, 1)}/s) meanwhile; ${loadNote}`;
    const lat = (values: number[]) =>
      `p50 ${round(percentile(values, 50), 1)} ms, p99 ${round(percentile(values, 99), 1)} ms, max ${round(Math.max(0, ...values), 1)} ms over ${values.length} requests`;
    const jobNote = (pick: (c: FarmJobCounts) => number) =>
      `Bambu Lab ${pick(bambuJobs)}, PrusaLink ${pick(prusaJobs)}`;
    const failureNote = (types: Record<string, number>) =>
      ['cancelled', 'failed', 'error'].map((t) => `${t} ${types[t] ?? 0}`).join(', ');
    const drainNote =
      `after the window: no new jobs, the ${countsAtEnd.bambu.jobs.running + countsAtEnd.prusa.jobs.running} running ` +
      `ended in ${drainS} s${cancelledAtCap > 0 ? ` (${cancelledAtCap} cancelled at the ${DRAIN_CAP_S} s cap)` : ''}, ` +
      `${SETTLE_S} s to settle, SIGTERM exit ${stopped.code} in ${stopped.ms} ms; database read after the stop ` +
      `(${recorded.events} events, ${recorded.errors} error_occurred)`;
    const idleNote = (m: IdleMeasure) =>
      `${m.bambu} Bambu Lab + ${m.prusa} PrusaLink idle (${m.online} online), ${IDLE_MEASURE_S} s after ` +
      `${IDLE_WARMUP_S} s warm-up; RSS daemon ${round(m.daemonRssMb, 1)} MB, reader ${round(m.readerRssMb, 1)} MB; baseline: a reader process with the same ` +
      `flags that receives and JSON-parses the same reports (${round(m.readerReportsPerS, 1)}/s) and polls, nothing else`;
    const added = Math.max(0, idleFull.daemonCpu - idleHalf.daemonCpu);
    const addedBaseline = Math.max(0.01, idleFull.readerCpu - idleHalf.readerCpu);

    const rows: BenchRow[] = [
      row('farm_daemon_cpu', round(cpuAvg, 2), '% of one core', TARGET_CPU_PERCENT, `${farmNote}; baseline = target`),
      row(
        'farm_daemon_cpu_minute_max',
        round(cpuMax, 2),
        '% of one core',
        TARGET_CPU_PERCENT,
        `busiest ${WINDOW_S} s window of ${perWindow.length} (${perWindow.map((c) => round(c, 1)).join(', ')}); baseline = target`,
      ),
      row(
        'farm_daemon_rss_peak',
        round(rssPeak, 1),
        'MB',
        TARGET_RSS_MB,
        `peak of ${SAMPLE_S} s samples; baseline = target`,
      ),
      row(
        'farm_daemon_rss_last_minute',
        round(median(lastMinute), 1),
        'MB',
        round(median(firstMinute), 1),
        `median RSS over the last ${WINDOW_S} s of the window vs the first ${WINDOW_S} s (ratio = growth)`,
      ),
      ...(heapFirst !== null && heapEnd !== null && heapFirst > 0
        ? [
            row(
              'farm_daemon_heap_after_gc',
              heapEnd,
              'MB',
              heapFirst,
              `V8 heap in use right after a forced full GC at the end of the window vs after the first ${WINDOW_S} s (the daemon runs with --expose-gc and a preloaded probe for these two GCs): what the daemon retains, without the garbage V8 lets pile up between its own GCs`,
            ),
          ]
        : []),
      row(
        'farm_api_printers_p99',
        round(percentile(latencies.printers, 99), 1),
        'ms',
        TARGET_P99_MS,
        `GET /api/v1/printers (${BAMBU + PRUSA} printers) every ${API_INTERVAL_MS} ms during the window: ${lat(latencies.printers)}; ${latencies.errors} errors; baseline = target`,
      ),
      row(
        'farm_api_printers_p50',
        round(percentile(latencies.printers, 50), 1),
        'ms',
        TARGET_P99_MS,
        'baseline = the p99 target',
      ),
      row(
        'farm_api_local_p99',
        round(percentile(latencies.local, 99), 1),
        'ms',
        TARGET_P99_MS,
        `GET /api/v1/usage-stats/local every ${API_INTERVAL_MS} ms during the window: ${lat(latencies.local)}; baseline = target`,
      ),
      row(
        'farm_api_local_p50',
        round(percentile(latencies.local, 50), 1),
        'ms',
        TARGET_P99_MS,
        'baseline = the p99 target',
      ),
      row(
        'farm_bambu_reports',
        round(reportsPerS, 1),
        'reports/s',
        BAMBU,
        'reports the Bambu Lab simulators published during the window; baseline = one per printer per second',
      ),
      row(
        'farm_prusalink_requests',
        round(requestsPerS, 1),
        'requests/s',
        round(PRUSA / POLL_S, 1),
        'HTTP requests the PrusaLink simulators answered during the window (digest challenges, job and file reads, 5 s polls while printing included); baseline = one poll per printer per interval',
      ),
      row(
        'farm_idle_cpu_half',
        round(idleHalf.daemonCpu, 2),
        '% of one core',
        round(Math.max(0.01, idleHalf.readerCpu), 2),
        idleNote(idleHalf),
      ),
      row(
        'farm_idle_cpu_full',
        round(idleFull.daemonCpu, 2),
        '% of one core',
        round(Math.max(0.01, idleFull.readerCpu), 2),
        idleNote(idleFull),
      ),
      row(
        'farm_idle_cpu_added',
        round(added, 2),
        '% of one core',
        round(addedBaseline, 2),
        `what the second half of the farm adds to the idle daemon's CPU (${round(idleFull.daemonCpu, 2)} - ${round(idleHalf.daemonCpu, 2)}) vs what it adds to the reader's (${round(idleFull.readerCpu, 2)} - ${round(idleHalf.readerCpu, 2)}): a ratio near the reader's own ratio of daemon to reader means no per-printer work beyond the reports`,
      ),
      row(
        'farm_jobs_created',
        recorded.created,
        'jobs',
        Math.max(1, expected.created),
        `job_created in the database vs jobs the simulators started (${jobNote((c) => c.started)})`,
      ),
      row(
        'farm_jobs_completed',
        recorded.completed,
        'jobs',
        Math.max(1, expected.completed),
        `job_completed vs jobs the simulators finished (${jobNote((c) => c.completed)})`,
      ),
      row(
        'farm_jobs_failed',
        recorded.failed,
        'jobs',
        Math.max(1, expected.failed),
        `job_failed vs jobs the simulators ended otherwise (Bambu Lab ${bambuJobs.failed} failed + ${bambuJobs.cancelled} cancelled, PrusaLink ${prusaJobs.failed} ERROR + ${prusaJobs.cancelled} STOPPED); by failure_type recorded ${failureNote(recorded.byFailure)}, expected ${failureNote(expected.byFailure)}; ${drainNote}`,
      ),
    ];

    const mismatches: string[] = [];
    const compare = (what: string, want: number, got: number) => {
      if (want !== got) mismatches.push(`${what}: simulators ${want}, database ${got}`);
    };
    compare('job_created', expected.created, recorded.created);
    compare('job_completed', expected.completed, recorded.completed);
    compare('job_failed', expected.failed, recorded.failed);
    for (const type of ['cancelled', 'failed', 'error']) {
      compare(`job_failed ${type}`, expected.byFailure[type] ?? 0, recorded.byFailure[type] ?? 0);
    }
    if (finalCounts.bambu.systemRuns > 0) mismatches.push(`${finalCounts.bambu.systemRuns} Bambu calibration runs`);
    if (finalCounts.prusa.unexpectedEnds > 0) {
      mismatches.push(`${finalCounts.prusa.unexpectedEnds} PrusaLink jobs ended in a state nobody asked for`);
    }
    log(
      `jobs expected (simulators) vs recorded (database): created ${expected.created}/${recorded.created}, ` +
        `completed ${expected.completed}/${recorded.completed}, failed ${expected.failed}/${recorded.failed} ` +
        `(${failureNote(expected.byFailure)} / ${failureNote(recorded.byFailure)})`,
    );
    if (expected.created === 0) mismatches.push('no job ran: the farm measured nothing');
    if (mismatches.length > 0) {
      for (const r of rows) log(JSON.stringify(r));
      throw new Error(`not every job was recorded once: ${mismatches.join('; ')}`);
    }
    return rows;
  } finally {
    await Promise.allSettled(daemons.map((d) => d.stop()));
    await Promise.allSettled(helpers.map((h) => h.stop()));
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const r of await run()) console.log(JSON.stringify(r));
  process.exit(0);
}
