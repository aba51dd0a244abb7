/**
 * The daemon's HTTP surface (Hono): the JSON API under /api/v1 and the ingress UI from www/. Every error leaves as
 * `{ error: { code, message } }`; nothing a client sends can crash the process.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import type { PrinterSnapshot } from '../printers/types.js';
import type { UsageStatsService } from '../stats/service.js';
import { type AccessOptions, accessGuard } from './access.js';
import { limitBody, requireJsonOrEmpty } from './body.js';
import { ApiError, errorResponse } from './errors.js';
import { type CaptureControl, captureRoutes } from './routes/captures.js';
import { healthRoutes } from './routes/health.js';
import { printerRoutes } from './routes/printers.js';
import { type SubmissionControl, usageStatsRoutes } from './routes/usage-stats.js';
import { uiRoutes } from './ui.js';

export interface HttpAppDeps {
  service: UsageStatsService;
  logger: Logger;
  version: string;
  printers?: () => PrinterSnapshot[];
  submission?: SubmissionControl;
  /** Diagnostic captures of the running printers (absent: none are running). */
  captures?: CaptureControl;
  /** Directory of the web UI; defaults to the package's www/. */
  wwwDir?: string;
  /** Ingress guard (add-on) or bearer token (elsewhere); none when absent. */
  access?: AccessOptions;
}

/** www/ beside src/ (tsx) or beside dist/ (built). */
export function defaultWwwDir(): string {
  for (const relative of ['../../www', '../../../www']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  return fileURLToPath(new URL('../../www', import.meta.url));
}

export function createHttpApp(deps: HttpAppDeps): Hono {
  const logger = deps.logger.child({ component: 'http' });
  // Not strict: DESIGN.md allows DELETE /api/v1/usage-stats with and without the trailing slash.
  const app = new Hono({ strict: false });

  // First, so nothing (API or UI) answers a peer the guard refuses.
  if (deps.access) app.use('*', accessGuard(deps.access));

  app.use('/api/*', limitBody, requireJsonOrEmpty);
  app.use('/api/*', async (c, next) => {
    await next();
    // On the finished response's own headers. c.header() after next() rebuilds the response around its body as a
    // ReadableStream, which @hono/node-server then writes through web streams instead of one res.end(string): a
    // quarter more server time per answer (GET /api/v1/printers with 500 printers: 1.8 vs 1.4 ms, bench/farm.ts).
    const headers = c.res.headers;
    if (!headers.has('Cache-Control')) headers.set('Cache-Control', 'no-store');
    headers.set('X-Content-Type-Options', 'nosniff');
  });

  app.route(
    '/api/v1/health',
    healthRoutes({ version: deps.version, uptimeSeconds: () => deps.service.uptimeSeconds() }),
  );
  app.route('/api/v1/usage-stats', usageStatsRoutes(deps.service, deps.submission));
  app.route('/api/v1/printers', printerRoutes(deps.printers ?? (() => [])));
  app.route('/api/v1/printers', captureRoutes(deps.captures));

  app.all('/api/*', (c) => {
    const known = /^\/api\/v1\/(health|usage-stats|printers)(\/|$)/.test(c.req.path);
    return known
      ? errorResponse(c, 405, 'method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}`)
      : errorResponse(c, 404, 'not_found', `no API route ${c.req.path}`);
  });

  const wwwDir = deps.wwwDir ?? defaultWwwDir();
  app.route('/', uiRoutes({ wwwDir }));
  app.use('/*', serveStatic({ root: wwwDir }));

  app.notFound((c) => errorResponse(c, 404, 'not_found', `nothing at ${c.req.path}`));

  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error.status, error.code, error.message, error.issues);
    if (error instanceof HTTPException) {
      return errorResponse(c, error.status as 400, 'http_error', error.message || 'request failed');
    }
    // A database that refuses writes (disk full, read-only, locked) is a passing condition, not a server bug.
    const sqliteCode = (error as { code?: unknown }).code;
    if (typeof sqliteCode === 'string' && /^SQLITE_(FULL|READONLY|BUSY|LOCKED|IOERR)/.test(sqliteCode)) {
      logger.warn({ code: sqliteCode, path: c.req.path, method: c.req.method }, 'the database refused a write');
      return errorResponse(
        c,
        503,
        'storage_unavailable',
        'the statistics database cannot be written now; try again later',
      );
    }
    logger.error({ err: error, path: c.req.path, method: c.req.method }, 'request failed');
    return errorResponse(c, 500, 'internal_error', 'the request could not be completed; see the add-on log');
  });

  return app;
}
