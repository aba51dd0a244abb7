/**
 * The config under arbitrary JSON (as /data/options.json or a user's file could hold): parseConfig returns a Config
 * or throws a ConfigError with one readable line per problem, nothing else; a returned config holds what the schema
 * promises (the daemon trusts it without further checks).
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Config, ConfigError, LOG_LEVELS, loadConfigFile, parseConfig } from '../../src/config.js';
import { anyValue, damaged, jsonValue, mutated, RUNS } from './arbitraries.js';

const VALID = {
  log_level: 'info',
  timezone: 'Europe/Berlin',
  printers: [
    { name: 'X1', type: 'bambu_lab', host: '192.168.1.20', serial: '00M00A000000001', access_code: '12345678' },
    { name: 'MK4', type: 'prusa', host: 'prusa-mk4.local', password: 'secret', poll_interval_s: 10 },
  ],
  usage_statistics: { endpoint: 'https://stats.example.org/v1', retention_days: 30 },
  mqtt: { enabled: true, url: 'mqtt://broker:1883', base_topic: 'printernizer' },
  api_token: 'tok',
};

function outcome(input: unknown): Config | ConfigError {
  try {
    return parseConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.length).toBeGreaterThan(0);
    for (const line of problems) expect(typeof line).toBe('string');
    return error as ConfigError;
  }
}

function checkConfig(config: Config): void {
  expect(LOG_LEVELS).toContain(config.log_level);
  const names = new Set<string>();
  for (const printer of config.printers) {
    expect(['bambu_lab', 'prusa']).toContain(printer.type);
    expect(printer.name.trim().length).toBeGreaterThan(0);
    expect(names.has(printer.name.toLowerCase())).toBe(false);
    names.add(printer.name.toLowerCase());
    if (printer.type === 'bambu_lab') {
      expect(Number.isInteger(printer.port) && printer.port >= 1 && printer.port <= 65535).toBe(true);
    } else {
      expect(printer.password !== undefined || printer.api_key !== undefined).toBe(true);
      expect(Number.isInteger(printer.poll_interval_s) && printer.poll_interval_s >= 1).toBe(true);
    }
  }
  expect(Number.isInteger(config.usage_statistics.retention_days)).toBe(true);
  expect(config.mqtt.base_topic).toMatch(/^[A-Za-z0-9_\-/]+$/);
}

describe('parseConfig (fuzz)', () => {
  it('returns a Config or throws a ConfigError for arbitrary input', () => {
    fc.assert(
      fc.property(anyValue, (input) => {
        const result = outcome(input);
        if (!(result instanceof ConfigError)) checkConfig(result);
      }),
      { numRuns: RUNS },
    );
  });

  it('returns a Config or throws a ConfigError for a valid config mutated at random paths', () => {
    expect(outcome(VALID)).not.toBeInstanceOf(ConfigError);
    fc.assert(
      fc.property(mutated(VALID, fc.oneof(jsonValue, anyValue)), (input) => {
        const result = outcome(input);
        if (!(result instanceof ConfigError)) checkConfig(result);
      }),
      { numRuns: RUNS },
    );
  });

  it('loadConfigFile returns a Config or throws a ConfigError for any file text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pstats-cfg-'));
    const file = join(dir, 'options.json');
    try {
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: 'binary' }), damaged(JSON.stringify(VALID))), (text) => {
          writeFileSync(file, text);
          let result: Config | ConfigError;
          try {
            result = loadConfigFile(file);
          } catch (error) {
            expect(error).toBeInstanceOf(ConfigError);
            return;
          }
          checkConfig(result);
        }),
        { numRuns: RUNS },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
