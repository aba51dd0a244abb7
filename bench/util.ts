/** Small helpers shared by the benchmarks. */
import type { BenchRow } from './types.js';

/**
 * Quick mode (`BENCH_QUICK=1`, or `--quick` on the command line): every module runs with small sizes and short
 * windows, seconds each, so that `npm test` can run them all and see that they still work. Its numbers mean nothing.
 */
export const QUICK = isQuick(process.env, process.argv);

export function isQuick(env: NodeJS.ProcessEnv, argv: readonly string[]): boolean {
  const flag = env.BENCH_QUICK;
  return argv.includes('--quick') || (flag !== undefined && flag !== '' && flag !== '0' && flag !== 'false');
}

/** `full` normally, `quick` in quick mode: `const PRINTERS = sized(50, 3);`. */
export function sized<T>(full: T, quick: T): T {
  return QUICK ? quick : full;
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A row with its ratio to the baseline measured in the same run. */
export function row(name: string, value: number, unit: string, baseline: number, note?: string): BenchRow {
  return { name, value, unit, baseline, ratio: baseline === 0 ? 0 : round(value / baseline, 3), note };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

export interface ProcessUsage {
  /** CPU time of this process as a percentage of one core over the window. */
  cpuPercent: number;
  wallMs: number;
  rssPeak: number;
  rssEnd: number;
}

/** Waits `durationS` seconds while sampling this process's CPU time and peak RSS. */
export async function measureProcess(durationS: number): Promise<ProcessUsage> {
  const cpuAtStart = process.cpuUsage();
  const wallAtStart = performance.now();
  let rssPeak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 500);
  await sleep(durationS * 1000);
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpuAtStart);
  const wallMs = performance.now() - wallAtStart;
  const rssEnd = process.memoryUsage().rss;
  return { cpuPercent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100, wallMs, rssPeak, rssEnd };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Config entries for simulated Bambu Lab printers on loopback, as the fleet benchmarks hand them to the daemon. */
export function bambuPrinterConfigs(sims: readonly { port: number; serial: string }[], accessCode: string) {
  return sims.map((sim, i) => ({
    name: `Bambu ${i}`,
    type: 'bambu_lab' as const,
    host: '127.0.0.1',
    port: sim.port,
    serial: sim.serial,
    access_code: accessCode,
    tls: true,
    verify_certificate: false,
  }));
}
