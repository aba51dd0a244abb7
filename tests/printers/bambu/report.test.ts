import { describe, expect, it } from 'vitest';
import {
  BambuReportState,
  CANCEL_MC_ERROR_CODE,
  CANCEL_PRINT_ERROR,
  hmsSlug,
  jobStateOf,
  type ParsedReport,
  parseReport,
  printErrorSlug,
  projectFileType,
  snapshotProgress,
  snapshotRemainingMinutes,
  snapshotState,
} from '../../../src/printers/bambu/report.js';
import { ManualClock } from '../../../src/printers/clock.js';
import { PrinterTracker } from '../../../src/printers/tracker.js';
import type { EventMetadata, EventType } from '../../../src/stats/events.js';
import { delta, type FixtureName, fixturePrint, fullReport, realDeltas, versionReply } from './helpers.js';

function status(payload: string): Extract<ParsedReport, { kind: 'status' }> {
  const parsed = parseReport(payload);
  if (parsed.kind !== 'status') throw new Error(`expected a status report, got ${parsed.kind}`);
  return parsed;
}

describe('parseReport on the real fixtures', () => {
  it.each([
    ['x1c', 'FINISH', 100, 'task:702383065'],
    ['p1pFinish', 'FINISH', 100, 'task:715417865'],
    ['p1pFailed', 'FAILED', 0, null],
    ['a1', 'IDLE', 0, null],
  ] as const)('%s: full report in %s', (name, gcodeState, percent, _key) => {
    const report = status(fullReport(name as FixtureName));
    expect(report.full).toBe(true);
    expect(report.fields.gcode_state).toBe(gcodeState);
    expect(report.fields.mc_percent).toBe(percent);
    expect(report.fields.print_error).toBe(0);
    expect(report.fields.hms).toEqual([]);
    // Names are never read.
    expect(JSON.stringify(report.fields)).not.toMatch(/subtask_name|gcode_file"|Garden|sensor_alt|Fidget/);
  });

  it.each([
    ['p2s', true],
    ['h2s', true],
    ['h2c', true],
    ['x2d', true],
    ['a2l', true],
    // The H2D's full report has no `msg`; its size says what it is.
    ['h2d', true],
  ] as const)('%s: the full report is full', (name, full) => {
    expect(status(fullReport(name)).full).toBe(full);
  });

  it('a delta without msg (the bare cancel code, a probe-trimmed capture) is no full report', () => {
    expect(status(JSON.stringify({ print: { print_error: CANCEL_PRINT_ERROR } })).full).toBe(false);
    expect(status(JSON.stringify({ print: { command: 'push_status', gcode_state: 'RUNNING' } })).full).toBe(false);
  });

  it('turns string numbers into numbers (gcode_file_prepare_percent "100")', () => {
    expect(status(fullReport('p1pFinish')).fields.gcode_file_prepare_percent).toBe(100);
    expect(status(fullReport('p1pFailed')).fields.mc_remaining_time).toBe(759);
  });

  it('reads the real deltas as msg 1 reports with only their keys', () => {
    const [first, , third, pause] = realDeltas().map(status);
    expect(first?.full).toBe(false);
    expect(first?.fields.gcode_state).toBeUndefined();
    expect(third?.fields).toMatchObject({ msg: 1 });
    expect(pause?.fields).toMatchObject({ gcode_state: 'PAUSE', print_error: 50364437 });
  });

  it.each([
    ['x1c', 'X1C'],
    ['p1pFinish', 'P1P'],
    ['p1pFailed', 'P1P'],
    ['a1', 'A1'],
    ['p2s', 'P2S'],
    ['h2s', 'H2S'],
    ['h2d', 'H2D'],
    ['h2c', 'H2C'],
    ['x2d', 'X2D'],
    ['a2l', 'A2L'],
  ] as const)('%s: get_version names the model %s', (name, model) => {
    expect(parseReport(versionReply(name))).toEqual({ kind: 'version', model });
  });

  it('treats command acks as acks, not state', () => {
    const ack = parseReport(
      JSON.stringify({ print: { command: 'pause', sequence_id: '7', param: '', result: 'SUCCESS', reason: '' } }),
    );
    expect(ack).toEqual({ kind: 'ack', command: 'pause', sequenceId: '7', success: true, fileType: null });
    const refused = parseReport(JSON.stringify({ print: { command: 'stop', sequence_id: 8, result: 'failed' } }));
    expect(refused).toMatchObject({ kind: 'ack', success: false, sequenceId: '8' });
  });

  it('reads the bare cancel payload {"print":{"print_error":50348044}} as state', () => {
    const report = status(JSON.stringify({ print: { print_error: CANCEL_PRINT_ERROR } }));
    expect(report.full).toBe(false);
    expect(report.fields.print_error).toBe(CANCEL_PRINT_ERROR);
  });

  it('ignores envelopes it has no use for', () => {
    expect(parseReport('{"system":{"command":"ledctrl","result":"success"}}')).toEqual({ kind: 'other' });
    expect(parseReport('{"event":{"event":"client.connected"}}')).toEqual({ kind: 'other' });
    expect(parseReport('{"info":{"command":"other"}}')).toEqual({ kind: 'other' });
  });
});

describe('parseReport on bad input', () => {
  it.each([
    ['non-JSON', 'not json {', 'not_json'],
    ['truncated JSON', fullReport('x1c').slice(0, 500), 'not_json'],
    ['an array', '[{"print":{}}]', 'not_an_object'],
    ['a string', '"print"', 'not_an_object'],
    ['a number', '42', 'not_an_object'],
    ['null', 'null', 'not_an_object'],
    ['print: null', '{"print":null}', 'bad_print'],
    ['print: array', '{"print":[1,2]}', 'bad_print'],
    ['print: string', '{"print":"push_status"}', 'bad_print'],
    ['a numeric command', '{"print":{"command":5}}', 'bad_print'],
    ['info: null', '{"info":null}', 'bad_info'],
    ['get_version without modules', '{"info":{"command":"get_version","module":"ota"}}', 'bad_info'],
  ])('%s is malformed', (_label, payload, reason) => {
    expect(parseReport(payload)).toEqual({ kind: 'malformed', reason });
  });

  it('refuses a 2 MB payload without parsing it', () => {
    const big = JSON.stringify({ print: { command: 'push_status', msg: 0, padding: 'x'.repeat(2 * 1024 * 1024) } });
    expect(parseReport(big)).toEqual({ kind: 'malformed', reason: 'oversized' });
    expect(parseReport(Buffer.from(big))).toEqual({ kind: 'malformed', reason: 'oversized' });
  });

  it('drops only the fields of the wrong type', () => {
    const report = status(
      delta({
        gcode_state: 'RUNNING',
        mc_percent: 'fifty',
        mc_remaining_time: '12',
        layer_num: { n: 3 },
        print_error: '0',
        task_id: 12345,
        hms: 'none',
      }),
    );
    expect(report.fields).toMatchObject({
      gcode_state: 'RUNNING',
      mc_remaining_time: 12,
      print_error: 0,
      task_id: '12345',
    });
    expect(report.fields.mc_percent).toBeUndefined();
    expect(report.fields.layer_num).toBeUndefined();
    expect(report.fields.hms).toBeUndefined();
  });

  it('keeps the valid HMS entries of a list with broken ones', () => {
    const report = status(delta({ hms: [{ attr: 50331904, code: 65543 }, null, { attr: 'x' }, 7] }));
    expect(report.fields.hms).toEqual([{ attr: 50331904, code: 65543 }]);
  });
});

describe('slugs and small mappings', () => {
  it('names HMS entries by module/category and print errors by their 8 hex digits', () => {
    expect(hmsSlug({ attr: 50331904, code: 65543 })).toBe('hms_0300_0100');
    expect(hmsSlug({ attr: 0x0c00_8001, code: 1 })).toBe('hms_0c00_8001');
    expect(printErrorSlug(50364437)).toBe('print_error_0300_8015');
    expect(printErrorSlug(CANCEL_PRINT_ERROR)).toBe('print_error_0300_400c');
  });

  it('maps gcode_state words, anything unknown to unknown', () => {
    expect(['IDLE', 'PREPARE', 'SLICING', 'RUNNING', 'PAUSE', 'FINISH', 'FAILED'].map(jobStateOf)).toEqual([
      'idle',
      'preparing',
      'preparing',
      'printing',
      'paused',
      'finished',
      'failed',
    ]);
    // The printer starting up is not a job (issue 12, Bambu item 5).
    expect(jobStateOf('INIT')).toBe('unknown');
    expect(jobStateOf('')).toBe('unknown');
    expect(jobStateOf('FINISHED')).toBe('unknown');
    expect(jobStateOf('offline')).toBe('unknown');
    expect(jobStateOf(undefined)).toBe('unknown');
    expect(jobStateOf('running')).toBe('printing');
  });

  it('gives the snapshot plain values only', () => {
    expect(snapshotState({ gcode_state: 'RUNNING' })).toBe('RUNNING');
    expect(snapshotState({ gcode_state: '' })).toBe('UNKNOWN');
    expect(snapshotState({ gcode_state: '<script>' })).toBe('UNKNOWN');
    expect(snapshotState({})).toBeNull();
    expect(snapshotProgress({ mc_percent: 140 })).toBe(100);
    expect(snapshotRemainingMinutes({ mc_remaining_time: -1 })).toBeNull();
  });

  it('types project_file uploads from url, file or plate', () => {
    expect(projectFileType({ url: 'file:///sdcard/Part.3mf', param: 'Metadata/plate_1.gcode' })).toBe('3mf');
    expect(projectFileType({ url: 'ftp:///cube.gcode' })).toBe('gcode');
    expect(projectFileType({ url: 'file:///mnt/sdcard', param: 'Metadata/plate_2.gcode' })).toBe('3mf');
    expect(projectFileType({ url: '', param: 'benchy.gcode' })).toBe('gcode');
    expect(projectFileType({})).toBe('3mf');
  });
});

describe('BambuReportState merge', () => {
  it('merges deltas field by field and never resets missing fields', () => {
    const state = new BambuReportState();
    state.apply(status(fullReport('p1pFinish')).fields);
    for (const payload of realDeltas().slice(0, 3)) state.apply(status(payload).fields);
    expect(state.fields).toMatchObject({ gcode_state: 'FINISH', mc_percent: 100, task_id: '715417865' });
    state.apply(status(realDeltas()[3] as string).fields);
    expect(state.fields.gcode_state).toBe('PAUSE');
    expect(state.fields.mc_percent).toBe(100);
  });

  it('does not let an ack change state', () => {
    const state = new BambuReportState();
    state.apply(status(fullReport('a1')).fields);
    const ack = parseReport(JSON.stringify({ print: { command: 'project_file', gcode_state: 'RUNNING' } }));
    expect(ack.kind).toBe('ack');
    expect(state.fields.gcode_state).toBe('IDLE');
  });

  it('reports errors from HMS and print_error, but not the cancel code', () => {
    const state = new BambuReportState();
    const obs = state.apply(status(delta({ gcode_state: 'RUNNING', hms: [{ attr: 50331904, code: 65543 }] })).fields);
    expect(obs.errorSlugs).toEqual(['hms_0300_0100']);
    const paused = state.apply(status(realDeltas()[3] as string).fields);
    expect(paused).toMatchObject({ state: 'paused', cancelSeen: false });
    expect(paused.errorSlugs).toEqual(['hms_0300_0100', 'print_error_0300_8015']);
    const cancel = state.apply(status(JSON.stringify({ print: { print_error: CANCEL_PRINT_ERROR } })).fields);
    expect(cancel.cancelSeen).toBe(true);
    expect(cancel.errorSlugs).toEqual(['hms_0300_0100']);
    // The code stays in the merged state for a moment, but only the report that carried it is a cancel.
    expect(state.apply(status(delta({ bed_temper: 30 })).fields).cancelSeen).toBe(false);
  });

  it('sees the cancel code in fail_reason only in a FAILED report, and not when the job already showed it', () => {
    const state = new BambuReportState();
    expect(state.apply(status(delta({ gcode_state: 'RUNNING', fail_reason: '0' })).fields).cancelSeen).toBe(false);
    expect(state.apply(status(delta({ fail_reason: '50348044' })).fields).cancelSeen).toBe(false);
    const fresh = new BambuReportState();
    fresh.apply(status(delta({ gcode_state: 'RUNNING', fail_reason: '0' })).fields);
    expect(fresh.apply(status(delta({ gcode_state: 'FAILED', fail_reason: '50348044' })).fields).cancelSeen).toBe(true);
    // The real H2C report keeps it: a new job that shows it from the start did not inherit a cancel.
    const h2c = new BambuReportState();
    expect(h2c.apply(status(fullReport('h2c')).fields).cancelSeen).toBe(true);
    expect(h2c.apply(status(fullReport('h2c', { gcode_state: 'RUNNING' })).fields).cancelSeen).toBe(false);
    expect(h2c.apply(status(fullReport('h2c', { gcode_state: 'FAILED' })).fields).cancelSeen).toBe(false);
    // Cleared while the next job ran, then set again at its FAILED: this job's cancel.
    h2c.apply(status(fullReport('h2c', { gcode_state: 'PREPARE' })).fields);
    h2c.apply(status(fullReport('h2c', { gcode_state: 'RUNNING', fail_reason: '0' })).fields);
    expect(h2c.apply(status(fullReport('h2c', { gcode_state: 'FAILED' })).fields).cancelSeen).toBe(true);
  });

  it('sees mc_print_error_code "16396" (P2S) as the cancel when it appears', () => {
    const state = new BambuReportState();
    state.apply(status(delta({ gcode_state: 'FAILED', mc_print_error_code: '0' })).fields);
    expect(state.apply(status(delta({ mc_print_error_code: CANCEL_MC_ERROR_CODE })).fields).cancelSeen).toBe(true);
    expect(state.apply(status(delta({ mc_print_error_code: CANCEL_MC_ERROR_CODE })).fields).cancelSeen).toBe(false);
  });

  it('marks print_type "system" jobs, and counts job starts', () => {
    const state = new BambuReportState();
    expect(state.apply(status(fullReport('a1')).fields)).toMatchObject({ state: 'idle', systemJob: false });
    expect(state.jobStarts).toBe(0);
    const cali = state.apply(status(delta({ gcode_state: 'RUNNING', print_type: 'system' })).fields);
    expect(cali).toMatchObject({ state: 'printing', systemJob: true });
    state.apply(status(delta({ gcode_state: 'FINISH', print_type: 'idle' })).fields);
    expect(state.apply(status(delta({ gcode_state: 'PREPARE', print_type: 'local' })).fields).systemJob).toBe(false);
    state.apply(status(delta({ gcode_state: 'PAUSE' })).fields);
    expect(state.jobStarts).toBe(2);
  });

  it('does not name a new job with the ids left over from the previous one', () => {
    const state = new BambuReportState();
    expect(state.apply(status(fullReport('p1pFinish')).fields)).toMatchObject({ state: 'finished', jobKey: null });
    // The first deltas of the next job still carry the old task id.
    expect(state.apply(status(delta({ gcode_state: 'PREPARE' })).fields)).toMatchObject({ jobKey: null });
    expect(state.apply(status(delta({ task_id: '800000001', subtask_id: '800000002' })).fields)).toMatchObject({
      state: 'preparing',
      jobKey: 'task:800000001',
    });
    expect(state.apply(status(delta({ gcode_state: 'RUNNING' })).fields).jobKey).toBe('task:800000001');
  });

  it('names a job from a baseline RUNNING report, and has no key for LAN prints', () => {
    const running = new BambuReportState();
    expect(running.apply(status(fullReport('x1c', { gcode_state: 'RUNNING' })).fields).jobKey).toBe('task:702383065');
    const lan = new BambuReportState();
    expect(lan.apply(status(fullReport('a1', { gcode_state: 'RUNNING' })).fields).jobKey).toBeNull();
  });
});

/** Reports through merge and a real PrinterTracker (Bambu Lab's cancel grace), on a manual clock. */
function pipeline(model: 'X1C' | 'P1P' | 'A1' = 'P1P') {
  const events: { type: EventType; metadata: EventMetadata }[] = [];
  const clock = new ManualClock();
  const tracker = new PrinterTracker({
    printerType: 'bambu_lab',
    model: () => model,
    connection: 'mqtt',
    cancelGraceMs: 15_000,
    emit: (type, metadata) => events.push({ type, metadata: metadata as EventMetadata }),
    clock,
  });
  const state = new BambuReportState();
  tracker.handle({ kind: 'connected' });
  return {
    events,
    feed(...payloads: string[]) {
      for (const p of payloads) tracker.handle({ kind: 'observation', observation: state.apply(status(p).fields) });
    },
    advance(seconds: number) {
      clock.advance(seconds * 1000);
    },
    jobs: () => events.filter((e) => e.type.startsWith('job_')),
  };
}

describe('job sequences built from the fixtures (merge + tracker)', () => {
  it.each(['x1c', 'p1pFinish'] as const)(
    '%s: a printer already in FINISH counts nothing, however often it repeats',
    (name) => {
      const p = pipeline();
      p.feed(fullReport(name), fullReport(name), delta({ bed_temper: 22 }), fullReport(name));
      expect(p.events.map((e) => e.type)).toEqual(['printer_connected']);
    },
  );

  it('P1P: finish, with duration, counted once despite repeated full reports', () => {
    const p = pipeline();
    p.feed(fullReport('p1pFinish'));
    p.feed(delta({ gcode_state: 'PREPARE', gcode_file_prepare_percent: '0', task_id: '900000001' }));
    p.feed(delta({ gcode_file_prepare_percent: '99' }));
    p.advance(60);
    p.feed(delta({ gcode_state: 'RUNNING', mc_percent: 1 }));
    p.advance(3600);
    p.feed(delta({ mc_percent: 100, gcode_state: 'FINISH' }));
    p.feed(fullReport('p1pFinish', { task_id: '900000001' }), fullReport('p1pFinish', { task_id: '900000001' }));
    expect(p.jobs()).toEqual([
      { type: 'job_created', metadata: { printer_type: 'bambu_lab', printer_model: 'P1P' } },
      { type: 'job_completed', metadata: { printer_type: 'bambu_lab', printer_model: 'P1P', duration_seconds: 3660 } },
    ]);
  });

  it('A1: cancel (transient print_error, then FAILED) is a cancelled job', () => {
    const p = pipeline('A1');
    p.feed(fullReport('a1'));
    p.feed(delta({ gcode_state: 'PREPARE' }), delta({ gcode_state: 'RUNNING' }));
    p.feed(JSON.stringify({ print: { print_error: CANCEL_PRINT_ERROR } }));
    p.feed(delta({ gcode_state: 'FAILED' }), delta({ print_error: 0 }));
    expect(p.jobs().map((e) => [e.type, e.metadata.failure_type])).toEqual([
      ['job_created', undefined],
      ['job_failed', 'cancelled'],
    ]);
    expect(p.events.filter((e) => e.type === 'error_occurred')).toEqual([]);
  });

  it('P1P: a failure is failed (after the cancel grace), with its HMS error once', () => {
    const p = pipeline();
    p.feed(fullReport('a1'));
    p.feed(delta({ gcode_state: 'RUNNING' }));
    const hms = { hms: [{ attr: 50331904, code: 65543 }] };
    p.feed(delta(hms), delta({ ...hms, bed_temper: 50 }), delta({ gcode_state: 'FAILED' }));
    p.feed(fullReport('p1pFailed', hms));
    expect(p.jobs().map((e) => e.type)).toEqual(['job_created']);
    p.advance(15);
    expect(p.jobs().map((e) => [e.type, e.metadata.failure_type])).toEqual([
      ['job_created', undefined],
      ['job_failed', 'failed'],
    ]);
    expect(p.events.filter((e) => e.type === 'error_occurred').map((e) => e.metadata.error_type)).toEqual([
      'hms_0300_0100',
    ]);
  });

  it('pause and resume are one job; the runout error counts once', () => {
    const p = pipeline();
    p.feed(fullReport('a1'), delta({ gcode_state: 'RUNNING' }));
    p.feed(realDeltas()[3] as string, realDeltas()[3] as string);
    p.feed(delta({ gcode_state: 'RUNNING', print_error: 0 }), delta({ gcode_state: 'FINISH' }));
    expect(p.jobs().map((e) => e.type)).toEqual(['job_created', 'job_completed']);
    expect(p.events.filter((e) => e.type === 'error_occurred').map((e) => e.metadata.error_type)).toEqual([
      'print_error_0300_8015',
    ]);
  });

  it('RUNNING → IDLE without FINISH is a cancelled job (P1P firmware without FAILED)', () => {
    const p = pipeline();
    p.feed(fullReport('a1'), delta({ gcode_state: 'RUNNING' }), delta({ gcode_state: 'IDLE' }));
    expect(p.jobs().map((e) => [e.type, e.metadata.failure_type])).toEqual([
      ['job_created', undefined],
      ['job_failed', 'cancelled'],
    ]);
  });

  it('X1C: a daemon restarted mid-job still counts the job, without a duration', () => {
    const p = pipeline('X1C');
    p.feed(fullReport('x1c', { gcode_state: 'RUNNING', mc_percent: 40 }));
    p.feed(fullReport('x1c', { gcode_state: 'RUNNING', mc_percent: 41 }), fullReport('x1c'));
    expect(p.jobs()).toEqual([
      { type: 'job_completed', metadata: { printer_type: 'bambu_lab', printer_model: 'X1C' } },
    ]);
  });

  it('unknown and empty gcode_state change nothing', () => {
    const p = pipeline();
    p.feed(fullReport('a1'), delta({ gcode_state: 'RUNNING' }), delta({ gcode_state: '' }));
    p.feed(delta({ gcode_state: 'BANANA' }), delta({ gcode_state: 'FINISH' }));
    expect(p.jobs().map((e) => e.type)).toEqual(['job_created', 'job_completed']);
  });

  it('uses each fixture without throwing whatever the order', () => {
    const p = pipeline();
    const names: FixtureName[] = ['x1c', 'p1pFailed', 'a1', 'p1pFinish', 'x1c'];
    for (const name of names) p.feed(fullReport(name), ...realDeltas());
    expect(fixturePrint('x1c').gcode_state).toBe('FINISH');
  });
});
