import { describe, expect, it } from 'vitest';
import { PrinterTracker } from '../../src/printers/tracker.js';
import type { JobObservation, JobState } from '../../src/printers/types.js';
import type { EventMetadata, EventType } from '../../src/stats/events.js';

function setup(opts: { printerType?: 'bambu_lab' | 'prusa' } = {}) {
  const events: { type: EventType; metadata: EventMetadata }[] = [];
  let clock = 1_000_000;
  const tracker = new PrinterTracker({
    printerType: opts.printerType ?? 'bambu_lab',
    model: () => 'P1S',
    connection: opts.printerType === 'prusa' ? 'http' : 'mqtt',
    emit: (type, metadata) => events.push({ type, metadata }),
    now: () => clock,
  });
  const feed = (...states: (JobState | JobObservation)[]) => {
    for (const s of states) tracker.observe(typeof s === 'string' ? { state: s } : s);
  };
  const advance = (seconds: number) => {
    clock += seconds * 1000;
  };
  const types = () => events.map((e) => e.type).filter((t) => t !== 'printer_connected');
  return { tracker, events, feed, advance, types };
}

describe('PrinterTracker', () => {
  it('treats the first report as a baseline: FINISH at start counts nothing', () => {
    const t = setup();
    t.tracker.connected();
    t.feed('finished', 'finished', 'finished');
    expect(t.types()).toEqual([]);
    expect(t.events.map((e) => e.type)).toEqual(['printer_connected']);
  });

  it('counts a full job with its duration', () => {
    const t = setup();
    t.tracker.connected();
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

  it('counts FAILED after the transient cancel code as cancelled, otherwise failed', () => {
    const t = setup();
    t.feed('idle', 'printing', { state: 'printing', cancelSeen: true }, 'printing', 'failed');
    t.feed('printing', 'failed');
    const failed = t.events.filter((e) => e.type === 'job_failed').map((e) => e.metadata.failure_type);
    expect(failed).toEqual(['cancelled', 'failed']);
  });

  it('counts FAILED as cancelled when the cancel code arrives in the same report', () => {
    const t = setup();
    t.feed('idle', 'printing', { state: 'failed', cancelSeen: true });
    expect(t.events.at(-1)).toMatchObject({ type: 'job_failed', metadata: { failure_type: 'cancelled' } });
  });

  it('counts RUNNING to IDLE without FINISH as cancelled', () => {
    const t = setup();
    t.feed('idle', 'printing', 'paused', 'idle');
    expect(t.events.at(-1)).toMatchObject({ type: 'job_failed', metadata: { failure_type: 'cancelled' } });
  });

  it('pause and resume do not create a second job', () => {
    const t = setup();
    t.feed('idle', 'printing', 'paused', 'printing', 'paused', 'printing', 'finished');
    expect(t.types()).toEqual(['job_created', 'job_completed']);
  });

  it('a job already running at the baseline is counted when it ends, with no duration', () => {
    const t = setup();
    t.feed('printing', 'printing', 'finished');
    expect(t.types()).toEqual(['job_completed']);
    expect(t.events.at(-1)?.metadata.duration_seconds).toBeUndefined();
  });

  it('repeated full reports of FINISH after a job are not a second job', () => {
    const t = setup();
    t.feed('idle', 'printing', 'finished', 'finished', 'finished', 'idle', 'finished');
    expect(t.types()).toEqual(['job_created', 'job_completed']);
  });

  it('unknown states change nothing', () => {
    const t = setup();
    t.feed('unknown', 'idle', 'printing', 'unknown', 'finished');
    expect(t.types()).toEqual(['job_created', 'job_completed']);
  });

  it('a new job id while a job is active counts the previous one as failed', () => {
    const t = setup({ printerType: 'prusa' });
    t.feed({ state: 'idle' }, { state: 'printing', jobKey: '1' }, { state: 'printing', jobKey: '2' });
    expect(t.types()).toEqual(['job_created', 'job_failed', 'job_created']);
    expect(t.events[2]?.metadata.failure_type).toBe('failed');
  });

  it('uses the printer-reported printing time when given', () => {
    const t = setup({ printerType: 'prusa' });
    t.feed('idle', { state: 'printing', jobKey: '7' }, { state: 'finished', printingSeconds: 4321.4 });
    expect(t.events.at(-1)?.metadata.duration_seconds).toBe(4321);
  });

  it('maps cancelled and error terminal states', () => {
    const t = setup({ printerType: 'prusa' });
    t.feed('idle', 'printing', 'cancelled', 'printing', 'error');
    expect(t.events.filter((e) => e.type === 'job_failed').map((e) => e.metadata.failure_type)).toEqual([
      'cancelled',
      'error',
    ]);
  });

  it('emits one disconnect and one connect per outage, with connected seconds', () => {
    const t = setup();
    t.tracker.connected();
    t.feed('idle');
    t.advance(42);
    t.tracker.disconnected('timeout');
    t.tracker.disconnected('timeout');
    t.tracker.disconnected('closed');
    t.tracker.connected();
    t.feed('idle', 'idle');
    expect(t.events.map((e) => e.type)).toEqual(['printer_connected', 'printer_disconnected', 'printer_connected']);
    expect(t.events[1]?.metadata).toMatchObject({ reason: 'timeout', connected_seconds: 42 });
  });

  it('a job that finished during an outage is counted once after reconnecting', () => {
    const t = setup();
    t.tracker.connected();
    t.feed('idle', 'printing');
    t.tracker.disconnected('network');
    t.tracker.connected();
    t.feed('finished', 'finished');
    expect(t.types()).toEqual(['job_created', 'printer_disconnected', 'job_completed']);
  });

  it('reports each error slug once per job', () => {
    const t = setup();
    t.feed(
      'idle',
      { state: 'printing', errorSlugs: ['hms_0300_0100'] },
      { state: 'printing', errorSlugs: ['hms_0300_0100'] },
    );
    t.feed('finished', { state: 'printing', errorSlugs: ['hms_0300_0100'] });
    const errors = t.events.filter((e) => e.type === 'error_occurred');
    expect(errors).toHaveLength(2);
    expect(errors[0]?.metadata).toEqual({
      error_type: 'hms_0300_0100',
      component: 'bambu_mqtt',
      printer_type: 'bambu_lab',
    });
  });
});
