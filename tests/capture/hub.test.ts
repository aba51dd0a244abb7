import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capturedEvents, readCaptureFile, type TrafficLine } from '../../src/capture/format.js';
import { CaptureBusyError, CaptureHub, UnknownPrinterError } from '../../src/capture/hub.js';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { ManualClock } from '../../src/printers/clock.js';
import { PrinterFleet } from '../../src/printers/fleet.js';
import type { DriverDeps, JobState } from '../../src/printers/types.js';
import type { EventType } from '../../src/stats/events.js';
import { tempDir } from '../helpers.js';

const CONFIG = parseConfig({
  printers: [
    { name: 'Workshop', type: 'bambu_lab', host: '192.0.2.1', serial: '22E00A000000001', access_code: '12345678' },
    { name: 'Garage', type: 'bambu_lab', host: '192.0.2.2', serial: '01P00A000000002', access_code: '12345678' },
    { name: 'Desk', type: 'prusa', host: 'http://192.0.2.3', password: 'secret', poll_interval_s: 10 },
  ],
});

/** The real fleet with drivers the test drives by hand, on the hub's clock as in the daemon. */
function setup() {
  const clock = new ManualClock();
  const dir = tempDir();
  const hub = new CaptureHub({
    printers: CONFIG.printers,
    logger: silentLogger(),
    daemonVersion: '0.1.0',
    directory: join(dir, 'captures'),
    clock,
  });
  const drivers = new Map<string, DriverDeps>();
  const recorded: EventType[] = [];
  const fleet = new PrinterFleet(CONFIG.printers, {
    emit: (type, metadata) => {
      recorded.push(type);
      hub.recorded(type, metadata);
    },
    logger: silentLogger(),
    clock: hub.clock,
    createDriver: (_printer, id, deps) => {
      drivers.set(id, deps);
      return { id, start: () => {}, stop: async () => {} };
    },
  });
  fleet.start();
  hub.attach(fleet);
  const driver = (id: string) => drivers.get(id)!;
  const observe = (id: string, state: JobState, extra: object = {}) =>
    driver(id).update({ kind: 'observation', observation: { state, ...extra } });
  const report = (id: string, print: object) => {
    const payload = JSON.stringify({ print: { command: 'push_status', ...print } });
    driver(id).traffic?.({ kind: 'mqtt', topic: `device/SERIAL-${id}/report`, payload });
  };
  return { clock, hub, fleet, driver, observe, report, recorded, dir };
}

describe('CaptureHub', () => {
  it('gives a capture its printer’s events only, a held job’s end included', async () => {
    const t = setup();
    t.observe('workshop', 'idle');
    t.observe('garage', 'idle');
    const status = t.hub.start('workshop', { minutes: 5 });
    expect(status).toMatchObject({ printer_id: 'workshop', state: 'recording', minutes: 5, remaining_seconds: 300 });
    t.clock.advance(1000);
    t.observe('workshop', 'printing');
    t.observe('garage', 'printing');
    t.clock.advance(10_000);
    // FAILED without the cancel code: the tracker holds the job's end for 15 s, in a timer of its own.
    t.observe('workshop', 'failed');
    t.observe('garage', 'finished');
    t.clock.advance(20_000);
    expect(t.recorded.filter((type) => type === 'job_failed')).toHaveLength(1);
    const done = t.hub.stop('workshop');
    expect(done).toMatchObject({ state: 'done', end_reason: 'stopped', events: 2 });
    const path = t.hub.finishedFile('workshop')!.path;
    const events = capturedEvents(readCaptureFile(path));
    // printer_connected came with the first observation, before the capture began.
    expect(events.map((e) => e.event_type)).toEqual(['job_created', 'job_failed']);
    expect(events[1]!.metadata).toMatchObject({ failure_type: 'failed', printer_model: 'P2S' });
    // Garage's job_created and job_completed happened meanwhile, and are not in Workshop's capture.
    expect(t.recorded).toContain('job_completed');
    await t.fleet.stop();
  });

  it('refuses a second capture of the same printer at once, and unknown printers', async () => {
    const t = setup();
    t.hub.start('workshop');
    expect(() => t.hub.start('workshop')).toThrow(CaptureBusyError);
    expect(() => t.hub.start('nope')).toThrow(UnknownPrinterError);
    // Another printer may be captured meanwhile.
    expect(t.hub.start('desk').state).toBe('recording');
    t.clock.advance(10 * 60_000);
    expect(t.hub.status('workshop')).toMatchObject({ state: 'done', end_reason: 'time_up' });
    expect(t.hub.status('desk')).toMatchObject({ state: 'done', end_reason: 'time_up' });
    // Once it ended, the printer can be captured again (the file of the last one is replaced).
    const first = t.hub.finishedFile('workshop')!.path;
    t.clock.advance(1000);
    t.hub.start('workshop');
    expect(t.hub.finishedFile('workshop')).toBeNull();
    t.hub.close();
    expect(t.hub.finishedFile('workshop')!.path).not.toBe(first);
    expect(t.hub.status('workshop')).toMatchObject({ end_reason: 'daemon_stopping' });
    await t.fleet.stop();
  });

  it('starts a capture that joins a running session with what the daemon knows (the prelude)', async () => {
    const t = setup();
    const deps = t.driver('workshop');
    deps.traffic?.({ kind: 'link', up: true });
    deps.traffic?.({
      kind: 'mqtt',
      topic: 'device/22E00A000000001/report',
      payload: JSON.stringify({
        info: { command: 'get_version', module: [{ name: 'ota', sw_ver: '01.02.00.00', sn: '22E00A000000001' }] },
      }),
    });
    t.report('workshop', { msg: 0, gcode_state: 'RUNNING', mc_percent: 10, subtask_name: 'alice bracket' });
    t.report('workshop', { msg: 1, mc_percent: 11 });
    t.report('workshop', { msg: 1, mc_percent: 12, layer_num: 4 });
    t.hub.start('workshop');
    t.report('workshop', { msg: 1, mc_percent: 13 });
    t.hub.stop('workshop');
    const capture = readCaptureFile(t.hub.finishedFile('workshop')!.path);
    expect(capture.header.session).toBe('joined');
    const prelude = capture.lines.filter((l): l is TrafficLine => 'prelude' in l && l.prelude === true);
    expect(prelude.map((l) => l.kind)).toEqual(['link', 'mqtt', 'mqtt']);
    // The full report and the changes after it, merged into one full report.
    expect((prelude[2] as { payload: unknown }).payload).toEqual({
      print: {
        command: 'push_status',
        msg: 0,
        gcode_state: 'RUNNING',
        mc_percent: 12,
        subtask_name: expect.stringMatching(/^<str:\d+>$/),
        layer_num: 4,
      },
    });
    expect(JSON.stringify(capture)).not.toMatch(/22E00A000000001|alice/);
    await t.fleet.stop();
  });
});
