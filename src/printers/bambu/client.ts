/**
 * The MQTT side of the Bambu Lab bridge: connection options for mqtt.js 5 (PROTOCOLS.md A1), the requests the bridge
 * sends (A2), the shipped CA bundle, and how a failed connection attempt is classified.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { IClientOptions } from 'mqtt';

export const REQUESTS = {
  pushall: { pushing: { sequence_id: '0', command: 'pushall', version: 1, push_target: 1 } },
  pushingStart: { pushing: { sequence_id: '0', command: 'start' } },
  getVersion: { info: { sequence_id: '0', command: 'get_version' } },
} as const;

export function reportTopic(serial: string): string {
  return `device/${serial}/report`;
}

export function requestTopic(serial: string): string {
  return `device/${serial}/request`;
}

/** A client id that is unique per driver, without anything identifying the printer. */
export function newClientId(): string {
  return `printernizer-stats_${randomBytes(6).toString('hex')}`;
}

let caBundle: string | null | undefined;

/** certs/bambu-ca.pem, found by walking up from this module (src/ in development, dist/src/ when installed). */
export function loadBambuCaBundle(): string | null {
  if (caBundle !== undefined) return caBundle;
  caBundle = null;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'certs', 'bambu-ca.pem');
    if (existsSync(candidate)) {
      caBundle = readFileSync(candidate, 'utf8');
      break;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return caBundle;
}

export interface ConnectionSettings {
  host: string;
  port: number;
  serial: string;
  accessCode: string;
  tls: boolean;
  verifyCertificate: boolean;
  clientId: string;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
  /** PEM trust anchors for verify_certificate; the shipped bundle when absent. */
  ca?: string | string[];
}

export function connectOptions(s: ConnectionSettings): IClientOptions {
  const options: IClientOptions = {
    protocol: s.tls ? 'mqtts' : 'mqtt',
    host: s.host,
    port: s.port,
    protocolVersion: 4,
    clean: true,
    clientId: s.clientId,
    username: 'bblp',
    password: s.accessCode,
    keepalive: s.keepaliveSeconds,
    connectTimeout: s.connectTimeoutMs,
    // Reconnection is ours: backoff with jitter, a slow retry after a refused login, one session at a time.
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: false,
  };
  if (s.tls) {
    if (s.verifyCertificate) {
      // The printer's certificate has CN = serial, so the serial is the name to check (OpenBambuAPI examples/mqtt.js).
      const ca = s.ca ?? loadBambuCaBundle() ?? undefined;
      Object.assign(options, {
        secureContext: sharedSecureContext(ca),
        servername: s.serial,
        rejectUnauthorized: true,
      });
    } else {
      Object.assign(options, { secureContext: sharedSecureContext(undefined), rejectUnauthorized: false });
    }
  }
  return options;
}

const secureContexts = new Map<string, SecureContext>();

/**
 * One TLS context per set of trust anchors, shared by every session that uses them: without it each connection (and
 * each reconnection) builds its own, parsing the CA bundle again and holding about 25 kB more per printer (300
 * sessions: 7 MB, bench/farm.ts). A context holds only trust settings here, no per-session state.
 */
function sharedSecureContext(ca: string | string[] | undefined): SecureContext {
  const key = ca === undefined ? '' : typeof ca === 'string' ? ca : ca.join('\n');
  let context = secureContexts.get(key);
  if (!context) {
    context = createSecureContext(ca === undefined ? {} : { ca });
    secureContexts.set(key, context);
  }
  return context;
}

export type FailureKind = 'auth' | 'tls' | 'timeout' | 'network';

const TLS_CODE = /^(ERR_TLS|ERR_SSL|ERR_OSSL|EPROTO$)|CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH/;

/**
 * What went wrong, from an mqtt.js or socket error: a refused login (CONNACK 4 bad user name or password, 5 not
 * authorized), a TLS failure, a timeout, or the network (refused, reset, unreachable, CONNACK 1-3).
 */
export function classifyError(error: unknown): FailureKind {
  if (!(error instanceof Error)) return 'network';
  const code = (error as { code?: unknown }).code;
  if (code === 4 || code === 5) return 'auth';
  if (typeof code === 'string' && TLS_CODE.test(code)) return 'tls';
  if (error.message === 'TLS not authorized') return 'tls';
  if (/keepalive timeout|connack timeout/i.test(error.message) || code === 'ETIMEDOUT') return 'timeout';
  return 'network';
}

/** A short token for logs and the snapshot: the error code, never the message (it can name hosts or addresses). */
export function errorCode(error: unknown): string {
  if (!(error instanceof Error)) return 'unknown';
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
  if (typeof code === 'number') return `CONNACK_${code}`;
  if (/keepalive timeout/i.test(error.message)) return 'KEEPALIVE_TIMEOUT';
  if (/connack timeout/i.test(error.message)) return 'CONNACK_TIMEOUT';
  if (error.message === 'TLS not authorized') return 'TLS_NOT_AUTHORIZED';
  return 'unknown';
}
