/**
 * One PrusaLink printer over HTTP: GET with a deadline, Digest (both flavours) or X-Api-Key, and failures sorted
 * into the kinds the driver needs (auth, timeout, network, HTTP status). Knows nothing about states or events.
 */
import { DigestAuth, parseDigestChallenge } from './digest.js';

export type FailureKind = 'timeout' | 'network' | 'auth' | 'stale' | 'http' | 'aborted' | 'too_large';

export interface RequestFailure {
  kind: FailureKind;
  /** HTTP status for `auth` and `http`. */
  status?: number;
  /** A short, safe hint for logs (an errno code such as ECONNREFUSED); never a URL or host. */
  code?: string;
}

export type GetResult =
  | { ok: true; status: number; body: string; contentType: string | null }
  | { ok: false; failure: RequestFailure };

export interface PrusaLinkClientOptions {
  /** Bare host (`192.168.1.20`, `prusa.local:8080`) or URL with scheme and port. */
  host: string;
  username: string;
  password: string;
  /** When set, sent as X-Api-Key instead of Digest. */
  apiKey?: string;
  /** Deadline for one call including a digest retry; 5 s like Home Assistant's coordinator. */
  timeoutMs?: number;
  /** Bodies above this are refused (a misconfigured host serving something huge). */
  maxBodyBytes?: number;
  fetch?: typeof fetch;
}

/** `prusa.local` → `http://prusa.local`; keeps scheme, port and a path prefix (reverse proxies); drops a trailing /. */
export function normalizeBaseUrl(host: string): URL {
  const trimmed = host.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  const url = new URL(withScheme);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('PrusaLink host must be http or https');
  url.pathname = url.pathname.replace(/\/+$/, '');
  url.search = '';
  url.hash = '';
  return url;
}

export class PrusaLinkClient {
  private readonly base: URL;
  private readonly digest: DigestAuth;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: PrusaLinkClientOptions) {
    this.base = normalizeBaseUrl(opts.host);
    this.digest = new DigestAuth(opts.username, opts.password);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxBodyBytes = opts.maxBodyBytes ?? 4 * 1024 * 1024;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** Forget the digest nonce (after an outage the printer has likely rebooted). */
  resetAuth(): void {
    this.digest.reset();
  }

  /** GET `path` (absolute, e.g. `/api/v1/status`). Never throws. */
  async get(path: string, signal?: AbortSignal): Promise<GetResult> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const uri = `${this.base.pathname}${path}`;
    const url = new URL(uri, this.base.origin);
    try {
      let res = await this.send(url, uri, combined);
      if (res.status === 401 && !this.opts.apiKey) {
        const challenge = parseDigestChallenge(res.headers.get('www-authenticate'));
        await res.body?.cancel();
        if (!challenge) return { ok: false, failure: { kind: 'auth', status: 401 } };
        // Retry once with the fresh nonce: the first call of a session, a stale nonce, or a printer that rebooted
        // and forgot ours. Wrong credentials fail the retry too and are reported below.
        this.digest.accept(challenge);
        res = await this.send(url, uri, combined);
        if (res.status === 401) {
          const again = parseDigestChallenge(res.headers.get('www-authenticate'));
          await res.body?.cancel();
          if (again) this.digest.accept(again);
          // Retry once only: a server that calls every nonce stale is broken, not refusing us.
          if (again?.stale) return { ok: false, failure: { kind: 'stale', status: 401 } };
          return { ok: false, failure: { kind: 'auth', status: 401 } };
        }
      }
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        return { ok: false, failure: { kind: 'auth', status: res.status } };
      }
      const body = await readCapped(res, this.maxBodyBytes);
      if (body === null) return { ok: false, failure: { kind: 'too_large', status: res.status } };
      if (res.status >= 400) return { ok: false, failure: { kind: 'http', status: res.status } };
      return { ok: true, status: res.status, body, contentType: res.headers.get('content-type') };
    } catch (err) {
      if (signal?.aborted) return { ok: false, failure: { kind: 'aborted' } };
      if (timeout.aborted) return { ok: false, failure: { kind: 'timeout' } };
      return { ok: false, failure: { kind: 'network', code: errorCode(err) } };
    }
  }

  private send(url: URL, uri: string, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.opts.apiKey) headers['X-Api-Key'] = this.opts.apiKey;
    else {
      const authorization = this.digest.authorization('GET', uri);
      if (authorization) headers['Authorization'] = authorization;
    }
    return this.fetchImpl(url, { method: 'GET', headers, signal, redirect: 'manual' });
  }
}

async function readCapped(res: Response, max: number): Promise<string | null> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel();
    return null;
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
