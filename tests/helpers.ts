/** Shared test fixtures: temp data dirs, a real SQLite file, a service with a controllable clock. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import pino, { type Logger } from 'pino';
import { afterEach } from 'vitest';
import { databasePath, openDatabase } from '../src/db/open.js';
import { silentLogger } from '../src/log.js';
import type { FleetMember } from '../src/stats/aggregate.js';
import { UsageRepository } from '../src/stats/repository.js';
import { type ServiceOptions, UsageStatsService } from '../src/stats/service.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

export function tempDir(prefix = 'pstats-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function openTestDb(dir = tempDir()): { db: Database.Database; path: string; dir: string } {
  const path = databasePath(dir);
  const db = openDatabase(path);
  cleanups.push(() => db.open && db.close());
  return { db, path, dir };
}

export interface TestClock {
  now: () => Date;
  set(iso: string): void;
  advance(ms: number): void;
}

export function testClock(start = '2026-11-02T10:00:00.000Z'): TestClock {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    set: (iso) => {
      t = Date.parse(iso);
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

export function testService(overrides: Partial<ServiceOptions> & { dir?: string; fleet?: () => FleetMember[] } = {}): {
  service: UsageStatsService;
  repository: UsageRepository;
  db: Database.Database;
  clock: TestClock;
  path: string;
} {
  const { db, path } = openTestDb(overrides.dir);
  const repository = new UsageRepository(db);
  const clock = testClock();
  const service = new UsageStatsService({
    repository,
    logger: silentLogger(),
    env: {},
    now: clock.now,
    timezone: 'Europe/Berlin',
    ...overrides,
  });
  return { service, repository, db, clock, path };
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A debug-level pino logger that keeps every line in memory, parsed. */
export function captureLogger(): { logger: Logger; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(chunk: string) {
        lines.push(JSON.parse(chunk) as LogLine);
      },
    },
  );
  return { logger, lines, text: () => lines.map((l) => JSON.stringify(l)).join('\n') };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 20 ms until it holds, or fails naming `what`. */
export async function waitFor(check: () => boolean, timeoutMs = 8000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
