/**
 * `npm run bench`: every benchmark of the project, one after another, each in a fresh child process (so that one
 * module's heap and sockets do not show in the next one's memory numbers), printed as one table with the machine on
 * top. Every row carries a baseline measured in the same run; ratio = value / baseline.
 *
 *   npm run bench                              # every module except the soak
 *   npm run bench -- --only stats,idle-memory  # some modules (names as in bench/<name>.ts)
 *   npm run bench -- --json                    # machine-readable, on stdout (progress goes to stderr)
 *   npm run bench -- --markdown                # the table as Markdown, for the README
 *   npm run bench -- --soak [--minutes N]      # add the soak (issue 8 item 5; 10 minutes by default)
 *   npm run bench -- --only soak --minutes 10  # the soak alone
 *   npm run bench -- --only farm --minutes 10  # the print farm alone (300 Bambu Lab + 200 PrusaLink, 10 minutes)
 *   npm run bench -- --quick                   # every module with small sizes, seconds each (also BENCH_QUICK=1);
 *                                              # what the smoke test in `npm test` runs, the numbers mean nothing
 *
 * A module fails when it throws, exits early, or returns rows that bench/check.ts rejects (none, NaN, zero, a unit
 * missing). Exit code 0 when every selected module ran, 1 when one failed (each failure is named with its error at
 * the end, the others still run), 2 on bad arguments.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { rowProblems } from './check.js';
import type { BenchRow } from './types.js';
import { isQuick } from './util.js';

/** In the order they run: the quick, quiet ones first, the long fleet runs last. */
export const MODULES = [
  'stats',
  'bambu-report',
  'idle-memory',
  'collector',
  'collector-pg',
  'bambu-fleet',
  'bambu-fleet-daemon',
  'prusalink-fleet',
  'farm',
] as const;
/** Run only when asked for (`--soak`, or named in `--only`). */
export const OPTIONAL_MODULES = ['soak'] as const;
/** Every module there is: the list the smoke test (tests/bench/smoke.test.ts) runs in quick mode. */
export const ALL_MODULES: readonly string[] = [...MODULES, ...OPTIONAL_MODULES];

export interface Machine {
  os: string;
  cpu: string;
  cores: number;
  memory_gb: number;
  node: string;
  date: string;
  load_at_start: number[];
}

export interface ModuleRun {
  module: string;
  seconds: number;
  /** 1, 5 and 15 minute load averages when the module finished. */
  load_after: number[];
  error?: string;
}

export interface BenchReport {
  machine: Machine;
  modules: ModuleRun[];
  rows: BenchRow[];
}

const here = fileURLToPath(import.meta.url);

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memory_gb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    date: new Date().toISOString(),
    load_at_start: loadAverages(),
  };
}

const loadAverages = () => os.loadavg().map((n) => Math.round(n * 100) / 100);

/** What the child leaves in its out file: its rows, or why it failed. */
type ChildResult = { rows: BenchRow[] } | { error: string };

/** Runs one module in a child process; its own output goes to our stderr so that --json stays clean. */
async function runModule(
  name: string,
  opts: { minutes?: string | undefined; quick: boolean },
): Promise<{ rows: BenchRow[]; run: ModuleRun }> {
  const started = performance.now();
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-run-'));
  const out = join(dir, 'result.json');
  const env = {
    ...process.env,
    ...(opts.minutes === undefined ? {} : { SOAK_MINUTES: opts.minutes, FARM_MINUTES: opts.minutes }),
    ...(opts.quick ? { BENCH_QUICK: '1' } : {}),
  };
  const child = spawn(process.execPath, ['--import', 'tsx', here, '--child', name, '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  // The last lines, for a child that died before it could say why (a crash in a callback, a signal).
  let tail = '';
  const keep = (d: Buffer) => {
    process.stderr.write(d);
    tail = (tail + d.toString()).slice(-2000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const run = (error?: string): ModuleRun => ({
    module: name,
    seconds,
    load_after: loadAverages(),
    ...(error === undefined ? {} : { error }),
  });
  try {
    let result: ChildResult | null = null;
    try {
      result = JSON.parse(readFileSync(out, 'utf8')) as ChildResult;
    } catch {
      // no result file: the child died early; the exit code and its last output say the rest
    }
    if (result && 'error' in result) return { rows: [], run: run(result.error) };
    if (result === null || code !== 0) {
      const last = tail
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(-12)
        .join('\n');
      return { rows: [], run: run(`exited with code ${code} before reporting its rows${last ? `:\n${last}` : ''}`) };
    }
    return { rows: result.rows, run: run() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Child side: import bench/<name>.ts, run it, check its rows, write them or the error, and leave (some modules keep
 * sockets around).
 */
async function child(name: string, out: string): Promise<never> {
  let result: ChildResult;
  try {
    const path = join(fileURLToPath(new URL('.', import.meta.url)), `${name}.ts`);
    const mod = (await import(pathToFileURL(path).href)) as { run?: () => Promise<BenchRow[]> };
    if (typeof mod.run !== 'function') throw new Error(`bench/${name}.ts exports no run()`);
    const rows = await mod.run();
    const problems = rowProblems(rows);
    result = problems.length === 0 ? { rows } : { error: `bad rows: ${problems.join('; ')}` };
  } catch (error) {
    const e = error as Error;
    // The message, and where it was thrown: the first stack frame inside the project.
    const at = e.stack
      ?.split('\n')
      .find((l) => /^\s+at /.test(l) && (l.includes('/bench/') || l.includes('/src/')))
      ?.trim();
    result = { error: `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}${at ? ` (${at})` : ''}` };
  }
  writeFileSync(out, JSON.stringify(result));
  process.exit('error' in result ? 1 : 0);
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

const HEADER = ['name', 'value', 'unit', 'baseline', 'ratio'];

function cells(row: BenchRow): string[] {
  return [row.name, formatNumber(row.value), row.unit, formatNumber(row.baseline), row.ratio.toFixed(3)];
}

function machineLine(m: Machine): string {
  return `${m.os}; ${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB; Node.js ${m.node}; ${m.date}`;
}

function loadLine(runs: ModuleRun[], m: Machine): string {
  const parts = runs.map((r) => `${r.module} ${r.load_after.join('/')} (${r.seconds} s)`);
  return `load average 1/5/15 min: at start ${m.load_at_start.join('/')}; after ${parts.join('; after ')}`;
}

export function formatText(report: BenchReport): string {
  const rows = report.rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 || i === 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ');
  const out = [
    `machine: ${machineLine(report.machine)}`,
    '',
    line(HEADER),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...rows.map(line),
    '',
    loadLine(report.modules, report.machine),
  ];
  for (const run of report.modules) if (run.error) out.push(`FAILED ${run.module}: ${run.error}`);
  out.push('', 'notes:');
  for (const row of report.rows) if (row.note) out.push(`  ${row.name}: ${row.note}`);
  return `${out.join('\n')}\n`;
}

export function formatMarkdown(report: BenchReport): string {
  const out = [
    `Machine: ${machineLine(report.machine)}`,
    '',
    `| ${HEADER.join(' | ')} |`,
    '| --- | ---: | --- | ---: | ---: |',
    ...report.rows.map((r) => `| ${cells(r).join(' | ')} |`),
    '',
    `${loadLine(report.modules, report.machine)}.`,
  ];
  for (const run of report.modules) if (run.error) out.push('', `FAILED ${run.module}: ${run.error}`);
  return `${out.join('\n')}\n`;
}

async function main(): Promise<number> {
  let values: { only?: string; json?: boolean; markdown?: boolean; soak?: boolean; minutes?: string; quick?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        only: { type: 'string' },
        json: { type: 'boolean' },
        markdown: { type: 'boolean' },
        soak: { type: 'boolean' },
        minutes: { type: 'string' },
        quick: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  const known = ALL_MODULES;
  const selected = values.only
    ? values.only
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [...MODULES, ...(values.soak ? OPTIONAL_MODULES : [])];
  const unknown = selected.filter((name) => !known.includes(name));
  if (unknown.length > 0 || selected.length === 0) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ') || '(none)'}; known: ${known.join(', ')}\n`);
    return 2;
  }
  if (values.minutes !== undefined && !(Number(values.minutes) > 0)) {
    process.stderr.write('--minutes must be a positive number\n');
    return 2;
  }

  const quick = values.quick === true || isQuick(process.env, []);
  const report: BenchReport = { machine: machine(), modules: [], rows: [] };
  for (const name of selected) {
    process.stderr.write(`[bench] ${name}${quick ? ' (quick)' : ''} ...\n`);
    const { rows, run } = await runModule(name, { minutes: values.minutes, quick });
    process.stderr.write(`[bench] ${name} ${run.error ? `FAILED: ${run.error}` : 'done'} in ${run.seconds} s\n`);
    report.modules.push(run);
    report.rows.push(...rows);
  }
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (values.markdown) process.stdout.write(formatMarkdown(report));
  else process.stdout.write(formatText(report));
  const failed = report.modules.filter((r) => r.error);
  if (failed.length === 0) return 0;
  // Last on stderr too, so that it is the last thing seen whatever the format.
  process.stderr.write(`\n[bench] ${failed.length} of ${report.modules.length} modules FAILED:\n`);
  for (const r of failed) process.stderr.write(`  ${r.module}: ${r.error}\n`);
  return 1;
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  await child(process.argv[childIndex + 1] as string, process.argv[process.argv.indexOf('--out') + 1] as string);
} else if (process.argv[1] && here === process.argv[1]) {
  process.exitCode = await main();
}
