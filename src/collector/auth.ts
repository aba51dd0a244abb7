/**
 * Installation secrets. The daemon sends a random secret as `Authorization: Bearer <secret>`; the collector keeps
 * only a SHA-256 of it. A slow password hash (scrypt) would protect low-entropy, human-chosen passwords against
 * guessing, but these secrets are machine-made random tokens (we refuse anything shorter than 32 characters), which
 * no one can brute-force from a SHA-256; scrypt would only cost tens of milliseconds of CPU per submission and turn
 * the public endpoint into a cheap way to load the server.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const MIN_SECRET_LENGTH = 32;
export const MAX_SECRET_LENGTH = 256;
/** RFC 6750 b64token characters: covers hex, base64 and base64url secrets. */
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

/** Domain-separated so the stored value is useless as a hash of the same secret anywhere else. */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update('printernizer-collector/v1\0').update(secret, 'utf8').digest();
}

/** The secret from an Authorization header, or undefined when missing, malformed, too short or too long. */
export function bearerSecret(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = BEARER.exec(header.trim());
  const secret = match?.[1];
  if (!secret || secret.length < MIN_SECRET_LENGTH || secret.length > MAX_SECRET_LENGTH) return undefined;
  return secret;
}

export function secretMatches(storedHash: Buffer, secret: string): boolean {
  const candidate = hashSecret(secret);
  return storedHash.length === candidate.length && timingSafeEqual(storedHash, candidate);
}
