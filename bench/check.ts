/**
 * What every benchmark's rows must look like, whatever the machine: at least one row, each named once, with a unit,
 * finite numbers (a positive baseline; a value, and so a ratio, of 0 is allowed: 0.00% CPU over a quick window, read
 * in 10 ms clock ticks, is a measurement) and ratio = value / baseline (as rounded by the module). `npm run bench`
 * fails a module whose rows break this, so a benchmark that breaks into NaN, Infinity, negative numbers or no rows
 * cannot slip into the table; the smoke test in `npm test` relies on it too. A module that can measure nothing (no
 * printer online) throws itself. No timing judgement here: those are the notes' business.
 */
import type { BenchRow } from './types.js';

/** Modules round value and baseline before or after dividing; a ratio within this of value / baseline is theirs. */
const RATIO_TOLERANCE = 0.05;

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
    if (finite(value) && value >= 0 && finite(baseline) && baseline > 0 && finite(ratio) && ratio >= 0) {
      const expected = value / baseline;
      if (Math.abs(ratio - expected) > Math.max(0.002, expected * RATIO_TOLERANCE)) {
        problems.push(`${label}: ratio ${ratio} is not value / baseline (${expected.toFixed(3)})`);
      }
    }
  });
  return problems;
}
