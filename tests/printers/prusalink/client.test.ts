import { createServer as createHttpServer, type Server } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { normalizeBaseUrl, PrusaLinkClient } from '../../../src/printers/prusalink/client.js';
import { simulator, sleep } from './helpers.js';

function client(url: string, over: Partial<ConstructorParameters<typeof PrusaLinkClient>[0]> = {}) {
  return new PrusaLinkClient({ host: url, username: 'maker', password: 'secret-pw', timeoutMs: 400, ...over });
}

/** Buddy status_page.cpp's 401 for a client that accepts JSON. */
const UNAUTHORIZED = '{"title": "401: Unauthorized","message":""}';

describe('normalizeBaseUrl', () => {
  it('accepts bare hosts and URLs', () => {
    expect(normalizeBaseUrl('prusa.local').href).toBe('http://prusa.local/');
    expect(normalizeBaseUrl('192.168.1.20:8080').href).toBe('http://192.168.1.20:8080/');
    expect(normalizeBaseUrl(' https://printer.example:8443/prusa/ ').href).toBe('https://printer.example:8443/prusa');
    expect(() => normalizeBaseUrl('ftp://x')).toThrow();
    expect(() => normalizeBaseUrl('http://')).toThrow();
  });
});

describe.each(['buddy', 'rpi'] as const)('digest against the %s simulator', (flavour) => {
  it('authenticates, reuses the nonce, and retries once on stale', async () => {
    const sim = await simulator({ flavour, nonceTtlMs: 300 });
    const c = client(sim.url);
    const first = await c.get('/api/v1/status');
    expect(first.ok).toBe(true);
    expect(sim.stats()).toMatchObject({ requests: 2, challenges: 1, staleChallenges: 0 });

    // Within the nonce's life: one request each.
    expect((await c.get('/api/version')).ok).toBe(true);
    expect((await c.get('/api/v1/status')).ok).toBe(true);
    expect(sim.stats().requests).toBe(4);

    await sleep(350);
    const afterExpiry = await c.get('/api/v1/status');
    expect(afterExpiry.ok).toBe(true);
    expect(sim.stats()).toMatchObject({ requests: 6, challenges: 2, staleChallenges: 1 });
  });

  it('reports a wrong password as auth after exactly one retry', async () => {
    const sim = await simulator({ flavour });
    const c = client(sim.url, { password: 'wrong' });
    // The body as the printer sent it goes with the failure (diagnostic captures record it).
    const unauthorized = { ok: false, failure: { kind: 'auth', status: 401 }, body: UNAUTHORIZED };
    expect(await c.get('/api/v1/status')).toEqual(unauthorized);
    expect(sim.stats().requests).toBe(2);
    // Later calls carry the (wrong) answer to the last challenge and fail the same way.
    expect(await c.get('/api/v1/status')).toEqual(unauthorized);
    expect(sim.stats().requests).toBe(4);
  });

  it('gives up with `stale` when the server calls every nonce stale', async () => {
    const sim = await simulator({ flavour });
    const c = client(sim.url);
    expect((await c.get('/api/v1/status')).ok).toBe(true);
    sim.staleEveryRequest(true);
    const before = sim.stats().requests;
    expect(await c.get('/api/v1/status')).toEqual({
      ok: false,
      failure: { kind: 'stale', status: 401 },
      body: UNAUTHORIZED,
    });
    expect(sim.stats().requests - before).toBe(2);
  });

  it('uses X-Api-Key when set, without any digest round trip', async () => {
    const sim = await simulator({ flavour, apiKey: 'key-123' });
    expect((await client(sim.url, { apiKey: 'key-123' }).get('/api/v1/status')).ok).toBe(true);
    expect(sim.stats()).toMatchObject({ requests: 1, challenges: 0 });
    const bad = await client(sim.url, { apiKey: 'nope' }).get('/api/v1/status');
    // Buddy: 401 with `WWW-Authenticate: ApiKey`; Prusa-Link: 403 "Bad X-Api-Key." (B1).
    expect(bad).toEqual(
      flavour === 'buddy'
        ? { ok: false, failure: { kind: 'auth', status: 401 }, body: UNAUTHORIZED }
        : { ok: false, failure: { kind: 'auth', status: 403 }, body: 'Bad X-Api-Key.' },
    );
  });
});

describe('failures', () => {
  it('returns bodies it cannot judge, and statuses as http failures', async () => {
    const sim = await simulator();
    const c = client(sim.url);
    sim.setFault('html');
    const html = await c.get('/api/v1/status');
    expect(html.ok && html.body.startsWith('<!DOCTYPE html>')).toBe(true);
    sim.setFault('500');
    expect(await c.get('/api/v1/status')).toEqual({
      ok: false,
      failure: { kind: 'http', status: 500 },
      body: '500: Internal Server Error\n\n\n',
    });
    sim.setFault('503');
    expect(await c.get('/api/v1/status')).toEqual({
      ok: false,
      failure: { kind: 'http', status: 503 },
      body: 'Printer not ready',
    });
    sim.setFault(null);
    const job = await c.get('/api/v1/job');
    expect(job).toMatchObject({ ok: true, status: 204, body: '' });
  });

  it('times out on a server that accepts and never answers', async () => {
    const sim = await simulator();
    sim.setFault('hang');
    const started = Date.now();
    expect(await client(sim.url, { timeoutMs: 200 }).get('/api/v1/status')).toEqual({
      ok: false,
      failure: { kind: 'timeout' },
    });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('times out on a bare socket that never sends a byte', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as import('node:net').AddressInfo;
    try {
      expect(await client(`127.0.0.1:${port}`, { timeoutMs: 200 }).get('/api/v1/status')).toEqual({
        ok: false,
        failure: { kind: 'timeout' },
      });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('reports a refused connection as network, and an abort as aborted', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as import('node:net').AddressInfo;
    await new Promise((r) => server.close(r));
    expect(await client(`http://127.0.0.1:${port}`).get('/api/v1/status')).toEqual({
      ok: false,
      failure: { kind: 'network', code: 'ECONNREFUSED' },
    });

    const sim = await simulator();
    sim.setFault('hang');
    const abort = new AbortController();
    const pending = client(sim.url, { timeoutMs: 5000 }).get('/api/v1/status', abort.signal);
    setTimeout(() => abort.abort(), 50);
    expect(await pending).toEqual({ ok: false, failure: { kind: 'aborted' } });
  });

  it('refuses oversized bodies', async () => {
    const sim = await simulator();
    expect(await client(sim.url, { maxBodyBytes: 10 }).get('/api/v1/status')).toMatchObject({
      ok: false,
      failure: { kind: 'too_large' },
    });
  });
});

describe('transport', () => {
  async function httpServer(
    handler: Parameters<typeof createHttpServer>[1],
  ): Promise<{ server: Server; port: number }> {
    const server = createHttpServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, port: (server.address() as AddressInfo).port };
  }
  const close = (server: Server) =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(r);
    });

  it('keeps the path prefix of a reverse proxy in the URL and the digest uri', async () => {
    const seen: string[] = [];
    const { server, port } = await httpServer((req, res) => {
      seen.push(`${req.url} ${req.headers.authorization ?? ''}`);
      if (!req.headers.authorization) {
        res.writeHead(401, { 'WWW-Authenticate': 'Digest realm="Printer API", nonce="0011223344556677", stale=false' });
        res.end();
        return;
      }
      res.end('{}');
    });
    try {
      const result = await client(`http://127.0.0.1:${port}/prusa/`).get('/api/version');
      expect(result.ok).toBe(true);
      expect(seen[0]).toBe('/prusa/api/version ');
      expect(seen[1]).toMatch(/^\/prusa\/api\/version Digest .*uri="\/prusa\/api\/version"/);
    } finally {
      await close(server);
    }
  });

  it('retries once on a fresh socket when the printer dropped the kept-alive one', async () => {
    let n = 0;
    const sockets = new Set<import('node:net').Socket>();
    const { server, port } = await httpServer((req, res) => {
      n++;
      // The second request arrives on the reused socket: drop it without an answer, as a Wi-Fi module does.
      if (n === 2) {
        req.socket.destroy();
        return;
      }
      res.end('{"ok":true}');
    });
    server.on('connection', (s) => sockets.add(s));
    try {
      const c = client(`127.0.0.1:${port}`, { apiKey: 'k' });
      expect((await c.get('/a')).ok).toBe(true);
      expect(await c.get('/b')).toMatchObject({ ok: true, body: '{"ok":true}' });
      expect(n).toBe(3);
      expect(sockets.size).toBe(2);
      c.close();
    } finally {
      await close(server);
    }
  });

  it('reports a connection cut mid-body as network', async () => {
    const { server, port } = await httpServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"printer":');
      setTimeout(() => req.socket.destroy(), 20);
    });
    try {
      expect(await client(`127.0.0.1:${port}`, { apiKey: 'k' }).get('/api/v1/status')).toMatchObject({
        ok: false,
        failure: { kind: 'network' },
      });
    } finally {
      await close(server);
    }
  });
});
