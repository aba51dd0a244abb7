/**
 * Every benchmark in quick mode (`bench/run.ts --quick`: small sizes, seconds each), each through `bench/run.ts` as
 * `npm run bench` runs it (the module in its own child process), so that a change that breaks a benchmark fails
 * `npm test`. No timing is judged: only that each module runs, exits cleanly and prints rows that bench/check.ts
 * accepts (finite numbers >= 0, positive baselines, a unit). The modules come from bench/run.ts's list, so
 * a new one is covered once it is there; the last test makes sure no benchmark in bench/ is left out of that list.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rowProblems } from '../../bench/check.js';
import { ALL_MODULES, type BenchReport } from '../../bench/run.js';

const ROOT = join(import.meta.dirname, '..', '..');
const RUN = join(ROOT, 'bench', 'run.ts');
/** Quick mode takes seconds; this is for a loaded 2-core machine running the rest of the suite beside it. */
const MODULE_TIMEOUT_MS = 150_000;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node --import tsx bench/run.ts --quick --only <name> --json`, killed with its whole process group on timeout. */
function benchQuick(name: string): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, '--quick', '--only', name, '--json'], {
      cwd: ROOT,
      env: { ...process.env, BENCH_QUICK: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: a hung module, its simulators and daemons all go on timeout
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20_000);
    });
    const timer = setTimeout(() => {
      stderr += `\n[smoke] killed after ${MODULE_TIMEOUT_MS - 5000} ms`;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }, MODULE_TIMEOUT_MS - 5000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('benchmarks in quick mode', () => {
  it.each(ALL_MODULES)(
    '%s runs and prints sane rows',
    async (name) => {
      const started = performance.now();
      const { code, stdout, stderr } = await benchQuick(name);
      let report: BenchReport | null = null;
      try {
        report = JSON.parse(stdout) as BenchReport;
      } catch {
        // no report: the exit code and stderr say why
      }
      const failure = report?.modules.find((m) => m.error)?.error ?? stderr.split('\n').slice(-30).join('\n');
      expect(code, `bench ${name} failed: ${failure}`).toBe(0);
      expect(report?.modules.map((m) => m.module)).toEqual([name]);
      const rows = report?.rows ?? [];
      expect(rowProblems(rows), JSON.stringify(rows)).toEqual([]);
      expect(rows.length).toBeGreaterThan(0);
      process.stderr.write(
        `[smoke] ${name}: ${rows.length} rows in ${Math.round((performance.now() - started) / 100) / 10} s\n`,
      );
    },
    MODULE_TIMEOUT_MS,
  );

  it('covers every benchmark in bench/ (each exporting run() is in bench/run.ts)', () => {
    const benchmarks = readdirSync(join(ROOT, 'bench'))
      .filter((file) => file.endsWith('.ts'))
      .filter((file) => /^export async function run\(/m.test(readFileSync(join(ROOT, 'bench', file), 'utf8')))
      .map((file) => file.replace(/\.ts$/, ''));
    expect(benchmarks.length).toBeGreaterThan(0);
    expect([...ALL_MODULES].sort()).toEqual(benchmarks.sort());
  });
});
