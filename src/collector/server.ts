/**
 * The collector service: receives the daemons' weekly aggregates (POST /v1/submit), deletes an installation on
 * request (DELETE /v1/installations/<id>), publishes k-suppressed aggregates (GET /v1/stats) and a dashboard (GET /).
 *
 * `createCollectorApp` builds the Hono app over a store (SQLite from `dataDir`, or any opened `storage`: in-process
 * tests); `startCollector` opens the configured store (SQLite file or PostgreSQL URL), listens, prunes daily and
 * stops cleanly (for the CLI's `printernizer-stats collector`). The rules live in rules.ts and stats.ts; the store
 * below may be shared by several instances.
 */
import type { AddressInfo } from 'node:net';
import { type HttpBindings, type ServerType, serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { bearerSecret, hashSecret } from './auth.js';
import { declaredTooLarge, MAX_SUBMISSION_BYTES, readLimitedBody, readLimitedIncoming } from './body.js';
import { registerDashboard } from './dashboard.js';
import { createSubmissionSchema, type PayloadIssue, payloadIssues } from './payload.js';
import { clientKeyOf, DEFAULT_TOKEN_BUCKET, TokenBucketLimiter } from './rate-limit.js';
import { judgeDeletion, judgeSubmission, SUBMISSION_INTERVAL_MS } from './rules.js';
import { computePublicStats, DEFAULT_K, type PublicStats } from './stats.js';
import { StatsCache } from './stats-cache.js';
import {
  type CollectorStorage,
  DEFAULT_RETENTION,
  openCollectorStorage,
  type PruneResult,
  type RetentionOptions,
  StorageUnavailableError,
} from './storage.js';
import { SqliteCollectorStorage } from './storage-sqlite.js';

export { SUBMISSION_INTERVAL_MS };

const DAY_MS = 24 * 60 * 60 * 1000;
const UNAVAILABLE_RETRY_AFTER_S = 10;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface CollectorOptions {
  /** SQLite: the directory of the collector's own file (the default store). */
  dataDir?: string;
  /** PostgreSQL: a `postgres://` URL (startCollector only); several instances may share the database. */
  database?: string;
  /** An opened store (createCollectorApp); the collector closes it when it closes. */
  storage?: CollectorStorage;
  /** Smallest group published in /v1/stats (default 10). */
  k?: number;
  logger: Logger;
  /** The clock, in ms since the epoch (tests pass a fake one). */
  now?: () => number;
  /** Per-client-address token bucket for the write endpoints (default 30 burst, 1 every 2 s). */
  rateLimit?: { burst: number; perSecond: number };
  /** Minimum time between two accepted submissions of one installation (default 6 hours). */
  submissionIntervalMs?: number;
  /** How long a computed /v1/stats answer is reused, and its stated max-age (default 60 s; 0 computes every time). */
  statsCacheMs?: number;
  /** Take the client address from the last X-Forwarded-For entry (only behind a reverse proxy you run). */
  trustProxy?: boolean;
  retention?: Partial<RetentionOptions>;
}

export interface StartCollectorOptions extends CollectorOptions {
  port?: number;
  host?: string;
  /** How often raw submissions past retention are pruned (default daily). */
  pruneIntervalMs?: number;
}

export interface CollectorApp {
  app: Hono;
  storage: CollectorStorage;
  /** Deletes what is past retention now; also run daily by `startCollector`. */
  prune(): Promise<PruneResult>;
  /** Computes (or returns the cached) public statistics. */
  stats(): Promise<PublicStats>;
  close(): Promise<void>;
}

export interface RunningCollector {
  port: number;
  url: string;
  storage: CollectorStorage;
  prune(): Promise<PruneResult>;
  stop(): Promise<void>;
}

interface ErrorBody {
  error: { code: string; message: string; issues?: PayloadIssue[] };
}

function errorBody(code: string, message: string, issues?: PayloadIssue[]): ErrorBody {
  return { error: issues ? { code, message, issues } : { code, message } };
}

function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const [mediaType, ...parameters] = header.split(';').map((part) => part.trim().toLowerCase());
  if (mediaType !== 'application/json') return false;
  return parameters.every((p) => !p.startsWith('charset=') || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

export function createCollectorApp(options: CollectorOptions): CollectorApp {
  const log = options.logger.child({ component: 'collector' });
  const now = options.now ?? Date.now;
  const k = options.k ?? DEFAULT_K;
  if (!Number.isInteger(k) || k < 2) throw new Error('k must be an integer of at least 2');
  const submissionInterval = options.submissionIntervalMs ?? SUBMISSION_INTERVAL_MS;
  const statsCacheMs = options.statsCacheMs ?? 60_000;
  const retention: RetentionOptions = { ...DEFAULT_RETENTION, ...options.retention };
  let storage: CollectorStorage;
  if (options.storage) storage = options.storage;
  else if (options.database) throw new Error('Open a database with openCollectorStorage and pass it as storage');
  else if (options.dataDir) storage = new SqliteCollectorStorage(options.dataDir, { logger: options.logger });
  else throw new Error('The collector needs a data directory or an opened storage');
  const schema = createSubmissionSchema({ now });
  const limiter = new TokenBucketLimiter({ ...(options.rateLimit ?? DEFAULT_TOKEN_BUCKET), now });
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const statsCache = new StatsCache({
    storage,
    ttlMs: statsCacheMs,
    now,
    compute: (at) => storage.snapshot((view) => computePublicStats(view, { now: at, k })),
  });

  /** The rate-limit key; the address itself goes no further than the limiter's memory. */
  const clientKey = (c: Context): string => {
    if (options.trustProxy) {
      const forwarded = c.req.header('x-forwarded-for')?.split(',').pop()?.trim();
      if (forwarded) return clientKeyOf(forwarded);
    }
    try {
      return clientKeyOf(getConnInfo(c).remote.address);
    } catch {
      return 'unknown'; // in-process app.request(): no socket
    }
  };

  const fail = (c: Context, status: ContentfulStatusCode, code: string, message: string, issues?: PayloadIssue[]) => {
    // A flood is answered with many 429s: keep those out of the info log.
    if (status === 429) log.debug({ status, code }, 'request refused');
    else log.info({ status, code }, 'request refused');
    return c.json(errorBody(code, message, issues), status);
  };

  const throttled = (c: Context, retryAfterSeconds: number, message: string) => {
    c.header('Retry-After', String(retryAfterSeconds));
    return fail(c, 429, 'rate_limited', message);
  };

  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });

  app.get('/v1/health', async (c) => {
    await storage.ping(); // touches the database: a broken file answers 500, an unreachable database 503
    return c.json({ status: 'ok' });
  });

  app.post('/v1/submit', async (c) => {
    const bucket = limiter.take(clientKey(c));
    if (!bucket.allowed) return throttled(c, bucket.retryAfterSeconds, 'Too many requests from this client');
    if (!isJsonContentType(c.req.header('content-type'))) {
      return fail(c, 415, 'unsupported_media_type', 'Content-Type must be application/json');
    }
    if (declaredTooLarge(c.req.raw, MAX_SUBMISSION_BYTES)) return tooLarge(c);
    const secret = bearerSecret(c.req.header('authorization'));
    if (!secret) return fail(c, 401, 'unauthorized', 'A bearer secret of 32 to 256 characters is required');

    const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
    const body = incoming
      ? await readLimitedIncoming(incoming, MAX_SUBMISSION_BYTES)
      : await readLimitedBody(c.req.raw, MAX_SUBMISSION_BYTES);
    if (!body.ok && body.reason === 'aborted') return fail(c, 400, 'aborted', 'The request body was not completed');
    if (!body.ok) return tooLarge(c);
    let json: unknown;
    try {
      json = JSON.parse(decoder.decode(body.bytes));
    } catch {
      return fail(c, 400, 'invalid_json', 'The body is not valid UTF-8 JSON');
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      return fail(c, 422, 'validation_failed', 'The payload does not match the schema', payloadIssues(parsed.error));
    }
    const payload = parsed.data;
    const receivedAt = now();
    const claim = { installationId: payload.installation.installation_id, secret, receivedAt };
    // Judged and stored in one atomic step by the storage: the answer holds for every instance.
    const verdict = await storage.admit({ payload, secretHash: hashSecret(secret), receivedAt }, (state) =>
      judgeSubmission(state, claim, submissionInterval),
    );
    switch (verdict.outcome) {
      case 'forbidden':
        return fail(c, 403, 'forbidden', 'The secret does not match this installation');
      case 'conflict':
        return fail(c, 409, 'conflict', 'submission_id was used by another installation');
      case 'duplicate':
        return c.json({ accepted: true, duplicate: true, submission_id: payload.submission_id });
      case 'too_soon':
        return throttled(c, verdict.retryAfterSeconds, 'One submission per installation every 6 hours');
      case 'accepted':
        log.debug('submission accepted');
        return c.json({ accepted: true, duplicate: false, submission_id: payload.submission_id });
    }
  });

  app.delete('/v1/installations/:id', async (c) => {
    const bucket = limiter.take(clientKey(c));
    if (!bucket.allowed) return throttled(c, bucket.retryAfterSeconds, 'Too many requests from this client');
    const installationId = c.req.param('id').toLowerCase();
    if (!UUID.test(installationId)) return fail(c, 400, 'invalid_installation_id', 'Expected a UUID');
    const secret = bearerSecret(c.req.header('authorization'));
    if (!secret) return fail(c, 401, 'unauthorized', 'A bearer secret of 32 to 256 characters is required');
    const verdict = await storage.deleteInstallation(installationId, (installation) =>
      judgeDeletion(installation, secret),
    );
    if (verdict.outcome === 'not_found') return fail(c, 404, 'not_found', 'No data is stored for this installation');
    if (verdict.outcome === 'forbidden')
      return fail(c, 403, 'forbidden', 'The secret does not match this installation');
    statsCache.invalidate(); // the deleted installation disappears from the public numbers at once
    log.info('installation deleted on request');
    return c.json({ deleted: true });
  });

  app.get('/v1/stats', async (c) => {
    const { stats, computedAt } = await statsCache.get();
    c.header('Access-Control-Allow-Origin', '*');
    c.header('Cache-Control', `public, max-age=${Math.floor(statsCacheMs / 1000)}`);
    // How old the reused answer is: a shared cache keeps it only for the rest of max-age.
    if (statsCacheMs > 0) c.header('Age', String(Math.max(0, Math.floor((now() - computedAt) / 1000))));
    return c.json(stats);
  });

  registerDashboard(app);

  app.notFound((c) => c.json(errorBody('not_found', 'No such resource'), 404));
  app.onError((err, c) => {
    if (err instanceof StorageUnavailableError) {
      // The database went away (or is restarting): nothing was committed for this request; the client retries.
      log.warn({ err: { name: err.name, message: err.message } }, 'database unavailable');
      c.header('Retry-After', String(UNAVAILABLE_RETRY_AFTER_S));
      return c.json(errorBody('unavailable', 'The collector database is unavailable; try again later'), 503);
    }
    log.error({ err: { name: err.name, message: err.message } }, 'request failed');
    return c.json(errorBody('internal_error', 'Internal error'), 500);
  });

  function tooLarge(c: Context) {
    // Close the connection so the rest of an oversized body is never read.
    c.header('Connection', 'close');
    return fail(c, 413, 'payload_too_large', `The body must not exceed ${MAX_SUBMISSION_BYTES} bytes`);
  }

  let closed: Promise<void> | undefined;
  return {
    app,
    storage,
    stats: async () => (await statsCache.get()).stats,
    async prune() {
      const result = await storage.prune(now(), retention);
      if (result.skipped) log.info('pruning left to another instance');
      else log.info(result, 'pruned data past retention');
      return result;
    },
    close() {
      limiter.clear();
      closed ??= storage.close();
      return closed;
    },
  };
}

export async function startCollector(options: StartCollectorOptions): Promise<RunningCollector> {
  const storage =
    options.storage ??
    (await openCollectorStorage({ dataDir: options.dataDir, database: options.database, logger: options.logger }));
  let collector: CollectorApp;
  try {
    collector = createCollectorApp({ ...options, storage });
  } catch (err) {
    await storage.close();
    throw err;
  }
  const log = options.logger.child({ component: 'collector' });
  const host = options.host ?? '127.0.0.1';
  let pruning: Promise<PruneResult> | undefined;
  const runPrune = (): Promise<PruneResult> => {
    // One prune at a time in this process (other instances are kept out by the storage's lock).
    pruning ??= collector
      .prune()
      .catch((err: unknown) => {
        log.error({ err: { name: (err as Error).name, message: (err as Error).message } }, 'pruning failed');
        return { submissions: 0, weeklyRows: 0, installations: 0 };
      })
      .finally(() => {
        pruning = undefined;
      });
    return pruning;
  };
  await runPrune();
  const pruneTimer = setInterval(runPrune, options.pruneIntervalMs ?? DAY_MS);
  pruneTimer.unref();

  let server: ServerType;
  try {
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: collector.app.fetch, port: options.port ?? 0, hostname: host }, () => resolve(s));
      s.once('error', reject);
    });
  } catch (err) {
    clearInterval(pruneTimer);
    await collector.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ port, storage: storage.kind }, 'collector listening');

  let stopped: Promise<void> | undefined;
  return {
    port,
    url,
    storage,
    prune: runPrune,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        clearInterval(pruneTimer);
        server.close(() => {
          void Promise.resolve(pruning)
            .then(() => collector.close())
            .catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'closing storage failed'))
            .then(() => {
              log.info('collector stopped');
              resolve();
            });
        });
        // Idle keep-alive connections would hold close() open; busy ones get a moment to finish.
        if ('closeIdleConnections' in server) {
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 2000).unref();
        }
      });
      return stopped;
    },
  };
}
