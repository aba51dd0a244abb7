import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/printers/clock.js';
import { PrinterTracker, type PrinterTrackerOptions } from '../../src/printers/tracker.js';
import type { JobObservation, JobState, PrinterUpdate } from '../../src/printers/types.js';
import type { EventMetadata, EventType } from '../../src/stats/events.js';

function setup(opts: { printerType?: 'bambu_lab' | 'prusa' } & Partial<PrinterTrackerOptions> = {}) {
  const events: { type: EventType; metadata: EventMetadata }[] = [];
  const clock = new ManualClock();
  const printerType = opts.printerType ?? 'bambu_lab';
  const tracker = new PrinterTracker({
    printerType,
    model: () => (printerType === 'prusa' ? 'MK4S' : 'P1S'),
    connection: printerType === 'prusa' ? 'http' : 'mqtt',
    emit: (type, metadata) => events.push({ type, metadata: metadata as EventMetadata }),
    clock,
    ...opts,
  });
  const send = (...updates: PrinterUpdate[]) => {
    for (const update of updates) tracker.handle(update);
  };
  const feed = (...states: (JobState | JobObservation)[]) => {
    for (const s of states) send({ kind: 'observation', observation: typeof s === 'string' ? { state: s } : s });
  };
  const advance = (seconds: number) => clock.advance(seconds * 1000);
  const types = () => events.map((e) => e.type).filter((t) => t !== 'printer_connected');
  const failures = () => events.filter((e) => e.type === 'job_failed').map((e) => e.metadata.failure_type);
  return { tracker, events, send, feed, advance, types, failures, clock };
}

describe('PrinterTracker: jobs', () => {
  it('treats the first report as a baseline: FINISH at start counts nothing', () => {
    const t = setup();
    t.send({ kind: 'connected' });
    t.feed('finished', 'finished', 'finished');
    expect(t.events.map((e) => e.type)).toEqual(['printer_connected']);
  });

  it('counts a full job with its wall-clock duration when the printer reports no printing time', () => {
    const t = setup();
    t.feed('idle', 'preparing');
    t.advance(30);
    t.feed('printing', 'printing');
    t.advance(90);
    t.feed('finished', 'finished');
    expect(t.types()).toEqual(['job_created', 'job_completed']);
    expect(t.events.at(-1)?.metadata).toEqual({
      printer_type: 'bambu_lab',
      printer_model: 'P1S',
      duration_seconds: 120,
    });
  });

  it('pause and resume do not create a second job', () => {
    const t = setup();
    t.feed('idle', 'printing', 'paused', 'printing', 'paused', 'printing', 'finished');
    expect(t.types()).toEqual(['job_created', 'job_completed']);
  });

  it('a job already running at the baseline is counted when it ends, with the printer’s time or none', () => {
    const t = setup();
    t.feed('printing', 'printing', 'finished');
    expect(t.types()).toEqual(['job_completed']);
    expect(t.events.at(-1)?.metadata.duration_seconds).toBeUndefined();
    const p = setup({ printerType: 'prusa' });
    p.feed({ state: 'printing', jobKey: '5', printingSeconds: 600 }, { state: 'finished' });
    expect(p.events.at(-1)?.metadata.duration_seconds).toBe(600);
  });

  it('repeated FINISH reports after a job are not a second job', () => {
    const t = setup();
    t.feed('idle', 'printing', 'finished', 'finished', 'finished', 'idle', 'finished');
    expect(t.types()).toEqual(['job_created', 'job_completed']);
  });

  it('unknown states change nothing, and never take the baseline', () => {
    const t = setup();
    t.feed('unknown', 'idle', 'printing', 'unknown', 'finished');
    expect(t.types()).toEqual(['job_created', 'job_completed']);
    const u = setup();
    u.feed('unknown', 'printing', 'finished');
    expect(u.types()).toEqual(['job_completed']);
  });

  it('RUNNING straight to IDLE with the link up counts as the policy says (cancelled by default)', () => {
    const t = setup();
    t.feed('idle', 'printing', 'paused', 'idle');
    expect(t.failures()).toEqual(['cancelled']);
  });

  it('a new job id while a job is active ends the previous one as failed', () => {
    const t = setup({ printerType: 'prusa' });
    t.feed({ state: 'idle' }, { state: 'printing', jobKey: '1' }, { state: 'printing', jobKey: '2' });
    expect(t.types()).toEqual(['job_created', 'job_failed', 'job_created']);
    expect(t.failures()).toEqual(['failed']);
  });

  it('uses the printer-reported printing time, the last one seen when the end carries none', () => {
    const t = setup({ printerType: 'prusa' });
    t.feed('idle', { state: 'printing', jobKey: '7' }, { state: 'finished', printingSeconds: 4321.4 });
    expect(t.events.at(-1)?.metadata.duration_seconds).toBe(4321);
    t.feed({ state: 'printing', jobKey: '8', printingSeconds: 10 }, { state: 'printing', printingSeconds: 700 });
    t.advance(3600);
    t.feed('cancelled');
    expect(t.events.at(-1)?.metadata).toMatchObject({ failure_type: 'cancelled', duration_seconds: 700 });
  });

  it('maps cancelled and error terminal states', () => {
    const t = setup({ printerType: 'prusa' });
    t.feed('idle', 'printing', 'cancelled', 'printing', 'error');
    expect(t.failures()).toEqual(['cancelled', 'error']);
  });

  it('never counts a system job (calibration), and its end is not mistaken for a user job', () => {
    const t = setup();
    t.feed('idle', { state: 'printing', systemJob: true }, 'finished', 'idle', 'printing', 'failed');
    t.advance(20);
    expect(t.types()).toEqual(['job_created', 'job_failed']);
  });
});

describe('PrinterTracker: cancel after FAILED', () => {
  it('FAILED then the cancel code seconds later is one cancelled job (P2S, H2S order)', () => {
    const t = setup({ cancelGraceMs: 15_000 });
    t.feed('idle', 'printing', 'paused');
    t.advance(20);
    t.feed('failed', 'failed');
    t.advance(4.6);
    expect(t.types()).toEqual(['job_created']);
    t.feed({ state: 'failed', cancelSeen: true }, { state: 'failed', cancelSeen: true });
    t.advance(60);
    expect(t.types()).toEqual(['job_created', 'job_failed']);
    expect(t.events.at(-1)?.metadata).toEqual({
      printer_type: 'bambu_lab',
      printer_model: 'P1S',
      failure_type: 'cancelled',
      duration_seconds: 20,
    });
  });

  it('the cancel code first (A1), even twice, then FAILED: one cancelled job, no wait', () => {
    const t = setup({ cancelGraceMs: 15_000 });
    t.feed('idle', 'printing', { state: 'printing', cancelSeen: true }, { state: 'printing', cancelSeen: true });
    t.feed('failed');
    expect(t.failures()).toEqual(['cancelled']);
    t.feed({ state: 'failed', cancelSeen: true });
    t.advance(60);
    expect(t.failures()).toEqual(['cancelled']);
  });

  it('FAILED with no code within the grace is failed, and a late code changes nothing', () => {
    const t = setup({ cancelGraceMs: 15_000 });
    t.feed('idle', 'printing', 'failed');
    t.advance(14.9);
    expect(t.failures()).toEqual([]);
    t.advance(0.2);
    expect(t.failures()).toEqual(['failed']);
    t.feed({ state: 'failed', cancelSeen: true });
    expect(t.failures()).toEqual(['failed']);
  });

  it('a new job within the grace ends the held one first, once', () => {
    const t = setup({ cancelGraceMs: 15_000 });
    t.feed('idle', 'printing', 'failed', 'printing');
    t.advance(30);
    expect(t.types()).toEqual(['job_created', 'job_failed', 'job_created']);
    expect(t.failures()).toEqual(['failed']);
  });

  it('flush() ends a held job at once (daemon stopping)', () => {
    const t = setup({ cancelGraceMs: 15_000 });
    t.feed('idle', 'printing', 'failed');
    t.tracker.flush();
    expect(t.failures()).toEqual(['failed']);
    t.advance(30);
    expect(t.failures()).toEqual(['failed']);
    expect(t.clock.pendingTimers).toBe(0);
  });
});

describe('PrinterTracker: connection and outages', () => {
  it('emits one disconnect and one connect per outage, with connected seconds', () => {
    const t = setup();
    t.send({ kind: 'connected' });
    t.feed('idle');
    t.advance(42);
    t.send(
      { kind: 'disconnected', reason: 'timeout' },
      { kind: 'disconnected', reason: 'timeout' },
      { kind: 'disconnected', reason: 'closed' },
      { kind: 'connected' },
      { kind: 'connected' },
    );
    t.feed('idle', 'idle');
    expect(t.events.map((e) => e.type)).toEqual(['printer_connected', 'printer_disconnected', 'printer_connected']);
    expect(t.events[1]?.metadata).toMatchObject({ reason: 'timeout', connected_seconds: 42 });
  });

  it('a job that finished during an outage is counted once after reconnecting, without the outage’s time', () => {
    const t = setup();
    t.feed('idle', 'printing');
    t.advance(100);
    t.send({ kind: 'disconnected', reason: 'network' });
    t.advance(1000);
    t.send({ kind: 'connected' });
    t.advance(5);
    t.feed('finished', 'finished');
    expect(t.types()).toEqual(['job_created', 'printer_disconnected', 'job_completed']);
    expect(t.events.at(-1)?.metadata.duration_seconds).toBe(105);
  });

  it('a job that comes back IDLE after an outage was lost to a fault: error, with the last printing time', () => {
    const t = setup({ printerType: 'prusa' });
    t.feed('idle', { state: 'printing', jobKey: '3', printingSeconds: 1200 });
    t.send({ kind: 'disconnected', reason: 'timeout' });
    t.advance(600);
    t.feed('idle');
    expect(t.events.at(-1)).toMatchObject({
      type: 'job_failed',
      metadata: { failure_type: 'error', duration_seconds: 1200 },
    });
  });

  it('counts a fault once per outage, and again in the next outage', () => {
    const t = setup({ printerType: 'prusa' });
    const fault: PrinterUpdate = { kind: 'fault', errorType: 'auth_failed', scope: 'outage' };
    t.send(fault, fault, fault);
    t.feed('idle');
    t.send(fault, fault);
    const errors = t.events.filter((e) => e.type === 'error_occurred');
    expect(errors).toHaveLength(2);
    expect(errors[0]?.metadata).toEqual({ error_type: 'auth_failed', component: 'prusalink', printer_type: 'prusa' });
  });

  it('counts a connection-scoped fault once per connection, even between good reports', () => {
    const t = setup();
    const fault: PrinterUpdate = { kind: 'fault', errorType: 'report_unparseable', scope: 'connection' };
    t.feed('idle');
    t.send(fault);
    t.feed('idle');
    t.send(fault);
    expect(t.events.filter((e) => e.type === 'error_occurred')).toHaveLength(1);
    t.send({ kind: 'disconnected', reason: 'closed' }, { kind: 'connected' }, fault);
    expect(t.events.filter((e) => e.type === 'error_occurred')).toHaveLength(2);
  });
});

describe('PrinterTracker: errors and files', () => {
  it('counts an error slug once while the printer shows it, across jobs, and again after it cleared', () => {
    const t = setup();
    const hms = ['hms_0300_0100'];
    t.feed('idle', { state: 'printing', errorSlugs: hms }, { state: 'printing', errorSlugs: hms });
    t.feed({ state: 'finished', errorSlugs: hms }, { state: 'printing', errorSlugs: hms });
    expect(t.events.filter((e) => e.type === 'error_occurred')).toHaveLength(1);
    t.feed({ state: 'printing', errorSlugs: [] }, { state: 'printing', errorSlugs: hms });
    const errors = t.events.filter((e) => e.type === 'error_occurred');
    expect(errors).toHaveLength(2);
    expect(errors[0]?.metadata).toEqual({
      error_type: 'hms_0300_0100',
      component: 'bambu_mqtt',
      printer_type: 'bambu_lab',
    });
  });

  it('errors already on the printer at the baseline are known, not new', () => {
    const t = setup();
    t.feed({ state: 'idle', errorSlugs: ['hms_0500_0600'] }, { state: 'printing', errorSlugs: ['hms_0500_0600'] });
    expect(t.events.filter((e) => e.type === 'error_occurred')).toHaveLength(0);
    t.feed({ state: 'printing', errorSlugs: ['hms_0500_0600', 'print_error_0500_803c'] });
    expect(t.events.filter((e) => e.type === 'error_occurred').map((e) => e.metadata.error_type)).toEqual([
      'print_error_0500_803c',
    ]);
  });

  it('a report that says nothing about errors clears nothing', () => {
    const t = setup();
    t.feed('idle', { state: 'printing', errorSlugs: ['hms_0300_0100'] }, 'printing', {
      state: 'printing',
      errorSlugs: ['hms_0300_0100'],
    });
    expect(t.events.filter((e) => e.type === 'error_occurred')).toHaveLength(1);
  });

  it('records an uploaded file with its type and a valid size only', () => {
    const t = setup({ printerType: 'prusa' });
    t.send(
      { kind: 'file_uploaded', fileType: 'bgcode', sizeBytes: 123_456.4 },
      { kind: 'file_uploaded', fileType: 'gcode', sizeBytes: Number.NaN },
      { kind: 'file_uploaded', fileType: '3mf' },
    );
    expect(t.events.map((e) => e.metadata)).toEqual([
      { printer_type: 'prusa', file_type: 'bgcode', size_bytes: 123_456 },
      { printer_type: 'prusa', file_type: 'gcode' },
      { printer_type: 'prusa', file_type: '3mf' },
    ]);
  });
});
