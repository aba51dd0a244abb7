import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig, redactConfig } from '../src/config.js';
import { tempDir } from './helpers.js';

const EXAMPLE = {
  log_level: 'info',
  timezone: 'Europe/Berlin',
  printers: [
    {
      name: 'Workshop X1C',
      type: 'bambu_lab',
      host: '192.168.1.20',
      port: 8883,
      serial: '01S00C000000000',
      access_code: '12345678',
      tls: true,
      verify_certificate: false,
    },
    {
      name: 'MK4',
      type: 'prusa',
      host: 'http://192.168.1.30',
      username: 'maker',
      password: 'secret',
      api_key: '',
      poll_interval_s: 30,
    },
  ],
  usage_statistics: { endpoint: 'https://collector.example/v1/submit', schedule: '0 3 * * 1', retention_days: 365 },
  mqtt: { enabled: false },
};

function problems(input: unknown): string[] {
  try {
    parseConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('config', () => {
  it('accepts the documented example and fills defaults', () => {
    const config = parseConfig(EXAMPLE);
    expect(config.printers).toHaveLength(2);
    expect(config.mqtt).toEqual({
      enabled: false,
      base_topic: 'printernizer',
      discovery: true,
      discovery_prefix: 'homeassistant',
    });
    expect(config.printers[1]).toMatchObject({ type: 'prusa', api_key: undefined, username: 'maker' });
  });

  it('accepts an empty file as all defaults', () => {
    expect(parseConfig({})).toMatchObject({
      log_level: 'info',
      printers: [],
      usage_statistics: { retention_days: 365 },
    });
  });

  it('requires name, type, host and credentials of each printer', () => {
    expect(problems({ printers: [{ type: 'bambu_lab' }] }).sort()).toEqual([
      'printers[0].access_code: Invalid input: expected string, received undefined',
      'printers[0].host: Invalid input: expected string, received undefined',
      'printers[0].name: Invalid input: expected string, received undefined',
      'printers[0].serial: Invalid input: expected string, received undefined',
    ]);
    expect(problems({ printers: [{ name: 'MK4', type: 'prusa', host: 'mk4.local' }] })).toEqual([
      'printers[0].password: needs a password or an api_key',
    ]);
    expect(problems({ printers: [{ name: 'X', type: 'ender', host: 'h' }] })).toEqual([
      'printers[0].type: must be "bambu_lab" or "prusa"',
    ]);
  });

  it('rejects unknown keys with their path', () => {
    expect(problems({ opt_in: true, mqtt: { enabled: true, color: 'red' } }).sort()).toEqual([
      'mqtt.color: unknown key (not a setting of this version)',
      'opt_in: unknown key (not a setting of this version)',
    ]);
  });

  it('rejects wrong types and ranges, one line per problem', () => {
    expect(
      problems({
        log_level: 'loud',
        timezone: 'Mars/Olympus',
        usage_statistics: { retention_days: 0, endpoint: 'ftp://x' },
      }),
    ).toEqual([
      expect.stringMatching(/^log_level: /),
      'timezone: is not an IANA time zone such as Europe/Berlin',
      'usage_statistics.endpoint: must be an http(s) URL',
      expect.stringMatching(/^usage_statistics\.retention_days: /),
    ]);
  });

  it('rejects duplicate printer names', () => {
    const printer = EXAMPLE.printers[1];
    expect(problems({ printers: [printer, printer] })).toEqual([
      'printers[1].name: duplicates printers[0].name; printer names must be unique',
    ]);
  });

  it('treats Home Assistant empty strings as unset', () => {
    const config = parseConfig({ timezone: '', mqtt: { url: '', enabled: true }, api_token: '' });
    expect(config.timezone).toBeUndefined();
    expect(config.mqtt.url).toBeUndefined();
    expect(config.api_token).toBeUndefined();
  });

  it('reports unreadable and invalid JSON files clearly', () => {
    const dir = tempDir();
    const path = join(dir, 'options.json');
    writeFileSync(path, '{"printers": [');
    expect(() => loadConfigFile(path)).toThrow(ConfigError);
    expect(() => loadConfigFile(join(dir, 'missing.json'))).toThrow(/does not exist/);
  });

  it('redacts every secret when printed', () => {
    const text = JSON.stringify(
      redactConfig(parseConfig({ ...EXAMPLE, mqtt: { enabled: true, password: 'mqttpw' }, api_token: 'tok' })),
    );
    for (const secret of ['12345678', 'secret', '01S00C000000000', 'mqttpw', '"tok"'])
      expect(text).not.toContain(secret);
  });
});
