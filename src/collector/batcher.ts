/**
 * Group commit for accepted submissions. Every SQLite commit writes each page it touched to the WAL again (the
 * installation row, its indexes, the raw submission, the weekly row): committing the submissions that arrive in the
 * same event-loop turn together halves the cost per submission under load. A client is answered only after its
 * submission is committed.
 *
 * Until then the submission is "pending": lookups see it through an overlay, so a retry, a forged secret or a
 * second submission of the same installation arriving in the same turn is judged as if it were already stored.
 */
import type { Logger } from 'pino';
import type { SubmissionPayload } from './payload.js';
import type { CollectorStorage, InstallationAuth } from './storage.js';

interface Pending {
  payload: SubmissionPayload;
  secretHash: Buffer;
  receivedAt: number;
  auth: InstallationAuth;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SubmissionBatcher {
  readonly #storage: CollectorStorage;
  readonly #log: Logger;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  readonly #installations = new Map<string, InstallationAuth>();
  readonly #submissions = new Map<string, string>();

  constructor(storage: CollectorStorage, log: Logger, maxBatch = 256) {
    this.#storage = storage;
    this.#log = log;
    this.#maxBatch = maxBatch;
  }

  get pending(): number {
    return this.#queue.length;
  }

  findInstallation(installationId: string): InstallationAuth | undefined {
    return this.#installations.get(installationId) ?? this.#storage.findInstallation(installationId);
  }

  findSubmissionOwner(submissionId: string): string | undefined {
    return this.#submissions.get(submissionId) ?? this.#storage.findSubmissionOwner(submissionId);
  }

  /** Resolves once the submission is committed; rejects if it could not be stored. */
  record(payload: SubmissionPayload, secretHash: Buffer, receivedAt: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const auth: InstallationAuth = { secretHash, lastAcceptedAt: receivedAt };
      this.#installations.set(payload.installation.installation_id, auth);
      this.#submissions.set(payload.submission_id, payload.installation.installation_id);
      this.#queue.push({ payload, secretHash, receivedAt, auth, resolve, reject });
      if (this.#queue.length >= this.#maxBatch) this.flush();
      else this.#scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Commits everything pending now (also called before a deletion and on close). */
  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    const outcomes = new Map<Pending, unknown>();
    try {
      this.#storage.db.transaction(() => {
        for (const item of batch) this.#storage.recordSubmission(item.payload, item.secretHash, item.receivedAt);
      })();
    } catch (batchError) {
      // One bad write must not fail its neighbours: store them one by one to find it.
      this.#log.warn({ err: { message: (batchError as Error).message }, size: batch.length }, 'batch commit failed');
      for (const item of batch) {
        try {
          this.#storage.recordSubmission(item.payload, item.secretHash, item.receivedAt);
        } catch (err) {
          outcomes.set(item, err);
        }
      }
    }
    for (const item of batch) {
      // A later pending submission of the same installation may have replaced the overlay entry: keep that one.
      const installationId = item.payload.installation.installation_id;
      if (this.#installations.get(installationId) === item.auth) this.#installations.delete(installationId);
      this.#submissions.delete(item.payload.submission_id);
      if (outcomes.has(item)) item.reject(outcomes.get(item));
      else item.resolve();
    }
  }
}
