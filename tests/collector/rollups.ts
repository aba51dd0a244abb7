/**
 * Checks PostgreSQL's /v1/stats rollups (migration 2), which the storing statements maintain one submission at a
 * time, against the same rollups rebuilt from the rows (rolled back afterwards), in every day a 30-day window can
 * still reach and every weekly row that can still open one.
 */
import pg from 'pg';
import { expect } from 'vitest';
import { REBUILD_STATS_ROLLUPS } from '../../src/collector/storage-postgres.js';
import { DAY_MS } from './helpers.js';

export async function expectRollupsRebuildable(database: string, now: number, minimumRows = 1): Promise<void> {
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    const firstDay = Math.floor((now - 31 * DAY_MS) / DAY_MS);
    const snapshot = async () => ({
      counts: (
        await client.query(
          `SELECT day, dimension, value, sum(installations)::int AS n FROM active_counts WHERE day >= $1
           GROUP BY 1, 2, 3 HAVING sum(installations) <> 0 ORDER BY 1, 2, 3`,
          [firstDay],
        )
      ).rows,
      weekCounts: (
        await client.query(
          `SELECT day, week_start::text, sum(weekly_rows)::int AS n, sum(jobs)::int AS jobs FROM week_counts
           WHERE day >= $1 GROUP BY 1, 2 HAVING sum(weekly_rows) <> 0 OR sum(jobs) <> 0 ORDER BY 1, 2`,
          [firstDay],
        )
      ).rows,
      weeks: (
        await client.query(
          `SELECT installation, week_start::text, prev_received_at, jobs_from_here, completed_from_here,
             failed_from_here FROM weekly_stats WHERE last_received_at >= $1 ORDER BY 1, 2`,
          [now - 30 * DAY_MS],
        )
      ).rows,
    });
    const maintained = await snapshot();
    expect(maintained.counts.length).toBeGreaterThanOrEqual(minimumRows);
    expect(maintained.weeks.length).toBeGreaterThanOrEqual(minimumRows);
    await client.query('BEGIN');
    await client.query(REBUILD_STATS_ROLLUPS);
    const rebuilt = await snapshot();
    await client.query('ROLLBACK');
    expect(rebuilt).toEqual(maintained);
  } finally {
    await client.end();
  }
}
