/**
 * Who may write, and when: the collector's rules for a submission and for a remote deletion, as pure functions of
 * what is stored. Storage calls them atomically with the write they allow (storage.ts `admit`, `deleteInstallation`),
 * whichever database is below, so they hold across every instance that shares one database.
 */
import { secretMatches } from './auth.js';
import type { AdmissionState, InstallationAuth } from './storage.js';

export const SUBMISSION_INTERVAL_MS = 6 * 60 * 60 * 1000;

export type SubmissionVerdict =
  | { store: true; outcome: 'accepted' }
  /** The same submission_id from the same installation: answered as accepted, nothing changes. */
  | { store: false; outcome: 'duplicate' }
  /** The installation is known and the secret is not its secret. */
  | { store: false; outcome: 'forbidden' }
  /** The submission_id belongs to another installation. */
  | { store: false; outcome: 'conflict' }
  /** An accepted submission of this installation is younger than the interval. */
  | { store: false; outcome: 'too_soon'; retryAfterSeconds: number };

export interface SubmissionClaim {
  installationId: string;
  /** The bearer secret presented with the submission. */
  secret: string;
  receivedAt: number;
}

/**
 * In this order: a forged secret is refused before anything is revealed about the submission; a retry of a stored
 * submission is a duplicate (even inside the interval); only then does the one-per-interval rule apply.
 */
export function judgeSubmission(
  state: AdmissionState,
  claim: SubmissionClaim,
  intervalMs = SUBMISSION_INTERVAL_MS,
): SubmissionVerdict {
  const known = state.installation;
  if (known && !secretMatches(known.secretHash, claim.secret)) return { store: false, outcome: 'forbidden' };
  if (state.submissionOwner !== undefined) {
    return state.submissionOwner === claim.installationId
      ? { store: false, outcome: 'duplicate' }
      : { store: false, outcome: 'conflict' };
  }
  if (known && claim.receivedAt - known.lastAcceptedAt < intervalMs) {
    const waitSeconds = Math.ceil((known.lastAcceptedAt + intervalMs - claim.receivedAt) / 1000);
    return { store: false, outcome: 'too_soon', retryAfterSeconds: Math.max(1, waitSeconds) };
  }
  return { store: true, outcome: 'accepted' };
}

export type DeletionVerdict =
  | { delete: true; outcome: 'deleted' }
  | { delete: false; outcome: 'not_found' }
  | { delete: false; outcome: 'forbidden' };

/** Only the holder of the installation's secret may delete it. */
export function judgeDeletion(installation: InstallationAuth | undefined, secret: string): DeletionVerdict {
  if (!installation) return { delete: false, outcome: 'not_found' };
  if (!secretMatches(installation.secretHash, secret)) return { delete: false, outcome: 'forbidden' };
  return { delete: true, outcome: 'deleted' };
}
