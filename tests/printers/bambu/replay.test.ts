/**
 * Real captures replayed through the driver's message and session calls on a ManualClock, through a real PrinterFleet
 * (tracker, Bambu Lab policy, live state) into an events array: the exact events recorded for each capture in
 * tests/fixtures/bambu. The sequences built from these shapes are in sequences.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ignoresRequestsProblem } from '../../../src/printers/bambu/driver.js';
import {
  ack,
  bambuddyH2s,
  delta,
  type FixtureName,
  fixturePrint,
  fullReport,
  readFixture,
  realDeltas,
  replayRig,
  snapconCapture,
  versionReply,
} from './helpers.js';

const BAMBU = { printer_type: 'bambu_lab' } as const;
const error = (error_type: string) => ({
  type: 'error_occurred',
  metadata: { error_type, component: 'bambu_mqtt', printer_type: 'bambu_lab' },
});

describe('snapcon: a real P2S print, cancelled (FAILED first, the code 4.6 s later)', () => {
  it('records the upload, the job, its pause error, one cancel with the printing time, and the new HMS entry', () => {
    const rig = replayRig('22E00A000000001');
    const { messages } = snapconCapture();
    for (const m of messages) rig.feed(m.payload, m.ms);
    rig.at(120_000);
    expect(rig.events).toEqual([
      { type: 'printer_connected', metadata: { ...BAMBU, printer_model: 'P2S', connection: 'mqtt' } },
      // project_file ack, sequence_id "20001".
      { type: 'file_uploaded', metadata: { ...BAMBU, file_type: '3mf' } },
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'P2S' } },
      // The self-pause: print_error 0x0500803C.
      error('print_error_0500_803c'),
      // FAILED at 24 887 ms, the code at 29 537 ms: one event, the time from RUNNING (7 577 ms) to FAILED.
      {
        type: 'job_failed',
        metadata: { ...BAMBU, printer_model: 'P2S', duration_seconds: 17, failure_type: 'cancelled' },
      },
      // The last report brings an HMS entry that was not there before (0500_0400); the two from months ago stay
      // uncounted all along.
      error('hms_0500_0400'),
    ]);
    expect(rig.snapshot()).toMatchObject({ online: true, state: 'FAILED', model: 'P2S', progress: 0 });
    // The probe kept neither a msg 0 report nor a get_version reply: the capture reads as firmware ignoring both.
    expect(rig.snapshot().problem).toBe(ignoresRequestsProblem(['pushall', 'get_version']));
  });

  it('records the job as failed, 15 s after FAILED, when the cancel code never comes', () => {
    const rig = replayRig('22E00A000000001');
    const messages = snapconCapture().messages.slice(0, -1);
    for (const m of messages) rig.feed(m.payload, m.ms);
    rig.at(24_887 + 14_999);
    expect(rig.of('job_failed')).toEqual([]);
    rig.at(24_887 + 15_000);
    expect(rig.of('job_failed')).toEqual([
      {
        type: 'job_failed',
        metadata: { ...BAMBU, printer_model: 'P2S', duration_seconds: 17, failure_type: 'failed' },
      },
    ]);
    // The code after the grace is not a second end.
    rig.feed(snapconCapture().messages.at(-1)?.payload as string, 50_000);
    expect(rig.jobs()).toEqual([
      ['job_created', undefined],
      ['job_failed', 'failed'],
    ]);
  });

  it('its idle full report (msg 0, FINISH, two HMS entries from months before) is a quiet baseline', () => {
    const rig = replayRig('22E00A000000001');
    rig.feed(JSON.stringify({ print: snapconCapture().idle }), 500);
    rig.feed(versionReply('p2s'), 600);
    rig.at(60_000);
    expect(rig.types()).toEqual(['printer_connected']);
    expect(rig.snapshot()).toMatchObject({ state: 'FINISH', progress: 100, problem: null, model: 'P2S' });
  });
});

describe('bambuddy: a real H2S calibration run (print_type "system") cancelled from the screen', () => {
  it('counts no job for it, from a running baseline or after idle, in either order of FAILED and the code', () => {
    const h2s = bambuddyH2s();
    const atBaseline = replayRig('0938BJ611001133');
    atBaseline.feed(h2s.running, 1000);
    atBaseline.feed(h2s.failedNoCode, 2000);
    atBaseline.feed(h2s.failedCancelCode, 6000);
    atBaseline.at(60_000);
    expect(atBaseline.types()).toEqual(['printer_connected']);

    const afterIdle = replayRig('0938BJ611001133');
    afterIdle.feed(fullReport('h2s', { gcode_state: 'IDLE', print_type: 'idle', mc_percent: 0 }), 500);
    afterIdle.feed(h2s.running, 1000);
    afterIdle.feed(h2s.failedNoCode, 2000);
    afterIdle.feed(h2s.failedCancelCode, 6000);
    afterIdle.at(60_000);
    expect(afterIdle.types()).toEqual(['printer_connected']);
    expect(afterIdle.snapshot()).toMatchObject({ model: 'H2S', state: 'FAILED' });
  });

  it('the same FAILED-then-code shape on a user’s print is one cancelled job', () => {
    const h2s = bambuddyH2s();
    const rig = replayRig('0938BJ611001133');
    rig.feed(fullReport('h2s', { gcode_state: 'IDLE', print_type: 'idle' }), 500);
    const user = (payload: string) => {
      const body = JSON.parse(payload) as { print: Record<string, unknown> };
      return JSON.stringify({ print: { ...body.print, print_type: 'cloud' } });
    };
    rig.feed(user(h2s.running), 1000);
    rig.feed(user(h2s.failedNoCode), 61_000);
    rig.feed(user(h2s.failedCancelCode), 65_000);
    rig.at(120_000);
    expect(rig.events.slice(1)).toEqual([
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'H2S' } },
      {
        type: 'job_failed',
        metadata: { ...BAMBU, printer_model: 'H2S', duration_seconds: 60, failure_type: 'cancelled' },
      },
    ]);
  });

  it('Bambu Studio’s project_file (sequence_id "20001"), echoed by the printer, is one 3mf upload', () => {
    const rig = replayRig('0938BJ611001133');
    rig.feed(fullReport('h2s', { gcode_state: 'IDLE' }), 500);
    rig.feed(ack(bambuddyH2s().projectFile), 1000);
    rig.feed(ack(bambuddyH2s().projectFile), 1100);
    expect(rig.of('file_uploaded')).toEqual([{ type: 'file_uploaded', metadata: { ...BAMBU, file_type: '3mf' } }]);
    expect(rig.driver.counters.uploadEchoes).toBe(1);
  });
});

describe('bambuddy: Bambu Studio’s project_file for an X2D print', () => {
  it('three prints with the same sequence_id "20001" are three uploads; a repeated ack is not a fourth', () => {
    const request = (readFixture('bambuddy__x2d-project-file.json') as { project_file: Record<string, unknown> })
      .project_file;
    const rig = replayRig('20P00A000000001');
    rig.feed(fullReport('x2d', { gcode_state: 'IDLE', hms: [] }), 500);
    rig.feed(versionReply('x2d'), 600);
    let t = 1000;
    for (let print = 0; print < 3; print++) {
      rig.feed(ack(request), t);
      if (print === 0) rig.feed(ack(request), t + 300); // the printer echoing the same ack
      rig.feed(delta({ gcode_state: 'PREPARE', task_id: '0' }), t + 2000);
      rig.feed(delta({ gcode_state: 'RUNNING' }), t + 60_000);
      rig.feed(delta({ gcode_state: 'FINISH', mc_percent: 100 }), t + 600_000);
      t += 700_000;
    }
    expect(rig.types()).toEqual([
      'printer_connected',
      ...Array(3).fill(['file_uploaded', 'job_created', 'job_completed']).flat(),
    ]);
    expect(rig.of('file_uploaded')[0]?.metadata).toEqual({ ...BAMBU, file_type: '3mf' });
    expect(rig.of('job_completed').map((e) => e.metadata)).toEqual(
      Array(3).fill({ ...BAMBU, printer_model: 'X2D', duration_seconds: 598 }),
    );
  });
});

describe('ha-bambulab full reports, one per model', () => {
  it.each([
    ['p1pFinish', '01S00C000000001', 'P1P', 'FINISH'],
    ['p1pFailed', '01S00C000000001', 'P1P', 'FAILED'],
    ['a1', '03900A000000001', 'A1', 'IDLE'],
    ['x1c', '00M00A000000001', 'X1C', 'FINISH'],
    ['h2c', '31B00A000000001', 'H2C', 'FAILED'],
    ['a2l', '26A00A000000001', 'A2L', 'IDLE'],
  ] as const)(
    '%s: a baseline in %s… counts nothing, however often it repeats; model %s',
    (name, serial, model, state) => {
      const rig = replayRig(serial);
      for (let i = 0; i < 3; i++) rig.feed(fullReport(name as FixtureName), 1000 + i * 1000);
      rig.feed(versionReply(name as FixtureName), 1500);
      rig.at(60_000);
      expect(rig.events).toEqual([
        { type: 'printer_connected', metadata: { ...BAMBU, printer_model: model, connection: 'mqtt' } },
      ]);
      expect(rig.snapshot()).toMatchObject({ model, state, problem: null });
    },
  );

  it.each([
    ['p2s', '22E00A000000001', 'P2S'],
    ['h2s', '09300A000000001', 'H2S'],
    ['h2d', '09400A000000001', 'H2D'],
    ['x2d', '20P00A000000001', 'X2D'],
  ] as const)(
    '%s: RUNNING at the baseline is counted when it ends, without job_created; model %s',
    (name, serial, model) => {
      const rig = replayRig(serial);
      rig.feed(fullReport(name), 1000);
      rig.feed(versionReply(name), 1100);
      rig.feed(fullReport(name), 2000);
      rig.feed(fullReport(name, { gcode_state: 'FINISH', mc_percent: 100 }), 600_000);
      rig.at(700_000);
      expect(rig.events).toEqual([
        { type: 'printer_connected', metadata: { ...BAMBU, printer_model: model, connection: 'mqtt' } },
        // Started before we watched: no duration we could vouch for.
        { type: 'job_completed', metadata: { ...BAMBU, printer_model: model } },
      ]);
      // The H2D's report carries no `msg`; it is still recognised as the full report pushall asked for.
      expect(rig.snapshot().problem).toBeNull();
    },
  );

  it('models by serial prefix before (or without) get_version: X2D 20P, A2L 26A', () => {
    expect(replayRig('20P00A000000009').snapshot().model).toBe('X2D');
    expect(replayRig('26A00A000000009').snapshot().model).toBe('A2L');
  });

  it('H2C: the cancel code left in fail_reason does not mark the next job cancelled', () => {
    const rig = replayRig('31B00A000000001');
    // The real report: FAILED, fail_reason "50348044", print_error 0.
    rig.feed(fullReport('h2c'), 1000);
    expect(fixturePrint('h2c')).toMatchObject({ gcode_state: 'FAILED', fail_reason: '50348044', print_error: 0 });
    // H2-class printers send the whole report every time, the old fail_reason included.
    rig.feed(fullReport('h2c', { gcode_state: 'PREPARE', task_id: '700000001' }), 10_000);
    rig.feed(fullReport('h2c', { gcode_state: 'RUNNING', task_id: '700000001' }), 70_000);
    rig.feed(fullReport('h2c', { gcode_state: 'FINISH', task_id: '700000001', mc_percent: 100 }), 670_000);
    // The next one fails on its own; fail_reason still the old cancel.
    rig.feed(fullReport('h2c', { gcode_state: 'RUNNING', task_id: '700000002' }), 700_000);
    rig.feed(fullReport('h2c', { gcode_state: 'FAILED', task_id: '700000002' }), 760_000);
    rig.at(800_000);
    expect(rig.events.slice(1)).toEqual([
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'H2C' } },
      { type: 'job_completed', metadata: { ...BAMBU, printer_model: 'H2C', duration_seconds: 660 } },
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'H2C' } },
      {
        type: 'job_failed',
        metadata: { ...BAMBU, printer_model: 'H2C', duration_seconds: 60, failure_type: 'failed' },
      },
    ]);
  });

  it('X2D: its HMS entry from months before stays across jobs and is counted once, when it comes back', () => {
    const rig = replayRig('20P00A000000001');
    const hms = fixturePrint('x2d').hms;
    expect(hms).toEqual([{ attr: 83887616, code: 131184, ts_boot: 15950, ts_unix: '20260426002648' }]);
    rig.feed(fullReport('x2d'), 1000);
    rig.feed(fullReport('x2d', { gcode_state: 'FINISH' }), 100_000);
    for (const [i, task] of ['800000001', '800000002'].entries()) {
      const t = 200_000 + i * 1_000_000;
      rig.feed(fullReport('x2d', { gcode_state: 'PREPARE', task_id: task }), t);
      rig.feed(fullReport('x2d', { gcode_state: 'RUNNING', task_id: task }), t + 60_000);
      rig.feed(fullReport('x2d', { gcode_state: 'FINISH', task_id: task }), t + 600_000);
    }
    rig.feed(fullReport('x2d', { gcode_state: 'FINISH', hms: [] }), 3_000_000);
    rig.feed(fullReport('x2d', { gcode_state: 'FINISH' }), 3_100_000);
    rig.feed(fullReport('x2d', { gcode_state: 'FINISH' }), 3_200_000);
    expect(rig.types()).toEqual([
      'printer_connected',
      'job_completed',
      'job_created',
      'job_completed',
      'job_created',
      'job_completed',
      'error_occurred',
    ]);
    expect(rig.of('error_occurred')).toEqual([error('hms_0500_0600')]);
  });
});

describe('real delta captures (P1S, msg 1)', () => {
  it('deltas without gcode_state are no baseline; the first one with it is', () => {
    const rig = replayRig('01P00A000000001');
    const [first, second, third, pause] = realDeltas();
    rig.feed(first as string, 1000);
    rig.feed(second as string, 2000);
    rig.feed(third as string, 3000);
    expect(rig.snapshot()).toMatchObject({ online: true, state: null });
    // PAUSE with the runout error: a job already running, its error known at the baseline.
    rig.feed(pause as string, 4000);
    rig.feed(delta({ gcode_state: 'RUNNING', print_error: 0 }), 5000);
    rig.feed(delta({ gcode_state: 'FINISH', mc_percent: 100 }), 600_000);
    expect(rig.events).toEqual([
      { type: 'printer_connected', metadata: { ...BAMBU, printer_model: 'P1S', connection: 'mqtt' } },
      { type: 'job_completed', metadata: { ...BAMBU, printer_model: 'P1S' } },
    ]);
  });

  it('after a full report, the PAUSE delta is the job’s, and its runout error counts once', () => {
    const rig = replayRig('01S00C000000001');
    rig.feed(fullReport('p1pFinish'), 1000);
    rig.feed(delta({ gcode_state: 'PREPARE', task_id: '900000001' }), 10_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 70_000);
    for (const line of realDeltas()) rig.feed(line, 100_000);
    rig.feed(realDeltas()[3] as string, 110_000);
    rig.feed(delta({ gcode_state: 'RUNNING', print_error: 0 }), 200_000);
    rig.feed(delta({ gcode_state: 'FINISH' }), 3_610_000);
    expect(rig.events.slice(1)).toEqual([
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'P1P' } },
      error('print_error_0300_8015'),
      { type: 'job_completed', metadata: { ...BAMBU, printer_model: 'P1P', duration_seconds: 3600 } },
    ]);
  });
});
