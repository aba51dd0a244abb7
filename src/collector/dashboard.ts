/**
 * The public dashboard (GET /): one static page that fetches /v1/stats and draws it with Chart.js.
 *
 * Chart.js rather than uPlot: most of what we show are categorical distributions (bars and doughnuts), which
 * Chart.js draws out of the box, while uPlot is built for dense time series and needs hand-written plugins for bars.
 * Its UMD build is one self-contained file (no dependencies to serve), loaded here from node_modules and served by
 * the collector itself: no CDN, so a visitor's address goes to no third party. The page, script and style are kept
 * in this module so they ship with the compiled code; a strict CSP allows nothing but our own origin.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Hono } from 'hono';

export const CHART_LIBRARY_PATH = '/assets/chart.umd.min.js';

/** The Chart.js browser build, located through the package's own entry point (its exports hide dist/ files). */
export function chartLibraryFile(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('chart.js')), 'chart.umd.min.js');
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Printernizer usage statistics</title>
<link rel="stylesheet" href="assets/dashboard.css">
<script src="assets/chart.umd.min.js" defer></script>
<script src="assets/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>Printernizer usage statistics</h1>
  <p id="summary">Loading…</p>
</header>
<main>
  <section class="figures">
    <div><span class="label">Active installations</span><span class="value" id="installations">–</span></div>
    <div><span class="label">Print success rate</span><span class="value" id="success-rate">–</span></div>
    <div><span class="label">Median jobs per installation</span><span class="value" id="median-jobs">–</span></div>
  </section>
  <section class="charts">
    <figure><figcaption>Jobs per week</figcaption><canvas id="chart-jobs-per-week"></canvas></figure>
    <figure><figcaption>Printer types</figcaption><canvas id="chart-printer-types"></canvas></figure>
    <figure><figcaption>Printer models</figcaption><canvas id="chart-printer-models"></canvas></figure>
    <figure><figcaption>Deployment</figcaption><canvas id="chart-deployment-modes"></canvas></figure>
    <figure><figcaption>App versions</figcaption><canvas id="chart-app-versions"></canvas></figure>
    <figure><figcaption>Countries</figcaption><canvas id="chart-countries"></canvas></figure>
  </section>
</main>
<footer>
  <p>Anonymous, opt-in aggregates from installations active in the last <span id="window-days">30</span> days.
  Groups shared by fewer than <span id="k">10</span> installations are folded into “other”.
  Raw data: <a href="v1/stats">v1/stats</a>.</p>
</footer>
</body>
</html>
`;

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2733; --muted: #5b6775; --card: #f4f6f8; font-family: system-ui, sans-serif; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ee; --muted: #9aa5b1; --card: #1e252d; } }
body { margin: 0 auto; max-width: 1100px; padding: 1.5rem; color: var(--fg); }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
#summary, footer { color: var(--muted); }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 1rem; margin: 1.5rem 0; }
.figures div { background: var(--card); border-radius: 8px; padding: 1rem; }
.label { display: block; color: var(--muted); font-size: .85rem; }
.value { display: block; font-size: 1.8rem; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
figure { margin: 0; background: var(--card); border-radius: 8px; padding: 1rem; }
figcaption { font-weight: 600; margin-bottom: .5rem; }
`;

/** Plain browser JavaScript; it only reads /v1/stats and writes text with textContent, never HTML. */
const SCRIPT = `'use strict';
(function () {
  var palette = ['#2f6fde', '#20a779', '#f0a202', '#d1495b', '#7a5cc2', '#1b998b', '#ef8354', '#5d737e', '#9bc53d'];
  var otherColor = '#9aa5b1';

  function text(id, value) { document.getElementById(id).textContent = value; }

  function distributionData(distribution) {
    var labels = distribution.groups.map(function (g) { return g.key; });
    var values = distribution.groups.map(function (g) { return g.installations; });
    var colors = labels.map(function (_, i) { return palette[i % palette.length]; });
    if (distribution.other) { labels.push('other'); values.push(distribution.other); colors.push(otherColor); }
    return { labels: labels, datasets: [{ label: 'installations', data: values, backgroundColor: colors }] };
  }

  function draw(id, type, data, extra) {
    var options = { responsive: true, plugins: { legend: { display: type === 'doughnut' } } };
    if (extra) { for (var key in extra) options[key] = extra[key]; }
    return new Chart(document.getElementById(id), { type: type, data: data, options: options });
  }

  function render(stats) {
    text('window-days', String(stats.window_days));
    text('k', String(stats.k));
    if (stats.suppressed) {
      text('summary', 'Fewer than ' + stats.k + ' installations are active: nothing is published yet.');
      return;
    }
    text('summary', 'As of ' + new Date(stats.generated_at).toLocaleString() + '.');
    text('installations', String(stats.installations));
    text('success-rate', stats.success_rate === null ? '–' : (stats.success_rate * 100).toFixed(1) + ' %');
    text('median-jobs', stats.median_jobs_per_installation === null ? '–' : String(stats.median_jobs_per_installation));
    var weeks = stats.jobs_per_week;
    draw('chart-jobs-per-week', 'bar', {
      labels: weeks.map(function (w) { return w.week_start; }),
      datasets: [{ label: 'jobs', data: weeks.map(function (w) { return w.jobs; }), backgroundColor: palette[0] }],
    });
    draw('chart-printer-types', 'doughnut', distributionData(stats.printer_types));
    draw('chart-printer-models', 'bar', distributionData(stats.printer_models), { indexAxis: 'y' });
    draw('chart-deployment-modes', 'doughnut', distributionData(stats.deployment_modes));
    draw('chart-app-versions', 'bar', distributionData(stats.app_versions));
    draw('chart-countries', 'bar', distributionData(stats.countries), { indexAxis: 'y' });
  }

  fetch('v1/stats', { headers: { accept: 'application/json' } })
    .then(function (response) {
      if (!response.ok) throw new Error('HTTP ' + response.status);
      return response.json();
    })
    .then(render)
    .catch(function (error) { text('summary', 'Statistics are unavailable right now (' + error.message + ').'); });
})();
`;

export function registerDashboard(app: Hono): void {
  let chartLibrary: Buffer | undefined;
  const longCache = 'public, max-age=86400';

  app.get('/', (c) => {
    c.header('Content-Security-Policy', CSP);
    c.header('Cache-Control', 'public, max-age=300');
    return c.html(PAGE);
  });
  app.get('/assets/dashboard.js', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.body(SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8' });
  });
  app.get('/assets/dashboard.css', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.body(STYLE, 200, { 'Content-Type': 'text/css; charset=utf-8' });
  });
  app.get(CHART_LIBRARY_PATH, (c) => {
    chartLibrary ??= readFileSync(chartLibraryFile());
    c.header('Cache-Control', longCache);
    return c.body(new Uint8Array(chartLibrary), 200, { 'Content-Type': 'text/javascript; charset=utf-8' });
  });
}
