import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { configuredMembers, type DriverFactory, PrinterFleet } from '../../src/printers/fleet.js';
import type { PrinterSnapshot } from '../../src/printers/types.js';
import type { PrinterModel } from '../../src/stats/events.js';
import { tempDir } from '../helpers.js';

const OPTIONS = {
  printers: [
    { name: 'Workshop', type: 'bambu_lab', host: '192.0.2.1', serial: '01P00A000000001', access_code: '12345678' },
    { name: 'Garage', type: 'bambu_lab', host: '192.0.2.2', serial: '03900A000000002', access_code: '12345678' },
    { name: 'Odd one', type: 'bambu_lab', host: '192.0.2.3', serial: 'ZZZ00A000000003', access_code: '12345678' },
    { name: 'MK4', type: 'prusa', host: 'http://192.0.2.4', password: 'secret' },
  ],
};

/** Drivers that never connect; `models` says what each would report live (by printer name). */
function fakeDrivers(models: Record<string, PrinterModel>): DriverFactory {
  return (printer, id) => ({
    id,
    start: () => {},
    stop: async () => {},
    snapshot: (): PrinterSnapshot => ({
      id,
      name: printer.name,
      type: printer.type,
      model: models[printer.name] ?? 'other',
      online: false,
      state: null,
      progress: null,
      remaining_minutes: null,
      last_seen: null,
      problem: null,
    }),
  });
}

describe('PrinterFleet.members', () => {
  const config = parseConfig(OPTIONS);

  it('names Bambu models from the serial prefix before any printer connects', () => {
    const fleet = new PrinterFleet(config.printers, {
      emit: () => {},
      logger: silentLogger(),
      createDriver: fakeDrivers({}),
    });
    const expected = [
      { type: 'bambu_lab', model: 'P1S' },
      { type: 'bambu_lab', model: 'A1' },
      { type: 'bambu_lab', model: 'other' },
      { type: 'prusa', model: 'other' },
    ];
    expect(fleet.members()).toEqual(expected); // not started
    fleet.start();
    expect(fleet.members()).toEqual(expected); // started, nothing known live yet
    expect(configuredMembers(config.printers)).toEqual(expected);
  });

  it('prefers the model a printer reports live', async () => {
    const fleet = new PrinterFleet(config.printers, {
      emit: () => {},
      logger: silentLogger(),
      createDriver: fakeDrivers({ Workshop: 'X1C', MK4: 'MK4S' }),
    });
    fleet.start();
    expect(fleet.members().map((m) => m.model)).toEqual(['X1C', 'A1', 'other', 'MK4S']);
    await fleet.stop();
  });
});

describe('preview command', () => {
  it('shows the configured Bambu models without a running fleet', () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'options.json'), JSON.stringify(OPTIONS));
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '../../src/cli.ts'), 'preview', '--data-dir', dataDir],
      { encoding: 'utf8', timeout: 20_000, env: { ...process.env, DO_NOT_TRACK: '' } },
    );
    expect(result.status, result.stderr).toBe(0);
    const payload = JSON.parse(result.stdout) as {
      printer_fleet: { printer_count: number; printer_model_counts: Record<string, number> };
    };
    expect(payload.printer_fleet.printer_count).toBe(4);
    expect(payload.printer_fleet.printer_model_counts).toEqual({ P1S: 1, A1: 1, other: 2 });
  });
});
