/**
 * What the ingress UI needs beyond plain static files: its page with a `<base>` from Home Assistant's
 * `X-Ingress-Path` (so relative URLs resolve under /api/hassio_ingress/<token>/ even without the trailing slash), and
 * Chart.js from node_modules at a relative URL (`vendor/chart.js`), so the page never loads anything from a CDN.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Context, Hono } from 'hono';
import { errorResponse } from './errors.js';

/** A path of plain segments, as the Supervisor sends it (`/api/hassio_ingress/<token>`); anything else is ignored. */
const INGRESS_PATH = /^(\/[A-Za-z0-9._~-]+)+\/?$/;

// The page must not load anything but itself: no inline script, no third-party origin.
const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'self'";

/** The `<base href>` for a request's X-Ingress-Path, or null when absent or not a plain path. */
export function ingressBase(header: string | undefined): string | null {
  if (!header || !INGRESS_PATH.test(header) || header.includes('..')) return null;
  return header.endsWith('/') ? header : `${header}/`;
}

/** index.html with `<base href>` inserted first in `<head>` when the request came through ingress. */
export function withIngressBase(html: string, base: string | null): string {
  if (!base) return html;
  return html.replace(/<head>/i, `<head>\n  <base href="${base}">`);
}

/** The UMD build of Chart.js (one file, no imports); null when the package is not installed. */
export function chartJsPath(): string | null {
  try {
    const entry = createRequire(import.meta.url).resolve('chart.js');
    return join(dirname(entry), 'chart.umd.min.js');
  } catch {
    return null;
  }
}

export function uiRoutes(options: { wwwDir: string }): Hono {
  const routes = new Hono();
  let chartJs: Promise<string | null> | null = null;

  const page = async (c: Context) => {
    let html: string;
    try {
      html = await readFile(join(options.wwwDir, 'index.html'), 'utf8');
    } catch {
      return errorResponse(c, 404, 'not_found', 'the web UI is not installed');
    }
    return c.body(withIngressBase(html, ingressBase(c.req.header('x-ingress-path'))), 200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': PAGE_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      Vary: 'X-Ingress-Path',
    });
  };
  routes.get('/', page);
  routes.get('/index.html', page);

  routes.get('/vendor/chart.js', async (c) => {
    chartJs ??= (async () => {
      const path = chartJsPath();
      return path ? readFile(path, 'utf8').catch(() => null) : null;
    })();
    const source = await chartJs;
    if (source === null) return errorResponse(c, 404, 'not_found', 'chart.js is not installed');
    return c.body(source, 200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=86400',
      'X-Content-Type-Options': 'nosniff',
    });
  });

  return routes;
}
