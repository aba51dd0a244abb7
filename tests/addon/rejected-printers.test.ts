/**
 * Issue 13, point 2, what the user sees: a printer the daemon left out because of a rule between fields is listed
 * by GET /api/v1/printers and shown on the panel as "Not started" with the reason and where to fix it, next to the
 * printers that run. Headless Chromium (Debian's, through playwright-core) against the real daemon; a screenshot
 * goes to test-artifacts/ui/rejected-printers.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import type { DriverFactory } from '../../src/printers/fleet.js';
import { tempDir } from '../helpers.js';
import { requireTool } from '../requirements.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = requireTool(CHROMIUM, () => existsSync(CHROMIUM), 'apt-get install -y chromium');
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'ui');

const OPTIONS = {
  printers: [
    { name: 'Workshop MK4', type: 'prusa', host: '192.168.1.30', password: 'pw' },
    // Bambu Lab keys on a Prusa printer: the form cannot refuse it (one dict for both types).
    { name: 'Garage MK3S', type: 'prusa', host: '192.168.1.31', password: 'pw', serial: '01S00C000000001' },
    // A URL where a Bambu Lab printer needs its address.
    { name: 'Office X1C', type: 'bambu_lab', host: 'http://192.168.1.20', serial: '01S00C000000002', access_code: '1' },
  ],
};

let daemon: Daemon;
let base: string;

beforeAll(async () => {
  const createDriver: DriverFactory = (_printer, id) => ({ id, start() {}, async stop() {} });
  daemon = new Daemon({
    config: parseConfig(OPTIONS),
    dataDir: tempDir('pstats-rejected-'),
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger(),
    env: {},
    createDriver,
  });
  const { port } = await daemon.start();
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await daemon?.stop();
});

describe('printers left out of the configuration', () => {
  it('are listed by GET /api/v1/printers: never online, rejected, with the reason', async () => {
    const { printers } = (await (await fetch(`${base}/api/v1/printers`)).json()) as {
      printers: { id: string; name: string; online: boolean; problem: string | null; rejected?: boolean }[];
    };
    expect(printers.map((p) => [p.name, p.rejected ?? false])).toEqual([
      ['Workshop MK4', false],
      ['Garage MK3S', true],
      ['Office X1C', true],
    ]);
    expect(printers[1]).toMatchObject({
      id: 'rejected-1',
      online: false,
      problem: 'Not started: serial is a Bambu Lab setting, not for a Prusa printer (remove it)',
    });
    expect(printers[2]!.problem).toMatch(/^Not started: host: a Bambu Lab printer is reached by its IP address/);
    // Never the configured values.
    expect(JSON.stringify(printers)).not.toMatch(/192\.168\.1\.|01S00C/);
  });

  it.skipIf(!HAVE_CHROMIUM)(
    'are shown on the panel as "Not started" with the reason and where to fix it',
    async () => {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
        ],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        await page.goto(`${base}/`);
        await page.waitForSelector('html[data-ready="true"]');
        const rejected = page.locator('#printer-list li[data-rejected="true"]');
        await expect.poll(() => rejected.count()).toBe(2);
        const card = rejected.first();
        expect(await card.locator('.printer-name').textContent()).toBe('Garage MK3S');
        expect(await card.locator('.printer-online').textContent()).toBe('Not started');
        expect(await card.locator('.state-text').textContent()).toBe('Configuration problem');
        expect(await card.locator('.printer-problem').textContent()).toBe(
          'serial is a Bambu Lab setting, not for a Prusa printer (remove it)',
        );
        // No diagnostic capture for a printer that is not running.
        expect(await card.locator('.capture').count()).toBe(0);
        expect(await card.locator('.printer-progress').textContent()).toMatch(/Configuration tab/);
        expect(await card.locator('.progress').isHidden()).toBe(true);
        // The printer that runs keeps its ordinary card.
        const running = page.locator('#printer-list li[data-printer-id="workshop_mk4"]');
        expect(await running.getAttribute('data-rejected')).toBeNull();
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.locator('#printers').screenshot({ path: join(ARTIFACTS, 'rejected-printers.png') });
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
