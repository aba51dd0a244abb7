/**
 * Soak (issue 8 item 5; run by hand, not in CI, not in the default `npm run bench`): the real daemon (built dist/)
 * against 50 simulated printers, 25 Bambu Lab (MQTT over TLS, a report a second) and 25 PrusaLink (polled every
 * second), running jobs by themselves on a fast clock, for 10 minutes by default. Shows:
 * - RSS growth after a 1-minute warm-up (target under 10%), sampled from /proc every 10 s;
 * - no handle or listener leak: active handles and the listeners attached to them (from a probe preloaded into the
 *   daemon with --import), and its open file descriptors, after warm-up vs at the end;
 * - every job counted: jobs the simulators started and finished in the window vs the job_created, job_completed and
 *   job_failed events in the daemon's database over the same window.
 *
 *   npm run bench -- --only soak [--minutes N]
 *   node --import tsx bench/soak.ts --minutes 2
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { databasePath } from '../src/db/open.js';
import type { BambuSimulator, SimulatedModel } from '../src/simulators/bambu.js';
import type { PrusaLinkSimModel, PrusaLinkSimulator } from '../src/simulators/prusalink.js';
import { addonLaunchEnvironment, daemonNodeFlags } from './addon-launch.js';
import { build, procStatus } from './idle-memory.js';
import type { BenchRow } from './types.js';
import { bambuPrinterConfigs, median, round, row, sized, sleep } from './util.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const BAMBU = sized(25, 3);
const PRUSA = sized(25, 2);
/** Simulated seconds per real second: a Bambu job (900-1500 s) takes 30-50 s, a PrusaLink job 20-80 s (24-36x). */
const SPEED = 30;
const SAMPLE_S = sized(10, 1);
/** Time for the daemon to see what the simulators did (a report a second, a poll a second) before comparing. */
const SETTLE_S = sized(4, 1);
/**
 * The harness sees a simulator's state change up to one watch interval late, the daemon (whose poll can be what moves
 * a PrusaLink simulator on) sometimes first: the upper bounds are read this long after the database, so that a job
 * the daemon recorded just before the read is in them.
 */
const HARNESS_LAG_MS = 1000;
const ACCESS_CODE = 'soak1234';
const PASSWORD = 'soak-password';
const TARGET_GROWTH_PERCENT = 10;
const BAMBU_MODELS: { model: SimulatedModel; prefix: string }[] = [
  { model: 'X1C', prefix: '00M' },
  { model: 'P1S', prefix: '01P' },
  { model: 'P1P', prefix: '01S' },
  { model: 'A1', prefix: '039' },
  { model: 'A1 mini', prefix: '030' },
];
const PRUSA_MODELS: PrusaLinkSimModel[] = ['MK4', 'MINI', 'XL', 'CORE One'];

/**
 * Preloaded into the daemon: on SIGUSR2 it prints its active handles, the listeners on them and on `process`, and its
 * heap, as one marked line on stderr; on SIGWINCH the same after a full GC (the daemon runs with --expose-gc), which
 * the soak asks for only after warm-up and at the end, so that retained heap can be compared without GCs in between.
 */
const PROBE = `
import v8 from 'node:v8';
const count = (e) => typeof e?.eventNames === 'function' ? e.eventNames().reduce((n, name) => n + e.listenerCount(name), 0) : 0;
const report = (gc) => {
  if (gc && typeof globalThis.gc === 'function') globalThis.gc();
  const handles = process._getActiveHandles();
  const probe = { handles: handles.length, requests: process._getActiveRequests().length,
    handle_listeners: handles.reduce((n, h) => n + count(h), 0), process_listeners: count(process),
    heap_used: process.memoryUsage().heapUsed, heap_total: process.memoryUsage().heapTotal,
    external: process.memoryUsage().external, array_buffers: process.memoryUsage().arrayBuffers, gc: gc === true,
    spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.physical_space_size / 1024)])) };
  process._rawDebug('SOAK_PROBE ' + JSON.stringify(probe));
};
process.on('SIGUSR2', () => report(false));
process.on('SIGWINCH', () => report(true));
`;

interface Probe {
  handles: number;
  requests: number;
  handle_listeners: number;
  process_listeners: number;
  heap_used: number;
  heap_total: number;
  external: number;
  array_buffers: number;
  gc: boolean;
  /** Physical size of each V8 heap space, KiB. */
  spaces: Record<string, number>;
}

interface Sample {
  t: number;
  rssKb: number;
  fds: number;
  probe: Probe | null;
}

/** Jobs as the simulators ran them, counted by watching their state four times a second. */
interface JobCounts {
  started: number;
  completed: number;
  failed: number;
}

interface Watched {
  bambu: { sim: BambuSimulator; last: string }[];
  prusa: { sim: PrusaLinkSimulator; lastId: number | null; lastState: string }[];
  counts: JobCounts;
}

function watch(watched: Watched): void {
  const { counts } = watched;
  for (const w of watched.bambu) {
    const state = w.sim.state();
    if (state !== w.last) {
      if (state === 'PREPARE' || (state === 'RUNNING' && w.last !== 'PREPARE' && w.last !== 'PAUSE')) counts.started++;
      if (state === 'FINISH') counts.completed++;
      if (state === 'FAILED') counts.failed++;
      w.last = state;
    }
  }
  for (const w of watched.prusa) {
    const state = w.sim.state;
    const id = w.sim.jobId;
    if (id !== null && id !== w.lastId) counts.started++;
    if (state !== w.lastState) {
      if (state === 'FINISHED') counts.completed++;
      if (state === 'STOPPED' || state === 'ERROR') counts.failed++;
      w.lastState = state;
    }
    if (id !== null) w.lastId = id;
  }
}

function dbCounts(dataDir: string): JobCounts {
  const db = new Database(databasePath(dataDir), { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare(
        `SELECT event_type, COUNT(*) AS n FROM usage_events
         WHERE event_type IN ('job_created', 'job_completed', 'job_failed') GROUP BY event_type`,
      )
      .all() as { event_type: string; n: number }[];
    const get = (type: string) => rows.find((r) => r.event_type === type)?.n ?? 0;
    return { started: get('job_created'), completed: get('job_completed'), failed: get('job_failed') };
  } finally {
    db.close();
  }
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** utime + stime of a process in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function minutesFromArgs(): number | undefined {
  const i = process.argv.indexOf('--minutes');
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

export interface SoakOptions {
  minutes?: number;
  warmupS?: number;
}

export async function run(opts: SoakOptions = {}): Promise<BenchRow[]> {
  const minutes = opts.minutes ?? minutesFromArgs() ?? Number(process.env.SOAK_MINUTES ?? sized(10, 0.15));
  const warmupS = opts.warmupS ?? Number(process.env.SOAK_WARMUP_S ?? sized(60, 3));
  const durationS = minutes * 60;
  if (!(durationS > warmupS))
    throw new Error(`the soak (${durationS} s) must be longer than its warm-up (${warmupS} s)`);
  const log = (line: string) => process.stderr.write(`[soak] ${line}\n`);
  const built = build();
  log(`dist: ${built}`);

  // The simulators run here, in the harness; only the daemon is measured.
  const { startBambuSimulator } = await import('../src/simulators/bambu.js');
  const { startPrusaLinkSimulator } = await import('../src/simulators/prusalink.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-soak-'));
  const bambu: BambuSimulator[] = [];
  const prusa: PrusaLinkSimulator[] = [];
  let daemon: ChildProcess | null = null;
  let watcher: NodeJS.Timeout | null = null;
  try {
    for (let i = 0; i < BAMBU; i++) {
      const { model, prefix } = BAMBU_MODELS[i % BAMBU_MODELS.length] as (typeof BAMBU_MODELS)[number];
      bambu.push(
        await startBambuSimulator({
          serial: `${prefix}00A${String(200000000 + i)}`,
          accessCode: ACCESS_CODE,
          model,
          speed: SPEED,
          tickMs: 1000,
          autoJobs: true,
          // Different lengths spread the job starts, so few fall on the comparison's boundaries. Quick mode: jobs of
          // 1.5-2.5 s, so that every printer starts and ends some within its few seconds.
          jobSeconds: sized(900 + ((i * 37) % 600), 45 + ((i * 11) % 30)),
          idleSeconds: sized(90 + ((i * 13) % 60), 30),
        }),
      );
    }
    for (let i = 0; i < PRUSA; i++) {
      prusa.push(
        await startPrusaLinkSimulator({
          flavour: i % 5 === 4 ? 'rpi' : 'buddy',
          model: PRUSA_MODELS[i % PRUSA_MODELS.length],
          password: PASSWORD,
          // PrusaLink job lengths are random already; a spread of clock speeds desynchronises the first starts too.
          speed: SPEED - 6 + ((i * 7) % 13),
          autoJobs: true,
        }),
      );
    }
    const options = {
      log_level: 'warning',
      timezone: 'Europe/Berlin',
      printers: [
        ...bambuPrinterConfigs(bambu, ACCESS_CODE),
        ...prusa.map((sim, i) => ({
          name: `Prusa ${i}`,
          type: 'prusa',
          host: sim.url,
          username: 'maker',
          password: PASSWORD,
          poll_interval_s: 1,
        })),
      ],
    };
    writeFileSync(join(dataDir, 'options.json'), JSON.stringify(options));

    const watched: Watched = {
      bambu: bambu.map((sim) => ({ sim, last: sim.state() })),
      prusa: prusa.map((sim) => ({ sim, lastId: sim.jobId, lastState: sim.state })),
      counts: { started: 0, completed: 0, failed: 0 },
    };
    watcher = setInterval(() => watch(watched), 250);
    const simCounts = (): JobCounts => ({ ...watched.counts });

    const probeUrl = `data:text/javascript,${encodeURIComponent(PROBE)}`;
    const child = spawn(
      process.execPath,
      [
        // The flags the add-on and the image start the daemon with; SOAK_DAEMON_FLAGS='' measures without them.
        ...daemonFlags(),
        '--expose-gc',
        '--import',
        probeUrl,
        join('dist', 'src', 'cli.js'),
        'run',
        '--data-dir',
        dataDir,
        '--port',
        '0',
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...addonLaunchEnvironment(),
          DO_NOT_TRACK: '1',
          HOST: '127.0.0.1',
          PORT: '',
          PRINTERNIZER_CONFIG: '',
        },
      },
    );
    daemon = child;
    const pid = child.pid as number;
    let lastProbe: Probe | null = null;
    let output = '';
    let warnings = 0;
    const keep = (text: string) => {
      output = (output + text).slice(-8000);
    };
    child.stdout?.on('data', (d: Buffer) => {
      const text = d.toString();
      warnings += (text.match(/"level":(40|50|60)/g) ?? []).length;
      keep(text);
    });
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (line.startsWith('SOAK_PROBE ')) lastProbe = JSON.parse(line.slice('SOAK_PROBE '.length)) as Probe;
        else if (line) keep(`${line}\n`);
      }
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const startedAt = performance.now();
    const elapsed = () => (performance.now() - startedAt) / 1000;
    log(`daemon pid ${pid} with ${BAMBU} Bambu + ${PRUSA} PrusaLink printers; ${minutes} min, warm-up ${warmupS} s`);

    /** A fresh probe answer: ask for it, wait for the line. */
    const probeNow = async (gc = false): Promise<Probe | null> => {
      lastProbe = null;
      child.kill(gc ? 'SIGWINCH' : 'SIGUSR2');
      for (let i = 0; i < 20 && lastProbe === null; i++) await sleep(100);
      return lastProbe;
    };
    const samples: Sample[] = [];
    const takeSample = async (): Promise<Sample> => {
      if (child.exitCode !== null) throw new Error(`the daemon exited (${child.exitCode}):\n${output}`);
      const status = procStatus(pid);
      const s: Sample = { t: round(elapsed(), 1), rssKb: status.rssKb, fds: fdCount(pid), probe: null };
      s.probe = await probeNow();
      samples.push(s);
      const mib = (bytes: number | undefined) => round((bytes ?? 0) / 1048576, 1);
      const spaces = s.probe?.spaces ?? {};
      log(
        `t=${s.t}s rss=${mib(s.rssKb * 1024)}MB (anon ${mib(status.anonKb * 1024)}) fds=${s.fds} ` +
          `handles=${s.probe?.handles} listeners=${s.probe?.handle_listeners}+${s.probe?.process_listeners} ` +
          `heap=${mib(s.probe?.heap_used)}/${mib(s.probe?.heap_total)}MB ` +
          `(new ${mib((spaces.new_space ?? 0) * 1024)}, old ${mib((spaces.old_space ?? 0) * 1024)}) ` +
          `external=${mib(s.probe?.external)}MB sim jobs=${JSON.stringify(watched.counts)}`,
      );
      return s;
    };

    // Warm-up: connections, TLS sessions, first jobs, caches.
    while (elapsed() < warmupS) {
      await sleep(SAMPLE_S * 1000 - (elapsed() % SAMPLE_S) * 1000);
      await takeSample();
    }
    const heapAtWarm = (await probeNow(true))?.heap_used ?? 0;
    const cpuAtWarm = cpuSeconds(pid);
    const wallAtWarm = elapsed();
    const simAtWarm = simCounts();
    await sleep(SETTLE_S * 1000);
    const dbAtWarm = dbCounts(dataDir);
    await sleep(HARNESS_LAG_MS);
    const simAtWarmSettled = simCounts();
    const warmIndex = samples.length;

    while (elapsed() < durationS) {
      await sleep(Math.min(SAMPLE_S * 1000 - (elapsed() % SAMPLE_S) * 1000, (durationS - elapsed()) * 1000 + 10));
      await takeSample();
    }
    const cpuEnd = cpuSeconds(pid);
    const wallEnd = elapsed();
    const simAtEnd = simCounts();
    await sleep(SETTLE_S * 1000);
    const dbAtEnd = dbCounts(dataDir);
    await sleep(HARNESS_LAG_MS);
    const simAtEndSettled = simCounts();
    const last = await takeSample();
    const heapAtEnd = (await probeNow(true))?.heap_used ?? 0;

    // Stop the daemon as a user would, and time it.
    const stopStarted = performance.now();
    child.kill('SIGTERM');
    const exitCode = await Promise.race([exited, sleep(10_000).then(() => 'timeout' as const)]);
    const stopMs = Math.round(performance.now() - stopStarted);
    daemon = null;
    if (exitCode === 'timeout') child.kill('SIGKILL');

    const after = samples.slice(warmIndex);
    const firstAfterWarm = samples.slice(warmIndex - 1, warmIndex + 2); // the sample at warm-up end and the next two
    const lastThree = samples.slice(-3);
    const rssStart = median(firstAfterWarm.map((s) => s.rssKb)) / 1024;
    const rssEnd = median(lastThree.map((s) => s.rssKb)) / 1024;
    const rssPeak = Math.max(...after.map((s) => s.rssKb)) / 1024;
    const growth = ((rssEnd - rssStart) / rssStart) * 100;
    const warm = samples[warmIndex - 1] as Sample;
    const cpuPercent = ((cpuEnd - cpuAtWarm) / (wallEnd - wallAtWarm)) * 100;

    // Every job counted: the daemon's count over the window lies between what the simulators had done when the window
    // closed and what they had done once the daemon had had SETTLE_S to see it (same at the window's start): nothing
    // the simulators did is missing, nothing is doubled.
    const window = (pick: (c: JobCounts) => number) => ({
      db: pick(dbAtEnd) - pick(dbAtWarm),
      low: pick(simAtEnd) - pick(simAtWarmSettled),
      high: pick(simAtEndSettled) - pick(simAtWarm),
    });
    const created = window((c) => c.started);
    const finished = window((c) => c.completed + c.failed);
    const completed = window((c) => c.completed);
    const failed = window((c) => c.failed);
    const within = (w: { db: number; low: number; high: number }) => w.db >= w.low && w.db <= w.high;
    const everyJobCounted = [created, completed, failed].every(within);
    const bracket = (w: { db: number; low: number; high: number }) =>
      `db ${w.db}, simulators ${w.low === w.high ? w.low : `${w.low}..${w.high}`}${within(w) ? '' : ' MISMATCH'}`;
    const handlesStart = warm.probe?.handles ?? -1;
    const handlesEnd = last.probe?.handles ?? -1;
    const listenersStart = (warm.probe?.handle_listeners ?? 0) + (warm.probe?.process_listeners ?? 0);
    const listenersEnd = (last.probe?.handle_listeners ?? 0) + (last.probe?.process_listeners ?? 0);
    const measuredMin = round((wallEnd - wallAtWarm) / 60, 1);
    const space = (sample: Sample, name: string) => round((sample.probe?.spaces[name] ?? 0) / 1024, 1);
    const summary =
      `${BAMBU} Bambu (TLS MQTT, 1 report/s) + ${PRUSA} PrusaLink (1 s polls) simulators at ${SPEED}x, ` +
      `daemon flags '${daemonFlags().join(' ')}', ` +
      `${minutes} min (${measuredMin} min after a ${warmupS} s warm-up); daemon CPU ${round(cpuPercent, 1)}% of one core, ` +
      `${warnings} warn/error log lines, SIGTERM exit ${exitCode} in ${stopMs} ms`;
    log(summary);
    log(`jobs created: ${bracket(created)}; completed: ${bracket(completed)}; failed: ${bracket(failed)}`);
    return [
      row(
        'soak_rss',
        round(rssEnd, 1),
        'MB',
        round(rssStart, 1),
        `${summary}; RSS growth ${round(growth, 1)}% (target < ${TARGET_GROWTH_PERCENT}%), peak ${round(rssPeak, 1)} MB; V8 new space ${space(warm, 'new_space')} -> ${space(last, 'new_space')} MB, old space ${space(warm, 'old_space')} -> ${space(last, 'old_space')} MB; baseline: RSS right after warm-up (median of 3 samples, 10 s apart; value likewise at the end)`,
      ),
      row(
        'soak_heap_after_gc',
        round(heapAtEnd / 1048576, 1),
        'MB',
        round(heapAtWarm / 1048576, 1),
        'V8 heap used right after a full GC in the daemon, at the end vs after warm-up (the two only forced GCs): retained memory, without the garbage a sample may catch',
      ),
      row(
        'soak_active_handles',
        handlesEnd,
        'handles',
        handlesStart,
        `process._getActiveHandles() in the daemon at the end vs after warm-up; open fds ${last.fds} vs ${warm.fds}`,
      ),
      row(
        'soak_listeners',
        listenersEnd,
        'listeners',
        listenersStart,
        `listeners on the daemon's active handles plus on process, at the end vs after warm-up (process: ${last.probe?.process_listeners} vs ${warm.probe?.process_listeners})`,
      ),
      row(
        'soak_jobs_created',
        created.db,
        'jobs',
        created.high,
        `job_created events over the window vs jobs the simulators started; ${bracket(created)}; every job counted: ${everyJobCounted ? 'yes' : 'NO'}`,
      ),
      row(
        'soak_jobs_finished',
        finished.db,
        'jobs',
        finished.high,
        `job_completed + job_failed vs jobs the simulators ended; completed ${bracket(completed)}; failed/cancelled ${bracket(failed)}`,
      ),
    ];
  } finally {
    if (watcher) clearInterval(watcher);
    if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
    await Promise.allSettled([...bambu.map((s) => s.stop()), ...prusa.map((s) => s.stop())]);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const r of await run()) console.log(JSON.stringify(r));
  process.exit(0);
}

/** As rootfs/.../run starts the daemon (its node flags), unless SOAK_DAEMON_FLAGS tries others. */
function daemonFlags(): string[] {
  return daemonNodeFlags(process.env.SOAK_DAEMON_FLAGS);
}
