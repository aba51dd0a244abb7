/**
 * The two storages the collector suite runs against: `describe.each(useStorageBackends())` runs a block once on a
 * SQLite file and once on PostgreSQL (one throwaway cluster per test file, one fresh schema per test).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION } from '../../src/collector/storage-postgres.js';
import { DB_FILE_NAME, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION } from '../../src/collector/storage-sqlite.js';
import { requireTool } from '../requirements.js';
import { type ClusterOptions, PG_BIN_DIR, PostgresCluster } from './postgres.js';

/** One empty store for one test, with ways to look inside it. */
export interface TestStore {
  readonly backend: 'sqlite' | 'postgres';
  /** For startCollector: SQLite uses dataDir, PostgreSQL the database URL (dataDir is then unused). */
  readonly options: { dataDir: string; database?: string };
  /** The first column of the first row of `sql`, as a number (table names are the same in both schemas). */
  count(sql: string): Promise<number>;
  /** Everything the database has written to disk: a value that must never be stored must not appear in it. */
  diskText(): Promise<string>;
  /**
   * Where a deleted value must be gone from: SQLite, the file and its WAL (secure_delete, WAL scrubbed); PostgreSQL,
   * every row (dead tuples stay in its files until VACUUM reuses the space, as with any PostgreSQL table).
   */
  deletedText(): Promise<string>;
  /** How many migrations have run. */
  schemaVersion(): Promise<number>;
  /** How many migrations this storage knows. */
  readonly latestSchemaVersion: number;
  /** Called once the collector has created its schema: diskText covers what is written from here on. */
  ready(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface StorageBackend {
  readonly name: 'sqlite' | 'postgres';
  createStore(): Promise<TestStore>;
}

function sqliteBytes(dataDir: string): string {
  return ['', '-wal', '-shm', '-journal']
    .map((suffix) => join(dataDir, DB_FILE_NAME + suffix))
    .filter((file) => existsSync(file))
    .map((file) => readFileSync(file).toString('latin1'))
    .join('');
}

export const sqliteBackend: StorageBackend = {
  name: 'sqlite',
  async createStore(): Promise<TestStore> {
    const dataDir = mkdtempSync(join(tmpdir(), 'collector-test-'));
    const withDb = <T>(work: (db: Database.Database) => T): T => {
      const db = new Database(join(dataDir, DB_FILE_NAME), { readonly: true });
      try {
        return work(db);
      } finally {
        db.close();
      }
    };
    return {
      backend: 'sqlite',
      options: { dataDir },
      count: async (sql) => Number(withDb((db) => db.prepare(sql).pluck().get()) ?? 0),
      diskText: async () => sqliteBytes(dataDir),
      deletedText: async () => sqliteBytes(dataDir),
      schemaVersion: async () => withDb((db) => db.pragma('user_version', { simple: true }) as number),
      latestSchemaVersion: SQLITE_SCHEMA_VERSION,
      ready: async () => {},
      cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  },
};

/** A PostgreSQL backend whose cluster starts on first use and is removed after the file's tests. */
export function postgresBackend(
  // No background writes (autovacuum) in the log the privacy checks read; fsync off for speed.
  settings: ClusterOptions['settings'] = { fsync: 'off', autovacuum: 'off' },
): StorageBackend & {
  cluster(): Promise<PostgresCluster>;
} {
  let starting: Promise<PostgresCluster> | undefined;
  const cluster = () => {
    starting ??= PostgresCluster.start({ settings });
    return starting;
  };
  // Started before the file's tests (initdb takes seconds on a busy machine), removed after them.
  beforeAll(async () => {
    await cluster();
  }, 120_000);
  afterAll(async () => {
    if (starting) await (await starting.catch(() => undefined))?.destroy();
  }, 60_000);
  return {
    name: 'postgres',
    cluster,
    async createStore(): Promise<TestStore> {
      const server = await cluster();
      const schema = await server.createSchema();
      const database = server.url({ schema });
      const dataDir = mkdtempSync(join(tmpdir(), 'collector-test-'));
      let client: pg.Client | undefined;
      let walStart: string | undefined;
      const query = async (sql: string) => {
        if (!client) {
          client = new pg.Client({ connectionString: database });
          await client.connect();
        }
        return (await client.query({ text: sql, rowMode: 'array' })).rows as unknown[][];
      };
      return {
        backend: 'postgres',
        options: { dataDir, database },
        count: async (sql) => Number((await query(sql))[0]?.[0] ?? 0),
        // The schema's files (live and dead rows, indexes, TOAST) and the WAL written since the schema was created:
        // everything PostgreSQL wrote for this store, without the catalogs and system views every cluster has.
        diskText: async () => {
          await query('CHECKPOINT'); // rows still in shared buffers reach the files too
          const walEnd = await server.walPosition();
          return (await server.schemaFilesText(schema)) + server.walText(walStart ?? walEnd, walEnd);
        },
        deletedText: async () =>
          (
            await query(`SELECT concat_ws(E'\\n',
              (SELECT string_agg(t::text, E'\\n') FROM installations t),
              (SELECT string_agg(t::text, E'\\n') FROM submissions t),
              (SELECT string_agg(t::text, E'\\n') FROM weekly_stats t))`)
          )[0]?.[0] as string,
        schemaVersion: async () => Number((await query('SELECT max(version) FROM collector_migrations'))[0]?.[0] ?? 0),
        latestSchemaVersion: POSTGRES_SCHEMA_VERSION,
        ready: async () => {
          walStart ??= await server.walPosition();
        },
        cleanup: async () => {
          await client?.end().catch(() => {});
          await server.dropSchema(schema).catch(() => {});
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  };
}

/**
 * Both storages for `describe.each` (call it at the top of a test file). Without PostgreSQL installed only SQLite
 * runs, with a printed reason; under CI the file gets a failing "requires PostgreSQL" test instead.
 */
export function useStorageBackends(): StorageBackend[] {
  return skipPostgres() ? [sqliteBackend] : [sqliteBackend, postgresBackend()];
}

/**
 * True when the PostgreSQL tests should be skipped. Call it at the top level of a test file: through
 * tests/requirements.ts, a missing PostgreSQL skips them with a printed reason, and under CI adds a failing
 * "requires PostgreSQL" test to the file instead, so CI never passes by skipping.
 */
export function skipPostgres(): boolean {
  return !requireTool(
    'PostgreSQL',
    () => (PG_BIN_DIR ? true : { ok: false, reason: 'initdb not found under /usr/lib/postgresql/*/bin' }),
    'apt-get install -y postgresql',
  );
}
