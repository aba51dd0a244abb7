import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startCollector } from '../../src/collector/server.js';
import { DB_FILE_NAME } from '../../src/collector/storage-sqlite.js';
import { type StorageBackend, useStorageBackends } from './backends.js';
import {
  DAY_MS,
  expectNotStored,
  FakeClock,
  HOUR_MS,
  makePayload,
  newSecret,
  startTestCollector,
  submitTo,
  type TestCollector,
  type TestCollectorOptions,
  withChanges,
} from './helpers.js';

const backends = useStorageBackends();

let running: TestCollector | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

interface RawResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  bytesSent: number;
}

/**
 * Sends a huge body piece by piece and stops as soon as the server answers: a server that waited for the whole
 * body would never answer, and the test would time out with bytesSent at the full size.
 */
function sendOversized(url: string, totalBytes: number, declareLength: boolean, secret: string): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      authorization: `Bearer ${secret}`,
    };
    if (declareLength) headers['content-length'] = totalBytes;
    const req = request(`${url}/v1/submit`, { method: 'POST', headers });
    let bytesSent = 0;
    let answered = false;
    const chunk = Buffer.alloc(16 * 1024, 0x20); // JSON whitespace
    const pump = () => {
      if (answered || bytesSent >= totalBytes) return;
      bytesSent += chunk.length;
      req.write(chunk);
      // Past the limit, slow down so the server has every chance to answer before we send it all.
      setTimeout(pump, bytesSent > 256 * 1024 ? 20 : 0);
    };
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, bytesSent });
        req.destroy();
      });
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (declareLength) {
      req.flushHeaders(); // the Content-Length alone must be enough to refuse
      setTimeout(pump, 200);
    } else pump();
  });
}

describe.each(backends)('collector on $name', (backend: StorageBackend) => {
  async function start(options: TestCollectorOptions = {}) {
    running = await startTestCollector({ backend, ...options });
    return running;
  }

  describe('POST /v1/submit', () => {
    it('accepts a valid submission and stores it per installation and week', async () => {
      const c = await start();
      const payload = makePayload();
      const res = await c.submit(payload, newSecret());
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ accepted: true, duplicate: false, submission_id: payload.submission_id });
      expect(await c.store.count('SELECT count(*) FROM installations')).toBe(1);
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(1);
      expect(await c.store.count('SELECT job_count FROM weekly_stats')).toBe(12);
    });

    it('answers 422 with every field path for validation errors, in the shared error shape', async () => {
      const c = await start();
      const payload = withChanges(makePayload({ country_code: 'XX' }), {
        usage_stats: { job_count: -1 },
        installation: { nickname: 'my printer farm' },
      });
      const res = await c.submit(payload, newSecret());
      expect(res.status).toBe(422);
      const body = (await res.json()) as { error: { code: string; message: string; issues: { path: string }[] } };
      expect(body.error.code).toBe('validation_failed');
      expect(typeof body.error.message).toBe('string');
      expect(body.error.issues.map((i) => i.path).sort()).toEqual([
        'installation.country_code',
        'installation.nickname',
        'usage_stats.job_count',
      ]);
    });

    it('rejects a future submission timestamp and a period over 31 days by path', async () => {
      const c = await start();
      const future = withChanges(makePayload(), { submission_timestamp: c.clock.iso(2 * HOUR_MS) });
      const res1 = await c.submit(future, newSecret());
      expect(res1.status).toBe(422);
      expect(JSON.stringify(await res1.json())).toContain('submission_timestamp');
      const long = withChanges(makePayload(), { period: { start: c.clock.iso(-45 * DAY_MS), duration_days: 45 } });
      const res2 = await c.submit(long, newSecret());
      expect(res2.status).toBe(422);
      expect(JSON.stringify(await res2.json())).toContain('period.duration_days');
    });

    it('answers 400 for broken JSON and 415 for anything but JSON', async () => {
      const c = await start();
      const broken = await fetch(`${c.collector.url}/v1/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${newSecret()}` },
        body: '{"schema_version": 1, "submission_id": ',
      });
      expect(broken.status).toBe(400);
      expect(((await broken.json()) as { error: { code: string } }).error.code).toBe('invalid_json');

      const notUtf8 = await fetch(`${c.collector.url}/v1/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${newSecret()}` },
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      });
      expect(notUtf8.status).toBe(400);

      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
        const res = await c.submit(makePayload(), newSecret(), { headers: { 'content-type': type } });
        expect(res.status).toBe(415);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
      }
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(0);
    });

    it('rejects a 10 MB body with a Content-Length before reading it', async () => {
      const c = await start();
      const result = await sendOversized(c.collector.url, 10 * 1024 * 1024, true, newSecret());
      expect(result.status).toBe(413);
      expect(JSON.parse(result.body).error.code).toBe('payload_too_large');
      expect(result.headers['connection']).toBe('close');
      expect(result.bytesSent).toBe(0); // answered on the headers alone
    });

    it('rejects a 10 MB chunked body as soon as it passes 64 KiB', async () => {
      const c = await start();
      const result = await sendOversized(c.collector.url, 10 * 1024 * 1024, false, newSecret());
      expect(result.status).toBe(413);
      expect(result.bytesSent).toBeLessThan(2 * 1024 * 1024);
      // The server is still healthy afterwards.
      expect((await fetch(`${c.collector.url}/v1/health`)).status).toBe(200);
    });

    it('requires a bearer secret (401) and refuses a forged one for a known installation (403)', async () => {
      const c = await start();
      const secret = newSecret();
      const installationId = randomUUID();
      const none = await fetch(`${c.collector.url}/v1/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(makePayload({ installationId })),
      });
      expect(none.status).toBe(401);
      expect((await c.submit(makePayload({ installationId }), 'short')).status).toBe(401);
      expect((await c.submit(makePayload({ installationId }), secret)).status).toBe(200);

      c.clock.advance(7 * DAY_MS);
      const forged = await c.submit(makePayload({ installationId, nowMs: c.clock.ms }), newSecret());
      expect(forged.status).toBe(403);
      expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('forbidden');
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(1);
      expect((await c.submit(makePayload({ installationId, nowMs: c.clock.ms }), secret)).status).toBe(200);
      // The secret itself is never stored, only its hash.
      expectNotStored(await c.store.diskText(), secret);
    });

    it('answers a repeated submission_id with duplicate: true and changes nothing', async () => {
      const c = await start();
      const secret = newSecret();
      const payload = makePayload();
      expect((await c.submit(payload, secret)).status).toBe(200);
      c.clock.advance(10 * 60 * 1000); // a retry ten minutes later, inside the 6-hour window
      const again = await c.submit(payload, secret);
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual({ accepted: true, duplicate: true, submission_id: payload.submission_id });
      // Even with a changed body, the same id changes nothing.
      c.clock.advance(7 * HOUR_MS);
      const changed = withChanges(payload, { usage_stats: { job_count: 99 } });
      expect(((await (await c.submit(changed, secret)).json()) as { duplicate: boolean }).duplicate).toBe(true);
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(1);
      expect(await c.store.count('SELECT job_count FROM weekly_stats')).toBe(12);
      expect(await c.store.count('SELECT submission_count FROM weekly_stats')).toBe(1);
    });

    it('allows one accepted submission per installation per 6 hours, with Retry-After', async () => {
      const c = await start();
      const secret = newSecret();
      const installationId = randomUUID();
      expect((await c.submit(makePayload({ installationId }), secret)).status).toBe(200);
      c.clock.advance(2 * HOUR_MS);
      const early = await c.submit(makePayload({ installationId, nowMs: c.clock.ms }), secret);
      expect(early.status).toBe(429);
      expect(early.headers.get('retry-after')).toBe(String(4 * 60 * 60));
      expect(((await early.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
      c.clock.advance(4 * HOUR_MS);
      expect((await c.submit(makePayload({ installationId, nowMs: c.clock.ms }), secret)).status).toBe(200);
      // Same week: one weekly row whose counts add up.
      expect(await c.store.count('SELECT count(*) FROM weekly_stats')).toBe(1);
      expect(await c.store.count('SELECT job_count FROM weekly_stats')).toBe(24);
      // A new week gets a new row.
      c.clock.advance(7 * DAY_MS);
      expect((await c.submit(makePayload({ installationId, nowMs: c.clock.ms }), secret)).status).toBe(200);
      expect(await c.store.count('SELECT count(*) FROM weekly_stats')).toBe(2);
    });

    it('throttles a flood from one client with a token bucket, and keeps the address out of logs and storage', async () => {
      const c = await start({ rateLimit: { burst: 5, perSecond: 0.2 } });
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 12; i++) {
        const res = await c.submit(makePayload(), newSecret());
        statuses.push(res.status);
        if (res.status === 429) retryAfter = res.headers.get('retry-after');
        await res.body?.cancel();
      }
      expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
      expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
      expect(retryAfter).toBe('5');
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(5);
      // The bucket refills with (fake) time.
      c.clock.advance(5_000);
      expect((await c.submit(makePayload({ nowMs: c.clock.ms }), newSecret())).status).toBe(200);
      expect(c.logs.text()).not.toContain('127.0.0.1');
      expectNotStored(await c.store.diskText(), '127.0.0.1');
    });

    it('rejects a payload carrying PII-looking fields and stores none of it', async () => {
      const c = await start();
      // A valid submission first, so the database file holds real data to search through.
      expect((await c.submit(makePayload(), newSecret())).status).toBe(200);
      const pii = withChanges(makePayload(), {
        installation: { hostname: 'alice-macbook.fritz.box', email: 'alice.pii@example.org' },
        printer_fleet: { printer_serials: ['01P00A391800417'] },
        usage_stats: { last_file_name: 'secret-prototype-bracket.3mf' },
        user: { name: 'Alice Pii', ip: '192.0.2.77' },
      });
      const res = await c.submit(pii, newSecret());
      expect(res.status).toBe(422);
      const text = JSON.stringify(await res.json());
      expect(text).toContain('installation.hostname');
      expect(text).toContain('user');
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(1);
      const bytes = await c.store.diskText();
      for (const needle of [
        'alice-macbook',
        'alice.pii@example.org',
        '01P00A391800417',
        'secret-prototype-bracket',
        'Alice Pii',
        '192.0.2.77',
        'hostname',
        'email',
      ]) {
        expectNotStored(bytes, needle);
      }
      expect(c.logs.text()).not.toContain('alice');
    });
  });

  describe('DELETE /v1/installations/<id>', () => {
    it('removes everything stored for the installation, given its secret', async () => {
      const c = await start();
      const secret = newSecret();
      const installationId = randomUUID();
      const other = makePayload();
      expect((await c.submit(other, newSecret())).status).toBe(200);
      expect((await c.submit(makePayload({ installationId }), secret)).status).toBe(200);
      c.clock.advance(7 * DAY_MS);
      expect((await c.submit(makePayload({ installationId, nowMs: c.clock.ms }), secret)).status).toBe(200);
      expect((await c.store.deletedText()).includes(installationId)).toBe(true);

      const del = (id: string, s?: string) =>
        fetch(`${c.collector.url}/v1/installations/${id}`, {
          method: 'DELETE',
          headers: s ? { authorization: `Bearer ${s}` } : {},
        });
      expect((await del(installationId)).status).toBe(401);
      expect((await del(installationId, newSecret())).status).toBe(403);
      expect((await del('not-a-uuid', secret)).status).toBe(400);
      expect((await del(randomUUID(), secret)).status).toBe(404);
      const res = await del(installationId, secret);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ deleted: true });

      expect(
        await c.store.count(`SELECT count(*) FROM installations WHERE installation_id = '${installationId}'`),
      ).toBe(0);
      // Only the other installation's rows stay.
      expect(await c.store.count('SELECT count(*) FROM installations')).toBe(1);
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(1);
      expect(await c.store.count('SELECT count(*) FROM weekly_stats')).toBe(1);
      // SQLite: not even in free pages or the WAL; PostgreSQL: in no row.
      expectNotStored(await c.store.deletedText(), installationId);
      expect((await c.store.deletedText()).includes(other.installation.installation_id)).toBe(true);
      expect((await del(installationId, secret)).status).toBe(404);
    });
  });

  describe('retention', () => {
    it('prunes raw submissions older than 90 days, keeping weekly rows', async () => {
      const c = await start();
      const secret = newSecret();
      const installationId = randomUUID();
      const old = makePayload({ installationId });
      expect((await c.submit(old, secret)).status).toBe(200);
      c.clock.advance(60 * DAY_MS);
      expect((await c.submit(makePayload({ installationId, nowMs: c.clock.ms }), secret)).status).toBe(200);

      c.clock.advance(29 * DAY_MS); // 89 days after the first
      expect((await c.collector.prune()).submissions).toBe(0);
      c.clock.advance(2 * DAY_MS); // 91 days
      expect((await c.collector.prune()).submissions).toBe(1);
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(1);
      expect(await c.store.count('SELECT count(*) FROM weekly_stats')).toBe(2);
      expectNotStored(await c.store.deletedText(), old.submission_id);
    });

    it('prunes on its own timer', async () => {
      const c = await start({ pruneIntervalMs: 50 });
      expect((await c.submit(makePayload(), newSecret())).status).toBe(200);
      c.clock.advance(91 * DAY_MS);
      const deadline = Date.now() + 5_000;
      while ((await c.store.count('SELECT count(*) FROM submissions')) > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(0);
    });
  });

  describe('other endpoints', () => {
    it('answers health, unknown paths with the error shape, and sets hardening headers', async () => {
      const c = await start();
      const health = await fetch(`${c.collector.url}/v1/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      expect(health.headers.get('x-content-type-options')).toBe('nosniff');
      const missing = await fetch(`${c.collector.url}/v1/nothing`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'No such resource' } });
    });

    it('keeps its data and schema version across restarts', async () => {
      const store = await backend.createStore();
      try {
        const clock = new FakeClock();
        const options = { ...store.options, logger: pino({ level: 'silent' }), now: clock.now };
        const first = await startCollector(options);
        const secret = newSecret();
        const installationId = randomUUID();
        expect((await submitTo(first.url)(makePayload({ installationId }), secret)).status).toBe(200);
        await first.stop();

        const second = await startCollector(options);
        try {
          clock.advance(7 * DAY_MS);
          // The stored secret hash survived: the same secret is accepted, the installation is known.
          const again = await submitTo(second.url)(makePayload({ installationId, nowMs: clock.ms }), secret);
          expect(again.status).toBe(200);
          expect(await store.schemaVersion()).toBe(store.latestSchemaVersion); // each migration ran once
          expect(await store.count('SELECT count(*) FROM installations')).toBe(1);
          expect(await store.count('SELECT count(*) FROM submissions')).toBe(2);
          if (backend.name === 'sqlite') {
            const db = new Database(join(store.options.dataDir, DB_FILE_NAME), { readonly: true });
            expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
            db.close();
          }
        } finally {
          await second.stop();
        }
      } finally {
        await store.cleanup();
      }
    });
  });
});
