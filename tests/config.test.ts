import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig, redactConfig, rejectedPrinterSnapshots } from '../src/config.js';
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
    expect(config.printers[1]).toMatchObject({ type: 'prusa', username: 'maker' });
    expect(config.printers[1]).not.toHaveProperty('api_key', expect.anything());
    expect(config.rejected_printers).toEqual([]);
  });

  it('accepts an empty file as all defaults', () => {
    expect(parseConfig({})).toMatchObject({
      log_level: 'info',
      printers: [],
      usage_statistics: { retention_days: 365 },
    });
  });

  it('leaves out a printer without name, type, host or credentials, says why, and keeps the others', () => {
    const valid = EXAMPLE.printers[1]!;
    const config = parseConfig({
      printers: [
        { type: 'bambu_lab' },
        valid,
        { name: 'MK4 two', type: 'prusa', host: 'mk4.local' },
        { name: 'X', type: 'ender', host: 'h' },
        'not a printer',
      ],
    });
    expect(config.printers.map((p) => p.name)).toEqual(['MK4']);
    expect(config.rejected_printers).toEqual([
      {
        index: 0,
        name: 'Printer 1',
        type: 'bambu_lab',
        problem:
          'name: is required (a unique name for the panel); host: is required (the printer’s IP address); ' +
          'serial: is required (from the printer’s screen or Bambu Studio); ' +
          'access_code: is required (the LAN access code from the printer’s network settings)',
      },
      { index: 2, name: 'MK4 two', type: 'prusa', problem: 'password: needs a password or an api_key' },
      { index: 3, name: 'X', type: 'ender', problem: 'type: must be "bambu_lab" or "prusa"' },
      { index: 4, name: 'Printer 5', type: '', problem: 'must be a printer (name, type, host and its login)' },
    ]);
  });

  it('leaves out a printer with keys of the other type, or a URL as a Bambu Lab host (rules the add-on form cannot say)', () => {
    const config = parseConfig({
      printers: [
        { name: 'MK4', type: 'prusa', host: '192.168.1.30', password: 'pw', serial: '01S00C000000001' },
        { ...EXAMPLE.printers[0], name: 'X1C', poll_interval_s: 10, username: 'maker' },
        { ...EXAMPLE.printers[0], name: 'P1S', host: 'http://192.168.1.21' },
        { ...EXAMPLE.printers[0], name: 'A1', host: '192.168.1.22:8883' },
        { ...EXAMPLE.printers[0], name: 'H2D', host: 'fd00::22' },
      ],
    });
    expect(config.printers.map((p) => p.name)).toEqual(['H2D']);
    expect(config.rejected_printers.map((r) => r.problem)).toEqual([
      'serial is a Bambu Lab setting, not for a Prusa printer (remove it)',
      'username, poll_interval_s are Prusa settings, not for a Bambu Lab printer (remove them)',
      expect.stringMatching(/^host: a Bambu Lab printer is reached by its IP address or host name only/),
      expect.stringMatching(/^host: a Bambu Lab printer is reached by its IP address or host name only/),
    ]);
  });

  it('never puts a configured value in a problem', () => {
    const secrets = ['S3cr3t-access', 'pw-Zz9', '0x-serial with space', 'api-K3y', 'host-secret.lan/path'];
    const config = parseConfig({
      printers: [
        { name: 'A', type: 'prusa', host: 'mk4.local', password: 'pw-Zz9', access_code: 'S3cr3t-access' },
        {
          name: 'B',
          type: 'bambu_lab',
          host: 'http://host-secret.lan/path',
          serial: '0x-serial with space',
          access_code: ' ',
        },
        { name: 'C', type: 'bambu_lab', host: '10.0.0.2', serial: 'ABCD', access_code: 'x', api_key: 'api-K3y' },
      ],
    });
    expect(config.rejected_printers).toHaveLength(3);
    const text = JSON.stringify(config.rejected_printers);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('a bad printer alone does not stop the daemon; with other problems every problem is listed', () => {
    expect(() => parseConfig({ printers: [{ type: 'bambu_lab' }] })).not.toThrow();
    expect(problems({ log_level: 'loud', printers: [{ name: 'X', type: 'bambu_lab', host: 'h' }] })).toEqual([
      expect.stringMatching(/^log_level: /),
      'printers[0].serial: is required (from the printer’s screen or Bambu Studio)',
      'printers[0].access_code: is required (the LAN access code from the printer’s network settings)',
    ]);
  });

  it('lists rejected printers for GET /api/v1/printers: never online, the reason in problem', () => {
    const { rejected_printers } = parseConfig({ printers: [EXAMPLE.printers[1], { name: 'Y', type: 'prusa' }] });
    expect(rejectedPrinterSnapshots(rejected_printers)).toEqual([
      {
        id: 'rejected-1',
        name: 'Y',
        type: 'prusa',
        model: 'other',
        online: false,
        state: null,
        progress: null,
        remaining_minutes: null,
        last_seen: null,
        problem:
          'Not started: host: is required (the printer’s IP address or URL); password: needs a password or an api_key',
        rejected: true,
      },
    ]);
  });

  it('counts a name in characters, as the add-on form does (not UTF-16 units)', () => {
    const printer = { type: 'prusa', host: 'mk4.local', password: 'pw' };
    const config = parseConfig({
      printers: [
        { ...printer, name: '🖨'.repeat(64) },
        { ...printer, name: '🖨'.repeat(65) },
      ],
    });
    expect(config.printers).toHaveLength(1);
    expect(config.rejected_printers[0]!.problem).toBe('name: at most 64 characters');
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

  it('leaves out the second of two printers with the same name (any case)', () => {
    const printer = EXAMPLE.printers[1]!;
    const config = parseConfig({ printers: [printer, { ...printer, name: 'mk4' }] });
    expect(config.printers).toHaveLength(1);
    expect(config.rejected_printers).toEqual([
      {
        index: 1,
        name: 'mk4',
        type: 'prusa',
        problem: 'name: duplicates printers[0].name; printer names must be unique',
      },
    ]);
  });

  it('treats Home Assistant empty strings as unset', () => {
    const config = parseConfig({
      timezone: '',
      mqtt: { url: '', enabled: true, base_topic: '', discovery_prefix: '', username: '' },
      usage_statistics: { endpoint: '', schedule: '' },
      api_token: '',
      printers: [
        { name: 'MK4', type: 'prusa', host: 'mk4.local', password: 'pw', api_key: '', serial: '', port: null },
      ],
    });
    expect(config.timezone).toBeUndefined();
    expect(config.mqtt).toMatchObject({
      url: undefined,
      base_topic: 'printernizer',
      discovery_prefix: 'homeassistant',
    });
    expect(config.usage_statistics).toMatchObject({ endpoint: undefined, schedule: undefined });
    expect(config.api_token).toBeUndefined();
    // "" for a key of the other printer type is no mistake: it is how the form writes a cleared field.
    expect(config.printers).toHaveLength(1);
    expect(config.rejected_printers).toEqual([]);
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
