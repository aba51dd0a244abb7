import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, fileTypeOf, METADATA_SCHEMAS, sanitizeMetadata } from '../../src/stats/events.js';

describe('event contract', () => {
  it('has exactly the twelve DESIGN.md event types, each with an allow-list', () => {
    expect(EVENT_TYPES).toHaveLength(12);
    expect(Object.keys(METADATA_SCHEMAS).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('keeps allow-listed values and drops unknown keys', () => {
    const result = sanitizeMetadata('job_completed', {
      printer_type: 'bambu_lab',
      printer_model: 'X1C',
      duration_seconds: 3600,
      file_name: 'benchy.3mf',
      serial: '01S00C000000000',
    });
    expect(result.metadata).toEqual({ printer_type: 'bambu_lab', printer_model: 'X1C', duration_seconds: 3600 });
    expect(result.dropped.sort()).toEqual(['file_name', 'serial']);
  });

  it('drops free text hidden in allow-listed keys', () => {
    const result = sanitizeMetadata('job_failed', {
      printer_type: 'bambu_lab',
      printer_model: 'my printer at 192.168.1.20',
      failure_type: 'failed because john@example.com cancelled',
      duration_seconds: '12',
    });
    expect(result.metadata).toEqual({ printer_type: 'bambu_lab' });
  });

  it('accepts printer error codes only as hex slugs', () => {
    const ok = sanitizeMetadata('error_occurred', { error_type: 'hms_0300_0100', component: 'bambu_mqtt' });
    expect(ok.metadata.error_type).toBe('hms_0300_0100');
    for (const bad of [
      'hms_0300_0100 nozzle clogged',
      'HMS_0300_0100',
      'hms_zzzz_0100',
      'Traceback (most recent call)',
    ]) {
      expect(sanitizeMetadata('error_occurred', { error_type: bad }).metadata).toEqual({});
    }
  });

  it('rejects out-of-range and non-finite numbers', () => {
    for (const value of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1e15]) {
      expect(sanitizeMetadata('file_uploaded', { size_bytes: value }).metadata).toEqual({});
    }
  });

  it('never throws, whatever the input', () => {
    const weird: unknown[] = [
      null,
      undefined,
      'text',
      42,
      [1, 2],
      { __proto__: { printer_type: 'prusa' } },
      Object.create(null),
    ];
    for (const input of weird) expect(() => sanitizeMetadata('job_created', input)).not.toThrow();
    expect(sanitizeMetadata('job_created', { __proto__: { printer_type: 'prusa' } }).metadata).toEqual({});
  });

  it('constrains version strings so nothing else can hide in them', () => {
    expect(sanitizeMetadata('app_start', { app_version: '1.2.3', runtime_version: '20.20.2' }).metadata).toEqual({
      app_version: '1.2.3',
      runtime_version: '20.20.2',
    });
    expect(sanitizeMetadata('app_start', { app_version: '1.2.3 (built by alice)' }).metadata).toEqual({});
  });

  it('maps file names to types without keeping the name', () => {
    expect(fileTypeOf('Tobera bambu x1 v3.gcode.3mf')).toBe('3mf');
    expect(fileTypeOf('TabletStand3~4.BGC')).toBe('bgcode');
    expect(fileTypeOf('/data/Metadata/plate_1.gcode')).toBe('gcode');
    expect(fileTypeOf('model.STL')).toBe('stl');
    expect(fileTypeOf('')).toBe('other');
    expect(fileTypeOf(undefined)).toBe('other');
  });
});
