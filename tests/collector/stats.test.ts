import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Distribution, PublicStats } from '../../src/collector/stats.js';
import { type Combination, median, medianOfHistogram, suppressSmallGroups } from '../../src/collector/stats.js';
import { type StorageBackend, useStorageBackends } from './backends.js';
import {
  DAY_MS,
  makePayload,
  newSecret,
  type PayloadOptions,
  startTestCollector,
  type TestCollector,
} from './helpers.js';

const K = 10;
const backends = useStorageBackends();
const one = (counts: Record<string, number>): Combination[] =>
  Object.entries(counts).map(([key, installations]) => ({ groups: [key], installations }));

/** The invariants of the rule, checked on any output. */
function expectSafe(distribution: Distribution, k: number, combos: Combination[]) {
  for (const group of distribution.groups) expect(group.installations).toBeGreaterThanOrEqual(k);
  const visible = new Set(distribution.groups.map((g) => g.key));
  const folded = new Map<string, number>();
  for (const c of combos)
    for (const g of c.groups) if (!visible.has(g)) folded.set(g, (folded.get(g) ?? 0) + c.installations);
  if (folded.size === 0) {
    expect(distribution.other).toBe(0);
    return;
  }
  if (distribution.other === null) return;
  expect(distribution.other).toBeGreaterThanOrEqual(k);
  expect(folded.size).toBeGreaterThanOrEqual(2);
  // `other` equals no single folded group's count, so it does not give one away.
  expect(distribution.other).toBeGreaterThan(Math.max(...folded.values()));
}

describe('suppressSmallGroups', () => {
  it('publishes every group when all reach k', () => {
    expect(suppressSmallGroups(one({ docker: 12, homeassistant: 40 }), K)).toEqual({
      groups: [
        { key: 'homeassistant', installations: 40 },
        { key: 'docker', installations: 12 },
      ],
      other: 0,
    });
  });

  it('folds the next smallest group too when exactly one group is small (subtraction attack)', () => {
    // Without the extra fold, other = 3 = standalone, and total - visible would name it.
    const result = suppressSmallGroups(one({ homeassistant: 50, docker: 30, standalone: 3 }), K);
    expect(result).toEqual({ groups: [{ key: 'homeassistant', installations: 50 }], other: 33 });
  });

  it('keeps folding until other reaches k', () => {
    expect(suppressSmallGroups(one({ A: 40, B: 5, C: 3 }), K)).toEqual({ groups: [], other: 48 });
    expect(suppressSmallGroups(one({ A: 40, B: 6, C: 5 }), K)).toEqual({
      groups: [{ key: 'A', installations: 40 }],
      other: 11,
    });
    // C + D = 9 < k: B is folded as well.
    expect(suppressSmallGroups(one({ A: 40, B: 20, C: 6, D: 3 }), K)).toEqual({
      groups: [{ key: 'A', installations: 40 }],
      other: 29,
    });
  });

  it('counts overlapping groups (models) by distinct installations', () => {
    const combos: Combination[] = [
      { groups: ['A1', 'X1C'], installations: 8 },
      { groups: ['X1C'], installations: 30 },
      { groups: ['MK4'], installations: 4 },
      { groups: ['A1'], installations: 1 },
      { groups: [], installations: 7 }, // no printers: in no group
    ];
    // A1 = 9 and MK4 = 4 are small; their union holds 13 installations.
    expect(suppressSmallGroups(combos, K)).toEqual({ groups: [{ key: 'X1C', installations: 38 }], other: 13 });
    // Every A1 owner also has an X1C: folding A1 (5) with X1C would make other = 20 = X1C. Fold P1S too.
    const nested: Combination[] = [
      { groups: ['A1', 'X1C'], installations: 5 },
      { groups: ['X1C'], installations: 15 },
      { groups: ['P1S'], installations: 30 },
      { groups: ['H2D'], installations: 40 },
    ];
    expect(suppressSmallGroups(nested, K)).toEqual({ groups: [{ key: 'H2D', installations: 40 }], other: 50 });
    // Even folding everything cannot reach k: other is withheld.
    expect(
      suppressSmallGroups(
        [
          { groups: ['MK4'], installations: 3 },
          { groups: [], installations: 30 },
        ],
        K,
      ),
    ).toEqual({
      groups: [],
      other: null,
    });
  });

  it('holds its invariants on random distributions', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    for (let run = 0; run < 2_000; run++) {
      const k = 2 + Math.floor(random() * 10);
      const combos: Combination[] = [];
      for (let i = 0; i < 1 + Math.floor(random() * 8); i++) {
        const groups = keys.filter(() => random() < (run % 2 ? 0.5 : 0.2));
        const single = keys[Math.floor(random() * keys.length)] as string;
        combos.push({ groups: run % 2 ? groups : [single], installations: 1 + Math.floor(random() * 25) });
      }
      const result = suppressSmallGroups(combos, k);
      expectSafe(result, k, combos);
      if (run % 2 === 0) {
        // A partition: visible groups plus other add up to the total exactly, whenever the total reaches k.
        const total = combos.reduce((n, c) => n + c.installations, 0);
        if (total >= k)
          expect(result.groups.reduce((n, g) => n + g.installations, 0) + (result.other ?? 0)).toBe(total);
      }
    }
  });

  it('computes medians', () => {
    expect(median([])).toBeNull();
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 10])).toBe(3.5);
    expect(medianOfHistogram([])).toBeNull();
    // 0,0,0,2,5 -> 0 ; 0,0,2,5 -> 1 ; 1,7,7,7 -> 7
    expect(
      medianOfHistogram([
        { jobs: 0, installations: 3 },
        { jobs: 2, installations: 1 },
        { jobs: 5, installations: 1 },
      ]),
    ).toBe(0);
    expect(
      medianOfHistogram([
        { jobs: 0, installations: 2 },
        { jobs: 2, installations: 1 },
        { jobs: 5, installations: 1 },
      ]),
    ).toBe(1);
    expect(
      medianOfHistogram([
        { jobs: 1, installations: 1 },
        { jobs: 7, installations: 3 },
      ]),
    ).toBe(7);
    // Agrees with the plain median on random data.
    for (let run = 0; run < 200; run++) {
      const values = Array.from({ length: 1 + (run % 17) }, (_, i) => (i * 7919 + run * 31) % 13);
      const counts = new Map<number, number>();
      for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
      const rows = [...counts].sort((a, b) => a[0] - b[0]).map(([jobs, installations]) => ({ jobs, installations }));
      expect(medianOfHistogram(rows)).toBe(median(values));
    }
  });
});

describe.each(backends)('GET /v1/stats on $name', (backend: StorageBackend) => {
  let running: TestCollector | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  async function submitAll(c: TestCollector, specs: PayloadOptions[]) {
    const ids: { installationId: string; secret: string }[] = [];
    for (const spec of specs) {
      const installationId = randomUUID();
      const secret = newSecret();
      const res = await c.submit(makePayload({ installationId, nowMs: c.clock.ms, ...spec }), secret);
      expect(res.status).toBe(200);
      ids.push({ installationId, secret });
    }
    return ids;
  }

  async function getStats(c: TestCollector): Promise<PublicStats> {
    const res = await fetch(`${c.collector.url}/v1/stats`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    return (await res.json()) as PublicStats;
  }

  it('publishes nothing while fewer than k installations are active', async () => {
    running = await startTestCollector({ backend });
    const c = running;
    await submitAll(
      c,
      Array.from({ length: K - 1 }, () => ({})),
    );
    const stats = await getStats(c);
    expect(stats.suppressed).toBe(true);
    expect(stats.installations).toBeNull();
    expect(stats.deployment_modes).toEqual({ groups: [], other: null });
    expect(stats.jobs_per_week).toEqual([]);
    expect(stats.success_rate).toBeNull();
    expect(stats.median_jobs_per_installation).toBeNull();
  });

  it('folds small groups so that no suppressed value can be recovered from the totals', async () => {
    running = await startTestCollector({ backend });
    const c = running;
    const specs: PayloadOptions[] = [];
    // deployment: homeassistant 13, docker 10, standalone 2; countries: DE 12, US 10, FR 3;
    // models: X1C 20, MK4 5 (so prusa is a type of 5); jobs: installation i created i jobs.
    for (let i = 0; i < 25; i++) {
      specs.push({
        deployment_mode: i < 13 ? 'homeassistant' : i < 23 ? 'docker' : 'standalone',
        country_code: i < 12 ? 'DE' : i < 22 ? 'US' : 'FR',
        app_version: i < 24 ? '0.2.0' : '0.1.0',
        models: i < 20 ? { X1C: 1 } : { MK4: 1 },
        jobs: { created: i, completed: i, failed: i % 3 === 0 ? 1 : 0, cancelled: 0 },
      });
    }
    await submitAll(c, specs);
    const stats = await getStats(c);
    expect(stats.suppressed).toBe(false);
    expect(stats.installations).toBe(25);

    // Exactly one small group (standalone 2): docker is folded with it, so other = 12, not 2.
    expect(stats.deployment_modes).toEqual({ groups: [{ key: 'homeassistant', installations: 13 }], other: 12 });
    // Exactly one small country (FR 3): US is folded with it.
    expect(stats.countries).toEqual({ groups: [{ key: 'DE', installations: 12 }], other: 13 });
    // One small version (0.1.0 by 1): nothing else to fold with that would keep 0.2.0 visible and hide 0.1.0.
    expect(stats.app_versions).toEqual({ groups: [], other: 25 });
    // Types and models: prusa / MK4 (5) alone would be recoverable; both groups fold.
    expect(stats.printer_types).toEqual({ groups: [], other: 25 });
    expect(stats.printer_models).toEqual({ groups: [], other: 25 });

    for (const distribution of [stats.deployment_modes, stats.countries, stats.app_versions]) {
      const visible = distribution.groups.reduce((n, g) => n + g.installations, 0);
      expect(visible + (distribution.other ?? 0)).toBe(stats.installations); // totals stay consistent
    }
    const text = JSON.stringify(stats);
    for (const hidden of ['standalone', 'docker', 'FR', 'US', '0.1.0', 'MK4', 'prusa'])
      expect(text).not.toContain(hidden);

    const jobs = (25 * 24) / 2;
    expect(stats.jobs_per_week).toEqual([{ week_start: '2025-03-03', installations: 25, jobs }]);
    const failed = specs.filter((_, i) => i % 3 === 0).length;
    expect(stats.success_rate).toBe(Math.round((jobs / (jobs + failed)) * 1000) / 1000);
    expect(stats.median_jobs_per_installation).toBe(12);
  });

  it('suppresses weeks with fewer than k contributors, honours a configured k and the 30-day window', async () => {
    running = await startTestCollector({ backend, k: 3 });
    const c = running;
    const early = await submitAll(
      c,
      Array.from({ length: 4 }, () => ({ deployment_mode: 'docker' as const })),
    );
    c.clock.advance(7 * DAY_MS);
    // Next week only two of them submit again.
    for (const { installationId, secret } of early.slice(0, 2)) {
      const res = await c.submit(makePayload({ installationId, nowMs: c.clock.ms, deployment_mode: 'docker' }), secret);
      expect(res.status).toBe(200);
    }
    let stats = await getStats(c);
    expect(stats.k).toBe(3);
    expect(stats.installations).toBe(4);
    expect(stats.deployment_modes).toEqual({ groups: [{ key: 'docker', installations: 4 }], other: 0 });
    expect(stats.jobs_per_week).toEqual([
      { week_start: '2025-03-03', installations: 4, jobs: 48 },
      { week_start: '2025-03-10', installations: null, jobs: null },
    ]);

    // 24 days later, the two that did not come back are outside the 30-day window: 2 < k.
    c.clock.advance(24 * DAY_MS);
    stats = await getStats(c);
    expect(stats.suppressed).toBe(true);
  });

  it('drops a deleted installation from the numbers at once', async () => {
    running = await startTestCollector({ backend, statsCacheMs: 60_000 });
    const c = running;
    const ids = await submitAll(
      c,
      Array.from({ length: K }, () => ({})),
    );
    expect((await getStats(c)).installations).toBe(K);
    const target = ids[0]!;
    const res = await fetch(`${c.collector.url}/v1/installations/${target.installationId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${target.secret}` },
    });
    expect(res.status).toBe(200);
    expect((await getStats(c)).suppressed).toBe(true);
  });
});
