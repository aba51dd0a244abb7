/**
 * One PrusaLink printer over HTTP: GET with a deadline, Digest (both flavours) or X-Api-Key, and failures sorted
 * into the kinds the driver needs (auth, timeout, network, HTTP status). Knows nothing about states or events.
 *
 * Transport is node:http with a keep-alive agent of one socket, not fetch: polling 50 printers every second cost
 * about twice the CPU through fetch's web streams, Headers and per-call AbortSignal.timeout timers (bench/).
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
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
  /** `body`: what the printer answered with its error status (401, 404, 500 ...), when it answered at all. */
  | { ok: false; failure: RequestFailure; body?: string | null };

/**
 * What the driver needs from HTTP: one GET at a time. PrusaLinkClient is the real one; a replay of recorded responses
 * or a test can hand in its own, so the driver runs without a network.
 */
export interface PrusaLinkTransport {
  /** GET `path` (absolute, e.g. `/api/v1/status`). Never throws. */
  get(path: string, signal?: AbortSignal): Promise<GetResult>;
  /** Forget authentication state (a printer that comes back has most likely rebooted and forgotten our nonce). */
  resetAuth?(): void;
  /** Release sockets. */
  close?(): void;
}

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
  /** Called for each HTTP request sent (benchmarks count them). */
  onRequest?: () => void;
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

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** null when it was larger than maxBodyBytes. */
  body: string | null;
}

class TransportError extends Error {
  constructor(
    readonly code: string | undefined,
    /** The request went out on a kept-alive socket that the printer may have closed meanwhile. */
    readonly reusedSocket: boolean,
  ) {
    super(code ?? 'request failed');
  }
}

export class PrusaLinkClient implements PrusaLinkTransport {
  private readonly base: URL;
  /** Path prefix without a trailing slash ('' for most printers). */
  private readonly basePath: string;
  private readonly digest: DigestAuth;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly agent: http.Agent;

  constructor(private readonly opts: PrusaLinkClientOptions) {
    this.base = normalizeBaseUrl(opts.host);
    this.basePath = this.base.pathname.replace(/\/+$/, '');
    this.digest = new DigestAuth(opts.username, opts.password);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxBodyBytes = opts.maxBodyBytes ?? 4 * 1024 * 1024;
    // One socket: the driver never has more than one request in flight, and Buddy's web server is small.
    const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1 };
    this.agent = this.base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** Forget the digest nonce (after an outage the printer has likely rebooted). */
  resetAuth(): void {
    this.digest.reset();
  }

  /** Close kept-alive sockets. */
  close(): void {
    this.agent.destroy();
  }

  /** GET `path` (absolute, e.g. `/api/v1/status`). Never throws. */
  async get(path: string, signal?: AbortSignal): Promise<GetResult> {
    if (signal?.aborted) return { ok: false, failure: { kind: 'aborted' } };
    // One deadline for the call, digest retry included; a plain timer is cleared when done, unlike
    // AbortSignal.timeout, which fires (and allocates a DOMException) for every call 5 s later.
    const deadline = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.abort();
    }, this.timeoutMs);
    const onStop = () => deadline.abort();
    signal?.addEventListener('abort', onStop, { once: true });
    const uri = `${this.basePath}${path}`;
    try {
      let res = await this.send(uri, deadline.signal);
      if (res.status === 401 && !this.opts.apiKey) {
        const challenge = parseDigestChallenge(header(res.headers, 'www-authenticate'));
        if (!challenge) return { ok: false, failure: { kind: 'auth', status: 401 }, body: res.body };
        // Retry once with the fresh nonce: the first call of a session, a stale nonce, or a printer that rebooted
        // and forgot ours. Wrong credentials fail the retry too and are reported below.
        this.digest.accept(challenge);
        res = await this.send(uri, deadline.signal);
        if (res.status === 401) {
          const again = parseDigestChallenge(header(res.headers, 'www-authenticate'));
          if (again) this.digest.accept(again);
          // Retry once only: a server that calls every nonce stale is broken, not refusing us.
          if (again?.stale) return { ok: false, failure: { kind: 'stale', status: 401 }, body: res.body };
          return { ok: false, failure: { kind: 'auth', status: 401 }, body: res.body };
        }
      }
      if (res.status === 401 || res.status === 403) {
        return { ok: false, failure: { kind: 'auth', status: res.status }, body: res.body };
      }
      if (res.body === null) return { ok: false, failure: { kind: 'too_large', status: res.status } };
      if (res.status >= 400) return { ok: false, failure: { kind: 'http', status: res.status }, body: res.body };
      return { ok: true, status: res.status, body: res.body, contentType: header(res.headers, 'content-type') };
    } catch (err) {
      if (signal?.aborted) return { ok: false, failure: { kind: 'aborted' } };
      if (timedOut) return { ok: false, failure: { kind: 'timeout' } };
      return { ok: false, failure: { kind: 'network', code: err instanceof TransportError ? err.code : undefined } };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onStop);
    }
  }

  private async send(uri: string, signal: AbortSignal): Promise<RawResponse> {
    try {
      return await this.request(uri, signal);
    } catch (err) {
      // A kept-alive socket the printer closed between polls (Buddy's Wi-Fi drops idle links, Buddy #5152):
      // Node's documented remedy is to retry an idempotent request once on a fresh socket.
      if (err instanceof TransportError && err.reusedSocket && !signal.aborted) return this.request(uri, signal);
      throw err;
    }
  }

  private request(uri: string, signal: AbortSignal): Promise<RawResponse> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.opts.apiKey) headers['X-Api-Key'] = this.opts.apiKey;
    else {
      const authorization = this.digest.authorization('GET', uri);
      if (authorization) headers['Authorization'] = authorization;
    }
    this.opts.onRequest?.();
    const transport = this.base.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
          port: this.base.port || undefined,
          path: uri,
          method: 'GET',
          headers,
          agent: this.agent,
          signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          let tooLarge = Number(res.headers['content-length']) > this.maxBodyBytes;
          res.on('data', (chunk: Buffer) => {
            if (tooLarge) return;
            size += chunk.length;
            if (size > this.maxBodyBytes) {
              tooLarge = true;
              chunks.length = 0;
            } else chunks.push(chunk);
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: tooLarge ? null : Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', (err) => reject(new TransportError(errorCode(err), false)));
          // The connection went away mid-body (a truncated response on the wire).
          res.on('close', () => {
            if (!res.complete) reject(new TransportError('ECONNRESET', false));
          });
        },
      );
      req.on('error', (err) => reject(new TransportError(errorCode(err), req.reusedSocket)));
      req.end();
    });
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(', ') : value;
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
