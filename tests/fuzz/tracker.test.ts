/**
 * The job tracker under arbitrary sequences of observations, connects and disconnects: it never throws, counts each
 * job once (ended jobs never exceed created ones plus the one job a baseline may find running), pairs connects with
 * disconnects, and every event it emits passes the metadata allow-list untouched.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/printers/clock.js';
import { TRACKING_POLICIES } from '../../src/printers/policies.js';
import { PrinterTracker } from '../../src/printers/tracker.js';
import { JOB_STATES, type JobObservation } from '../../src/printers/types.js';
import { DISCONNECT_REASONS, type EventMetadata, type EventType, sanitizeMetadata } from '../../src/stats/events.js';
import { RUNS } from './arbitraries.js';

type Step =
  | { op: 'observe'; observation: JobObservation }
  | { op: 'connected' }
  | { op: 'disconnected'; reason: (typeof DISCONNECT_REASONS)[number] }
  | { op: 'tick'; ms: number }
  | { op: 'fault'; scope: 'outage' | 'connection' };

const observation: fc.Arbitrary<JobObservation> = fc.record(
  {
    state: fc.constantFrom(...JOB_STATES),
    jobKey: fc.option(fc.constantFrom('1', '2', '3', 'task:9'), { nil: null }),
    printingSeconds: fc.option(
      fc.oneof(fc.integer({ min: -5, max: 400_000 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 0.4)),
      { nil: null },
    ),
    cancelSeen: fc.boolean(),
    errorSlugs: fc.array(fc.constantFrom('hms_0300_0100', 'print_error_0300_8015', 'hms_0700_2000'), { maxLength: 3 }),
    systemJob: fc.boolean(),
  },
  { requiredKeys: ['state'] },
);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: observation.map((o) => ({ op: 'observe' as const, observation: o })) },
  { weight: 1, arbitrary: fc.constant({ op: 'connected' as const }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...DISCONNECT_REASONS).map((reason) => ({ op: 'disconnected' as const, reason })),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 3_600_000 }).map((ms) => ({ op: 'tick' as const, ms })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 20_000 }).map((ms) => ({ op: 'tick' as const, ms })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('outage' as const, 'connection' as const)
      .map((scope) => ({ op: 'fault' as const, scope })),
  },
);

function run(steps: Step[], kind: 'bambu' | 'prusa'): { type: EventType; metadata: EventMetadata }[] {
  const events: { type: EventType; metadata: EventMetadata }[] = [];
  const clock = new ManualClock(1_700_000_000_000);
  const printerType = kind === 'bambu' ? 'bambu_lab' : 'prusa';
  const tracker = new PrinterTracker({
    ...TRACKING_POLICIES[printerType],
    printerType,
    model: () => (kind === 'bambu' ? 'X1C' : 'MK4'),
    emit: (type, metadata) => events.push({ type, metadata: metadata as EventMetadata }),
    clock,
  });
  for (const s of steps) {
    if (s.op === 'observe') tracker.handle({ kind: 'observation', observation: s.observation });
    else if (s.op === 'connected') tracker.handle({ kind: 'connected' });
    else if (s.op === 'disconnected') tracker.handle({ kind: 'disconnected', reason: s.reason });
    else if (s.op === 'fault') tracker.handle({ kind: 'fault', errorType: 'http_error', scope: s.scope });
    else clock.advance(s.ms);
  }
  tracker.flush();
  expect(clock.pendingTimers).toBe(0);
  return events;
}

describe('PrinterTracker (fuzz)', () => {
  it('counts each job once and emits only allow-listed metadata, for any sequence', () => {
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 60 }),
        fc.constantFrom('bambu' as const, 'prusa' as const),
        (steps, kind) => {
          const events = run(steps, kind);
          const count = (t: EventType) => events.filter((e) => e.type === t).length;
          const created = count('job_created');
          const ended = count('job_completed') + count('job_failed');
          // At most one job can be running at the baseline; every other ended job was created first.
          expect(ended).toBeLessThanOrEqual(created + 1);
          expect(created).toBeLessThanOrEqual(ended + 1);
          // Running tally: never more than one job open at a time.
          let open = 0;
          let baselineUsed = false;
          for (const e of events) {
            if (e.type === 'job_created') open++;
            if (e.type === 'job_completed' || e.type === 'job_failed') {
              if (open > 0) open--;
              else {
                expect(baselineUsed, 'a second job ended that was never created').toBe(false);
                baselineUsed = true;
              }
            }
            expect(open).toBeLessThanOrEqual(1);
          }
          const connects = count('printer_connected');
          const disconnects = count('printer_disconnected');
          expect(connects - disconnects === 0 || connects - disconnects === 1).toBe(true);
          for (const e of events) expect(sanitizeMetadata(e.type, e.metadata).dropped, e.type).toEqual([]);
        },
      ),
      { numRuns: RUNS * 3 },
    );
  });

  // Found by the property above: connected() while already online made the next report fire printer_connected again.
  it('regression: connected() twice without a disconnect records one printer_connected', () => {
    const events = run(
      [
        { op: 'observe', observation: { state: 'idle' } },
        { op: 'connected' },
        { op: 'observe', observation: { state: 'idle' } },
      ],
      'bambu',
    );
    expect(events.map((e) => e.type)).toEqual(['printer_connected']);
  });
});
