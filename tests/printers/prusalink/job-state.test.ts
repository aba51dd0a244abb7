/** PrusaLinkJobState from /api/v1/status bodies alone (tests/fixtures/prusalink). */
import { describe, expect, it } from 'vitest';
import { PrusaLinkJobState } from '../../../src/printers/prusalink/job-state.js';
import { parseBody, statusSchema } from '../../../src/printers/prusalink/status.js';
import { edit, fixture } from './replay.js';

const status = (server: 'buddy' | 'prusa-link', name: string, values: Record<string, number> = {}) => {
  const r = parseBody(statusSchema, edit(fixture(server, name), values));
  if (!r.ok) throw new Error(`${name} did not parse`);
  return r.value;
};
const B = (name: string, values?: Record<string, number>) => status('buddy', name, values);

describe('PrusaLinkJobState', () => {
  it('maps a printing status to an observation and the live state', () => {
    const s = new PrusaLinkJobState();
    expect(s.apply(B('status-printing'))).toEqual({
      observation: { state: 'printing', jobKey: '7', printingSeconds: 600 },
      status: { state: 'PRINTING', progress: 33.33, remaining_minutes: 20 },
      // The first status is the baseline: a job already running there is not new.
      newJobId: null,
      lostJobKey: null,
    });
  });

  it('names a job new when it starts after the baseline, and not again while it runs or pauses', () => {
    const s = new PrusaLinkJobState();
    expect(s.apply(B('status-idle')).newJobId).toBeNull();
    expect(s.apply(B('status-printing')).newJobId).toBe('7');
    expect(s.apply(B('status-printing', { time_printing: 700 })).newJobId).toBeNull();
    expect(s.apply(B('status-attention-job')).newJobId).toBeNull();
    expect(s.apply(B('status-printing', { id: 8 })).newJobId).toBe('8');
  });

  it('ATTENTION without a job is no job state at all; with one it is a pause', () => {
    const s = new PrusaLinkJobState();
    s.apply(B('status-idle'));
    expect(s.apply(B('status-attention-idle')).observation).toEqual({
      state: 'unknown',
      jobKey: null,
      printingSeconds: null,
    });
    expect(s.apply(status('prusa-link', 'status-attention-idle')).observation.state).toBe('unknown');
    expect(s.apply(B('status-attention-job')).observation).toMatchObject({ state: 'paused', jobKey: '7' });
  });

  it('an active job, an unanswered poll, then IDLE: lost to a fault (error), not a cancel', () => {
    const s = new PrusaLinkJobState();
    s.apply(B('status-printing'));
    s.noAnswer();
    expect(s.apply(B('status-idle')).observation.state).toBe('error');
    // Once: the next IDLE is just idle.
    expect(s.apply(B('status-idle')).observation.state).toBe('idle');
  });

  it('another job id after an unanswered poll: the one before was lost', () => {
    const s = new PrusaLinkJobState();
    s.apply(B('status-printing'));
    s.noAnswer();
    expect(s.apply(B('status-printing', { id: 8, time_printing: 10 }))).toMatchObject({
      newJobId: '8',
      lostJobKey: '7',
    });
    // Without a gap, a new id is just the next job (the tracker ends the last one).
    expect(s.apply(B('status-printing', { id: 9 }))).toMatchObject({ newJobId: '9', lostJobKey: null });
  });

  it('a gap the job survives (power panic: BUSY, ATTENTION with the job, PRINTING) does not end it', () => {
    const s = new PrusaLinkJobState();
    s.apply(B('status-printing'));
    s.noAnswer();
    expect(s.apply(B('status-busy')).observation.state).toBe('unknown');
    expect(s.apply(B('status-attention-job'))).toMatchObject({
      observation: { state: 'paused', jobKey: '7' },
      newJobId: null,
    });
    // The gap is over: a later IDLE without a gap is not an error.
    expect(s.apply(B('status-idle')).observation.state).toBe('idle');
  });

  it('an unanswered poll while idle changes nothing', () => {
    const s = new PrusaLinkJobState();
    s.apply(B('status-idle'));
    s.noAnswer();
    expect(s.apply(B('status-idle')).observation.state).toBe('idle');
  });

  it('FINISHED and STOPPED carry no job: no key, no time (the tracker keeps the last)', () => {
    const s = new PrusaLinkJobState();
    s.apply(B('status-printing'));
    expect(s.apply(B('status-finished')).observation).toEqual({
      state: 'finished',
      jobKey: null,
      printingSeconds: null,
    });
    expect(s.apply(B('status-stopped')).observation.state).toBe('cancelled');
  });
});
