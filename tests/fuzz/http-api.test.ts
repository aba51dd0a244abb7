/**
 * The API under arbitrary requests (through app.request, no socket): any method, API path, content type, body and
 * Authorization header. Nothing a client sends may produce a 500, and every error is the JSON error shape. The
 * service behind it is real (SQLite in a temp dir); submission is a fake that always succeeds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHttpApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { testService } from '../helpers.js';
import { jsonValue, RUNS } from './arbitraries.js';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];
const PATHS = [
  '/api/v1/usage-stats/local',
  '/api/v1/usage-stats/status',
  '/api/v1/usage-stats/preview',
  '/api/v1/usage-stats/history',
  '/api/v1/usage-stats/opt-in',
  '/api/v1/usage-stats/opt-out',
  '/api/v1/usage-stats/export',
  '/api/v1/usage-stats/submit',
  '/api/v1/usage-stats',
  '/api/v1/usage-stats/',
  '/api/v1/printers',
  '/api/v1/health',
  '/api/v1/nope',
  '/api/v2',
];
const CONTENT_TYPES = [
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json;;;',
  '',
];
/** Header-safe text: visible ASCII and spaces. */
const headerValue = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 60,
});
const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '?weeks=4',
    '?weeks=0',
    '?weeks=53',
    '?weeks=-1',
    '?weeks=1e3',
    '?weeks=abc',
    '?weeks=',
    '?weeks=4&weeks=5',
  ),
  headerValue.map((q) => `?${encodeURIComponent(q)}`),
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.constant(''),
  jsonValue.map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '{}',
    '{"delete_remote":true}',
    '{"delete_remote":"yes"}',
    '{"x":1}',
    '[]',
    'null',
    '{',
    '"',
    '\u0000',
  ),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constant('x'.repeat(70 * 1024)),
);

const request = fc.record({
  method: fc.constantFrom(...METHODS),
  path: fc.constantFrom(...PATHS),
  query,
  contentType: fc.constantFrom(...CONTENT_TYPES),
  authorization: fc.option(
    fc.oneof(
      headerValue,
      headerValue.map((t) => `Bearer ${t}`),
      fc.constant('Bearer secret-token'),
    ),
    {
      nil: undefined,
    },
  ),
  body,
});

function makeApp(apiToken?: string) {
  const { service } = testService();
  const app = createHttpApp({
    service,
    logger: silentLogger(),
    version: '0.1.0',
    submission: {
      submitNow: async () => ({ success: true, message: 'submitted' }),
      cancelPending: () => {},
      deleteRemote: async () => ({ success: true, message: 'deleted' }),
    },
    access: apiToken ? { addonMode: false, apiToken } : undefined,
  });
  return app;
}

type ApiRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

async function check(app: ReturnType<typeof makeApp>, r: ApiRequest) {
  const headers: Record<string, string> = {};
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.authorization !== undefined) headers.authorization = r.authorization;
  const withBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
  const response = await app.request(`${r.path}${r.query}`, {
    method: r.method,
    headers,
    ...(withBody ? { body: r.body } : {}),
  });
  expect(response.status, `${r.method} ${r.path}`).not.toBe(500);
  expect(response.status).toBeLessThan(500);
  if (response.status >= 400 && r.method !== 'HEAD') {
    const json = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
    expect(typeof json.error?.code).toBe('string');
    expect(typeof json.error?.message).toBe('string');
    expect(JSON.stringify(json)).not.toMatch(/\n\s+at /);
  } else {
    await response.arrayBuffer();
  }
}

describe('HTTP API bodies (fuzz)', () => {
  it('never answers 500 and always uses the JSON error shape (no access guard)', { timeout: 30_000 }, async () => {
    const app = makeApp();
    await fc.assert(
      fc.asyncProperty(request, (r) => check(app, r)),
      { numRuns: RUNS },
    );
  });

  it('never answers 500 and always uses the JSON error shape (bearer token required)', {
    timeout: 30_000,
  }, async () => {
    const app = makeApp('secret-token');
    await fc.assert(
      fc.asyncProperty(request, (r) => check(app, r)),
      { numRuns: RUNS },
    );
  });
});
