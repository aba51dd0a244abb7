/** Small helpers shared by the benchmarks. */
import type { BenchRow } from './types.js';

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
