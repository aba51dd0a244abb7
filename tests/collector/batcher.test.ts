import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/collector/auth.js';
import { SubmissionBatcher } from '../../src/collector/batcher.js';
import { createCollectorApp } from '../../src/collector/server.js';
import { CollectorStorage } from '../../src/collector/storage.js';
import { FakeClock, makePayload, newSecret, startTestCollector, type TestCollector, withChanges } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'collector-batch-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function started(): Promise<TestCollector> {
  const c = await startTestCollector();
  cleanups.push(() => c.close());
  return c;
}

describe('SubmissionBatcher', () => {
  it('commits submissions of one turn together and sees pending ones in lookups', async () => {
    const storage = new CollectorStorage(tempDir());
    cleanups.push(() => storage.close());
    const batcher = new SubmissionBatcher(storage, pino({ level: 'silent' }));
    const payloads = Array.from({ length: 20 }, () => makePayload());
    const done = payloads.map((p) => batcher.record(p, hashSecret(newSecret()), 1_000));
    const first = payloads[0]!;
    expect(batcher.pending).toBe(20);
    expect(storage.findInstallation(first.installation.installation_id)).toBeUndefined(); // not committed yet
    expect(batcher.findInstallation(first.installation.installation_id)?.lastAcceptedAt).toBe(1_000);
    expect(batcher.findSubmissionOwner(first.submission_id)).toBe(first.installation.installation_id);
    await Promise.all(done);
    expect(batcher.pending).toBe(0);
    expect(storage.db.prepare('SELECT count(*) FROM submissions').pluck().get()).toBe(20);
  });

  it('fails only the submission that cannot be stored, not its neighbours', async () => {
    const storage = new CollectorStorage(tempDir());
    cleanups.push(() => storage.close());
    const batcher = new SubmissionBatcher(storage, pino({ level: 'silent' }));
    const stored = makePayload();
    storage.recordSubmission(stored, hashSecret(newSecret()), 0);
    // Same submission_id as a stored one: the primary key refuses it (the server never lets this through).
    const clash = withChanges(makePayload(), { submission_id: stored.submission_id }) as typeof stored;
    const good = [makePayload(), makePayload()];
    const results = await Promise.allSettled([
      batcher.record(good[0]!, hashSecret(newSecret()), 1),
      batcher.record(clash, hashSecret(newSecret()), 1),
      batcher.record(good[1]!, hashSecret(newSecret()), 1),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(storage.db.prepare('SELECT count(*) FROM submissions').pluck().get()).toBe(3);
  });
});

describe('concurrent submissions', () => {
  it('stores many distinct installations sent at once', async () => {
    const c = await started();
    const responses = await Promise.all(Array.from({ length: 50 }, () => c.submit(makePayload(), newSecret())));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    const stats = await (await fetch(`${c.collector.url}/v1/stats`)).json();
    expect((stats as { installations: number }).installations).toBe(50);
  });

  it('judges racing requests of one installation as if the first were stored already', async () => {
    // In process, all four handlers run within one event-loop turn: the first is still pending (not committed)
    // when the others are judged, so only the batcher's overlay can get these right.
    const clock = new FakeClock();
    const collector = createCollectorApp({ dataDir: tempDir(), logger: pino({ level: 'silent' }), now: clock.now });
    cleanups.push(() => collector.close());
    const installationId = randomUUID();
    const secret = newSecret();
    const first = makePayload({ installationId });
    const send = (payload: unknown, bearer: string) =>
      collector.app.request('/v1/submit', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify(payload),
      });
    const [a, retry, forged, second] = await Promise.all([
      send(first, secret),
      send(first, secret), // the daemon's retry of the same submission
      send(makePayload({ installationId }), newSecret()), // someone else claiming the id
      send(makePayload({ installationId }), secret), // a second submission inside 6 hours
    ]);
    expect(a.status).toBe(200);
    expect(await a.json()).toMatchObject({ duplicate: false });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toMatchObject({ duplicate: true });
    expect(forged.status).toBe(403);
    expect(second.status).toBe(429);
    expect(collector.storage.db.prepare('SELECT count(*) FROM submissions').pluck().get()).toBe(1);
  });
});

describe('createCollectorApp (in process)', () => {
  it('accepts a submission through app.request and limits a streamed body without Content-Length', async () => {
    const clock = new FakeClock();
    const collector = createCollectorApp({ dataDir: tempDir(), logger: pino({ level: 'silent' }), now: clock.now });
    cleanups.push(() => collector.close());
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${newSecret()}` };
    const ok = await collector.app.request('/v1/submit', {
      method: 'POST',
      headers,
      body: JSON.stringify(makePayload()),
    });
    expect(ok.status).toBe(200);

    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 16 * 1024;
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x20));
      },
    });
    const big = await collector.app.request('/v1/submit', {
      method: 'POST',
      headers,
      body: endless,
      duplex: 'half',
    } as RequestInit);
    expect(big.status).toBe(413);
    expect(pulled).toBeLessThan(256 * 1024);
  });
});
