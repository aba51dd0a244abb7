import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/printers/clock.js';
import { LinkHealth } from '../../src/printers/link-health.js';
import type { PrinterUpdate } from '../../src/printers/types.js';

function setup(random = () => 0.5) {
  const updates: PrinterUpdate[] = [];
  const clock = new ManualClock();
  const link = new LinkHealth((u) => updates.push(u), clock, { initialMs: 1000, maxMs: 60_000, random });
  return { link, updates, clock, kinds: () => updates.map((u) => u.kind) };
}

describe('LinkHealth', () => {
  it('goes online once, on the first answer, and offline once per outage', () => {
    const t = setup();
    t.link.seen();
    t.link.seen();
    t.link.down('timeout');
    t.link.down('closed');
    t.link.seen();
    expect(t.kinds()).toEqual(['connected', 'seen', 'seen', 'disconnected', 'connected', 'seen']);
    expect(t.updates[3]).toEqual({ kind: 'disconnected', reason: 'timeout' });
  });

  it('shows a problem while failing and clears it when the printer answers', () => {
    const t = setup();
    t.link.seen();
    expect(t.link.failed('cannot connect (ECONNREFUSED)')).toBe(1);
    expect(t.link.failed('cannot connect (ECONNREFUSED)')).toBe(2);
    expect(t.link.problem).toBe('cannot connect (ECONNREFUSED)');
    expect(t.updates.filter((u) => u.kind === 'problem')).toHaveLength(1);
    t.link.down('network');
    t.clock.advance(5000);
    t.link.seen();
    expect(t.link.problem).toBeNull();
    expect(t.link.failureCount).toBe(0);
    expect(t.link.lastSeen).toBe(t.clock.now());
    expect(t.updates.at(-3)).toEqual({ kind: 'problem', scope: 'link', problem: null });
  });

  it('backs off by doubling with equal jitter, capped', () => {
    const low = setup(() => 0);
    const high = setup(() => 0.999_999);
    const delays: [number, number][] = [];
    for (let i = 0; i < 9; i++) {
      low.link.failed('x');
      high.link.failed('x');
      delays.push([low.link.nextBackoffMs(), high.link.nextBackoffMs()]);
    }
    expect(delays.map(([a]) => a)).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(delays.map(([, b]) => b)).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });
});
