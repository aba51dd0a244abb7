/** One measured number beside a baseline measured in the same run; ratio = value / baseline. */
export type BenchRow = { name: string; value: number; unit: string; baseline: number; ratio: number; note?: string };
