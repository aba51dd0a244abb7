/**
 * Renders the add-on's store images from their SVG sources: icon.svg → icon.png (128×128) and logo.svg → logo.png
 * (250×100), at the repository root where the Supervisor looks for them. Uses Debian's Chromium through
 * playwright-core (`apt-get install -y chromium`): `node --import tsx docs/brand/render.ts`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const here = import.meta.dirname;
const root = join(here, '..', '..');
const IMAGES = [
  { source: 'icon.svg', target: 'icon.png', width: 128, height: 128 },
  { source: 'logo.svg', target: 'logo.png', width: 250, height: 100 },
];

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
try {
  for (const { source, target, width, height } of IMAGES) {
    const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
    const svg = readFileSync(join(here, source), 'utf8');
    await page.setContent(`<!doctype html><body style="margin:0;background:transparent">${svg}</body>`);
    await page.screenshot({ path: join(root, target), omitBackground: true, clip: { x: 0, y: 0, width, height } });
    await page.close();
    process.stdout.write(`${target} (${width}×${height}) from docs/brand/${source}\n`);
  }
} finally {
  await browser.close();
}
