/**
 * Who may talk to the daemon: the add-on's ingress guard (Supervisor and loopback only) and the api_token bearer
 * check outside Home Assistant, through the real daemon on loopback. The 172.30.32.2 case can only be a predicate
 * test here; the refusal is shown with a real peer at 127.0.0.2 (Linux routes all of 127/8 to loopback).
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import {
  accessOptionsFrom,
  bearerTokenMatches,
  isAllowedAddonPeer,
  normalizePeerAddress,
  SUPERVISOR_INGRESS_ADDRESS,
} from '../../src/http/access.js';
import { silentLogger } from '../../src/log.js';
import { tempDir } from '../helpers.js';

const TOKEN = 'k3y-0f-the-api';
let daemon: Daemon | null = null;

afterEach(async () => {
  await daemon?.stop();
  daemon = null;
});

async function startDaemon(options: { env: NodeJS.ProcessEnv; api_token?: string }): Promise<number> {
  daemon = new Daemon({
    config: parseConfig({ timezone: 'Europe/Berlin', ...(options.api_token ? { api_token: options.api_token } : {}) }),
    dataDir: tempDir(),
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger(),
    env: options.env,
  });
  return (await daemon.start()).port;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request from a chosen local address, so the server sees that peer. */
function get(
  port: number,
  path: string,
  options: { from?: string; headers?: Record<string, string>; method?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: options.from ?? '127.0.0.1',
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('add-on peer predicate', () => {
  it('accepts the Supervisor and loopback, in plain and IPv4-mapped form', () => {
    for (const peer of [
      SUPERVISOR_INGRESS_ADDRESS,
      '::ffff:172.30.32.2',
      '127.0.0.1',
      '::1',
      '::ffff:127.0.0.1',
      '::FFFF:127.0.0.1',
    ]) {
      expect(isAllowedAddonPeer(peer), peer).toBe(true);
    }
  });

  it('refuses everything else, and an unknown peer', () => {
    for (const peer of [
      '172.30.32.1',
      '172.30.32.20',
      '172.30.33.2',
      '127.0.0.2',
      '192.168.1.2',
      '::2',
      '',
      undefined,
    ]) {
      expect(isAllowedAddonPeer(peer), String(peer)).toBe(false);
    }
    expect(normalizePeerAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
  });
});

describe('bearer token', () => {
  it('matches only the exact token', () => {
    expect(bearerTokenMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerTokenMatches(`bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerTokenMatches(`Bearer ${TOKEN}x`, TOKEN)).toBe(false);
    expect(bearerTokenMatches(`Bearer ${TOKEN.slice(1)}`, TOKEN)).toBe(false);
    expect(bearerTokenMatches(`Basic ${TOKEN}`, TOKEN)).toBe(false);
    expect(bearerTokenMatches(TOKEN, TOKEN)).toBe(false);
    expect(bearerTokenMatches(undefined, TOKEN)).toBe(false);
  });

  it('is wired from the config only outside the add-on', () => {
    expect(accessOptionsFrom({ api_token: TOKEN }, {})).toEqual({ addonMode: false, apiToken: TOKEN });
    expect(accessOptionsFrom({}, {})).toEqual({ addonMode: false });
    expect(accessOptionsFrom({ api_token: TOKEN }, { SUPERVISOR_TOKEN: 's' })).toEqual({ addonMode: true });
  });
});

describe('ingress guard in the add-on (SUPERVISOR_TOKEN set)', () => {
  it('answers loopback, API and UI alike, without any token', async () => {
    const port = await startDaemon({ env: { SUPERVISOR_TOKEN: 'supervisor' }, api_token: TOKEN });
    expect((await get(port, '/api/v1/health')).status).toBe(200);
    expect((await get(port, '/api/v1/usage-stats/status')).status).toBe(200);
    expect((await get(port, '/')).status).not.toBe(403);
  });

  it('refuses any other peer with a JSON 403, health included', async () => {
    const port = await startDaemon({ env: { SUPERVISOR_TOKEN: 'supervisor' } });
    for (const path of ['/api/v1/usage-stats/status', '/api/v1/health', '/', '/index.html']) {
      const reply = await get(port, path, { from: '127.0.0.2' });
      expect(reply.status, path).toBe(403);
      expect(JSON.parse(reply.body)).toEqual({ error: { code: 'forbidden', message: expect.any(String) } });
    }
  });
});

describe('api_token outside the add-on', () => {
  it('requires the bearer token on the API, with WWW-Authenticate', async () => {
    const port = await startDaemon({ env: {}, api_token: TOKEN });
    const missing = await get(port, '/api/v1/usage-stats/status');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="printernizer-stats"');
    expect(JSON.parse(missing.body).error.code).toBe('unauthorized');

    const wrong = await get(port, '/api/v1/usage-stats/status', { headers: { Authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toContain('error="invalid_token"');

    const right = await get(port, '/api/v1/usage-stats/status', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(right.status).toBe(200);
    const optIn = await get(port, '/api/v1/usage-stats/opt-in', {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(optIn.status).toBe(200);
  });

  it('does not reveal which API routes exist without the token', async () => {
    const port = await startDaemon({ env: {}, api_token: TOKEN });
    expect((await get(port, '/api/v1/nothing-here')).status).toBe(401);
  });

  it('keeps health and the UI open, and accepts any loopback peer', async () => {
    const port = await startDaemon({ env: {}, api_token: TOKEN });
    expect((await get(port, '/api/v1/health')).status).toBe(200);
    expect((await get(port, '/')).status).not.toBe(401);
    expect((await get(port, '/api/v1/health', { from: '127.0.0.2' })).status).toBe(200);
  });

  it('leaves the API open when no token is configured', async () => {
    const port = await startDaemon({ env: {} });
    expect((await get(port, '/api/v1/usage-stats/status', { from: '127.0.0.2' })).status).toBe(200);
  });
});
