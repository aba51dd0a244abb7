/**
 * HTTP Digest client auth for the two PrusaLink servers (PROTOCOLS.md B1):
 * - Buddy firmware: RFC 2069 (no qop, no opaque, no algorithm); nonces live 5 s and come back with `stale=true`.
 *   Firmware before 5.2.0 rejects an unquoted `algorithm=MD5`, so no `algorithm` is sent when the server sent none
 *   (pyprusalink's DigestAuthWorkaround, Buddy PR #3665).
 * - Prusa-Link on a Raspberry Pi (poorwsgi): RFC 2617 qop=auth with MD5-sess and an opaque.
 *
 * Written here rather than taken from npm: digest-fetch always sends `algorithm=` (and takes the algorithm from its
 * options instead of the challenge), digest-header has no MD5-sess; neither handles `stale` on its own.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface AuthChallenge {
  /** Lower-cased scheme: `digest`, `apikey`, `basic`, ... */
  scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  params: Record<string, string>;
}

export interface DigestChallenge {
  realm: string;
  nonce: string;
  /** `auth` when the server offered it, else null (RFC 2069). `auth-int` alone is not supported. */
  qop: 'auth' | null;
  /** As sent by the server (`MD5`, `MD5-sess`), or null when it sent none. */
  algorithm: string | null;
  opaque: string | null;
  stale: boolean;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parse a `WWW-Authenticate` value into its challenges. Handles quoted strings with commas and escapes, and several
 * challenges in one header (fetch joins repeated headers with ", ").
 */
export function parseAuthenticate(header: string | null | undefined): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  if (!header) return challenges;
  const s = header;
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < s.length && chars.test(s[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TOKEN.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  let current: AuthChallenge | null = null;
  while (i < s.length) {
    skip(/[\s,]/);
    if (i >= s.length) break;
    const start = i;
    const name = token();
    if (!name) {
      i++; // stray character: skip it rather than loop forever
      continue;
    }
    skip(/[ \t]/);
    if (s[i] === '=' && current) {
      i++;
      skip(/[ \t]/);
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++; // closing quote
      } else {
        const vstart = i;
        while (i < s.length && s[i] !== ',' && !/\s/.test(s[i]!)) i++;
        value = s.slice(vstart, i);
      }
      current.params[name.toLowerCase()] = value;
    } else if (s[i] === '=' && !current) {
      // token68 or a parameter without a scheme: ignore up to the next comma
      while (i < s.length && s[i] !== ',') i++;
    } else {
      current = { scheme: s.slice(start, start + name.length).toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}

/** The Digest challenge in a `WWW-Authenticate` value, or null if there is none we can answer. */
export function parseDigestChallenge(header: string | null | undefined): DigestChallenge | null {
  const digest = parseAuthenticate(header).find((c) => c.scheme === 'digest');
  if (!digest) return null;
  const { realm, nonce } = digest.params;
  if (realm === undefined || !nonce) return null;
  const qops = (digest.params['qop'] ?? '').split(',').map((q) => q.trim().toLowerCase());
  if (digest.params['qop'] !== undefined && !qops.includes('auth')) return null;
  const algorithm = digest.params['algorithm'] ?? null;
  if (algorithm !== null && !/^md5(-sess)?$/i.test(algorithm)) return null;
  return {
    realm,
    nonce,
    qop: qops.includes('auth') ? 'auth' : null,
    algorithm,
    opaque: digest.params['opaque'] ?? null,
    stale: (digest.params['stale'] ?? '').toLowerCase() === 'true',
  };
}

export function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

export interface DigestInput {
  username: string;
  password: string;
  realm: string;
  method: string;
  uri: string;
  nonce: string;
  qop?: 'auth' | null;
  algorithm?: string | null;
  nc?: string;
  cnonce?: string;
}

/** The `response` value of RFC 2069 (no qop) or RFC 2617 (qop=auth, optionally MD5-sess). */
export function digestResponse(input: DigestInput): string {
  let ha1 = md5(`${input.username}:${input.realm}:${input.password}`);
  if ((input.algorithm ?? '').toLowerCase() === 'md5-sess') ha1 = md5(`${ha1}:${input.nonce}:${input.cnonce ?? ''}`);
  const ha2 = md5(`${input.method.toUpperCase()}:${input.uri}`);
  if (input.qop === 'auth') return md5(`${ha1}:${input.nonce}:${input.nc}:${input.cnonce}:auth:${ha2}`);
  return md5(`${ha1}:${input.nonce}:${ha2}`);
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Holds the last challenge and answers it for each request. The nonce is reused until the server calls it stale;
 * with qop the nonce count goes up per request, as RFC 2617 requires.
 */
export class DigestAuth {
  private challenge: DigestChallenge | null = null;
  private nonceCount = 0;

  constructor(
    private readonly username: string,
    private readonly password: string,
    private readonly makeCnonce: () => string = () => randomBytes(8).toString('hex'),
  ) {}

  get hasChallenge(): boolean {
    return this.challenge !== null;
  }

  /** Take a new challenge (first 401, or stale=true). */
  accept(challenge: DigestChallenge): void {
    if (this.challenge?.nonce !== challenge.nonce) this.nonceCount = 0;
    this.challenge = challenge;
  }

  /** Forget the nonce, e.g. after the printer went away. */
  reset(): void {
    this.challenge = null;
    this.nonceCount = 0;
  }

  /** The `Authorization` value for this request, or null before the first challenge. */
  authorization(method: string, uri: string): string | null {
    const c = this.challenge;
    if (!c) return null;
    const parts = [
      `username=${quote(this.username)}`,
      `realm=${quote(c.realm)}`,
      `nonce=${quote(c.nonce)}`,
      `uri=${quote(uri)}`,
    ];
    let nc: string | undefined;
    let cnonce: string | undefined;
    if (c.qop === 'auth' || (c.algorithm ?? '').toLowerCase() === 'md5-sess') cnonce = this.makeCnonce();
    if (c.qop === 'auth') {
      this.nonceCount++;
      nc = this.nonceCount.toString(16).padStart(8, '0');
    }
    const response = digestResponse({
      username: this.username,
      password: this.password,
      realm: c.realm,
      method,
      uri,
      nonce: c.nonce,
      qop: c.qop,
      algorithm: c.algorithm,
      nc,
      cnonce,
    });
    parts.push(`response=${quote(response)}`);
    // Echo the algorithm only when the server named one (old Buddy firmware chokes on it otherwise).
    if (c.algorithm !== null) parts.push(`algorithm=${c.algorithm}`);
    if (c.opaque !== null) parts.push(`opaque=${quote(c.opaque)}`);
    if (c.qop === 'auth') parts.push('qop=auth', `nc=${nc}`, `cnonce=${quote(cnonce ?? '')}`);
    else if (cnonce !== undefined) parts.push(`cnonce=${quote(cnonce)}`);
    return `Digest ${parts.join(', ')}`;
  }
}
