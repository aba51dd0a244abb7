import { describe, expect, it } from 'vitest';
import { clientKeyOf, TokenBucketLimiter } from '../../src/collector/rate-limit.js';
import { FakeClock } from './helpers.js';

describe('TokenBucketLimiter', () => {
  it('allows a burst, then one request per refill interval, per client', () => {
    const clock = new FakeClock(0);
    const limiter = new TokenBucketLimiter({ burst: 3, perSecond: 0.5, now: clock.now });
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, true]);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 2 });
    expect(limiter.take('b').allowed).toBe(true); // another client has its own bucket
    clock.advance(1_000);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    clock.advance(1_000);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('forgets refilled buckets and stays within its client bound', () => {
    const clock = new FakeClock(0);
    const limiter = new TokenBucketLimiter({ burst: 2, perSecond: 1, maxClients: 100, now: clock.now });
    for (let i = 0; i < 1_000; i++) limiter.take(`client-${i}`);
    expect(limiter.size).toBeLessThanOrEqual(100);
    clock.advance(10_000);
    limiter.sweep();
    expect(limiter.size).toBe(0);
  });
});

describe('clientKeyOf', () => {
  it('keys IPv4 by address, unwraps IPv4-mapped IPv6 and groups IPv6 by /64', () => {
    expect(clientKeyOf('203.0.113.9')).toBe('203.0.113.9');
    expect(clientKeyOf('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(clientKeyOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKeyOf('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(clientKeyOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKeyOf(undefined)).toBe('unknown');
    expect(clientKeyOf('not an address')).toBe('unknown');
  });
});
