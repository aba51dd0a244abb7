/**
 * Consistent Home Assistant backups of a live database, without pausing the daemon (issue 13).
 *
 * The Supervisor backs up a running add-on by running `backup_pre` inside the container, copying /data into a tar
 * file by file, then running `backup_post` (supervisor/apps/app.py: begin_backup, backup, end_backup). Copied that
 * way, a WAL database can come back torn: a checkpoint may rewrite pages of usage_stats.db while it is being read,
 * and a WAL restart may overwrite the log that would have repaired them.
 *
 * The design: `backup-begin` (backup_pre) checkpoints the WAL into the database file and leaves a small process
 * (backup-hold.ts) that holds one read transaction open until `backup-end` (backup_post). SQLite never writes the database file under a
 * reader that started on a fully checkpointed log: that reader takes WAL read-lock 0, and a checkpoint must hold
 * read-lock 0 exclusively to copy frames back (sqlite.org/wal.html "Checkpoint starvation"; wal.c walCheckpoint), and
 * the log cannot be restarted while frames are unbackfilled. So for the whole copy:
 *
 * - usage_stats.db stays byte for byte what it was when backup_pre returned: every event recorded before the backup
 *   began, consistent on its own;
 * - the daemon keeps writing: new commits are appended to usage_stats.db-wal and nothing is held in memory;
 * - usage_stats.db-wal only grows, so a copy of it is a valid prefix (SQLite's recovery stops at the first frame
 *   whose checksum does not match) and a restore may even hold a few events recorded during the backup.
 *
 * Chosen over pausing writes and holding events in memory (the other design issue 13 names) because nothing waits,
 * nothing can be lost if backup_post never comes (the hold ends by itself), the daemon needs no control channel,
 * and a stopped or crashed add-on (no backup_pre) is still backed up consistently: a closed database or one with its
 * WAL both restore through SQLite's own recovery. The cost is one small Node.js process for the seconds the copy takes.
 *
 * config.yaml excludes usage_stats.db-shm (rebuilt on open), daemon.lock (a restored lock could name a live process)
 * and the hold file from backups. tests/addon/backup.test.ts copies a data directory under load the way the
 * Supervisor does, restores it and starts the daemon on it.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DATABASE_FILE, databasePath } from './open.js';

/** Written by the holder once its read transaction is open; removing it ends the hold. */
export const HOLD_FILE = 'backup-hold.json';
/** The hold ends by itself after this long, in case backup_post never comes (a Supervisor restart mid-backup). */
export const DEFAULT_MAX_HOLD_MS = 30 * 60_000;
const POLL_MS = 100;
const CHECKPOINT_ATTEMPTS = 20;

export interface HoldState {
  nonce: string;
  pid: number;
  since: string;
  /** Events in the held snapshot: what a restore of this backup holds at least. */
  events: number;
  /** True when the snapshot is the database file alone (the WAL was fully checkpointed and empty). */
  file_frozen: boolean;
}

export interface BackupBeginResult {
  held: boolean;
  reason?: string;
  state?: HoldState;
}

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

const holdPath = (dataDir: string) => join(dataDir, HOLD_FILE);

function readHold(dataDir: string): HoldState | null {
  try {
    return JSON.parse(readFileSync(holdPath(dataDir), 'utf8')) as HoldState;
  } catch {
    return null;
  }
}

function removeHold(dataDir: string): boolean {
  try {
    unlinkSync(holdPath(dataDir));
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `node [--import tsx] backup-hold.(js|ts)`: the holder's own entry point beside this module, in dist/ or in the
 * sources (run through tsx, whose loader the parent's execArgv carries).
 */
export function defaultHolderCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  return [process.execPath, ...process.execArgv, join(dirname(self), `backup-hold${extname(self)}`)];
}

/**
 * backup_pre: ends an older hold if one is left, starts the holder and waits until its read transaction is open.
 * Without a database there is nothing to hold (the add-on never ran).
 */
export async function beginBackup(
  dataDir: string,
  options: { holderCommand?: string[]; maxHoldMs?: number; timeoutMs?: number } = {},
): Promise<BackupBeginResult> {
  if (!existsSync(databasePath(dataDir))) return { held: false, reason: `no ${DATABASE_FILE} yet` };
  // A hold left by an earlier backup whose backup_post never came: its holder sees the file go and lets go.
  if (removeHold(dataDir)) await sleep(3 * POLL_MS);

  const nonce = randomUUID();
  const [command, ...args] = options.holderCommand ?? defaultHolderCommand();
  const holder = spawn(
    command!,
    [
      ...args,
      '--data-dir',
      dataDir,
      '--nonce',
      nonce,
      '--max-hold-ms',
      String(options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS),
    ],
    // Detached, no stdio: the Supervisor's `docker exec` waits for the output streams of backup_pre to close.
    { detached: true, stdio: 'ignore' },
  );
  let exited: number | null | undefined;
  holder.once('exit', (code) => {
    exited = code;
  });
  holder.once('error', () => {
    exited = -1;
  });
  holder.unref();

  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const state = readHold(dataDir);
    if (state?.nonce === nonce) return { held: true, state };
    if (exited !== undefined) throw new BackupError(`the backup holder stopped before holding (exit ${exited})`);
    if (Date.now() > deadline) {
      holder.kill('SIGKILL');
      throw new BackupError('the backup holder did not hold the database in time');
    }
    await sleep(25);
  }
}

/**
 * backup_post: ends the hold (the holder notices within POLL_MS, rolls back its read and exits), then folds the log
 * back into the database file and empties it: during the hold the log grew by a few kilobytes per recorded event.
 */
export async function endBackup(
  dataDir: string,
  timeoutMs = 3000,
): Promise<{ released: boolean; checkpointed: boolean }> {
  const released = removeHold(dataDir);
  if (!existsSync(databasePath(dataDir))) return { released, checkpointed: false };
  const db = new Database(databasePath(dataDir), { fileMustExist: true });
  try {
    // Short waits: TRUNCATE keeps the daemon's writes waiting while it waits for readers.
    db.pragma('busy_timeout = 100');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      if (result?.busy === 0) return { released, checkpointed: true };
      if (Date.now() > deadline) return { released, checkpointed: false };
      await sleep(POLL_MS);
    }
  } finally {
    db.close();
  }
}

/**
 * The holder's body (`backup-hold`): checkpoint, open the read transaction, announce it, then wait for the hold
 * file to go (backup_post) or for maxHoldMs.
 */
export async function holdForBackup(dataDir: string, nonce: string, maxHoldMs = DEFAULT_MAX_HOLD_MS): Promise<void> {
  const path = databasePath(dataDir);
  const reader = new Database(path, { fileMustExist: true });
  try {
    reader.pragma('busy_timeout = 10000');
    const count = reader.prepare('SELECT count(*) AS n FROM usage_events').pluck();
    const frozen = await openFrozenRead(path, reader, () => count.get());
    const state: HoldState = {
      nonce,
      pid: process.pid,
      since: new Date().toISOString(),
      events: count.get() as number,
      file_frozen: frozen,
    };
    const tmp = `${holdPath(dataDir)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(state)}\n`);
    renameSync(tmp, holdPath(dataDir));

    const deadline = Date.now() + maxHoldMs;
    while (readHold(dataDir)?.nonce === nonce && Date.now() < deadline) await sleep(POLL_MS);
    if (readHold(dataDir)?.nonce === nonce) removeHold(dataDir);
  } finally {
    if (reader.inTransaction) reader.exec('ROLLBACK');
    reader.close();
  }
}

/**
 * Opens `reader`'s read transaction on a fully checkpointed log, so that it takes WAL read-lock 0 and no checkpoint
 * can touch the database file until it ends. A second connection holds the write lock meanwhile (BEGIN IMMEDIATE:
 * the daemon's next write waits a few milliseconds on its busy timeout), so no frame can be appended between the
 * checkpoint and the start of the read. Returns false when another reader kept the checkpoint from completing every
 * time; the read is open anyway (the WAL, which is in the backup, then completes it).
 */
async function openFrozenRead(path: string, reader: Database.Database, firstRead: () => unknown): Promise<boolean> {
  const writer = new Database(path, { fileMustExist: true });
  try {
    // Best effort: an empty log keeps the backup small. TRUNCATE holds the write lock while it waits for readers,
    // so it may wait only briefly: the daemon's writes wait behind it.
    writer.pragma('busy_timeout = 100');
    writer.pragma('wal_checkpoint(TRUNCATE)');
    writer.pragma('busy_timeout = 10000');
    for (let attempt = 1; ; attempt++) {
      writer.exec('BEGIN IMMEDIATE');
      let complete = false;
      try {
        const [result] = reader.pragma('wal_checkpoint(PASSIVE)') as {
          busy: number;
          log: number;
          checkpointed: number;
        }[];
        complete = result !== undefined && result.busy === 0 && result.log === result.checkpointed;
        reader.exec('BEGIN');
        firstRead();
      } finally {
        writer.exec('ROLLBACK');
      }
      if (complete || attempt >= CHECKPOINT_ATTEMPTS) return complete;
      reader.exec('ROLLBACK');
      await sleep(10 * attempt);
    }
  } finally {
    writer.close();
  }
}
