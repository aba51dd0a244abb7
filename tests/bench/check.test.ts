/** bench/check.ts: what `npm run bench` and the smoke test accept as a module's rows. */
import { describe, expect, it } from 'vitest';
import { rowProblems } from '../../bench/check.js';
import { row } from '../../bench/util.js';

describe('rowProblems', () => {
  it('accepts rows made with row(), and a ratio the module defines otherwise (a median of paired ratios)', () => {
    expect(rowProblems([row('a', 3, 'ms', 6), row('b', 12_345, 'events/s', 10_000, 'note')])).toEqual([]);
    expect(rowProblems([{ name: 'c', value: 8_355, unit: 'reports/s', baseline: 22_825, ratio: 0.322 }])).toEqual([]);
  });

  it('rejects no rows, or something else than rows', () => {
    expect(rowProblems([])).toEqual(['run() returned no rows']);
    expect(rowProblems(undefined)).toEqual(['run() did not return an array of rows']);
  });

  it('accepts a value of 0 (CPU over a short window) but not a baseline of 0', () => {
    expect(rowProblems([row('cpu', 0, '% of one core', 5)])).toEqual([]);
    expect(rowProblems([{ name: 'b', value: 1, unit: 'ms', baseline: 0, ratio: 0 }])).toEqual([
      'b: baseline 0 is not a finite positive number',
    ]);
  });

  it('rejects NaN, infinite and negative numbers, a missing unit or name, a name twice', () => {
    const problems = rowProblems([
      { name: 'nan', value: Number.NaN, unit: 'ms', baseline: 1, ratio: Number.NaN },
      { name: 'neg', value: -1, unit: 'MB', baseline: 50, ratio: -0.02 },
      { name: 'inf', value: 1, unit: 'ms', baseline: Number.POSITIVE_INFINITY, ratio: 0 },
      { name: 'nounit', value: 1, unit: ' ', baseline: 1, ratio: 1 },
      { name: '', value: 1, unit: 'ms', baseline: 1, ratio: 1 },
      { name: 'twice', value: 1, unit: 'ms', baseline: 1, ratio: 1 },
      { name: 'twice', value: 1, unit: 'ms', baseline: 1, ratio: 1 },
    ]);
    expect(problems).toEqual([
      'nan: value NaN is not a finite number >= 0',
      'nan: ratio NaN is not a finite number >= 0',
      'neg: value -1 is not a finite number >= 0',
      'neg: ratio -0.02 is not a finite number >= 0',
      'inf: baseline Infinity is not a finite positive number',
      'nounit: no unit',
      'row 4: no name',
      'twice: named twice',
    ]);
  });
});
