/**
 * The retained `<base>/stats` payload: all-time totals, the last seven days and the opt-in status. Built from the
 * local statistics only; no installation id or submission secret, which belong to the opt-in submission alone.
 */
import { hoursFromSeconds } from '../stats/aggregate.js';
import type { LocalStats } from '../stats/service.js';

export interface StatsSource {
  getLocalStats(): LocalStats;
  totalPrintSeconds(): number;
}

export interface StatsSummary {
  total_events: number;
  jobs_created: number;
  jobs_completed: number;
  jobs_failed: number;
  /** Completed out of finished jobs (completed + failed), in percent with one decimal; null before any job ended. */
  success_rate: number | null;
  print_hours: number;
  this_week: LocalStats['this_week'];
  opt_in_status: LocalStats['opt_in_status'];
  last_submission: string | null;
  updated_at: string;
}

export function statsSummary(source: StatsSource, now: Date = new Date()): StatsSummary {
  const local = source.getLocalStats();
  const completed = local.events_by_type.job_completed ?? 0;
  const failed = local.events_by_type.job_failed ?? 0;
  const finished = completed + failed;
  return {
    total_events: local.total_events,
    jobs_created: local.events_by_type.job_created ?? 0,
    jobs_completed: completed,
    jobs_failed: failed,
    success_rate: finished === 0 ? null : Math.round((completed / finished) * 1000) / 10,
    print_hours: hoursFromSeconds(source.totalPrintSeconds()),
    this_week: local.this_week,
    opt_in_status: local.opt_in_status,
    last_submission: local.last_submission,
    updated_at: now.toISOString(),
  };
}
