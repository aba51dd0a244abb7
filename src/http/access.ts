/**
 * Who may talk to the daemon. In the Home Assistant add-on only the Supervisor's ingress proxy (172.30.32.2) and the
 * container itself may connect: Home Assistant has already authenticated the user, and nothing else on the hassio
 * network should reach the API. Outside the add-on an optional `api_token` guards the API with
 * `Authorization: Bearer <token>`; the static UI stays reachable (it cannot know the token), and so does the health
 * endpoint, for Docker's HEALTHCHECK and monitoring.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { errorResponse } from './errors.js';

export interface AccessOptions {
  /** Running as a Home Assistant add-on (SUPERVISOR_TOKEN is set): ingress and loopback only. */
  addonMode: boolean;
  /** Outside the add-on: require this bearer token on /api/*. */
  apiToken?: string;
}

/** The Supervisor's address on the hassio network; ingress and the watchdog come from it. */
export const SUPERVISOR_INGRESS_ADDRESS = '172.30.32.2';

const HEALTH_PATH = /^\/api\/v1\/health\/?$/;

/** The add-on mode from the environment and the token from the config, as the daemon wires them. */
export function accessOptionsFrom(
  config: { api_token?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): AccessOptions {
  const addonMode = Boolean(env.SUPERVISOR_TOKEN);
  return addonMode || !config.api_token ? { addonMode } : { addonMode, apiToken: config.api_token };
}

/** An IPv4-mapped IPv6 peer (a dual-stack listener) reads as its IPv4 address. */
export function normalizePeerAddress(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice('::ffff:'.length) : lower;
}

/** True for the Supervisor's ingress proxy and this host's own loopback (127.0.0.1, ::1); nothing else. */
export function isAllowedAddonPeer(address: string | undefined): boolean {
  const peer = normalizePeerAddress(address);
  return peer === SUPERVISOR_INGRESS_ADDRESS || peer === '127.0.0.1' || peer === '::1';
}

/** `Authorization: Bearer <token>` compared in constant time (hashes of equal length, so length does not leak). */
export function bearerTokenMatches(authorization: string | undefined, expected: string): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  if (!match) return false;
  const given = createHash('sha256').update(match[1]!).digest();
  const wanted = createHash('sha256').update(expected).digest();
  return timingSafeEqual(given, wanted);
}

function peerAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    // No socket (an in-process app.request): unknown peer, which the add-on guard refuses.
    return undefined;
  }
}

export function accessGuard(options: AccessOptions): MiddlewareHandler {
  const { addonMode, apiToken } = options;
  return async (c, next) => {
    if (addonMode) {
      // The watchdog and ingress both come from the Supervisor, HEALTHCHECK from loopback: no exemption needed.
      if (!isAllowedAddonPeer(peerAddress(c))) {
        return errorResponse(c, 403, 'forbidden', 'only Home Assistant ingress may access this add-on');
      }
      return next();
    }
    if (apiToken && c.req.path.startsWith('/api/') && !HEALTH_PATH.test(c.req.path)) {
      const authorization = c.req.header('authorization');
      if (!bearerTokenMatches(authorization, apiToken)) {
        const realm = 'Bearer realm="printernizer-stats"';
        c.header('WWW-Authenticate', authorization ? `${realm}, error="invalid_token"` : realm);
        return errorResponse(c, 401, 'unauthorized', 'send Authorization: Bearer <api_token>');
      }
    }
    return next();
  };
}
