/**
 * One logger convention (issue 15): the owner adds the instance keys (`printer`), the component adds `component`, and
 * no line carries either twice. Runs the daemon with a printer of each kind that cannot be reached (so both drivers
 * log) and the collector answering a bad request, all writing to one JSON log.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { startCollector } from '../../src/collector/server.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { tempDir } from '../helpers.js';
import { freePort } from '../mqtt/helpers.js';

/** The top-level keys of one JSON log line, duplicates included (JSON.parse would keep only the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  while (i < line.length) {
    const ch = line[i]!;
    if (ch === '"') {
      let end = i + 1;
      while (end < line.length && line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      const afterString = line.slice(end + 1).trimStart();
      if (depth === 1 && afterString.startsWith(':')) keys.push(JSON.parse(line.slice(i, end + 1)) as string);
      i = end + 1;
      continue;
    }
    if (ch === '{' || ch === '[') depth++;
    if (ch === '}' || ch === ']') depth--;
    i++;
  }
  return keys;
}

describe('log lines', () => {
  it('finds duplicate keys where they are', () => {
    expect(topLevelKeys('{"a":1,"b":{"a":2},"c":"x\\"a\\":","a":3}')).toEqual(['a', 'b', 'c', 'a']);
  });

  it('carry component and printer at most once, from the daemon, both drivers and the collector', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger({ level: 'debug', destination });
    const [bambuPort, prusaPort] = [await freePort(), await freePort()];
    const daemon = new Daemon({
      config: parseConfig({
        printers: [
          {
            name: 'X1C',
            type: 'bambu_lab',
            host: '127.0.0.1',
            port: bambuPort,
            serial: '00M00A000000001',
            access_code: '12345678',
          },
          { name: 'MK4', type: 'prusa', host: `http://127.0.0.1:${prusaPort}`, password: 'pw' },
        ],
      }),
      dataDir: tempDir(),
      port: 0,
      host: '127.0.0.1',
      logger,
      env: {},
      createDriver,
    });
    const collector = await startCollector({ port: 0, host: '127.0.0.1', dataDir: tempDir(), logger });
    try {
      await daemon.start();
      await fetch(`${collector.url}/v1/submit`, { method: 'POST', body: 'not json' });
      const deadline = Date.now() + 10_000;
      const components = () => new Set(lines.map((l) => (JSON.parse(l) as { component?: string }).component));
      while (Date.now() < deadline && !['bambu', 'prusalink', 'collector'].every((c) => components().has(c))) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect([...components()]).toEqual(expect.arrayContaining(['bambu', 'prusalink', 'collector', 'stats']));
    } finally {
      await daemon.stop('test');
      await collector.stop();
    }
    for (const line of lines) {
      const keys = topLevelKeys(line);
      for (const key of ['component', 'printer', 'name']) {
        expect(keys.filter((k) => k === key).length, `${key} twice in ${line}`).toBeLessThanOrEqual(1);
      }
    }
    const driverLines = lines.filter((l) => /"component":"(bambu|prusalink)"/.test(l));
    expect(driverLines.length).toBeGreaterThan(0);
    for (const line of driverLines) expect(line).toMatch(/"printer":"(x1c|mk4)"/);
  });
});
