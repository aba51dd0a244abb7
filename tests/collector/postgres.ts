/**
 * A throwaway PostgreSQL for the collector's tests and benchmark, as the MQTT tests start mosquitto: Debian's
 * `postgresql` package (initdb, pg_ctl), initialised in a temporary directory, listening on a free loopback port
 * (and a unix socket in the same directory), stopped and deleted at the end. initdb refuses to run as root, so as
 * root the server runs as the `postgres` user that the package creates.
 *
 * Free of vitest, so that the benchmark can use it too; the tests ask for PostgreSQL through backends.ts
 * `skipPostgres()`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** The directory of initdb and pg_ctl, newest version first; undefined when PostgreSQL is not installed. */
export const PG_BIN_DIR: string | undefined = findBinDir();

export const POSTGRES_MISSING_REASON =
  'PostgreSQL is not installed (initdb not found under /usr/lib/postgresql/*/bin); install the postgresql package ' +
  '(apt-get install -y postgresql)';

function findBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root, but there is no postgres user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const running = new Set<PostgresCluster>();
process.once('exit', () => {
  // A test process that ends without its afterAll must not leave a server behind.
  for (const cluster of running) cluster.killSync();
});

export interface ClusterOptions {
  /** Extra postgresql.conf settings (the tests turn fsync off; the benchmark keeps the defaults). */
  settings?: Record<string, string | number>;
}

export class PostgresCluster {
  readonly dir: string;
  readonly dataDir: string;
  readonly password = randomBytes(18).toString('base64url');
  port = 0;
  readonly #asUser: { uid: number; gid: number } | undefined;
  #schemas = 0;

  private constructor(dir: string, asUser: { uid: number; gid: number } | undefined) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.#asUser = asUser;
  }

  /** initdb into a new temporary directory and start on a free loopback port. */
  static async start(options: ClusterOptions = {}): Promise<PostgresCluster> {
    if (!PG_BIN_DIR) throw new Error(POSTGRES_MISSING_REASON);
    const asUser = postgresUser();
    const dir = mkdtempSync(join(tmpdir(), 'collector-pg-'));
    if (asUser) chownSync(dir, asUser.uid, asUser.gid);
    const cluster = new PostgresCluster(dir, asUser);
    try {
      const passwordFile = join(dir, 'password');
      writeFileSync(passwordFile, `${cluster.password}\n`, { mode: 0o600 });
      if (asUser) chownSync(passwordFile, asUser.uid, asUser.gid);
      await cluster.#pg('initdb', [
        '-D',
        cluster.dataDir,
        '--no-sync',
        '-U',
        'postgres',
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        `--pwfile=${passwordFile}`,
        '-E',
        'UTF8',
        '--locale=C',
      ]);
      rmSync(passwordFile);
      const settings: Record<string, string | number> = {
        listen_addresses: "'127.0.0.1'",
        unix_socket_directories: `'${dir}'`,
        max_connections: 100,
        log_min_messages: 'warning',
        ...options.settings,
      };
      appendFileSync(
        join(cluster.dataDir, 'postgresql.conf'),
        `\n${Object.entries(settings)
          .map(([key, value]) => `${key} = ${value}`)
          .join('\n')}\n`,
      );
      // Another process may take the free port before the server binds it: try a few.
      for (let attempt = 1; ; attempt++) {
        cluster.port = await freePort();
        appendFileSync(join(cluster.dataDir, 'postgresql.conf'), `port = ${cluster.port}\n`);
        try {
          await cluster.#pgCtl('start');
          break;
        } catch (err) {
          if (attempt >= 3) throw err;
        }
      }
      running.add(cluster);
      await cluster.query('CREATE DATABASE collector');
    } catch (err) {
      await cluster.destroy().catch(() => {});
      throw err;
    }
    return cluster;
  }

  async #pg(tool: string, args: string[]): Promise<void> {
    const binary = join(PG_BIN_DIR as string, tool);
    const [file, argv] = this.#asUser ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
    try {
      await run(file, argv, { cwd: this.dir, timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      let log = '';
      try {
        log = readFileSync(join(this.dir, 'server.log'), 'utf8').slice(-1500);
      } catch {}
      throw new Error(`${tool} ${args[args.length - 1]} failed: ${e.stderr || e.message}\n${log}`);
    }
  }

  #pgCtl(action: 'start' | 'stop', mode = 'fast'): Promise<void> {
    const args = ['-D', this.dataDir, '-w', '-t', '60', '-l', join(this.dir, 'server.log')];
    return this.#pg('pg_ctl', action === 'stop' ? [...args, '-m', mode, 'stop'] : [...args, 'start']);
  }

  /** A URL for `database` (default: collector), optionally pinned to one schema and with other credentials. */
  url(options: { database?: string; schema?: string; user?: string; password?: string } = {}): string {
    const user = encodeURIComponent(options.user ?? 'postgres');
    const password = encodeURIComponent(options.password ?? this.password);
    const search = options.schema ? `?options=${encodeURIComponent(`-c search_path=${options.schema}`)}` : '';
    return `postgres://${user}:${password}@127.0.0.1:${this.port}/${options.database ?? 'collector'}${search}`;
  }

  /** A new empty schema in the collector database: one per test, so tests share the server but no rows. */
  async createSchema(): Promise<string> {
    const schema = `test_${process.pid}_${++this.#schemas}`;
    await this.query(`CREATE SCHEMA ${schema}`, 'collector');
    return schema;
  }

  async dropSchema(schema: string): Promise<void> {
    await this.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`, 'collector');
  }

  /** Runs one statement as the superuser on `database` (default postgres). */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    database = 'postgres',
    values?: unknown[],
  ): Promise<R[]> {
    const client = new pg.Client({ connectionString: this.url({ database }) });
    await client.connect();
    try {
      return (await client.query<R>(sql, values)).rows;
    } finally {
      await client.end();
    }
  }

  /** The write-ahead log's current insert position (`X/Y`). */
  async walPosition(): Promise<string> {
    return (await this.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn'))[0]?.lsn as string;
  }

  /**
   * The write-ahead log between two positions, as latin1 text. Read by position, not by file: recycled segment files
   * still hold older records (initdb's catalogs, other tests' rows).
   */
  walText(from: string, to: string): string {
    const lsn = (text: string) => {
      const [high, low] = text.split('/') as [string, string];
      return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
    };
    const segmentSize = 16n * 1024n * 1024n;
    const start = lsn(from);
    const end = lsn(to);
    const timeline = readdirSync(join(this.dataDir, 'pg_wal'))
      .filter((name) => /^[0-9A-F]{24}$/.test(name))
      .sort()
      .at(-1)
      ?.slice(0, 8);
    const parts: string[] = [];
    for (let segment = start / segmentSize; segment <= end / segmentSize; segment++) {
      const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
      const file = join(this.dataDir, 'pg_wal', `${timeline}${hex(segment / 256n)}${hex(segment % 256n)}`);
      const bytes = readFileSync(file);
      const first = segment === start / segmentSize ? Number(start % segmentSize) : 0;
      const last = segment === end / segmentSize ? Number(end % segmentSize) : bytes.length;
      parts.push(bytes.subarray(first, last).toString('latin1'));
    }
    return parts.join('');
  }

  /** The bytes of every relation (tables, TOAST, indexes) in `schema` of the collector database, as latin1 text. */
  async schemaFilesText(schema: string): Promise<string> {
    const rows = await this.query<{ path: string }>(
      `SELECT pg_relation_filepath(c.oid) AS path FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'i', 't', 'S')
       UNION SELECT pg_relation_filepath(t.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class t ON t.oid = c.reltoastrelid WHERE n.nspname = $1
       UNION SELECT pg_relation_filepath(i.indexrelid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_index i ON i.indrelid = c.reltoastrelid WHERE n.nspname = $1`,
      'collector',
      [schema],
    );
    const parts: string[] = [];
    for (const { path } of rows) {
      if (!path) continue;
      // Relations over 1 GB continue in path.1, path.2, ...
      for (let n = 0; ; n++) {
        const file = join(this.dataDir, n === 0 ? path : `${path}.${n}`);
        if (!existsSync(file)) break;
        parts.push(readFileSync(file).toString('latin1'));
      }
    }
    return parts.join('');
  }

  /** Stops the server (the data stays): `fast` ends every session, as an operator's restart does. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.#pgCtl('stop', mode);
    running.delete(this);
  }

  /** Starts a stopped server again, on the same port and data. */
  async restart(): Promise<void> {
    await this.#pgCtl('start');
    running.add(this);
  }

  async destroy(): Promise<void> {
    if (running.has(this)) await this.stop('immediate').catch(() => this.killSync());
    rmSync(this.dir, { recursive: true, force: true });
  }

  killSync(): void {
    if (!PG_BIN_DIR || !running.has(this)) return;
    const args = [join(PG_BIN_DIR, 'pg_ctl'), '-D', this.dataDir, '-m', 'immediate', 'stop'];
    if (this.#asUser) spawnSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'ignore' });
    else spawnSync(args[0] as string, args.slice(1), { stdio: 'ignore' });
    running.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
