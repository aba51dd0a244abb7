/**
 * Public aggregates (GET /v1/stats) over installations active in the last 30 days, with k-suppression.
 *
 * The rule, per distribution (deployment modes, app versions, countries, printer types, printer models):
 *  1. Nothing at all is published while fewer than k installations are active (`suppressed: true`).
 *  2. Every group shared by fewer than k installations is folded into `other`.
 *  3. Folding continues with the smallest visible group while `other` holds exactly one group (its count would be
 *     `other` itself, and for a known list such as deployment modes, so would its name), fewer than k
 *     installations, or no more installations than its largest folded group (possible only where groups overlap:
 *     if every A1 owner also owns an X1C, the union of both is the X1C count). `other` counts distinct
 *     installations, so it is never a sum that could be split again.
 *  4. If even folding every group cannot satisfy 3 (possible only for printer types and models, where an
 *     installation may have no printer or several), `other` is `null`.
 * For the single-valued distributions the visible groups plus `other` add up to `installations` exactly, so the
 * total is consistent and subtracting visible groups from it yields `other` and nothing finer. Printer types and
 * models overlap (one installation, several models), so no total is published for them at all.
 * Weeks with fewer than k contributing installations publish neither their jobs nor their installation count.
 * Success rate and median are computed over at least k installations (rule 1).
 */
import { SET_SEPARATOR, type StatsView } from './storage.js';

export const DEFAULT_K = 10;
export const ACTIVE_WINDOW_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface Group {
  key: string;
  installations: number;
}

export interface Distribution {
  /** Groups shared by at least k installations, largest first. */
  groups: Group[];
  /** Distinct installations in folded groups: 0 when nothing was folded, else at least k, or null if suppressed. */
  other: number | null;
}

export interface WeekStats {
  week_start: string;
  installations: number | null;
  jobs: number | null;
}

export interface PublicStats {
  generated_at: string;
  window_days: number;
  k: number;
  /** True when fewer than k installations are active and nothing else is published. */
  suppressed: boolean;
  installations: number | null;
  printer_types: Distribution;
  printer_models: Distribution;
  deployment_modes: Distribution;
  app_versions: Distribution;
  countries: Distribution;
  jobs_per_week: WeekStats[];
  /** Completed jobs / (completed + failed) over the window; failed includes cancelled. */
  success_rate: number | null;
  median_jobs_per_installation: number | null;
}

/** Installations that share each combination of groups, e.g. `{ groups: ['A1', 'X1C'], installations: 4 }`. */
export interface Combination {
  groups: readonly string[];
  installations: number;
}

/**
 * Applies the folding rule to groups that may overlap. A partition (every installation in exactly one group) is
 * the special case of combinations with one group each.
 */
export function suppressSmallGroups(combinations: readonly Combination[], k: number): Distribution {
  const counts = new Map<string, number>();
  for (const combination of combinations) {
    for (const group of combination.groups) counts.set(group, (counts.get(group) ?? 0) + combination.installations);
  }
  // Smallest first, ties broken by key, so the result does not depend on row order.
  const ascending = [...counts.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const folded = new Set<string>();
  for (const [key, n] of ascending) if (n < k) folded.add(key);

  const union = () => {
    let n = 0;
    for (const combination of combinations) {
      if (combination.groups.some((group) => folded.has(group))) n += combination.installations;
    }
    return n;
  };
  const largestFolded = () => {
    let largest = 0;
    for (const key of folded) largest = Math.max(largest, counts.get(key) ?? 0);
    return largest;
  };
  // `other` must hold at least k installations, at least two groups, and more than any one folded group: with
  // overlapping groups a union can equal its largest member (every A1 owner also has an X1C), which would give
  // that group's count away.
  const unsafe = (other: number) => folded.size === 1 || other < k || other <= largestFolded();
  let other = union();
  let next = folded.size;
  while (folded.size > 0 && unsafe(other) && next < ascending.length) {
    folded.add((ascending[next] as [string, number])[0]);
    next++;
    other = union();
  }

  const groups = ascending
    .filter(([key]) => !folded.has(key))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([key, installations]) => ({ key, installations }));
  if (folded.size === 0) return { groups, other: 0 };
  if (unsafe(other)) return { groups, other: null };
  return { groups, other };
}

function partition(rows: readonly { key: string | null; installations: number }[], k: number, nullKey: string) {
  return suppressSmallGroups(
    rows.map((row) => ({ groups: [row.key ?? nullKey], installations: row.installations })),
    k,
  );
}

function sets(rows: readonly { key: string | null; installations: number }[], k: number) {
  return suppressSmallGroups(
    rows.map((row) => ({
      groups: row.key ? row.key.split(SET_SEPARATOR) : [],
      installations: row.installations,
    })),
    k,
  );
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The median of values given as (value, how many) pairs in ascending order of value. */
export function medianOfHistogram(rows: readonly { jobs: number; installations: number }[]): number | null {
  const total = rows.reduce((n, row) => n + row.installations, 0);
  if (total === 0) return null;
  // The values at positions lower and upper (0-based) of the sorted list; equal when the count is odd.
  const lower = Math.floor((total - 1) / 2);
  const upper = Math.floor(total / 2);
  let seen = 0;
  let lowerValue: number | undefined;
  for (const row of rows) {
    seen += row.installations;
    if (lowerValue === undefined && seen > lower) lowerValue = row.jobs;
    if (seen > upper) return ((lowerValue as number) + row.jobs) / 2;
  }
  return null;
}

const EMPTY: Distribution = { groups: [], other: null };

/** The public numbers from one consistent view of the stored data (`storage.snapshot`). */
export async function computePublicStats(view: StatsView, options: { now: number; k: number }): Promise<PublicStats> {
  const { now, k } = options;
  const since = now - ACTIVE_WINDOW_DAYS * DAY_MS;
  const base = { generated_at: new Date(now).toISOString(), window_days: ACTIVE_WINDOW_DAYS, k };
  const installations = await view.activeInstallationCount(since);
  if (installations < k) {
    return {
      ...base,
      suppressed: true,
      installations: null,
      printer_types: EMPTY,
      printer_models: EMPTY,
      deployment_modes: EMPTY,
      app_versions: EMPTY,
      countries: EMPTY,
      jobs_per_week: [],
      success_rate: null,
      median_jobs_per_installation: null,
    };
  }

  const groups = await view.activeDistributions(since);
  const weeks = await view.jobsPerWeek(since);
  const histogram = await view.jobsHistogram(since);
  let completed = 0;
  let failed = 0;
  for (const row of histogram) {
    completed += row.completed;
    failed += row.failed;
  }
  const medianJobs = medianOfHistogram(histogram);

  return {
    ...base,
    suppressed: false,
    installations,
    printer_types: sets(groups.printer_types, k),
    printer_models: sets(groups.printer_models, k),
    deployment_modes: partition(groups.deployment_mode, k, 'unknown'),
    app_versions: partition(groups.app_version, k, 'unknown'),
    countries: partition(groups.country_code, k, 'unknown'),
    jobs_per_week: weeks.map((week) =>
      week.installations >= k
        ? { week_start: week.week_start, installations: week.installations, jobs: week.jobs }
        : { week_start: week.week_start, installations: null, jobs: null },
    ),
    success_rate: completed + failed > 0 ? Math.round((completed / (completed + failed)) * 1000) / 1000 : null,
    median_jobs_per_installation: medianJobs === null ? null : Math.round(medianJobs * 10) / 10,
  };
}
