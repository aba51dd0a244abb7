/**
 * Opening the statistics database: pragmas, migrations, and a clear error (with the file left untouched) when the
 * file is not a usable SQLite database.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './migrations.js';

export const DATABASE_FILE = 'usage_stats.db';

export class DatabaseOpenError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'DatabaseOpenError';
  }
}

export interface OpenOptions {
  readonly?: boolean;
  /** Milliseconds a writer waits for another connection's lock (the CLI while the daemon runs). */
  busyTimeoutMs?: number;
}

export function databasePath(dataDir: string): string {
  return join(dataDir, DATABASE_FILE);
}

export function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK | constants.R_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new DatabaseOpenError(`data directory ${dir} is not writable (${code})`, dir);
  }
}

export function openDatabase(path: string, options: OpenOptions = {}): Database.Database {
  if (path !== ':memory:') ensureWritableDir(dirname(path));
  if (options.readonly && !existsSync(path)) {
    throw new DatabaseOpenError(`no statistics database at ${path} yet`, path);
  }
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (error) {
    throw new DatabaseOpenError(`cannot open database ${path}: ${(error as Error).message}`, path);
  }
  try {
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    // Read something first: a corrupt or foreign file fails here, before any pragma could write to it.
    db.pragma('schema_version', { simple: true });
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      limitDatabaseSize(db);
    }
    return db;
  } catch (error) {
    db.close();
    const reason =
      (error as { code?: string }).code === 'SQLITE_NOTADB' ? 'not a SQLite database' : (error as Error).message;
    throw new DatabaseOpenError(
      `database ${path} cannot be used (${reason}); it was left untouched — move it aside to start fresh`,
      path,
    );
  }
}

/**
 * PRINTERNIZER_MAX_DB_PAGES caps the file at that many pages (SQLite's max_page_count, per connection): a knob for
 * limiting the database on small storage, and the seam the disk-full tests use. Unset or invalid means no cap.
 */
function limitDatabaseSize(db: Database.Database, env: NodeJS.ProcessEnv = process.env): void {
  const pages = Number(env.PRINTERNIZER_MAX_DB_PAGES);
  if (Number.isSafeInteger(pages) && pages > 0) db.pragma(`max_page_count = ${pages}`);
}
