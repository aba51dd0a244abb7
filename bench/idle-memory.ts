/**
 * Idle RSS of the daemon with no printers (issue 2, target under 70 MB), beside an idle Node.js process measured at
 * the same time: the built daemon (`npm run build`, then `node dist/src/cli.js run`) and the same under tsx (as
 * `npm start` runs it). Each process gets its own throwaway data directory; after 10 s of idling VmRSS is read from
 * /proc/<pid>/status five times, 2.5 s apart, and the median kept: V8's memory reducer shrinks a freshly started
 * process's heap some 8-10 s after start-up (later under load), and one early sample would catch either side of it.
 *
 *   node --import tsx bench/idle-memory.ts
 *   IDLE_BENCH_SKIP_BUILD=1 node --import tsx bench/idle-memory.ts    # measure the dist/ that is there
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from './types.js';
import { median, QUICK, round, row, sized, sleep } from './util.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const IDLE_S = Number(process.env.IDLE_BENCH_SECONDS ?? sized(10, 1));
const TARGET_MB = 70;
const SAMPLES = sized(5, 3);
const SAMPLE_GAP_MS = sized(2500, 300);

export interface ProcStatus {
  rssKb: number;
  anonKb: number;
  fileKb: number;
}

/** VmRSS and its anonymous / file-backed parts from /proc/<pid>/status (Linux). */
export function procStatus(pid: number): ProcStatus {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon'), fileKb: kb('RssFile') };
}

interface Measured {
  rssMb: number;
  anonMb: number;
  fileMb: number;
}

/**
 * Builds dist/ with the project's build; type errors elsewhere in the tree still emit, so only a missing file fails.
 * In quick mode a dist/ newer than every source is used as it is (three modules build; once is enough for a smoke run).
 */
export function build(): string {
  if (QUICK && distIsFresh()) return 'dist/ up to date (quick mode)';
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js'))) {
    throw new Error(`npm run build produced no dist/src/cli.js:\n${result.stdout}${result.stderr}`);
  }
  const errors = (result.stdout.match(/error TS/g) ?? []).length;
  return errors === 0 ? 'built cleanly' : `built with ${errors} type errors elsewhere in the tree (emitted anyway)`;
}

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((entry) => newestMtime(join(path, entry))));
}

function distIsFresh(): boolean {
  const cli = join(ROOT, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) return false;
  const sources = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((p) => join(ROOT, p));
  return statSync(cli).mtimeMs > Math.max(...sources.filter((p) => existsSync(p)).map(newestMtime));
}

/**
 * Starts `args` (adding it to `children`, to be stopped whatever happens) and resolves once it is ready: at once, or
 * when its log says the daemon is running.
 */
async function start(args: string[], waitForDaemon: boolean, children: ChildProcess[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DO_NOT_TRACK: '1', PRINTERNIZER_CONFIG: '', PORT: '', HOST: '' },
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (out.length < 20_000) out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    if (out.length < 20_000) out += d.toString();
  });
  if (!waitForDaemon) return child;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${out}`)), 30_000);
    const check = () => {
      if (out.includes('printernizer-stats is running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}:\n${out}`));
    });
  });
  return child;
}

async function sample(child: ChildProcess): Promise<Measured> {
  const samples: ProcStatus[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    samples.push(procStatus(child.pid as number));
    if (i < SAMPLES - 1) await sleep(SAMPLE_GAP_MS);
  }
  const mb = (pick: (s: ProcStatus) => number) => round(median(samples.map(pick)) / 1024, 1);
  return { rssMb: mb((s) => s.rssKb), anonMb: mb((s) => s.anonKb), fileMb: mb((s) => s.fileKb) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(6000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

export async function run(): Promise<BenchRow[]> {
  const built = process.env.IDLE_BENCH_SKIP_BUILD === '1' ? 'dist/ as found' : build();
  const dirs = [mkdtempSync(join(tmpdir(), 'bench-idle-')), mkdtempSync(join(tmpdir(), 'bench-idle-'))];
  const daemonArgs = (dir: string) => ['run', '--data-dir', dir, '--port', '0', '--host', '127.0.0.1'];
  const children: ChildProcess[] = [];
  try {
    // All three idle side by side, so that whatever else the machine does weighs on each alike.
    const idleNode = await start(['-e', 'setInterval(() => {}, 1000)'], false, children);
    const [dist, tsx] = await Promise.all([
      start([join('dist', 'src', 'cli.js'), ...daemonArgs(dirs[0] as string)], true, children),
      start(['--import', 'tsx', join('src', 'cli.ts'), ...daemonArgs(dirs[1] as string)], true, children),
    ]);
    await sleep(IDLE_S * 1000);
    // Sampled side by side too, so that the three medians cover the same seconds.
    const [base, built_, underTsx] = await Promise.all([sample(idleNode), sample(dist), sample(tsx)]);
    const parts = (m: Measured) => `anon ${m.anonMb} MB + file-backed ${m.fileMb} MB`;
    const verdict = built_.rssMb < TARGET_MB ? 'under' : 'OVER';
    return [
      row(
        'idle_rss_daemon',
        built_.rssMb,
        'MB',
        base.rssMb,
        `node dist/src/cli.js run, no printers, median of ${SAMPLES} samples from ${IDLE_S} s idle on (${parts(built_)}); ${verdict} the ${TARGET_MB} MB target; ${built}; baseline: idle \`node -e "setInterval(()=>{},1000)"\` (${parts(base)}) measured alongside`,
      ),
      row(
        'idle_rss_daemon_tsx',
        underTsx.rssMb,
        'MB',
        base.rssMb,
        `node --import tsx src/cli.ts run (as npm start), no printers (${parts(underTsx)}); tsx's compiler is part of it; baseline: the same idle node process`,
      ),
    ];
  } finally {
    await Promise.all(children.map(stop));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const r of await run()) console.log(JSON.stringify(r));
}
