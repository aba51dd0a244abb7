/** /api/v1/usage-stats: the same contract as the Printernizer application, plus /preview and /submit. */
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { UsageStatsService } from '../../stats/service.js';
import { readJsonBody } from '../body.js';
import { errorResponse } from '../errors.js';

export interface SubmissionControl {
  /** Submits now; resolves with the outcome (never rejects). */
  submitNow(): Promise<{ success: boolean; message: string; status?: number; reason?: string }>;
  /** Called on opt-out: stops pending retries at once. */
  cancelPending(): void;
  /** Asks the collector to delete this installation's data. */
  deleteRemote(): Promise<{ success: boolean; message: string }>;
}

const optOutBody = z.strictObject({ delete_remote: z.boolean().optional() });
const emptyBody = z.strictObject({});
const historyQuery = z.object({ weeks: z.coerce.number().int().min(1).max(52).default(12) });

export function usageStatsRoutes(service: UsageStatsService, submission?: SubmissionControl): Hono {
  const routes = new Hono();

  routes.get('/local', (c) => c.json(service.getLocalStats()));

  routes.get('/status', (c) => c.json(service.getStatus()));

  routes.get('/preview', (c) => c.json(service.submissionPayload()));

  routes.get('/history', (c) => {
    const parsed = historyQuery.safeParse({ weeks: c.req.query('weeks') });
    if (!parsed.success) return errorResponse(c, 400, 'invalid_query', 'weeks must be a whole number from 1 to 52');
    return c.json(service.jobHistory(parsed.data.weeks));
  });

  routes.post('/opt-in', async (c) => {
    await readJsonBody(c, emptyBody);
    const { installation_id, changed } = service.optIn();
    const note = service.doNotTrack() ? ' DO_NOT_TRACK is set, so nothing will be submitted until it is removed.' : '';
    return c.json({
      success: true,
      installation_id,
      message: (changed ? 'Usage statistics enabled.' : 'Usage statistics were already enabled.') + note,
    });
  });

  routes.post('/opt-out', async (c) => {
    const body = await readJsonBody(c, optOutBody);
    service.optOut();
    submission?.cancelPending();
    let message = 'Usage statistics disabled. Local data is kept; delete it separately if you wish.';
    if (body.delete_remote) {
      if (!submission) return errorResponse(c, 503, 'submission_unavailable', 'remote deletion is not available');
      const remote = await submission.deleteRemote();
      message += remote.success ? ' The collector deleted this installation’s data.' : ` ${remote.message}`;
    }
    return c.json({ success: true, installation_id: service.installationId(), message });
  });

  routes.get('/export', (c) => {
    const body = JSON.stringify(service.exportStats(), null, 2);
    return c.body(body, 200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Disposition': 'attachment; filename="usage-statistics-export.json"',
      'Cache-Control': 'no-store',
    });
  });

  const deleteAll = async (c: Context) => {
    await readJsonBody(c, emptyBody);
    const deleted = service.deleteAllStats();
    return c.json({ success: true, deleted_events: deleted, message: `Deleted ${deleted} local usage events.` });
  };
  routes.delete('/', deleteAll);
  routes.delete('', deleteAll);

  routes.post('/submit', async (c) => {
    await readJsonBody(c, emptyBody);
    if (!submission) return errorResponse(c, 503, 'submission_unavailable', 'submission is not available');
    const outcome = await submission.submitNow();
    if (!outcome.success) {
      // The submitter knows why: not opted in, DO_NOT_TRACK or busy (409), no endpoint (503), otherwise the
      // collector failed or refused (502).
      if (outcome.status === 409 || outcome.status === 503)
        return errorResponse(c, outcome.status, outcome.reason ?? 'submission_refused', outcome.message);
      return errorResponse(c, 502, 'submission_failed', outcome.message);
    }
    return c.json({ success: true, message: outcome.message });
  });

  return routes;
}
