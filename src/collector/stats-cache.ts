/**
 * Reuse of the /v1/stats answer. Each instance keeps its own answer for at most `ttlMs`, the max-age the endpoint
 * states, and says how old it is (`Age`), so no client or shared cache holds numbers older than max-age in all.
 * Submissions from other instances show up when the answer expires; a removal (DELETE, on any instance) shows up at
 * once: it bumps the storage's removal version in the same commit, and every request compares that version first.
 * Concurrent misses share one computation.
 */
import type { PublicStats } from './stats.js';
import type { CollectorStorage } from './storage.js';

export interface CachedStats {
  stats: PublicStats;
  /** When it was computed, on the collector's clock. */
  computedAt: number;
}

export class StatsCache {
  readonly #storage: CollectorStorage;
  readonly #compute: (at: number) => Promise<PublicStats>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #cached: (CachedStats & { version: number }) | undefined;
  #inflight: { version: number; promise: Promise<CachedStats & { version: number }> } | undefined;

  constructor(options: {
    storage: CollectorStorage;
    compute: (at: number) => Promise<PublicStats>;
    ttlMs: number;
    now: () => number;
  }) {
    this.#storage = options.storage;
    this.#compute = options.compute;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  async get(): Promise<CachedStats> {
    if (this.#ttlMs <= 0) {
      const computedAt = this.#now();
      return { stats: await this.#compute(computedAt), computedAt };
    }
    // Read before computing: a removal that commits meanwhile leaves this answer under the older version.
    const version = await this.#storage.removalVersion();
    const at = this.#now();
    const cached = this.#cached;
    if (cached && cached.version === version && at >= cached.computedAt && at - cached.computedAt < this.#ttlMs) {
      return cached;
    }
    if (this.#inflight?.version !== version) {
      const promise = this.#compute(at).then((stats) => {
        const entry = { stats, computedAt: at, version };
        if (!this.#cached || this.#cached.computedAt <= at) this.#cached = entry;
        return entry;
      });
      const inflight = { version, promise };
      this.#inflight = inflight;
      promise.then(
        () => this.#clearInflight(inflight),
        () => this.#clearInflight(inflight),
      );
    }
    return (this.#inflight as { promise: Promise<CachedStats> }).promise;
  }

  /** Forgets the answer (this instance just removed data). */
  invalidate(): void {
    this.#cached = undefined;
    this.#inflight = undefined;
  }

  #clearInflight(inflight: unknown): void {
    if (this.#inflight === inflight) this.#inflight = undefined;
  }
}
