/**
 * Group commit for the SQLite storage. Every SQLite commit writes each page it touched to the WAL again (the
 * installation row, its indexes, the raw submission, the weekly row): committing the work that arrives in the same
 * event-loop turn together halves the cost per submission under load.
 *
 * Each piece of work is a better-sqlite3 transaction function; run inside the batch's transaction it becomes a
 * savepoint, so it sees everything queued before it (a retry, a forged secret or a second submission of the same
 * installation in the same turn is judged as if the first were stored) and a piece that fails rolls back alone.
 * A caller's promise settles only after the batch has committed.
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';

interface Pending {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommit {
  readonly #db: Database.Database;
  readonly #log: Logger;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #holds = 0;

  constructor(db: Database.Database, log: Logger, maxBatch = 256) {
    this.#db = db;
    this.#log = log;
    this.#maxBatch = maxBatch;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Queues `work` (a `db.transaction(...)` function) for the next commit; resolves with its result after it. */
  run<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.#queue.length >= this.#maxBatch && this.#holds === 0) this.flush();
      else this.#scheduled ??= setImmediate(() => this.flush());
    });
  }

  /**
   * Keeps batches from committing until the returned function is called: a reader that awaits between its
   * statements (the statistics) sees one state of the data.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (this.#holds === 0 && this.#queue.length > 0) this.#scheduled ??= setImmediate(() => this.flush());
    };
  }

  /** Commits everything queued now (also on close). */
  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    if (this.#holds > 0) return; // the release schedules the flush
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    let outcomes: Outcome[] = [];
    try {
      this.#db.transaction(() => {
        outcomes = batch.map((item) => attempt(item.work));
      })();
    } catch (commitError) {
      // The commit itself failed (a full disk, say): try each piece alone, in order.
      this.#log.warn({ err: { message: (commitError as Error).message }, size: batch.length }, 'batch commit failed');
      outcomes = batch.map((item) => attempt(item.work));
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i] as Outcome;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }
}

function attempt(work: () => unknown): Outcome {
  try {
    return { ok: true, value: work() };
  } catch (error) {
    return { ok: false, error };
  }
}
