import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  filesListingSchema,
  jobFile,
  jobSchema,
  listedFiles,
  mapPrinterState,
  modelFromVersion,
  parseBody,
  stateWord,
  statusSchema,
  toJobObservation,
  versionSchema,
  writableStorages,
} from '../../../src/printers/prusalink/status.js';

const here = dirname(fileURLToPath(import.meta.url));
const examples = JSON.parse(readFileSync(resolve(here, '../../fixtures/prusalink/examples.json'), 'utf8')) as Record<
  string,
  unknown
>;
const fixture = (name: string) => JSON.stringify(examples[name]);

function parsed<T>(schema: Parameters<typeof parseBody<T>>[0], body: string): T {
  const r = parseBody(schema, body);
  if (!r.ok) throw new Error('did not parse');
  return r.value;
}

describe('status from the fixtures', () => {
  it('maps an idle Buddy status to an idle observation without a job', () => {
    const status = parsed(statusSchema, fixture('buddy_status_idle'));
    expect(toJobObservation(status)).toEqual({ state: 'idle', jobKey: null, printingSeconds: null });
    expect(writableStorages(status)).toEqual(['usb']);
  });

  it('maps a printing Buddy status with job id and printing time', () => {
    const status = parsed(statusSchema, fixture('buddy_status_printing'));
    expect(toJobObservation(status)).toEqual({ state: 'printing', jobKey: '129', printingSeconds: 43987 });
    expect(status.job?.progress).toBe(37);
    expect(status.job?.time_remaining).toBe(73020);
  });

  it('reads the job file from /api/v1/job without a type from the 8.3 name', () => {
    const job = parsed(jobSchema, fixture('buddy_job_printing'));
    expect(job.id).toBe(129);
    expect(jobFile(job)).toEqual({ key: '/usb/tabletstand3~4.bgc', typeName: 'TabletStand3.bgcode', size: 754535 });
  });

  it('takes the model from /api/version, preferring the Connect type code', () => {
    expect(modelFromVersion(parsed(versionSchema, fixture('buddy_version_6_5_3')))).toBe('CORE One');
    // 6.4.0 has no `printer` field: the factory hostname is the only hint.
    expect(modelFromVersion(parsed(versionSchema, fixture('buddy_version_6_4_0')))).toBe('MK4');
    expect(modelFromVersion({ api: '2.0.0', original: 'PrusaLink I3MK3S', hostname: 'prusa-mini' })).toBe('MK3S');
    expect(modelFromVersion({ api: '0.9.0-legacy', original: 'PrusaLink I3MK25S' })).toBe('MK2.5');
    expect(modelFromVersion({ api: '2.0.0', printer: '1.4.1' })).toBe('MK4S');
    expect(modelFromVersion({ api: '2.0.0', printer: '3.1.0' })).toBe('XL');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'PrusaXL' })).toBe('XL');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'prusa-core-one-l' })).toBe('CORE One L');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'prusa-mk3-9' })).toBe('MK3.9');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'garage' })).toBe('other');
    expect(modelFromVersion({ api: '2.0.0', printer: '9.9.9' })).toBe('other');
  });

  it('treats every version field but api as optional, and wrong types as absent', () => {
    expect(parseBody(versionSchema, '{"api":"2.0.0"}').ok).toBe(true);
    expect(parseBody(versionSchema, '{"api":"2.0.0","hostname":42,"printer":null}')).toEqual({
      ok: true,
      value: { api: '2.0.0' },
    });
    expect(parseBody(versionSchema, '{"server":"2.1.2"}').ok).toBe(false);
  });
});

describe('states', () => {
  it('maps every documented state, and anything else to unknown', () => {
    const table: Record<string, string> = {
      IDLE: 'idle',
      READY: 'idle',
      BUSY: 'unknown',
      UNKNOWN: 'unknown',
      PRINTING: 'printing',
      PAUSED: 'paused',
      ATTENTION: 'paused',
      FINISHED: 'finished',
      STOPPED: 'cancelled',
      ERROR: 'error',
      PREPARED: 'unknown',
      '': 'unknown',
      CALIBRATING: 'unknown',
    };
    for (const [word, state] of Object.entries(table)) expect(mapPrinterState(word), word).toBe(state);
  });

  it('keeps only state-like words for the snapshot', () => {
    expect(stateWord('printing')).toBe('PRINTING');
    expect(stateWord('<script>')).toBe('UNKNOWN');
    expect(stateWord('x'.repeat(100))).toBe('UNKNOWN');
  });

  it('has no job key in FINISHED and STOPPED (the tracker keeps the last one)', () => {
    const finished = parsed(statusSchema, '{"storage":{"path":"/usb/"},"printer":{"state":"FINISHED"}}');
    expect(toJobObservation(finished)).toEqual({ state: 'finished', jobKey: null, printingSeconds: null });
  });
});

describe('bad bodies', () => {
  it('refuses HTML, truncated JSON and status without printer.state', () => {
    expect(parseBody(statusSchema, '<!DOCTYPE html><html></html>').ok).toBe(false);
    expect(parseBody(statusSchema, '{"printer":{"state":"PRI').ok).toBe(false);
    expect(parseBody(statusSchema, '{"printer":{}}').ok).toBe(false);
    expect(parseBody(statusSchema, 'null').ok).toBe(false);
    expect(parseBody(statusSchema, '').ok).toBe(false);
  });

  it('drops an odd job or storage instead of failing the whole status', () => {
    const s = parsed(statusSchema, '{"job":{"id":"x"},"storage":7,"printer":{"state":"PRINTING"}}');
    expect(s.job).toBeUndefined();
    expect(writableStorages(s)).toEqual([]);
    const t = parsed(statusSchema, '{"job":{"id":5,"progress":"a","time_printing":-3},"printer":{"state":"PRINTING"}}');
    expect(toJobObservation(t)).toEqual({ state: 'printing', jobKey: '5', printingSeconds: null });
  });
});

describe('storages and listings', () => {
  it('lists writable storages of both shapes', () => {
    const rpi = parsed(
      statusSchema,
      JSON.stringify({
        storage: [
          { path: '/local', read_only: false, name: 'PrusaLink gcodes' },
          { path: '/sdcard', read_only: true, name: 'SD Card' },
        ],
        printer: { state: 'IDLE' },
      }),
    );
    expect(writableStorages(rpi)).toEqual(['local']);
    const odd = parsed(statusSchema, '{"storage":{"path":"/../etc/","name":"x"},"printer":{"state":"IDLE"}}');
    expect(writableStorages(odd)).toEqual([]);
  });

  it('lists print files, skipping folders and broken entries', () => {
    const listing = parsed(
      filesListingSchema,
      JSON.stringify({
        type: 'FOLDER',
        name: 'usb',
        children: [
          { name: 'TABLET~1.BGC', display_name: 'TabletStand3.bgcode', type: 'PRINT_FILE', size: 754535 },
          { name: 'PARTS', display_name: 'parts', type: 'FOLDER' },
          { display_name: 'no name' },
          'junk',
          { name: 'OLD.GCO', type: 'PRINT_FILE' },
        ],
      }),
    );
    expect(listedFiles('usb', listing)).toEqual([
      { key: '/usb/tablet~1.bgc', typeName: 'TabletStand3.bgcode', size: 754535 },
      { key: '/usb/old.gco', typeName: 'OLD.GCO', size: null },
    ]);
  });
});
