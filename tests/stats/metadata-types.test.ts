/**
 * Event metadata is typed per event type from the allow-list: these calls must not compile. `npm test` runs tsc over
 * the tests, so a `@ts-expect-error` that stops being an error (the typing got looser) fails the build.
 */
import { describe, expect, it } from 'vitest';
import type { EventSink } from '../../src/printers/types.js';
import type { MetadataFor } from '../../src/stats/events.js';

function misuses(emit: EventSink): void {
  // @ts-expect-error a misspelt key
  emit('job_failed', { printer_type: 'prusa', failure_typ: 'cancelled' });
  // @ts-expect-error a value outside the enum
  emit('job_failed', { printer_type: 'prusa', failure_type: 'oops' });
  // @ts-expect-error a key another event type allows, not this one
  emit('job_created', { printer_type: 'prusa', duration_seconds: 5 });
  // @ts-expect-error free text where a number belongs
  emit('job_completed', { duration_seconds: '5 minutes' });
  // @ts-expect-error a file name is no metadata
  emit('file_uploaded', { printer_type: 'bambu_lab', file_type: '3mf', file_name: 'benchy.3mf' });
}

describe('typed event metadata', () => {
  it('accepts allow-listed keys with their value types', () => {
    const recorded: unknown[] = [];
    const emit: EventSink = (type, metadata) => {
      recorded.push([type, metadata]);
    };
    const failed: MetadataFor<'job_failed'> = { printer_type: 'prusa', printer_model: 'MK4S', failure_type: 'error' };
    emit('job_failed', failed);
    expect(recorded).toEqual([['job_failed', failed]]);
    expect(typeof misuses).toBe('function');
  });
});
