import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHttpApp, defaultWwwDir } from '../../src/http/app.js';
import { ingressBase, withIngressBase } from '../../src/http/ui.js';
import { silentLogger } from '../../src/log.js';
import { tempDir, testService } from '../helpers.js';

function app(wwwDir = defaultWwwDir()) {
  const { service } = testService();
  return createHttpApp({ service, logger: silentLogger(), version: '0.0.0-test', wwwDir });
}

describe('ingressBase', () => {
  it('accepts the Supervisor’s plain path and adds the trailing slash', () => {
    expect(ingressBase('/api/hassio_ingress/abc-DEF_123')).toBe('/api/hassio_ingress/abc-DEF_123/');
    expect(ingressBase('/api/hassio_ingress/abc/')).toBe('/api/hassio_ingress/abc/');
  });

  it.each([
    undefined,
    '',
    'api/hassio_ingress/abc',
    '//evil.example/x',
    '/a/../b',
    '/x"><script>alert(1)</script>',
    '/a b',
    'https://evil.example/',
  ])('ignores %j', (header) => {
    expect(ingressBase(header)).toBeNull();
  });

  it('inserts the base first in <head>, or leaves the page alone', () => {
    expect(withIngressBase('<html><head><title>x</title>', '/p/')).toBe(
      '<html><head>\n  <base href="/p/"><title>x</title>',
    );
    expect(withIngressBase('<head>', null)).toBe('<head>');
  });
});

describe('UI routes', () => {
  it('serves the page without a base outside ingress, with a strict CSP and no caching', async () => {
    const response = await app().request('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await response.text();
    expect(html).toContain('<title>Printernizer usage statistics</title>');
    expect(html).not.toContain('<base');
  });

  it('adds <base href> from X-Ingress-Path on / and /index.html', async () => {
    for (const path of ['/', '/index.html']) {
      const response = await app().request(path, { headers: { 'X-Ingress-Path': '/api/hassio_ingress/tok' } });
      expect(await response.text()).toContain('<base href="/api/hassio_ingress/tok/">');
    }
  });

  it('only uses relative URLs in the page', async () => {
    const html = await (await app().request('/')).text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(urls.length).toBeGreaterThan(2);
    for (const url of urls) expect(url).toMatch(/^(\.\/|#)/);
  });

  it('serves Chart.js from node_modules at vendor/chart.js', async () => {
    const response = await app().request('/vendor/chart.js');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await response.text()).toContain('Chart.js v4');
  });

  it('still serves the other static files, and a readable 404 when the UI is missing', async () => {
    expect((await app().request('/style.css')).status).toBe(200);
    const empty = tempDir();
    mkdirSync(join(empty, 'js'));
    writeFileSync(join(empty, 'js', 'x.js'), '');
    const response = await app(empty).request('/');
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'not_found', message: 'the web UI is not installed' } });
  });
});
