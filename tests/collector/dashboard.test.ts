import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { CHART_LIBRARY_PATH, chartLibraryFile } from '../../src/collector/dashboard.js';
import { type StorageBackend, useStorageBackends } from './backends.js';
import { makePayload, newSecret, startTestCollector, type TestCollector } from './helpers.js';

const backends = useStorageBackends();

let running: TestCollector | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe.each(backends)('dashboard on $name', (backend: StorageBackend) => {
  it('serves the page with a strict CSP, loading Chart.js from the collector itself', async () => {
    running = await startTestCollector({ backend });
    const c = running;
    const page = await fetch(`${c.collector.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script src="assets/chart.umd.min.js"');
    expect(html).toContain('<script src="assets/dashboard.js"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin

    const library = await fetch(`${c.collector.url}${CHART_LIBRARY_PATH}`);
    expect(library.status).toBe(200);
    expect(library.headers.get('content-type')).toContain('javascript');
    const served = Buffer.from(await library.arrayBuffer());
    expect(served.equals(readFileSync(chartLibraryFile()))).toBe(true);
    expect(served.toString('latin1', 0, 200)).toContain('Chart.js');

    for (const asset of ['assets/dashboard.js', 'assets/dashboard.css']) {
      expect((await fetch(`${c.collector.url}/${asset}`)).status).toBe(200);
    }
  });

  it('draws every chart from /v1/stats', async () => {
    running = await startTestCollector({ backend, k: 2 });
    const c = running;
    for (let i = 0; i < 3; i++) {
      expect((await c.submit(makePayload({ nowMs: c.clock.ms }), newSecret())).status).toBe(200);
    }
    const script = await (await fetch(`${c.collector.url}/assets/dashboard.js`)).text();

    // A minimal browser: elements that record their text, a fetch against the collector, a recording Chart.
    const elements = new Map<string, { id: string; textContent: string }>();
    const charts: { canvas: string; type: string; labels: string[]; data: (number | null)[] }[] = [];
    const window = {
      document: {
        getElementById(id: string) {
          if (!elements.has(id)) elements.set(id, { id, textContent: '' });
          return elements.get(id);
        },
      },
      fetch: (path: string, init: RequestInit) => fetch(new URL(path, `${c.collector.url}/`), init),
      Chart: function Chart(
        canvas: { id: string },
        config: { type: string; data: { labels: string[]; datasets: { data: (number | null)[] }[] } },
      ) {
        charts.push({
          canvas: canvas.id,
          type: config.type,
          labels: config.data.labels,
          data: config.data.datasets[0]?.data ?? [],
        });
      },
    };
    runInNewContext(script, window);
    const deadline = Date.now() + 5_000;
    while (charts.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));

    expect(charts.map((chart) => chart.canvas).sort()).toEqual(
      [
        'chart-app-versions',
        'chart-countries',
        'chart-deployment-modes',
        'chart-jobs-per-week',
        'chart-printer-models',
        'chart-printer-types',
      ].sort(),
    );
    expect(elements.get('installations')?.textContent).toBe('3');
    expect(charts.find((chart) => chart.canvas === 'chart-printer-models')).toMatchObject({
      labels: ['MK4', 'X1C'],
      data: [3, 3],
    });
    expect(charts.find((chart) => chart.canvas === 'chart-jobs-per-week')).toMatchObject({
      labels: ['2025-03-03'],
      data: [36],
    });
  });
});
