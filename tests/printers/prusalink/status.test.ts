import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  filesListingSchema,
  jobSchema,
  mapPrinterState,
  parseBody,
  stateWord,
  statusSchema,
  storageListSchema,
  transferSchema,
  versionSchema,
  writableStorages,
} from '../../../src/printers/prusalink/status.js';
import { fixture } from './replay.js';

const here = dirname(fileURLToPath(import.meta.url));
const examples = JSON.parse(readFileSync(resolve(here, '../../fixtures/prusalink/examples.json'), 'utf8')) as Record<
  string,
  unknown
>;
const example = (name: string) => JSON.stringify(examples[name]);

function parsed<T>(schema: Parameters<typeof parseBody<T>>[0], body: string): T {
  const r = parseBody(schema, body);
  if (!r.ok) throw new Error('did not parse');
  return r.value;
}

describe('bodies as the servers send them', () => {
  it('reads the Home Assistant examples (Buddy 5.1)', () => {
    const status = parsed(statusSchema, example('buddy_status_printing'));
    expect(status.job).toEqual({ id: 129, progress: 37, time_remaining: 73020, time_printing: 43987 });
    expect(writableStorages(status)).toEqual(['usb']);
    const job = parsed(jobSchema, example('buddy_job_printing'));
    expect(job.file).toMatchObject({ name: 'TabletStand3~4.BGC', path: '/usb', size: 754535 });
    expect(parsed(versionSchema, example('buddy_version_6_5_3')).printer).toBe('7.1.0');
  });

  it('reads Buddy’s transfer in the status (`transferred`) and Prusa-Link’s (`data_transferred`)', () => {
    expect(parsed(statusSchema, fixture('buddy', 'status-idle-transfer')).transfer).toEqual({
      id: 3,
      time_transferring: 12,
      progress: 45,
      transferred: 1055555,
    });
    expect(parsed(statusSchema, fixture('prusa-link', 'status-idle-transfer')).transfer).toEqual({
      id: 5,
      time_transferring: 3,
      progress: 40,
      data_transferred: 4800,
    });
  });

  it('reads the size of a Buddy transfer, which the firmware renders as a string', () => {
    expect(parsed(transferSchema, fixture('buddy', 'transfer'))).toMatchObject({
      display_name: 'Slicer upload.bgcode',
      path: '/usb',
      size: 2345678,
    });
    expect(parsed(transferSchema, fixture('prusa-link', 'transfer'))).toMatchObject({ path: '/local', size: 12000 });
  });

  it('reads Prusa-Link’s job path as it is: the whole path under the display name', () => {
    const job = parsed(jobSchema, fixture('prusa-link', 'job-local'));
    expect(job.file).toMatchObject({
      name: 'Benchy.gcode',
      path: '/PrusaLink gcodes/Benchy.gcode',
      display_path: '/PrusaLink gcodes/Benchy.gcode',
    });
  });

  it('reads /api/v1/storage with and without a USB stick', () => {
    expect(parsed(storageListSchema, fixture('buddy', 'storage-no-usb')).storage_list).toEqual([
      { path: '/usb/', name: 'usb', read_only: false, available: false },
    ]);
    expect(parsed(storageListSchema, fixture('prusa-link', 'storage')).storage_list).toHaveLength(2);
  });

  it('treats every version field but api as optional, and wrong types (Prusa-Link’s null firmware) as absent', () => {
    expect(parseBody(versionSchema, '{"api":"2.0.0"}').ok).toBe(true);
    expect(parseBody(versionSchema, '{"api":"2.0.0","hostname":42,"printer":null}')).toEqual({
      ok: true,
      value: { api: '2.0.0' },
    });
    expect(parsed(versionSchema, fixture('prusa-link', 'version-unknown-type')).firmware).toBeUndefined();
    expect(parseBody(versionSchema, '{"server":"2.1.2"}').ok).toBe(false);
  });
});

describe('states', () => {
  it('maps every documented state, ATTENTION by whether a job is shown, anything else to unknown', () => {
    const table: Record<string, [string, string]> = {
      IDLE: ['idle', 'idle'],
      READY: ['idle', 'idle'],
      BUSY: ['unknown', 'unknown'],
      UNKNOWN: ['unknown', 'unknown'],
      PRINTING: ['printing', 'printing'],
      PAUSED: ['paused', 'paused'],
      ATTENTION: ['unknown', 'paused'],
      FINISHED: ['finished', 'finished'],
      STOPPED: ['cancelled', 'cancelled'],
      ERROR: ['error', 'error'],
      '': ['unknown', 'unknown'],
      CALIBRATING: ['unknown', 'unknown'],
    };
    for (const [word, [noJob, withJob]] of Object.entries(table)) {
      expect(mapPrinterState(word, false), word).toBe(noJob);
      expect(mapPrinterState(word, true), word).toBe(withJob);
    }
  });

  it('keeps only state-like words for the live state', () => {
    expect(stateWord('printing')).toBe('PRINTING');
    expect(stateWord('<script>')).toBe('UNKNOWN');
    expect(stateWord('x'.repeat(100))).toBe('UNKNOWN');
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

  it('drops an odd job, transfer or storage instead of failing the whole status', () => {
    const s = parsed(statusSchema, '{"job":{"id":"x"},"transfer":[],"storage":7,"printer":{"state":"PRINTING"}}');
    expect(s.job).toBeUndefined();
    expect(s.transfer).toBeUndefined();
    expect(writableStorages(s)).toEqual([]);
  });
});

describe('storages', () => {
  it('lists writable storages of both shapes, and nothing that is not a plain word', () => {
    expect(writableStorages(parsed(statusSchema, fixture('prusa-link', 'status-idle')))).toEqual(['local']);
    expect(writableStorages(parsed(statusSchema, fixture('buddy', 'status-idle')))).toEqual(['usb']);
    const odd = parsed(statusSchema, '{"storage":{"path":"/../etc/","name":"x"},"printer":{"state":"IDLE"}}');
    expect(writableStorages(odd)).toEqual([]);
  });

  it('takes a listing with or without children', () => {
    expect(parsed(filesListingSchema, fixture('buddy', 'listing-usb-missing')).children).toEqual([]);
    expect(parsed(filesListingSchema, fixture('prusa-link', 'listing-local')).children).toHaveLength(2);
  });
});
