/**
 * Per-client token buckets for the write endpoints. The client address lives only in this in-memory map, under a
 * key that is never logged or stored; an entry whose bucket has refilled is indistinguishable from a new one, so
 * sweeping it away loses nothing.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface TokenBucketOptions {
  /** Requests a client may make in a burst. */
  burst: number;
  /** Tokens added per second. */
  perSecond: number;
  /** Upper bound on tracked clients; beyond it, full buckets are swept and then the oldest entries dropped. */
  maxClients?: number;
  now?: () => number;
}

export type TakeResult = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export const DEFAULT_TOKEN_BUCKET = { burst: 30, perSecond: 0.5 } as const;

export class TokenBucketLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxClients: number;
  readonly #now: () => number;

  constructor(options: TokenBucketOptions) {
    this.#burst = options.burst;
    this.#perMs = options.perSecond / 1000;
    this.#maxClients = options.maxClients ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(clientKey: string): TakeResult {
    const now = this.#now();
    const bucket = this.#buckets.get(clientKey) ?? { tokens: this.#burst, updatedAt: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + Math.max(0, now - bucket.updatedAt) * this.#perMs);
    bucket.updatedAt = now;
    if (!this.#buckets.has(clientKey)) {
      if (this.#buckets.size >= this.#maxClients) this.#evict(now);
      this.#buckets.set(clientKey, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    const waitMs = this.#perMs > 0 ? (1 - bucket.tokens) / this.#perMs : 3600_000;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  /** Drops buckets that have refilled completely; they carry no state a new bucket would not have. */
  sweep(now = this.#now()): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) * this.#perMs >= this.#burst) this.#buckets.delete(key);
    }
  }

  clear(): void {
    this.#buckets.clear();
  }

  #evict(now: number): void {
    this.sweep(now);
    // Still full: forget the least recently inserted clients (Map keeps insertion order).
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < this.#maxClients) break;
      this.#buckets.delete(key);
    }
  }
}

/**
 * The bucket key for a client address: IPv4 as is (IPv4-mapped IPv6 unwrapped), IPv6 by its /64 prefix, because one
 * subscriber usually holds a whole /64 and could otherwise rotate addresses to escape the limit.
 */
export function clientKeyOf(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIPv4(address)) return address;
  if (isIPv6(address)) return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
  return 'unknown';
}

function expandIPv6(address: string): string[] {
  const withoutZone = address.split('%')[0] ?? address;
  const [head = '', tail] = withoutZone.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((group) => group.toLowerCase());
}
