/**
 * The ingress page end to end: Debian's Chromium (playwright-core, no downloaded browser) against the real daemon.
 * Screenshots of the main states go to test-artifacts/ui/ (not committed).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../requirements.js';
import { INGRESS_PREFIX, type IngressProxy, startIngressProxy, startTestDaemon, type TestDaemon } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = requireTool(CHROMIUM, () => existsSync(CHROMIUM), 'apt-get install -y chromium');
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'ui');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 360, height: 740 };

let browser: Browser;
let quiet: TestDaemon; // seeded history, no printers: deterministic numbers
let live: TestDaemon; // seeded history and two simulated printers
let proxy: IngressProxy;

interface Opened {
  page: Page;
  /** Console errors and uncaught page errors seen so far. */
  errors: string[];
  close(): Promise<void>;
}

async function open(url: string, options: BrowserContextOptions = {}): Promise<Opened> {
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  await page.goto(url);
  await page.waitForSelector('html[data-ready="true"]');
  return { page, errors, close: () => context.close() };
}

/** Full page, except where the viewport matters (modal dialogs, toasts). */
async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage });
}

/** Toasts float above the page; clear them before clicking what they might cover. */
async function dismissMessages(page: Page): Promise<void> {
  // Removed directly: under an open modal dialog their close buttons are inert.
  await page.evaluate("document.querySelectorAll('#messages .message').forEach((m) => m.remove())");
}

async function click(page: Page, selector: string): Promise<void> {
  await dismissMessages(page);
  await page.click(selector);
}

const tileTotal = (page: Page, metric: string) =>
  page.locator(`.tile[data-metric="${metric}"] .tile-total`).textContent();

describe.skipIf(!HAVE_CHROMIUM)('ingress UI in Chromium', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    [browser, quiet, live] = await Promise.all([
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
          '--disable-sync',
        ],
      }),
      startTestDaemon(),
      startTestDaemon({ printers: true }),
    ]);
    proxy = await startIngressProxy(live.base);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await Promise.allSettled([quiet?.stop(), live?.stop()]);
  });

  it('shows the privacy explanation first, statistics from the seeded history and the exact preview', async () => {
    const { page, errors, close } = await open(`${quiet.base}/`);
    try {
      const firstSection = page.locator('main > section').first();
      expect(await firstSection.getAttribute('id')).toBe('privacy');
      await expect.poll(() => firstSection.textContent()).toMatch(/off by default/);
      expect(await page.getAttribute('#optin-switch', 'aria-checked')).toBe('false');
      expect(await page.isHidden('#installation')).toBe(true);

      const local = (await (await fetch(`${quiet.base}/api/v1/usage-stats/local`)).json()) as {
        events_by_type: Record<string, number>;
      };
      expect(local.events_by_type.job_created).toBeGreaterThan(20);
      expect(await tileTotal(page, 'jobs_created')).toBe(`${local.events_by_type.job_created} in total`);
      expect(await page.locator('.tile').count()).toBe(7);
      expect(await page.locator('#history-table tbody tr').count()).toBe(12);
      expect(await page.locator('#events-by-type li[data-event-type="job_completed"] .bar-value').textContent()).toBe(
        String(local.events_by_type.job_completed),
      );
      // The chart library came from the daemon and drew.
      expect(await page.evaluate('typeof window.Chart')).toBe('function');
      expect(await page.isVisible('#jobs-chart')).toBe(true);

      const preview = JSON.parse((await page.textContent('#preview-json')) ?? '') as Record<string, unknown>;
      expect(Object.keys(preview)).toEqual(
        expect.arrayContaining(['schema_version', 'installation', 'period', 'printer_fleet', 'usage_stats']),
      );
      expect(await page.textContent('#service-status')).toMatch(/Service running · v\d+\.\d+\.\d+/);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('opts in (the installation id appears) and out (with and without remote deletion)', async () => {
    const { page, errors, close } = await open(`${quiet.base}/`);
    try {
      expect(await page.isHidden('#submit-now')).toBe(true);
      await click(page, '#optin-switch');
      await page.waitForSelector('#optin-switch[aria-checked="true"]');
      const id = quiet.daemon.service!.installationId();
      expect(id).toMatch(UUID);
      await page.waitForSelector('#installation:not([hidden])');
      expect(await page.textContent('#installation-id')).toBe(id);
      expect(await page.textContent('#messages')).toContain('Usage statistics enabled.');
      expect(await page.isVisible('#submit-now')).toBe(true);
      expect(await page.textContent('#optin-effect')).toMatch(/^On:/);
      expect(await page.textContent('#sub-sharing')).toBe('On');
      await screenshot(page, 'desktop-light-opted-in', false); // the viewport, with the toast where it shows

      // Escape cancels the opt-out dialog: still opted in.
      await click(page, '#optin-switch');
      await page.waitForSelector('#optout-dialog[open]');
      await screenshot(page, 'desktop-light-optout-dialog', false);
      await page.keyboard.press('Escape');
      await page.waitForSelector('#optout-dialog:not([open])', { state: 'attached' });
      expect(await page.getAttribute('#optin-switch', 'aria-checked')).toBe('true');
      expect(quiet.daemon.service!.isOptedIn()).toBe(true);

      await click(page, '#optin-switch');
      await click(page, '#optout-confirm');
      await page.waitForSelector('#optin-switch[aria-checked="false"]');
      expect(quiet.daemon.service!.isOptedIn()).toBe(false);
      expect(await page.isHidden('#installation')).toBe(true);
      expect(await page.isHidden('#submit-now')).toBe(true);
      expect(await page.textContent('#messages')).toContain('Usage statistics disabled.');

      // Opting out with "also delete my data from the collector" sends delete_remote; whatever the collector says,
      // sharing is off and the answer is shown as a message.
      await click(page, '#optin-switch');
      await page.waitForSelector('#optin-switch[aria-checked="true"]');
      await click(page, '#optin-switch');
      await page.check('#delete-remote');
      const optOut = page.waitForRequest((request) => request.url().endsWith('/api/v1/usage-stats/opt-out'));
      await click(page, '#optout-confirm');
      expect((await optOut).postDataJSON()).toEqual({ delete_remote: true });
      await page.waitForSelector('#optin-switch[aria-checked="false"]');
      await expect.poll(() => page.locator('.message').count()).toBeGreaterThan(0);
      expect(quiet.daemon.service!.isOptedIn()).toBe(false);
      // The only tolerated console errors: the browser's own line for a refused request (remote deletion unwired).
      expect(errors.filter((e) => !/Failed to load resource: .* 50[23]/.test(e))).toEqual([]);
    } finally {
      await close();
    }
  });

  it('is usable from the keyboard, and every control has a name', async () => {
    const { page, errors, close } = await open(`${quiet.base}/`);
    try {
      const unnamed = await page
        .locator('button, input, a[href]')
        .evaluateAll(
          (elements) =>
            elements.filter(
              (e) =>
                !e.textContent?.trim() &&
                !e.getAttribute('aria-label') &&
                !e.getAttribute('aria-labelledby') &&
                !(e as { labels?: ArrayLike<unknown> | null }).labels?.length,
            ).length,
        );
      expect(unnamed).toBe(0);
      const toggle = page.getByRole('switch', { name: 'Share anonymous usage statistics' });
      await toggle.focus();
      await page.keyboard.press('Space');
      await page.waitForSelector('#optin-switch[aria-checked="true"]');
      // Opting out asks first; the dialog takes focus on Cancel, Escape closes it and changes nothing.
      await toggle.focus();
      await page.keyboard.press('Enter');
      await page.waitForSelector('#optout-dialog[open]');
      expect(await page.evaluate('document.activeElement.textContent')).toBe('Cancel');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#optout-dialog:not([open])', { state: 'attached' });
      expect(await page.getAttribute('#optin-switch', 'aria-checked')).toBe('true');
      await toggle.focus();
      await page.keyboard.press('Enter');
      await page.waitForSelector('#optout-dialog[open]');
      await page.keyboard.press('Tab'); // Cancel → Stop sharing
      await page.keyboard.press('Enter');
      await page.waitForSelector('#optin-switch[aria-checked="false"]');
      expect(quiet.daemon.service!.isOptedIn()).toBe(false);
      // Live regions announce status changes and messages.
      expect(await page.getAttribute('#messages', 'aria-live')).toBe('polite');
      expect(await page.getAttribute('#problems', 'role')).toBe('alert');
      expect(await page.getAttribute('#printer-announcer', 'aria-live')).toBe('polite');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('submit now is offered when opted in and its outcome is shown', async () => {
    const { page, errors, close } = await open(`${quiet.base}/`);
    try {
      await click(page, '#optin-switch');
      await page.waitForSelector('#submit-now:not([hidden])');
      await click(page, '#submit-now');
      await expect.poll(() => page.locator('.message').count()).toBeGreaterThan(0);
      const last = (await page.locator('.message .message-text').last().textContent()) ?? '';
      // 503 until submission is wired; afterwards a success or a collector error: either way a sentence.
      expect(last.length).toBeGreaterThan(10);
      expect(last).not.toMatch(/undefined|\[object/);
      await click(page, '#optin-switch');
      await click(page, '#optout-confirm');
      await page.waitForSelector('#optin-switch[aria-checked="false"]');
      expect(errors.filter((e) => !/Failed to load resource: .* 50\d/.test(e))).toEqual([]);
    } finally {
      await close();
    }
  });

  it('export downloads valid JSON with every stored event', async () => {
    const { page, errors, close } = await open(`${quiet.base}/`);
    try {
      const download = page.waitForEvent('download');
      await click(page, '#export');
      const file = await download;
      expect(file.suggestedFilename()).toBe('usage-statistics-export.json');
      const exported = JSON.parse(readFileSync((await file.path())!, 'utf8')) as {
        export_version: number;
        events: unknown[];
      };
      const status = (await (await fetch(`${quiet.base}/api/v1/usage-stats/status`)).json()) as {
        total_events: number;
      };
      expect(exported.export_version).toBe(1);
      expect(exported.events).toHaveLength(status.total_events);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('deletes all local data only after a confirmation that states the count', async () => {
    const { page, errors, close } = await open(`${quiet.base}/`);
    try {
      const total = quiet.daemon.service!.getStatus().total_events;
      expect(total).toBeGreaterThan(50);
      await click(page, '#delete');
      await page.waitForSelector('#delete-dialog[open]');
      expect(await page.textContent('#delete-text')).toContain(`all ${total.toLocaleString('en-US')} usage events`);
      await screenshot(page, 'desktop-light-delete-dialog', false);
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.waitForSelector('#delete-dialog:not([open])', { state: 'attached' });
      expect(quiet.daemon.service!.getStatus().total_events).toBe(total);

      await click(page, '#delete');
      await page.waitForSelector('#delete-dialog[open]');
      await click(page, '#delete-confirm');
      await page.waitForSelector(`.message-success >> text=Deleted ${total} local usage events.`);
      await expect.poll(() => tileTotal(page, 'jobs_created')).toBe('0 in total');
      expect(await tileTotal(page, 'print_hours')).toBe('0 h in total');
      expect(await page.textContent('#chart-summary')).toBe('No jobs in the last 12 weeks yet.');
      expect(quiet.daemon.service!.getStatus().total_events).toBe(0);
      await screenshot(page, 'desktop-light-after-delete');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('shows the printers and updates their state and progress without a reload', async () => {
    const { page, errors, close } = await open(`${live.base}/`);
    try {
      const printers = page.locator('#printer-list .printer');
      await expect.poll(() => printers.count(), { timeout: 15_000 }).toBe(2);
      expect(await printers.locator('.printer-name').allTextContents()).toEqual(['Workshop X1C', 'Desk MK4']);
      await expect
        .poll(() => printers.locator('.printer-online').allTextContents(), { timeout: 15_000 })
        .toEqual(['Online', 'Online']);
      expect(await printers.locator('.printer-model').allTextContents()).toEqual(['Bambu Lab X1C', 'Prusa MK4']);

      // Progress moves (or the job ends and the state changes) with no navigation in between.
      const x1c = page.locator('.printer[data-printer-id="workshop_x1c"]');
      await expect.poll(() => x1c.locator('.state-text').textContent(), { timeout: 15_000 }).toBe('Printing');
      const reading = async () =>
        `${await x1c.locator('.state-text').textContent()} ${await x1c.locator('.progress').getAttribute('aria-valuenow')}`;
      const first = await reading();
      let navigations = 0;
      page.on('framenavigated', () => navigations++);
      await expect.poll(reading, { timeout: 15_000, interval: 500 }).not.toBe(first);
      expect(navigations).toBe(0);
      await screenshot(page, 'desktop-light-live');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('records a diagnostic capture from a printer card: 10 minutes, a countdown, then a download', async () => {
    const { page, errors, close } = await open(`${live.base}/`);
    try {
      const card = page.locator('.printer[data-printer-id="workshop_x1c"]');
      const start = card.getByRole('button', { name: 'Record a diagnostic capture of Workshop X1C' });
      await start.waitFor({ timeout: 15_000 });
      // One sentence says what is removed before anything is saved.
      expect(await card.locator('.capture-note').textContent()).toMatch(
        /^For a bug report: records 10 minutes of what this printer sends\. Serials, access codes, passwords, .* file and job names are replaced before anything is saved\.$/,
      );
      const posted = page.waitForRequest(
        (r) => r.method() === 'POST' && r.url().endsWith('/printers/workshop_x1c/capture'),
      );
      await dismissMessages(page);
      await start.click();
      expect((await posted).postDataJSON()).toEqual({ minutes: 10 });
      const status = card.locator('.capture-status');
      await expect.poll(() => status.textContent()).toMatch(/^Recording: (10:00|9:5\d) left \(\d+ lines so far\)\.$/);
      const first = await status.textContent();
      // The countdown moves by itself.
      await expect.poll(() => status.textContent(), { timeout: 5000 }).not.toBe(first);
      expect(await card.locator('.capture-start').isHidden()).toBe(true);
      expect(live.daemon.core?.captures.status('workshop_x1c')).toMatchObject({ state: 'recording', minutes: 10 });
      await screenshot(page, 'desktop-light-capture-recording', false);

      // Stopped early (waiting ten minutes is the daemon's test, not this one's): the download is offered.
      await dismissMessages(page);
      await card.getByRole('button', { name: 'Stop recording' }).click();
      const download = card.getByRole('button', { name: 'Download capture' });
      await download.waitFor();
      expect(await status.textContent()).toMatch(/^Capture ready: \d+ lines, \d+ events recorded meanwhile\.$/);
      const saved = page.waitForEvent('download');
      await dismissMessages(page);
      await download.click();
      const file = await saved;
      expect(file.suggestedFilename()).toMatch(/^printernizer-capture-workshop_x1c-\d{8}T\d{6}Z\.jsonl$/);
      const text = readFileSync((await file.path())!, 'utf8');
      const header = JSON.parse(text.split('\n')[0]!) as Record<string, unknown>;
      expect(header).toMatchObject({ format: 'printernizer-capture', printer_type: 'bambu_lab', session: 'joined' });
      expect(text).not.toContain('00M00A000000001');
      expect(text).not.toContain('test1234');
      expect(await card.locator('.capture-start').isVisible()).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('works under the ingress prefix set by X-Ingress-Path, with and without the trailing slash', async () => {
    for (const url of [`${proxy.base}${INGRESS_PREFIX}/`, `${proxy.base}${INGRESS_PREFIX}`]) {
      proxy.seen.length = 0;
      const requested: string[] = [];
      const { page, errors, close } = await open(url, {});
      page.on('request', (request) => requested.push(request.url()));
      try {
        await expect.poll(() => page.locator('#printer-list .printer').count(), { timeout: 15_000 }).toBe(2);
        expect(await page.textContent('#service-status')).toContain('Service running');
        expect(await page.locator('.tile').count()).toBe(7);
        expect(proxy.seen).toEqual(
          expect.arrayContaining(['/', '/style.css', '/app.js', '/vendor/chart.js', '/api/v1/usage-stats/local']),
        );
        for (const request of requested) expect(request.startsWith(`${proxy.base}${INGRESS_PREFIX}/`)).toBe(true);
        expect(errors).toEqual([]);
      } finally {
        await close();
      }
    }
  });

  it('shows a readable message when the API fails or cannot be reached, and recovers', async () => {
    proxy.mode = '500';
    const { page, errors, close } = await open(`${proxy.base}${INGRESS_PREFIX}/`);
    try {
      const banner = page.locator('#problems');
      const problems = () => banner.locator('p').allTextContents();
      await expect
        .poll(() => banner.textContent())
        .toMatch(/The page could not load its data: The service answered with an error \(HTTP 500\)\./);
      // One line for every part that failed for the same reason, not a message per part.
      expect(await problems()).toHaveLength(1);
      expect(await page.locator('#messages .message').count()).toBe(0);
      expect(await page.textContent('#service-status')).toContain('Service unreachable');
      expect(await page.textContent('#printer-list')).toBe('Not available right now.');
      expect(await page.isVisible('#privacy')).toBe(true); // never a blank page
      await screenshot(page, 'desktop-light-api-error');
      const phone = await browser.newContext({ viewport: PHONE, colorScheme: 'dark' });
      const phonePage = await phone.newPage();
      await phonePage.goto(`${proxy.base}${INGRESS_PREFIX}/`);
      await phonePage.waitForSelector('html[data-ready="true"]');
      await screenshot(phonePage, 'phone-dark-api-error');
      await phone.close();

      // The service goes away: the printers (refreshed every 3 s) now give the other reason, on its own line.
      proxy.mode = 'down';
      await expect
        .poll(problems, { timeout: 10_000 })
        .toContainEqual(
          expect.stringMatching(
            /^(Could not load .*the printers.*|The page could not load its data): The statistics service cannot be reached\. Is the add-on running\?$/,
          ),
        );

      // Back: each part's problem leaves with its next refresh (printers 3 s, health and status 10 s)...
      proxy.mode = 'ok';
      await expect.poll(() => banner.textContent(), { timeout: 15_000 }).not.toMatch(/cannot be reached/);
      // ... and "Retry now" clears the rest at once.
      await page.getByRole('button', { name: 'Retry now' }).click();
      await page.waitForSelector('#problems', { state: 'hidden' });
      expect(await page.textContent('#service-status')).toContain('Service running');
      expect(await page.locator('.tile').count()).toBe(7);
      // Only the browser's own lines about failed requests, no script errors.
      expect(errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
    } finally {
      proxy.mode = 'ok';
      await close();
    }
  });

  it('renders light, dark and phone layouts (screenshots)', async () => {
    const shots: [string, BrowserContextOptions][] = [
      ['desktop-light', { viewport: DESKTOP, colorScheme: 'light' }],
      ['desktop-dark', { viewport: DESKTOP, colorScheme: 'dark' }],
      ['phone-light', { viewport: PHONE, colorScheme: 'light', isMobile: true, hasTouch: true, deviceScaleFactor: 2 }],
      ['phone-dark', { viewport: PHONE, colorScheme: 'dark', isMobile: true, hasTouch: true, deviceScaleFactor: 2 }],
    ];
    for (const [name, options] of shots) {
      const { page, errors, close } = await open(`${proxy.base}${INGRESS_PREFIX}/`, options);
      try {
        await expect.poll(() => page.locator('#printer-list .printer').count(), { timeout: 15_000 }).toBe(2);
        // Nothing wider than the viewport (no sideways scrolling on a phone).
        const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
        expect(overflow).toBeLessThanOrEqual(0);
        await screenshot(page, name);
        expect(errors).toEqual([]);
      } finally {
        await close();
      }
    }
  });
});
