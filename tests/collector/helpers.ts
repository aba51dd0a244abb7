/** Shared fixtures for the collector tests: a valid payload, a fake clock, a collector on loopback on either storage. */
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { SubmissionPayload } from '../../src/collector/payload.js';
import { type RunningCollector, type StartCollectorOptions, startCollector } from '../../src/collector/server.js';
import { type StorageBackend, sqliteBackend, type TestStore } from './backends.js';

export const DAY_MS = 24 * 60 * 60 * 1000;
export const HOUR_MS = 60 * 60 * 1000;
/** A Monday noon, so week boundaries in tests are easy to reason about. */
export const T0 = Date.parse('2025-03-03T12:00:00.000Z');

export class FakeClock {
  constructor(public ms = T0) {}
  readonly now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
  iso(offsetMs = 0): string {
    return new Date(this.ms + offsetMs).toISOString();
  }
}

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> | T[K] : T[K] };

export interface PayloadOptions {
  installationId?: string;
  submissionId?: string;
  nowMs?: number;
  deployment_mode?: SubmissionPayload['installation']['deployment_mode'];
  country_code?: string | null;
  app_version?: string;
  models?: Record<string, number>;
  jobs?: { created: number; completed: number; failed: number; cancelled?: number };
}

export function makePayload(options: PayloadOptions = {}): SubmissionPayload {
  const now = options.nowMs ?? T0;
  const models = options.models ?? { X1C: 1, MK4: 1 };
  const typeCounts: Record<string, number> = {};
  for (const [model, n] of Object.entries(models)) {
    const type = /^(MK|MINI|XL|CORE)/.test(model) ? 'prusa' : 'bambu_lab';
    typeCounts[type] = (typeCounts[type] ?? 0) + n;
  }
  const printerCount = Object.values(models).reduce((a, b) => a + b, 0);
  const jobs = options.jobs ?? { created: 12, completed: 9, failed: 3, cancelled: 1 };
  return {
    schema_version: 1,
    submission_id: options.submissionId ?? randomUUID(),
    submission_timestamp: new Date(now).toISOString(),
    installation: {
      installation_id: options.installationId ?? randomUUID(),
      first_seen: new Date(now - 60 * DAY_MS).toISOString(),
      app_version: options.app_version ?? '0.1.0',
      runtime_version: 'v20.11.1',
      platform: 'linux',
      deployment_mode: options.deployment_mode ?? 'homeassistant',
      country_code: options.country_code === undefined ? 'DE' : options.country_code,
    },
    period: { start: new Date(now - 7 * DAY_MS).toISOString(), end: new Date(now).toISOString(), duration_days: 7 },
    printer_fleet: {
      printer_count: printerCount,
      printer_types: Object.keys(typeCounts) as SubmissionPayload['printer_fleet']['printer_types'],
      printer_type_counts: typeCounts,
      printer_model_counts: models,
    },
    usage_stats: {
      job_count: jobs.created,
      job_completed_count: jobs.completed,
      job_failed_count: jobs.failed,
      job_cancelled_count: jobs.cancelled ?? 0,
      print_hours: 31.5,
      file_count: 4,
      upload_count: 2,
      uptime_hours: 160,
      feature_usage: { usage_statistics: true, mqtt_publish: false },
    },
    error_summary: { auth_failed: 1, hms_0300_0100: 2 },
  } as SubmissionPayload;
}

/** Deep-merges `patch` into a copy of `payload` (for building invalid variants). */
export function withChanges(
  payload: SubmissionPayload,
  patch: DeepPartial<SubmissionPayload> | Record<string, unknown>,
) {
  const merge = (target: Record<string, unknown>, source: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(source)) {
      const current = target[key];
      if (value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object') {
        merge(current as Record<string, unknown>, value as Record<string, unknown>);
      } else target[key] = value;
    }
  };
  const copy = structuredClone(payload) as unknown as Record<string, unknown>;
  merge(copy, patch as Record<string, unknown>);
  return copy;
}

export interface LogCapture {
  logger: pino.Logger;
  text(): string;
}

export function captureLogs(): LogCapture {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), text: () => lines.join('') };
}

export interface TestCollector {
  collector: RunningCollector;
  clock: FakeClock;
  /** SQLite: the data directory (PostgreSQL: an unused temporary directory). */
  dataDir: string;
  store: TestStore;
  logs: LogCapture;
  submit(payload: unknown, secret: string, init?: { headers?: Record<string, string> }): Promise<Response>;
  close(): Promise<void>;
}

export type TestCollectorOptions = Partial<StartCollectorOptions> & {
  /** The storage to run on (default SQLite). */
  backend?: StorageBackend;
  /** Run on this store instead of a new one (a second instance on the same database); it is not cleaned up. */
  store?: TestStore;
  /** Share a clock with another instance. */
  clock?: FakeClock;
};

/** Asserts that `needle` is nowhere in `text` (a database's bytes) without printing megabytes on failure. */
export function expectNotStored(text: string, needle: string): void {
  if (text.includes(needle)) throw new Error(`"${needle}" was found in the stored bytes`);
}

export function submitTo(url: string) {
  return (payload: unknown, secret: string, init: { headers?: Record<string, string> } = {}) =>
    fetch(`${url}/v1/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}`, ...init.headers },
      body: JSON.stringify(payload),
    });
}

export async function startTestCollector(options: TestCollectorOptions = {}): Promise<TestCollector> {
  const { backend = sqliteBackend, store: sharedStore, clock = new FakeClock(), ...rest } = options;
  const store = sharedStore ?? (await backend.createStore());
  const logs = captureLogs();
  let collector: RunningCollector;
  try {
    collector = await startCollector({
      ...store.options,
      logger: logs.logger,
      now: clock.now,
      statsCacheMs: 0,
      rateLimit: { burst: 1000, perSecond: 1000 },
      ...rest,
    });
  } catch (err) {
    if (!sharedStore) await store.cleanup();
    throw err;
  }
  await store.ready();
  return {
    collector,
    clock,
    dataDir: store.options.dataDir,
    store,
    logs,
    submit: submitTo(collector.url),
    async close() {
      await collector.stop();
      if (!sharedStore) await store.cleanup();
    },
  };
}
