/**
 * The same answers whichever database is below: one history of submissions, retries, early submissions, attribute
 * changes and deletions, played into a SQLite collector and a PostgreSQL collector on one clock, must give the same
 * answer to every request and the same /v1/stats as the 30-day window slides. PostgreSQL answers /v1/stats from
 * rollups its statements maintain (migration 2); rebuilding them from the rows must change nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresBackend, skipPostgres, sqliteBackend } from './backends.js';
import {
  DAY_MS,
  FakeClock,
  HOUR_MS,
  makePayload,
  newSecret,
  startTestCollector,
  type TestCollector,
} from './helpers.js';
import { expectRollupsRebuildable } from './rollups.js';

/** Deterministic, so a failure replays. */
function seeded(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe.skipIf(skipPostgres())('the same answers on SQLite and PostgreSQL', () => {
  const postgres = postgresBackend();
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('answers one history identically, request by request and in /v1/stats as the window slides', async () => {
    const random = seeded(14);
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
    const clock = new FakeClock();
    const options = { clock, k: 3, statsCacheMs: 0 };
    const sqlite = await startTestCollector({ backend: sqliteBackend, ...options });
    cleanups.push(() => sqlite.close());
    const postgresCollector = await startTestCollector({ backend: postgres, ...options });
    cleanups.push(() => postgresCollector.close());
    const both: TestCollector[] = [sqlite, postgresCollector];

    const installations = Array.from({ length: 30 }, () => ({
      installationId: randomUUID(),
      secret: newSecret(),
      deployment_mode: pick(['homeassistant', 'docker', 'standalone'] as const),
      country_code: pick<string | null>(['DE', 'US', 'FR', null]),
      app_version: pick(['0.1.0', '0.2.0']),
      models: pick<Record<string, number>>([{ X1C: 1 }, { MK4: 1, A1: 2 }, { P1S: 1 }, {}]),
      deleted: false,
      last: undefined as ReturnType<typeof makePayload> | undefined,
    }));
    const answers: string[][] = [[], []];
    const send = async (payload: unknown, secret: string) => {
      const [a, b] = await Promise.all(both.map((c) => c.submit(payload, secret)));
      const texts = [`${a?.status} ${await a?.text()}`, `${b?.status} ${await b?.text()}`];
      expect(texts[1]).toBe(texts[0]);
      answers[0]?.push(texts[0] as string);
    };
    const stats = async () => {
      const [a, b] = await Promise.all(both.map(async (c) => (await fetch(`${c.collector.url}/v1/stats`)).json()));
      expect(b).toEqual(a);
      return a as { suppressed: boolean };
    };

    let published = 0;
    for (let day = 0; day < 75; day++) {
      clock.advance(DAY_MS + Math.floor(random() * 5) * HOUR_MS - 2 * HOUR_MS);
      for (const installation of installations) {
        if (installation.deleted || random() > 0.35) continue;
        if (random() < 0.1) installation.app_version = pick(['0.2.0', '0.3.0']); // an upgrade moves it between groups
        if (random() < 0.05) installation.models = pick<Record<string, number>>([{ X1C: 2 }, { MK4: 1 }]);
        const created = Math.floor(random() * 8);
        const failed = Math.floor(random() * 3);
        const payload = makePayload({
          ...installation,
          nowMs: clock.ms,
          jobs: { created: created + failed, completed: created, failed, cancelled: Math.min(failed, 1) },
        });
        await send(payload, installation.secret);
        if (random() < 0.15 && installation.last) await send(installation.last, installation.secret); // a late retry
        if (random() < 0.1) await send(makePayload({ ...installation, nowMs: clock.ms }), installation.secret);
        if (random() < 0.05) await send(payload, newSecret()); // a forged secret
        installation.last = payload;
      }
      if (day === 40 || day === 60) {
        for (const installation of installations.filter((i) => !i.deleted).slice(0, 3)) {
          const [a, b] = await Promise.all(
            both.map((c) =>
              fetch(`${c.collector.url}/v1/installations/${installation.installationId}`, {
                method: 'DELETE',
                headers: { authorization: `Bearer ${installation.secret}` },
              }),
            ),
          );
          expect(b?.status).toBe(a?.status);
          installation.deleted = true;
        }
      }
      if (day % 3 === 0 && !(await stats()).suppressed) published++;
      if (day % 20 === 19) {
        const [a, b] = await Promise.all(both.map((c) => c.collector.prune()));
        expect({ ...b, skipped: undefined }).toEqual({ ...a, skipped: undefined });
      }
    }
    expect(published).toBeGreaterThan(10); // the comparison compared real numbers
    expect(answers[0]?.filter((a) => a.includes('"duplicate":false')).length).toBeGreaterThan(300);
    expect(answers[0]?.some((a) => a.startsWith('429'))).toBe(true);
    expect(answers[0]?.some((a) => a.startsWith('403'))).toBe(true);
    expect(answers[0]?.some((a) => a.includes('"duplicate":true'))).toBe(true);

    // What the statements maintained one submission at a time is what the rows say.
    await expectRollupsRebuildable(postgresCollector.store.options.database as string, clock.ms);
  }, 120_000);
});
