import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/collector/auth.js';
import { judgeSubmission } from '../../src/collector/rules.js';
import { createCollectorApp } from '../../src/collector/server.js';
import { openCollectorStorage } from '../../src/collector/storage.js';
import { SqliteCollectorStorage } from '../../src/collector/storage-sqlite.js';
import { type StorageBackend, type TestStore, useStorageBackends } from './backends.js';
import { FakeClock, makePayload, newSecret, startTestCollector, type TestCollector, withChanges } from './helpers.js';

const backends = useStorageBackends();
const silent = pino({ level: 'silent' });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'collector-batch-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sqliteStorage(): SqliteCollectorStorage {
  const storage = new SqliteCollectorStorage(tempDir());
  cleanups.push(() => storage.close());
  return storage;
}

const countRows = (storage: SqliteCollectorStorage, table: string) =>
  storage.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get();

describe('SQLite group commit', () => {
  it('commits the submissions of one turn together, judging each against those before it', async () => {
    const storage = sqliteStorage();
    const payloads = Array.from({ length: 20 }, () => makePayload());
    const store = () => ({ store: true });
    const done = payloads.map((p) =>
      storage.admit({ payload: p, secretHash: hashSecret(newSecret()), receivedAt: 1_000 }, store),
    );
    const first = payloads[0]!;
    expect(storage.findInstallation(first.installation.installation_id)).toBeUndefined(); // not committed yet
    await Promise.all(done);
    expect(countRows(storage, 'submissions')).toBe(20);

    // Two submissions of one installation in the same turn: the second sees the first as stored.
    const installationId = randomUUID();
    const secret = newSecret();
    const claim = { installationId, secret, receivedAt: 2_000 };
    const verdicts = await Promise.all(
      [makePayload({ installationId }), makePayload({ installationId })].map((payload) =>
        storage.admit({ payload, secretHash: hashSecret(secret), receivedAt: 2_000 }, (state) =>
          judgeSubmission(state, claim),
        ),
      ),
    );
    expect(verdicts.map((v) => v.outcome)).toEqual(['accepted', 'too_soon']);
  });

  it('fails only the submission that cannot be stored, not its neighbours', async () => {
    const storage = sqliteStorage();
    const stored = makePayload();
    storage.recordSubmission(stored, hashSecret(newSecret()), 0);
    // Same submission_id as a stored one, forced through: the primary key refuses it (the rules never let it by).
    const clash = withChanges(makePayload(), { submission_id: stored.submission_id }) as typeof stored;
    const always = () => ({ store: true });
    const results = await Promise.allSettled(
      [makePayload(), clash, makePayload()].map((payload) =>
        storage.admit({ payload, secretHash: hashSecret(newSecret()), receivedAt: 1 }, always),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(countRows(storage, 'submissions')).toBe(3);
  });

  it('holds commits while the statistics read, so they see one state', async () => {
    const storage = sqliteStorage();
    let pendingWrite: Promise<unknown> | undefined;
    const counts = await storage.snapshot(async (view) => {
      const before = await view.activeInstallationCount(0);
      pendingWrite = storage.admit(
        { payload: makePayload(), secretHash: hashSecret(newSecret()), receivedAt: 5 },
        () => ({
          store: true,
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 20)); // a whole turn of the event loop passes
      return [before, await view.activeInstallationCount(0)];
    });
    expect(counts).toEqual([0, 0]);
    await pendingWrite;
    expect(countRows(storage, 'installations')).toBe(1);
  });
});

describe.each(backends)('concurrency on $name', (backend: StorageBackend) => {
  async function started(): Promise<TestCollector> {
    const c = await startTestCollector({ backend });
    cleanups.push(() => c.close());
    return c;
  }

  async function inProcess() {
    const store: TestStore = await backend.createStore();
    cleanups.push(() => store.cleanup());
    const clock = new FakeClock();
    const storage = await openCollectorStorage({ ...store.options, logger: silent });
    const collector = createCollectorApp({ storage, logger: silent, now: clock.now });
    cleanups.push(() => collector.close());
    return { collector, store };
  }

  it('stores many distinct installations sent at once', async () => {
    const c = await started();
    const responses = await Promise.all(Array.from({ length: 50 }, () => c.submit(makePayload(), newSecret())));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    const stats = await (await fetch(`${c.collector.url}/v1/stats`)).json();
    expect((stats as { installations: number }).installations).toBe(50);
  });

  it('judges racing requests of one installation as if the winner were stored already', async () => {
    // SQLite: all four handlers run within one event-loop turn and are judged in order inside one batch.
    // PostgreSQL: they race for the installation's row; whichever wins, the others are judged against it.
    const { collector, store } = await inProcess();
    const installationId = randomUUID();
    const secret = newSecret();
    const forger = newSecret();
    const first = makePayload({ installationId });
    const send = (payload: unknown, bearer: string) =>
      collector.app.request('/v1/submit', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify(payload),
      });
    const responses = await Promise.all([
      send(first, secret), // 0
      send(first, secret), // 1: the daemon's retry of the same submission
      send(makePayload({ installationId }), forger), // 2: someone else claiming the id
      send(makePayload({ installationId }), secret), // 3: a second submission inside 6 hours
    ]);
    const answers = await Promise.all(
      responses.map(async (r) => ({
        status: r.status,
        duplicate: ((await r.json()) as { duplicate?: boolean }).duplicate,
      })),
    );
    const winners = answers.flatMap((a, i) => (a.status === 200 && a.duplicate === false ? [i] : []));
    expect(winners).toHaveLength(1);
    const winner = winners[0] as number;
    if (backend.name === 'sqlite') expect(winner).toBe(0);
    const expected = {
      0: [200, 200, 403, 429],
      1: [200, 200, 403, 429],
      2: [403, 403, 200, 403],
      3: [429, 429, 403, 200],
    }[winner as 0 | 1 | 2 | 3];
    expect(answers.map((a) => a.status)).toEqual(expected);
    if (winner <= 1) expect(answers[1 - winner]?.duplicate).toBe(true);
    expect(await store.count('SELECT count(*) FROM submissions')).toBe(1);
    expect(await store.count('SELECT count(*) FROM installations')).toBe(1);
  });

  it('accepts a submission through app.request and limits a streamed body without Content-Length', async () => {
    const { collector } = await inProcess();
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
