/**
 * What every benchmark's rows must look like, whatever the machine: at least one row, each named once, with a unit,
 * finite numbers (a positive baseline; a value, and so a ratio, of 0 is allowed: 0.00% CPU over a quick window, read
 * in 10 ms clock ticks, is a measurement). The ratio is value / baseline or what the module defines instead (the
 * median of paired ratios in bambu-report), so only its range is checked. `npm run bench` fails a module whose rows
 * break this, so a benchmark that breaks into NaN, Infinity, negative numbers or no rows cannot slip into the table;
 * the smoke test in `npm test` relies on it too. A module that can measure nothing (no printer online) throws itself.
 * No timing judgement here: those are the notes' business.
 */
import type { BenchRow } from './types.js';

export function rowProblems(rows: unknown): string[] {
  if (!Array.isArray(rows)) return ['run() did not return an array of rows'];
  if (rows.length === 0) return ['run() returned no rows'];
  const problems: string[] = [];
  const seen = new Set<string>();
  rows.forEach((r: Partial<BenchRow>, i) => {
    const name = typeof r?.name === 'string' && r.name !== '' ? r.name : null;
    const label = name ?? `row ${i}`;
    if (name === null) problems.push(`${label}: no name`);
    else if (seen.has(name)) problems.push(`${label}: named twice`);
    else seen.add(name);
    if (typeof r?.unit !== 'string' || r.unit.trim() === '') problems.push(`${label}: no unit`);
    const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);
    const { value, baseline, ratio } = r ?? {};
    if (!finite(value) || value < 0) problems.push(`${label}: value ${String(value)} is not a finite number >= 0`);
    if (!finite(baseline) || baseline <= 0) {
      problems.push(`${label}: baseline ${String(baseline)} is not a finite positive number`);
    }
    if (!finite(ratio) || ratio < 0) problems.push(`${label}: ratio ${String(ratio)} is not a finite number >= 0`);
    if (r?.note !== undefined && typeof r.note !== 'string') problems.push(`${label}: note is not a string`);
  });
  return problems;
}
