/**
 * The sequences of issue 12 (Bambu Lab items 1-6), built from the real report shapes in tests/fixtures/bambu, driven
 * through the driver's message and session calls on a ManualClock and a real PrinterFleet: the exact events.
 */
import { describe, expect, it } from 'vitest';
import { ignoresRequestsProblem } from '../../../src/printers/bambu/driver.js';
import { CANCEL_PRINT_ERROR } from '../../../src/printers/bambu/report.js';
import { ack, delta, fullReport, replayRig, snapconCapture, versionReply } from './helpers.js';

const BAMBU = { printer_type: 'bambu_lab' } as const;
const CANCEL_ONLY = JSON.stringify({ print: { print_error: CANCEL_PRINT_ERROR } });
const failed = (model: string, failure_type: string, duration_seconds?: number) => ({
  type: 'job_failed',
  metadata: {
    ...BAMBU,
    printer_model: model,
    ...(duration_seconds === undefined ? {} : { duration_seconds }),
    failure_type,
  },
});
const error = (error_type: string) => ({
  type: 'error_occurred',
  metadata: { error_type, component: 'bambu_mqtt', printer_type: 'bambu_lab' },
});

describe('item 1: a cancel is one cancelled job, whichever order FAILED and the code come in', () => {
  /** P2S/H2S shape: FAILED with print_error 0, the cancel code (and mc_print_error_code "16396") seconds later. */
  function p2sJob(codeAfterMs: number | null) {
    const rig = replayRig('22E00A000000001');
    rig.feed(fullReport('p2s', { gcode_state: 'IDLE', print_type: 'idle' }), 1000);
    rig.feed(fullReport('p2s', { gcode_state: 'PREPARE' }), 10_000);
    rig.feed(fullReport('p2s', { gcode_state: 'RUNNING' }), 70_000);
    rig.feed(fullReport('p2s', { gcode_state: 'FAILED', print_error: 0 }), 130_000);
    if (codeAfterMs !== null) {
      rig.feed(
        fullReport('p2s', { gcode_state: 'FAILED', print_error: CANCEL_PRINT_ERROR, mc_print_error_code: '16396' }),
        130_000 + codeAfterMs,
      );
    }
    rig.at(300_000);
    return rig;
  }

  it.each([
    [4_600, 'cancelled'],
    [14_999, 'cancelled'],
    [15_000, 'failed'],
    [null, 'failed'],
  ] as const)('P2S/H2S: the code %s ms after FAILED → %s, once, timed to FAILED', (gap, failure) => {
    const rig = p2sJob(gap);
    expect(rig.events.slice(1)).toEqual([
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'P2S' } },
      failed('P2S', failure, 120),
    ]);
  });

  it('A1: the bare code first, twice, then FAILED, then the reset: one cancelled job, no error', () => {
    const rig = replayRig('03900A000000001');
    rig.feed(fullReport('a1'), 1000);
    rig.feed(versionReply('a1'), 1100);
    rig.feed(delta({ gcode_state: 'PREPARE' }), 10_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 40_000);
    rig.feed(CANCEL_ONLY, 100_000);
    rig.feed(CANCEL_ONLY, 101_000);
    rig.feed(delta({ gcode_state: 'FAILED' }), 102_000);
    rig.feed(delta({ print_error: 0 }), 104_000);
    // Sometimes once more after FAILED: still one end.
    rig.feed(CANCEL_ONLY, 105_000);
    rig.at(200_000);
    expect(rig.events.slice(1)).toEqual([
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'A1' } },
      failed('A1', 'cancelled', 92),
    ]);
  });

  it('after a reconnect, a full report with FAILED and the code together is a cancel', () => {
    const rig = replayRig('00M00A000000001');
    rig.feed(fullReport('x1c', { gcode_state: 'IDLE' }), 1000);
    rig.feed(fullReport('x1c', { gcode_state: 'RUNNING', task_id: '900000001' }), 10_000);
    rig.driver.sessionDown('network');
    rig.at(50_000);
    rig.driver.sessionUp();
    rig.feed(
      fullReport('x1c', { gcode_state: 'FAILED', task_id: '900000001', print_error: CANCEL_PRINT_ERROR }),
      51_000,
    );
    expect(rig.jobs()).toEqual([
      ['job_created', undefined],
      ['job_failed', 'cancelled'],
    ]);
  });

  it('a code still shown in the next job’s full reports (not reset yet) does not mark it cancelled', () => {
    const rig = replayRig('00M00A000000001');
    rig.feed(fullReport('x1c', { gcode_state: 'IDLE' }), 1000);
    rig.feed(fullReport('x1c', { gcode_state: 'RUNNING', task_id: '1' }), 10_000);
    rig.feed(fullReport('x1c', { gcode_state: 'RUNNING', task_id: '1', print_error: CANCEL_PRINT_ERROR }), 20_000);
    rig.feed(fullReport('x1c', { gcode_state: 'FAILED', task_id: '1', print_error: CANCEL_PRINT_ERROR }), 22_000);
    rig.feed(fullReport('x1c', { gcode_state: 'PREPARE', task_id: '2', print_error: CANCEL_PRINT_ERROR }), 30_000);
    rig.feed(fullReport('x1c', { gcode_state: 'RUNNING', task_id: '2', print_error: CANCEL_PRINT_ERROR }), 40_000);
    rig.feed(fullReport('x1c', { gcode_state: 'FAILED', task_id: '2', print_error: CANCEL_PRINT_ERROR }), 90_000);
    rig.at(200_000);
    expect(rig.jobs()).toEqual([
      ['job_created', undefined],
      ['job_failed', 'cancelled'],
      ['job_created', undefined],
      ['job_failed', 'failed'],
    ]);
  });
});

describe('item 2: uploads with a reused sequence id', () => {
  const studio = (file: string) => ({
    command: 'project_file',
    sequence_id: '20001',
    param: 'Metadata/plate_1.gcode',
    file: `${file}.gcode.3mf`,
    url: `ftp:///${file}.gcode.3mf`,
    project_id: '0',
    task_id: '0',
    subtask_id: '0',
  });

  function printJob(rig: ReturnType<typeof replayRig>, t: number): void {
    rig.feed(delta({ gcode_state: 'PREPARE' }), t + 1000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), t + 30_000);
    rig.feed(delta({ gcode_state: 'FINISH' }), t + 300_000);
  }

  it('three prints from Bambu Studio, all "20001", the same file each time: three uploads', () => {
    const rig = replayRig('22E00A000000001');
    rig.feed(fullReport('p2s', { gcode_state: 'IDLE' }), 500);
    for (let i = 0; i < 3; i++) {
      const t = 1000 + i * 400_000;
      rig.feed(ack(studio('Cube')), t);
      printJob(rig, t);
    }
    expect(rig.of('file_uploaded')).toHaveLength(3);
    expect(rig.jobs().map(([type]) => type)).toEqual(Array(3).fill(['job_created', 'job_completed']).flat());
  });

  it('Home Assistant’s prints (sequence_id "0", ha-bambulab) count one each too', () => {
    const rig = replayRig('01P00A000000001');
    rig.feed(fullReport('p1pFinish'), 500);
    const ha = {
      command: 'project_file',
      sequence_id: '0',
      param: 'Metadata/plate_1.gcode',
      url: 'file:///sdcard/part.3mf',
      subtask_name: 'part',
    };
    for (let i = 0; i < 3; i++) {
      rig.feed(ack(ha), 1000 + i * 400_000);
      printJob(rig, 1000 + i * 400_000);
    }
    expect(rig.of('file_uploaded')).toHaveLength(3);
  });

  it('the same ack repeated is counted once; again after a job started, or after the window, it is a new upload', () => {
    const rig = replayRig('22E00A000000001');
    rig.feed(fullReport('p2s', { gcode_state: 'IDLE' }), 500);
    const payload = ack(studio('Cube'));
    rig.feed(payload, 1000);
    rig.feed(payload, 1200);
    rig.feed(payload, 5000);
    expect(rig.of('file_uploaded')).toHaveLength(1);
    // A different file with the same sequence id is another print.
    rig.feed(ack(studio('Gear')), 6000);
    expect(rig.of('file_uploaded')).toHaveLength(2);
    // The same Gear ack once a job has started: a new print of the same file.
    rig.feed(delta({ gcode_state: 'PREPARE' }), 7000);
    rig.feed(ack(studio('Gear')), 8000);
    expect(rig.of('file_uploaded')).toHaveLength(3);
    // Past the echo window (10 s).
    rig.feed(ack(studio('Gear')), 18_000);
    expect(rig.of('file_uploaded')).toHaveLength(4);
    // A refused print is no upload.
    rig.feed(ack(studio('Bolt'), 'fail'), 20_000);
    expect(rig.of('file_uploaded')).toHaveLength(4);
    expect(rig.driver.counters.uploadEchoes).toBe(2);
  });
});

describe('item 3: a print that ends while the link is down', () => {
  it('P1 deltas: the print finished in the outage is closed by the full report after reconnecting; the next counts', () => {
    const rig = replayRig('01S00C000000001');
    rig.feed(fullReport('p1pFinish'), 1000);
    rig.feed(delta({ gcode_state: 'PREPARE', gcode_file_prepare_percent: '10' }), 10_000);
    rig.feed(delta({ gcode_state: 'RUNNING', mc_percent: 1 }), 40_000);
    rig.feed(delta({ mc_percent: 30 }), 100_000);
    rig.driver.sessionDown('network');
    // 300 s later the link is back; the printer finished meanwhile and tells it only in the full report.
    rig.at(400_000);
    rig.driver.sessionUp();
    rig.feed(fullReport('p1pFinish', { task_id: '0' }), 401_000);
    rig.feed(delta({ gcode_state: 'PREPARE', gcode_file_prepare_percent: '5' }), 500_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 530_000);
    rig.feed(delta({ gcode_state: 'FINISH', mc_percent: 100 }), 1_130_000);
    expect(rig.events.map((e) => [e.type, e.metadata.duration_seconds ?? e.metadata.reason])).toEqual([
      ['printer_connected', undefined],
      ['job_created', undefined],
      ['printer_disconnected', 'network'],
      ['printer_connected', undefined],
      // 391 s from PREPARE to the report that showed FINISH, minus the outage: 301 s until data came again.
      ['job_completed', 90],
      ['job_created', undefined],
      ['job_completed', 630],
    ]);
    expect(rig.traffic.filter((t) => t.kind === 'link')).toEqual([
      { kind: 'link', up: true },
      { kind: 'link', up: false, reason: 'network' },
      { kind: 'link', up: true },
    ]);
  });

  it('firmware that ignores pushall and get_version: shown with the reason, counts from deltas alone', () => {
    const rig = replayRig('01S00C000000001');
    // No full report, no version reply: only the printer's change reports.
    rig.feed(delta({ bed_temper: 23.5, wifi_signal: '-50dBm' }), 1000);
    rig.at(19_999);
    expect(rig.snapshot().problem).toBeNull();
    rig.at(20_000);
    expect(rig.snapshot()).toMatchObject({
      online: true,
      model: 'P1P', // from the serial prefix
      state: null,
      problem: ignoresRequestsProblem(['pushall', 'get_version']),
    });
    expect(rig.snapshot().problem).toMatch(/LAN-only mode is off.*Bambu Studio issue 4154/);
    // A change into PREPARE: a job starting now, the baseline the idle state it left.
    rig.feed(delta({ gcode_state: 'PREPARE', gcode_file_prepare_percent: '0' }), 60_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 120_000);
    rig.feed(delta({ gcode_state: 'FINISH' }), 1_260_000);
    rig.feed(delta({ gcode_state: 'PREPARE' }), 1_400_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 1_430_000);
    rig.feed(delta({ gcode_state: 'FAILED' }), 1_500_000);
    rig.at(1_600_000);
    expect(rig.events).toEqual([
      { type: 'printer_connected', metadata: { ...BAMBU, printer_model: 'P1P', connection: 'mqtt' } },
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'P1P' } },
      { type: 'job_completed', metadata: { ...BAMBU, printer_model: 'P1P', duration_seconds: 1200 } },
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'P1P' } },
      failed('P1P', 'failed', 100),
    ]);
    // Answers later clear what they answer.
    rig.feed(fullReport('p1pFinish'), 1_700_000);
    expect(rig.snapshot().problem).toBe(ignoresRequestsProblem(['get_version']));
    rig.feed(versionReply('p1pFinish'), 1_700_100);
    expect(rig.snapshot().problem).toBeNull();
  });

  it('ignoring firmware whose first state is RUNNING: a job running at the baseline, counted at its end', () => {
    const rig = replayRig('01S00C000000001');
    rig.feed(delta({ gcode_state: 'RUNNING', mc_percent: 40 }), 1000);
    rig.feed(delta({ gcode_state: 'FINISH' }), 600_000);
    expect(rig.jobs()).toEqual([['job_completed', undefined]]);
  });

  it('a printer that answers nothing at all is the watchdog’s: offline after 60 s, no "ignores" notice', () => {
    const rig = replayRig('01S00C000000001', { timings: { watchdogMs: 60_000 } });
    rig.at(60_000);
    expect(rig.snapshot()).toMatchObject({ online: false, problem: 'no data for 60 s' });
    expect(rig.events).toEqual([]);
  });
});

describe('item 4: HMS errors that stay', () => {
  const old = { attr: 83887616, code: 131184, ts_boot: 33429, ts_unix: '20260708111841' };

  it('an entry on the printer at the baseline, or that appeared once, is one error until it clears (P1 deltas)', () => {
    const rig = replayRig('01S00C000000001');
    rig.feed(fullReport('p1pFinish', { hms: [old] }), 1000);
    for (const t of [10_000, 1_000_000]) {
      rig.feed(delta({ gcode_state: 'PREPARE' }), t);
      rig.feed(delta({ gcode_state: 'RUNNING' }), t + 30_000);
      rig.feed(delta({ gcode_state: 'FINISH' }), t + 600_000);
    }
    expect(rig.of('error_occurred')).toEqual([]);
    // Cleared, then back: a new error, once, however many jobs it stays for.
    rig.feed(delta({ hms: [] }), 2_000_000);
    rig.feed(delta({ hms: [old, { attr: 50331904, code: 65543 }] }), 2_100_000);
    for (const t of [2_200_000, 3_000_000]) {
      rig.feed(delta({ gcode_state: 'PREPARE' }), t);
      rig.feed(delta({ gcode_state: 'RUNNING', mc_percent: 3 }), t + 30_000);
      rig.feed(fullReport('p1pFinish', { hms: [old, { attr: 50331904, code: 65543 }] }), t + 600_000);
    }
    expect(rig.of('error_occurred')).toEqual([error('hms_0500_0600'), error('hms_0300_0100')]);
    expect(rig.jobs().map(([type]) => type)).toEqual(Array(4).fill(['job_created', 'job_completed']).flat());
  });

  it('the real P2S entries from earlier months stay uncounted through its print', () => {
    const rig = replayRig('22E00A000000001');
    for (const m of snapconCapture().messages) rig.feed(m.payload, m.ms);
    const errors = rig.of('error_occurred').map((e) => e.metadata.error_type);
    expect(errors).not.toContain('hms_0500_0600');
    expect(errors).not.toContain('hms_0501_0000');
  });
});

describe('item 5: states', () => {
  it('INIT at power-on is no job and no baseline; IDLE is; the job after it counts', () => {
    const rig = replayRig('01P00A000000001');
    rig.feed(fullReport('p1pFinish', { gcode_state: 'INIT' }), 1000);
    rig.feed(delta({ gcode_state: 'INIT' }), 5000);
    expect(rig.snapshot().state).toBe('INIT');
    rig.feed(delta({ gcode_state: 'IDLE' }), 20_000);
    rig.feed(delta({ gcode_state: 'SLICING' }), 30_000);
    rig.feed(delta({ gcode_state: 'PREPARE' }), 40_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 60_000);
    rig.feed(delta({ gcode_state: 'PAUSE' }), 90_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 120_000);
    rig.feed(delta({ gcode_state: 'FINISH' }), 630_000);
    expect(rig.events.slice(1)).toEqual([
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'P1S' } },
      { type: 'job_completed', metadata: { ...BAMBU, printer_model: 'P1S', duration_seconds: 600 } },
    ]);
  });

  it('a power cut mid-print: back through INIT to IDLE, the job was lost to a fault (error), minus the outage', () => {
    const rig = replayRig('01P00A000000001');
    rig.feed(fullReport('p1pFinish'), 1000);
    rig.feed(delta({ gcode_state: 'PREPARE' }), 10_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 40_000);
    rig.driver.sessionDown('network');
    rig.at(200_000);
    rig.driver.sessionUp();
    rig.feed(fullReport('p1pFinish', { gcode_state: 'INIT', mc_percent: 0 }), 201_000);
    rig.feed(delta({ gcode_state: 'IDLE' }), 220_000);
    expect(rig.events.slice(1).map((e) => [e.type, e.metadata.failure_type ?? e.metadata.reason])).toEqual([
      ['job_created', undefined],
      ['printer_disconnected', 'network'],
      ['printer_connected', undefined],
      ['job_failed', 'error'],
    ]);
    // 30 s before the cut, 19 s from the first data after it to IDLE.
    expect(rig.of('job_failed')[0]?.metadata.duration_seconds).toBe(49);
  });

  it('calibration runs the printer starts itself (print_type "system") are followed, never counted', () => {
    const rig = replayRig('01P00A000000001');
    rig.feed(fullReport('p1pFinish', { gcode_state: 'IDLE', print_type: 'idle' }), 1000);
    // The bambuddy wiki's P1S capture of the `calibration` command: IDLE → RUNNING → FINISH under "system".
    const cali = { print_type: 'system', subtask_name: 'auto_cali_for_user_param.gcode', layer_num: 0 };
    rig.feed(ack({ command: 'calibration', option: 2, sequence_id: '0' }), 2000);
    rig.feed(delta({ gcode_state: 'RUNNING', mc_percent: 0, ...cali }), 5000);
    rig.feed(delta({ mc_percent: 50 }), 600_000);
    rig.feed(delta({ gcode_state: 'FINISH', mc_percent: 100 }), 1_500_000);
    rig.feed(delta({ print_type: 'idle' }), 1_501_000);
    // Then the user's print.
    rig.feed(delta({ gcode_state: 'PREPARE', print_type: 'local' }), 2_000_000);
    rig.feed(delta({ gcode_state: 'RUNNING' }), 2_030_000);
    rig.feed(delta({ gcode_state: 'FINISH' }), 2_600_000);
    expect(rig.events.slice(1)).toEqual([
      { type: 'job_created', metadata: { ...BAMBU, printer_model: 'P1S' } },
      { type: 'job_completed', metadata: { ...BAMBU, printer_model: 'P1S', duration_seconds: 600 } },
    ]);
    expect(rig.of('file_uploaded')).toEqual([]);
  });
});

describe('item 6: models', () => {
  it.each([
    ['20P00A000000001', 'x2d', 'X2D'],
    ['26A00A000000001', 'a2l', 'A2L'],
    ['31B00A000000001', 'h2c', 'H2C'],
  ] as const)('%s: jobs counted as %s, by serial prefix and by get_version', (serial, fixture, model) => {
    const rig = replayRig(serial);
    rig.feed(fullReport(fixture, { gcode_state: 'IDLE', hms: [] }), 1000);
    rig.feed(versionReply(fixture), 1100);
    rig.feed(fullReport(fixture, { gcode_state: 'RUNNING', hms: [] }), 10_000);
    rig.feed(fullReport(fixture, { gcode_state: 'FINISH', hms: [] }), 70_000);
    expect(rig.jobs()).toEqual([
      ['job_created', undefined],
      ['job_completed', undefined],
    ]);
    for (const e of rig.events) expect(e.metadata.printer_model).toBe(model);
  });

  it('a get_version reply names the model even when the serial prefix does not', () => {
    const rig = replayRig('MOCK-X2D');
    expect(rig.snapshot().model).toBe('other');
    rig.feed(versionReply('x2d'), 1000);
    expect(rig.snapshot().model).toBe('X2D');
    rig.feed(fullReport('x2d', { gcode_state: 'IDLE' }), 2000);
    expect(rig.of('printer_connected')[0]?.metadata.printer_model).toBe('X2D');
  });
});
