import { request as httpRequest } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { tempDir } from '../helpers.js';

let daemon: Daemon;
let base: string;
let dataDir: string;

beforeEach(async () => {
  dataDir = tempDir();
  daemon = new Daemon({
    config: parseConfig({ timezone: 'Europe/Berlin' }),
    dataDir,
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger(),
    env: {},
  });
  const { port } = await daemon.start();
  base = `http://127.0.0.1:${port}`;
});

afterEach(async () => {
  await daemon.stop();
});

const json = (path: string, init?: RequestInit) =>
  fetch(base + path, init).then(async (r) => ({
    status: r.status,
    // biome-ignore lint/suspicious/noExplicitAny: bodies are checked by the assertions, not by types
    body: (await r.json()) as Record<string, any>,
    headers: r.headers,
  }));
const post = (path: string, body?: unknown) =>
  json(path, {
    method: 'POST',
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });

describe('HTTP API', () => {
  it('GET /api/v1/health', async () => {
    const { status, body } = await json('/api/v1/health');
    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'ok',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      uptime_seconds: expect.any(Number),
    });
  });

  it('GET /local has the documented shape, opted out by default', async () => {
    const { body } = await json('/api/v1/usage-stats/local');
    expect(Object.keys(body).sort()).toEqual(
      [
        'events_by_type',
        'first_seen',
        'installation_id',
        'last_submission',
        'next_submission',
        'opt_in_status',
        'this_week',
        'total_events',
      ].sort(),
    );
    expect(body).toMatchObject({ installation_id: null, first_seen: null, opt_in_status: 'disabled', total_events: 1 });
    expect(body.events_by_type).toEqual({ app_start: 1 });
    expect(Object.keys(body.this_week).sort()).toEqual(
      [
        'error_count',
        'file_count',
        'job_completed_count',
        'job_count',
        'job_failed_count',
        'printer_connect_count',
        'upload_count',
      ].sort(),
    );
  });

  it('opt-in, opt-out, status', async () => {
    const optIn = await post('/api/v1/usage-stats/opt-in');
    expect(optIn.status).toBe(200);
    expect(optIn.body).toEqual({
      success: true,
      installation_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      message: expect.any(String),
    });
    const again = await post('/api/v1/usage-stats/opt-in', {});
    expect(again.body.installation_id).toBe(optIn.body.installation_id);
    const status = await json('/api/v1/usage-stats/status');
    expect(status.body).toMatchObject({
      service_available: true,
      opted_in: true,
      collection_active: true,
      do_not_track: false,
    });
    const optOut = await post('/api/v1/usage-stats/opt-out');
    expect(optOut.body).toMatchObject({ success: true, installation_id: optIn.body.installation_id });
    expect((await json('/api/v1/usage-stats/local')).body.opt_in_status).toBe('disabled');
  });

  it('export is an attachment with settings and events', async () => {
    await post('/api/v1/usage-stats/opt-in');
    const response = await fetch(`${base}/api/v1/usage-stats/export`);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="usage-statistics-export.json"');
    // biome-ignore lint/suspicious/noExplicitAny: the body is checked by the assertions, not by types
    const body = (await response.json()) as Record<string, any>;
    expect(body).toMatchObject({ export_version: 1, settings: { opt_in_status: 'enabled' } });
    expect(body.events.map((e: { event_type: string }) => e.event_type)).toEqual(['app_start', 'feature_enabled']);
  });

  it('DELETE removes events and keeps settings, with or without the slash', async () => {
    await post('/api/v1/usage-stats/opt-in');
    const first = await json('/api/v1/usage-stats', { method: 'DELETE' });
    expect(first.body).toEqual({ success: true, deleted_events: 2, message: expect.any(String) });
    const second = await json('/api/v1/usage-stats/', { method: 'DELETE' });
    expect(second.body.deleted_events).toBe(0);
    expect((await json('/api/v1/usage-stats/local')).body.opt_in_status).toBe('enabled');
  });

  it('preview is the payload shape', async () => {
    await post('/api/v1/usage-stats/opt-in');
    const { body } = await json('/api/v1/usage-stats/preview');
    expect(Object.keys(body).sort()).toEqual(
      [
        'error_summary',
        'installation',
        'period',
        'printer_fleet',
        'schema_version',
        'submission_id',
        'submission_timestamp',
        'usage_stats',
      ].sort(),
    );
    expect(body.installation.country_code).toBe('DE');
  });

  it('submit answers 409 when not opted in', async () => {
    const { status, body } = await post('/api/v1/usage-stats/submit');
    expect(status).toBe(409);
    expect(body.error.code).toBe('not_opted_in');
  });

  it('GET /api/v1/printers lists nothing without printers', async () => {
    expect((await json('/api/v1/printers')).body).toEqual({ printers: [] });
  });

  it('every API answer is no-store and nosniff, errors included, with its length', async () => {
    for (const path of ['/api/v1/printers', '/api/v1/usage-stats/local', '/api/v1/nothing-here']) {
      const response = await fetch(base + path);
      const text = await response.text();
      expect(response.headers.get('cache-control'), path).toBe('no-store');
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('content-type'), path).toMatch(/^application\/json/);
      expect(Number(response.headers.get('content-length')), path).toBe(Buffer.byteLength(text));
    }
  });

  it('serves the UI with relative URLs', async () => {
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('<html');
    expect(html).not.toMatch(/(src|href)="\/(?!\/)/);
  });
});

describe('HTTP API: bad input', () => {
  it('malformed JSON is 400 and changes nothing', async () => {
    const response = await json('/api/v1/usage-stats/opt-out', {
      method: 'POST',
      body: '{"delete_remote": tru',
      headers: { 'Content-Type': 'application/json' },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_json');
  });

  it('unknown body keys are 422 with the path', async () => {
    const response = await post('/api/v1/usage-stats/opt-out', { delete_remote: 'yes', extra: 1 });
    expect(response.status).toBe(422);
    expect(response.body.error.issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'delete_remote' }),
        expect.objectContaining({ path: '(root)' }),
      ]),
    );
  });

  it('a cross-site form cannot delete the data (415), and nothing is lost', async () => {
    const before = (await json('/api/v1/usage-stats/local')).body.total_events;
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
      const response = await json('/api/v1/usage-stats', {
        method: 'DELETE',
        body: 'confirm=1',
        headers: { 'Content-Type': type },
      });
      expect(response.status).toBe(415);
      expect(response.body.error.code).toBe('unsupported_media_type');
    }
    expect((await json('/api/v1/usage-stats/local')).body.total_events).toBe(before);
  });

  it('a body over 64 KiB is 413, also when streamed without a length', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(70 * 1024) });
    const sized = await json('/api/v1/usage-stats/opt-in', {
      method: 'POST',
      body: big,
      headers: { 'Content-Type': 'application/json' },
    });
    expect(sized.status).toBe(413);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${base}/api/v1/usage-stats/opt-in`,
        { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write('x'.repeat(10 * 1024));
      req.end();
    });
    expect(chunked).toBe(413);
    expect((await json('/api/v1/usage-stats/local')).body.opt_in_status).toBe('disabled');
  });

  it('wrong methods are 405 and unknown routes 404, as JSON', async () => {
    const wrong = await json('/api/v1/usage-stats/opt-in');
    expect(wrong.status).toBe(405);
    expect(wrong.body.error.code).toBe('method_not_allowed');
    const missing = await json('/api/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    const missingPage = await fetch(`${base}/no-such-page.html`);
    expect(missingPage.status).toBe(404);
  });
});
