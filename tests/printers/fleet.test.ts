import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { ManualClock } from '../../src/printers/clock.js';
import { configuredMembers, type DriverFactory, PrinterFleet } from '../../src/printers/fleet.js';
import type { DriverDeps, PrinterSnapshot, PrinterUpdate, RawTraffic } from '../../src/printers/types.js';
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

/** Drivers that never connect; `models` says what each reports as its model when started (by printer name). */
function fakeDrivers(models: Record<string, PrinterModel>): DriverFactory {
  return (printer, id, deps) => ({
    id,
    start: () => {
      const model = models[printer.name];
      if (model) deps.update({ kind: 'model', model });
    },
    stop: async () => {},
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

describe('PrinterFleet: updates to events and live state', () => {
  const config = parseConfig({ printers: [OPTIONS.printers[0], OPTIONS.printers[3]] });

  /** Drivers whose update sinks the test holds, by printer id. */
  function scriptedFleet() {
    const sinks = new Map<string, DriverDeps['update']>();
    const events: { type: string; metadata: Record<string, unknown> }[] = [];
    const clock = new ManualClock();
    const fleet = new PrinterFleet(config.printers, {
      emit: (type, metadata) => events.push({ type, metadata }),
      logger: silentLogger(),
      clock,
      createDriver: (_printer, id, deps) => {
        sinks.set(id, deps.update);
        return { id, start: () => {}, stop: async () => {} };
      },
    });
    fleet.start();
    return { fleet, events, clock, send: (id: string, update: PrinterUpdate) => sinks.get(id)!(update) };
  }

  it('pushes a printer’s snapshot when what it shows changes, not when it is merely seen', async () => {
    const { fleet, send, clock } = scriptedFleet();
    const pushed: PrinterSnapshot[] = [];
    fleet.onChange((changed) => pushed.push(...changed));
    send('workshop', { kind: 'connected' });
    send('workshop', { kind: 'seen' });
    clock.advance(1000);
    send('workshop', { kind: 'seen' });
    const status = { state: 'RUNNING', progress: 10, remaining_minutes: 50 };
    send('workshop', { kind: 'observation', observation: { state: 'printing' }, status });
    send('workshop', { kind: 'observation', observation: { state: 'printing' }, status: { ...status } });
    send('workshop', { kind: 'model', model: 'X1C' });
    send('mk4', { kind: 'problem', scope: 'notice', problem: 'PrusaLink API v1 needed' });
    expect(pushed.map((s) => [s.id, s.online, s.state, s.model, s.problem])).toEqual([
      ['workshop', true, null, 'P1S', null],
      ['workshop', true, 'RUNNING', 'P1S', null],
      ['workshop', true, 'RUNNING', 'X1C', null],
      ['mk4', false, null, 'other', 'PrusaLink API v1 needed'],
    ]);
    expect(fleet.snapshots()[0]?.last_seen).toBe(new Date(clock.now()).toISOString());
    await fleet.stop();
  });

  it('a link problem hides a notice while it lasts', () => {
    const { fleet, send } = scriptedFleet();
    send('mk4', { kind: 'problem', scope: 'notice', problem: 'firmware too old' });
    send('mk4', { kind: 'problem', scope: 'link', problem: 'cannot connect' });
    expect(fleet.snapshots()[1]?.problem).toBe('cannot connect');
    send('mk4', { kind: 'problem', scope: 'link', problem: null });
    expect(fleet.snapshots()[1]?.problem).toBe('firmware too old');
  });

  it('turns updates into events naming the model the printer told, and ends a held job on stop', async () => {
    const { fleet, send, events } = scriptedFleet();
    send('workshop', { kind: 'model', model: 'X1C' });
    for (const state of ['idle', 'printing', 'failed'] as const) {
      send('workshop', { kind: 'observation', observation: { state } });
    }
    expect(events.map((e) => e.type)).toEqual(['printer_connected', 'job_created']);
    await fleet.stop();
    expect(events.map((e) => e.type)).toEqual(['printer_connected', 'job_created', 'job_failed']);
    expect(events[2]?.metadata).toMatchObject({ printer_model: 'X1C', failure_type: 'failed' });
  });

  it('hands raw traffic to a tap until it is removed', () => {
    const seen: RawTraffic[] = [];
    let traffic: DriverDeps['traffic'];
    const fleet = new PrinterFleet(config.printers, {
      emit: () => {},
      logger: silentLogger(),
      createDriver: (_printer, id, deps) => {
        if (id === 'mk4') traffic = deps.traffic;
        return { id, start: () => {}, stop: async () => {} };
      },
    });
    fleet.start();
    expect(fleet.tapTraffic('nope', () => {})).toBeNull();
    const untap = fleet.tapTraffic('mk4', (entry) => seen.push(entry));
    traffic?.({ kind: 'http', path: '/api/v1/status', status: 200, body: '{}' });
    untap?.();
    traffic?.({ kind: 'http', path: '/api/v1/status', status: 200, body: '{}' });
    expect(seen).toHaveLength(1);
  });
});
