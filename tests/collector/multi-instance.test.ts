/**
 * Several collector instances on one PostgreSQL database must answer as one would: every rule is enforced in the
 * database (row locks, primary keys, a version counter, advisory locks), never in one instance's memory.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { PublicStats } from '../../src/collector/stats.js';
import { PRUNE_LOCK_KEY } from '../../src/collector/storage-postgres.js';
import { postgresBackend, skipPostgres, type TestStore } from './backends.js';
import {
  DAY_MS,
  FakeClock,
  HOUR_MS,
  makePayload,
  newSecret,
  startTestCollector,
  T0,
  type TestCollector,
  type TestCollectorOptions,
} from './helpers.js';
import { expectRollupsRebuildable } from './rollups.js';

const K = 10;

describe.skipIf(skipPostgres())('two collector instances on one PostgreSQL database', { timeout: 60_000 }, () => {
  const backend = postgresBackend();
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** Instances on one fresh database, sharing one clock (their hosts' clocks agree). */
  async function instances(n: number, options: TestCollectorOptions = {}) {
    const store: TestStore = await backend.createStore();
    cleanups.push(() => store.cleanup());
    const clock = new FakeClock();
    const started: TestCollector[] = [];
    for (let i = 0; i < n; i++) {
      const c = await startTestCollector({ store, clock, ...options });
      cleanups.push(() => c.close());
      started.push(c);
    }
    return { store, clock, all: started, a: started[0] as TestCollector, b: started[1] as TestCollector };
  }

  const json = async <T>(res: Response) => (await res.json()) as T;
  const stats = async (c: TestCollector) => {
    const res = await fetch(`${c.collector.url}/v1/stats`);
    expect(res.status).toBe(200);
    return {
      body: await json<PublicStats>(res),
      age: Number(res.headers.get('age')),
      cache: res.headers.get('cache-control'),
    };
  };

  it('accepts a submission replayed to the other instance once, also when both arrive together', async () => {
    const { a, b, clock, store } = await instances(2);
    const secret = newSecret();
    const installationId = randomUUID();
    const payload = makePayload({ installationId });
    expect(await json(await a.submit(payload, secret))).toMatchObject({ duplicate: false });
    expect(await json(await b.submit(payload, secret))).toMatchObject({ accepted: true, duplicate: true });

    // The same submission sent to both at once, for a new and for a known installation, several times.
    for (let round = 0; round < 5; round++) {
      clock.advance(7 * HOUR_MS);
      const fresh = makePayload({ nowMs: clock.ms });
      const freshSecret = newSecret();
      const known = makePayload({ installationId, nowMs: clock.ms });
      const answers = await Promise.all([
        a.submit(fresh, freshSecret).then(json<{ duplicate: boolean }>),
        b.submit(fresh, freshSecret).then(json<{ duplicate: boolean }>),
        b.submit(known, secret).then(json<{ duplicate: boolean }>),
        a.submit(known, secret).then(json<{ duplicate: boolean }>),
      ]);
      expect(answers.map((x) => x.duplicate).sort()).toEqual([false, false, true, true]);
      expect(answers[0]?.duplicate).not.toBe(answers[1]?.duplicate);
      expect(answers[2]?.duplicate).not.toBe(answers[3]?.duplicate);
    }
    expect(await store.count('SELECT count(*) FROM submissions')).toBe(11);
    expect(
      await store.count(
        `SELECT sum(submission_count) FROM weekly_stats w JOIN installations i ON i.id = w.installation
         WHERE i.installation_id = '${installationId}'`,
      ),
    ).toBe(6);
    await expectRollupsRebuildable(store.options.database as string, clock.ms);
  });

  it('registers the first-use secret once when instances race', async () => {
    const { all, clock, store } = await instances(2);
    const installationId = randomUUID();
    const secrets = Array.from({ length: 12 }, () => newSecret());
    const statuses = await Promise.all(
      secrets.map(async (secret, i) => {
        const res = await (all[i % 2] as TestCollector).submit(makePayload({ installationId }), secret);
        return res.status;
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 403)).toHaveLength(secrets.length - 1);
    const winner = secrets[statuses.indexOf(200)] as string;
    expect(await store.count('SELECT count(*) FROM installations')).toBe(1);

    clock.advance(7 * DAY_MS);
    const loser = secrets.find((s) => s !== winner) as string;
    expect((await all[1]?.submit(makePayload({ installationId, nowMs: clock.ms }), loser))?.status).toBe(403);
    expect((await all[1]?.submit(makePayload({ installationId, nowMs: clock.ms }), winner))?.status).toBe(200);
    await expectRollupsRebuildable(store.options.database as string, clock.ms);
  });

  it('holds the one-per-6-hours rule across instances', async () => {
    const { a, b, clock, store } = await instances(2);
    const secret = newSecret();
    const installationId = randomUUID();
    expect((await a.submit(makePayload({ installationId }), secret)).status).toBe(200);
    clock.advance(2 * HOUR_MS);
    const early = await b.submit(makePayload({ installationId, nowMs: clock.ms }), secret);
    expect(early.status).toBe(429);
    expect(early.headers.get('retry-after')).toBe(String(4 * 60 * 60));

    // Two different submissions of one installation, one to each instance at once: one is accepted.
    for (let round = 0; round < 5; round++) {
      clock.advance(6 * HOUR_MS);
      const statuses = await Promise.all([
        a.submit(makePayload({ installationId, nowMs: clock.ms }), secret).then((r) => r.status),
        b.submit(makePayload({ installationId, nowMs: clock.ms }), secret).then((r) => r.status),
      ]);
      expect(statuses.sort()).toEqual([200, 429]);
    }
    await expectRollupsRebuildable(store.options.database as string, clock.ms);
  });

  it('sees a deletion made on the other instance at once, in every answer', async () => {
    const { a, b, store } = await instances(2, { statsCacheMs: 60_000 });
    const ids: { installationId: string; secret: string; payload: ReturnType<typeof makePayload> }[] = [];
    for (let i = 0; i < K; i++) {
      const installationId = randomUUID();
      const secret = newSecret();
      const payload = makePayload({ installationId });
      expect((await a.submit(payload, secret)).status).toBe(200);
      ids.push({ installationId, secret, payload });
    }
    expect((await stats(b)).body.installations).toBe(K); // b has cached the answer
    expect((await stats(a)).body.installations).toBe(K);

    const target = ids[0] as (typeof ids)[number];
    const del = (c: TestCollector) =>
      fetch(`${c.collector.url}/v1/installations/${target.installationId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${target.secret}` },
      });
    expect((await del(a)).status).toBe(200);
    // b's cached answer (60 s) is not served: the removal version changed in the same commit.
    expect((await stats(b)).body.suppressed).toBe(true);
    expect((await del(b)).status).toBe(404);
    expect(
      await store.count(`SELECT count(*) FROM installations WHERE installation_id = '${target.installationId}'`),
    ).toBe(0);
    expect(await store.count('SELECT count(*) FROM submissions')).toBe(K - 1);
    expect(await store.count('SELECT count(*) FROM weekly_stats')).toBe(K - 1);
    // Nothing of it is left to recognise: its old submission is new again, under any secret.
    expect(await json(await b.submit(target.payload, newSecret()))).toMatchObject({ duplicate: false });
    await expectRollupsRebuildable(store.options.database as string, T0);
  });

  it('never serves another instance’s numbers for longer than the max-age it states', async () => {
    const { a, b, clock } = await instances(2, { statsCacheMs: 60_000 });
    for (let i = 0; i < K; i++) expect((await a.submit(makePayload(), newSecret())).status).toBe(200);
    const first = await stats(b);
    expect(first.body.installations).toBe(K);
    expect(first.cache).toBe('public, max-age=60');
    expect(first.age).toBe(0);

    for (let i = 0; i < 5; i++) expect((await a.submit(makePayload(), newSecret())).status).toBe(200);
    clock.advance(30_000);
    const cached = await stats(b);
    expect(cached.body.installations).toBe(K); // within its stated time, and it says how old it is
    expect(cached.age).toBe(30);
    expect((await stats(a)).body.installations).toBe(K + 5);
    clock.advance(29_999);
    expect((await stats(b)).age).toBeLessThan(60);
    clock.advance(1);
    const fresh = await stats(b);
    expect(fresh.body.installations).toBe(K + 5);
    expect(fresh.age).toBe(0);
  });

  it('keeps the statistics rollups exact under concurrent submissions to both instances', async () => {
    const { all, clock, store } = await instances(2);
    const fleet = Array.from({ length: 40 }, (_, i) => ({
      installationId: randomUUID(),
      secret: newSecret(),
      deployment_mode: (['homeassistant', 'docker', 'standalone'] as const)[i % 3],
      app_version: '0.1.0',
    }));
    for (let round = 0; round < 4; round++) {
      const statuses = await Promise.all(
        fleet.map(async (installation, i) => {
          if (round > 0 && i % 4 === round) installation.app_version = `0.${round + 1}.0`; // upgrades move groups
          const payload = makePayload({ ...installation, nowMs: clock.ms });
          return (await (all[(i + round) % 2] as TestCollector).submit(payload, installation.secret)).status;
        }),
      );
      expect(statuses).toEqual(fleet.map(() => 200));
      clock.advance(round % 2 ? 7 * HOUR_MS : 3 * DAY_MS);
    }
    await expectRollupsRebuildable(store.options.database as string, clock.ms, 10);
    const [fromA, fromB] = await Promise.all(all.map((c) => stats(c)));
    expect(fromA?.body.installations).toBe(40);
    expect(fromB?.body).toEqual(fromA?.body);
  });

  it('gives a submission_id claimed by two installations at once to one, without failing the others', async () => {
    const { a, b, clock, store } = await instances(2);
    for (let round = 0; round < 3; round++) {
      const submissionId = randomUUID();
      // Each clashing submission travels with innocent ones: a lost race must not fail its group.
      const sent = [a, b].flatMap((c) => [
        { c, payload: makePayload({ submissionId, nowMs: clock.ms }), clash: true },
        ...Array.from({ length: 5 }, () => ({ c, payload: makePayload({ nowMs: clock.ms }), clash: false })),
      ]);
      const statuses = await Promise.all(
        sent.map(async ({ c, payload }) => (await c.submit(payload, newSecret())).status),
      );
      expect(statuses.filter((_, i) => sent[i]?.clash).sort()).toEqual([200, 409]);
      expect(statuses.filter((_, i) => !sent[i]?.clash)).toEqual(Array(10).fill(200));
    }
    expect(await store.count('SELECT count(*) FROM submissions')).toBe(33);
    await expectRollupsRebuildable(store.options.database as string, clock.ms);
  });

  it('runs the migrations once when instances start together', async () => {
    const store = await backend.createStore();
    cleanups.push(() => store.cleanup());
    const started = await Promise.all(Array.from({ length: 3 }, () => startTestCollector({ store })));
    for (const c of started) cleanups.push(() => c.close());
    expect(await store.schemaVersion()).toBe(store.latestSchemaVersion);
    expect(await store.count('SELECT count(*) FROM collector_migrations')).toBe(store.latestSchemaVersion);
    for (const c of started) expect((await c.submit(makePayload(), newSecret())).status).toBe(200);
  });

  it('prunes from one instance at a time, and deletion there removes every row of the installation', async () => {
    const { a, b, clock, store } = await instances(2);
    const secret = newSecret();
    const installationId = randomUUID();
    expect((await a.submit(makePayload({ installationId }), secret)).status).toBe(200);
    clock.advance(91 * DAY_MS);

    // Another instance holds the prune lock: this one leaves the work to it.
    const holder = new pg.Client({ connectionString: store.options.database });
    await holder.connect();
    cleanups.push(() => holder.end());
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [PRUNE_LOCK_KEY]);
    expect(await a.collector.prune()).toMatchObject({ skipped: true, submissions: 0 });
    await holder.query('COMMIT');
    expect(await b.collector.prune()).toMatchObject({ submissions: 1 });
    expect(await store.count('SELECT count(*) FROM submissions')).toBe(0);
    expect(await store.count('SELECT count(*) FROM weekly_stats')).toBe(1); // weekly rows stay a year

    clock.advance(365 * DAY_MS);
    const results = await Promise.all([a.collector.prune(), b.collector.prune()]);
    expect(results.reduce((n, r) => n + r.installations, 0)).toBe(1);
    expect(await store.count('SELECT count(*) FROM installations')).toBe(0);
    expect(await store.count('SELECT count(*) FROM weekly_stats')).toBe(0);
  });
});
