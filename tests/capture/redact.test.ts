import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { looksPersonal, Redactor } from '../../src/capture/redact.js';

describe('Redactor: allow-listed enum fields pass, everything else is replaced', () => {
  it('keeps Bambu states, commands, codes and versions; replaces names, ids and free text', () => {
    const r = new Redactor('bambu');
    const out = r.value({
      print: {
        command: 'push_status',
        gcode_state: 'RUNNING',
        print_type: 'local',
        sequence_id: '20001',
        mc_print_error_code: '16396',
        fail_reason: '50348044',
        wifi_signal: '-53dBm',
        mc_percent: 37,
        print_error: 50348044,
        hms: [{ attr: 83887616, code: 131184, ts_unix: '20260708111841' }],
        subtask_name: 'Fidget Collection',
        gcode_file: '/data/Metadata/plate_1.gcode',
        task_id: '715417865',
        subtask_id: '0',
        reason: 'did not find the valid led: chamber_light2',
        fun: '3EC1AFFF9CFF',
      },
    }) as { print: Record<string, unknown> };
    const p = out.print;
    expect(p.command).toBe('push_status');
    expect(p.gcode_state).toBe('RUNNING');
    expect(p.print_type).toBe('local');
    expect(p.sequence_id).toBe('20001');
    expect(p.mc_print_error_code).toBe('16396');
    expect(p.fail_reason).toBe('50348044');
    expect(p.wifi_signal).toBe('-53dBm');
    expect(p.mc_percent).toBe(37);
    expect(p.print_error).toBe(50348044);
    expect(p.fun).toBe('3EC1AFFF9CFF');
    expect(p.hms).toEqual([{ attr: 83887616, code: 131184, ts_unix: '<str:1>' }]);
    expect(p.subtask_name).toBe('<str:2>');
    // Bambu's own layout inside a 3mf is not the user's data; the driver reads it to tell 3mf from gcode.
    expect(p.gcode_file).toBe('/data/Metadata/plate_1.gcode');
    // Ids keep equality (the same job twice) and their "no id" sentinel, never their value.
    expect(p.task_id).toBe('<id:1>');
    expect(p.subtask_id).toBe('0');
    expect(p.reason).toMatch(/^<str:\d+>$/);
  });

  it('gives the same value the same placeholder within one capture, and keeps file extensions', () => {
    const r = new Redactor('prusalink');
    const job = r.value({
      file: {
        name: 'BENCHY~1.GCO',
        display_name: 'Benchy for alice@example.com.gcode',
        path: '/usb/PARTS',
        refs: { download: '/usb/PARTS/BENCHY~1.GCO', icon: '/thumb/s/usb/PARTS/BENCHY~1.GCO' },
      },
    }) as { file: Record<string, unknown> };
    const listing = r.value({
      children: [
        { name: 'benchy~1.gco', type: 'PRINT_FILE' },
        { name: 'PARTS', type: 'FOLDER' },
      ],
    });
    expect(job.file.name).toBe('<file:1>.GCO');
    expect(job.file.display_name).toBe('<file:2>.gcode');
    expect(job.file.path).toBe('/usb/<str:1>');
    expect(job.file.refs).toEqual({ download: '/usb/<str:1>/<file:1>.GCO', icon: '/thumb/s/usb/<str:1>/<file:1>.GCO' });
    // Printer storage is FAT: the same file in another case is the same file.
    expect(listing).toEqual({
      children: [
        { name: '<file:1>.gco', type: 'PRINT_FILE' },
        { name: '<str:1>', type: 'FOLDER' },
      ],
    });
    // Request paths use the same placeholders, so a replay's requests find the recorded answers.
    expect(r.path('/api/v1/files/usb/PARTS/')).toBe('/api/v1/files/usb/<str:1>/');
    expect(r.path('/api/v1/files/usb/My%20Parts/')).toBe('/api/v1/files/usb/<str:2>/');
    expect(r.path('/api/v1/job/129/pause')).toBe('/api/v1/job/129/pause');
  });

  it('keeps two known extensions, drops unknown ones with the name', () => {
    const r = new Redactor('bambu');
    expect(r.freeText('Cube + Cube.gcode.3mf')).toBe('<file:1>.gcode.3mf');
    expect(r.freeText('holder.bgcode')).toBe('<file:2>.bgcode');
    expect(r.freeText('notes.alice')).toBe('<str:1>');
    expect(r.freeText('.gcode')).toBe('<str:2>');
  });

  it('catches e-mail, IP, MAC, URL and host-looking values even in allow-listed fields', () => {
    const r = new Redactor('bambu');
    for (const value of [
      'bob@example.org',
      'printer at 192.168.1.20',
      'aa:bb:cc:dd:ee:ff',
      'see https://example.com/x',
      'prusa-mk4.local',
      'fe80::1ff:fe23:4567:890a',
    ]) {
      expect(looksPersonal(value), value).toBe(true);
      expect(r.string(value, 'gcode_state'), value).toMatch(/^<str:\d+>$/);
    }
    // Versions look dotted but are not addresses.
    for (const value of ['01.08.02.00', '6.5.3+12780', 'PrusaLink 0.7.2', 'Bambu Lab X1-Carbon']) {
      expect(looksPersonal(value), value).toBe(false);
    }
  });

  it('replaces URLs by parts: scheme kept, host replaced, path by segments, query dropped', () => {
    const r = new Redactor('bambu');
    expect(r.freeText('ftp://carol@example.net/cache/carol.3mf')).toBe('ftp://<host:1>/cache/<file:1>.3mf');
    expect(r.freeText('file:///sdcard/part.gcode')).toBe('file:///sdcard/<file:2>.gcode');
    expect(r.freeText('brtc://emmc/Cube.gcode.3mf')).toBe('brtc://emmc/<file:3>.gcode.3mf');
    expect(r.freeText('rtsps://192.168.1.5:322/streaming/live/1?token=abc')).toBe('rtsps://<host:2>/<str:1>/<str:2>/1');
    expect(r.freeText('javascript://alert')).toMatch(/^<str:\d+>$/);
  });

  it('replaces numbers and whole objects under address keys (Bambu net.ip is a number)', () => {
    const r = new Redactor('bambu');
    expect(r.value({ net: { conf: 0, info: [{ ip: 3232235876, mask: 16777215 }] } })).toEqual({ net: '<redacted>' });
    expect(r.value({ ip: 3232235876, port: 8883 })).toEqual({ ip: '<redacted>', port: 8883 });
  });

  it('redacts keys that look like data (file names as keys), keeping field names', () => {
    const r = new Redactor('prusalink');
    expect(r.value({ 'alice@example.com.gcode': { size: 10 }, '3D': 1, time_printing: 5 })).toEqual({
      '<file:1>.gcode': { size: 10 },
      '3D': 1,
      time_printing: 5,
    });
  });

  it('keeps PrusaLink version fields and factory host names, never a chosen host name', () => {
    const r = new Redactor('prusalink');
    const version = r.value({
      api: '2.0.0',
      server: '2.1.2',
      text: 'PrusaLink',
      hostname: 'prusa-mk4',
      firmware: '6.5.3+12780',
      printer: '1.4.0',
      original: 'PrusaLink I3MK3S',
      capabilities: { 'upload-by-put': true },
    });
    expect(version).toEqual({
      api: '2.0.0',
      server: '2.1.2',
      text: 'PrusaLink',
      hostname: 'prusa-mk4',
      firmware: '6.5.3+12780',
      printer: '1.4.0',
      original: 'PrusaLink I3MK3S',
      capabilities: { 'upload-by-put': true },
    });
    expect(r.string('erins-workshop-mk4', 'hostname')).toMatch(/^<str:\d+>$/);
    expect(r.string('CZPX1234X004XK12345', 'serial')).toMatch(/^<str:\d+>$/);
    // Storage names pass wherever they appear; a short measurement passes, a long number does not.
    expect(r.string('PrusaLink gcodes', 'name')).toBe('PrusaLink gcodes');
    expect(r.string('100', 'anything')).toBe('100');
    expect(r.string('12345678', 'anything')).toMatch(/^<str:\d+>$/);
  });

  it('replaces non-JSON bodies whole, keeping only their length', () => {
    const r = new Redactor('prusalink');
    expect(r.body('<html>alice@example.com</html>')).toEqual({ text: '<non-json:30 bytes>' });
    expect(r.body('')).toEqual({ text: '' });
    expect(r.body('{"state":"IDLE"}')).toEqual({ json: { state: 'IDLE' } });
  });

  it('redacts every kind of raw traffic', () => {
    const r = new Redactor('bambu');
    expect(
      r.traffic({ kind: 'mqtt', topic: 'device/01S00C9PRIVATE7/report', payload: '{"print":{"gcode_state":"IDLE"}}' }),
    ).toEqual({ kind: 'mqtt', topic: 'device/<serial>/report', payload: { print: { gcode_state: 'IDLE' } } });
    expect(r.traffic({ kind: 'mqtt', topic: 'device/X/report', payload: 'not json: 01S00C9PRIVATE7' })).toEqual({
      kind: 'mqtt',
      topic: 'device/<serial>/report',
      text: '<non-json:25 bytes>',
    });
    expect(r.traffic({ kind: 'link', up: false, reason: 'timeout' })).toEqual({
      kind: 'link',
      up: false,
      reason: 'timeout',
    });
    const p = new Redactor('prusalink');
    expect(
      p.traffic({ kind: 'http', path: '/api/v1/status', status: null, body: null, failure: 'network ECONNREFUSED' }),
    ).toEqual({ kind: 'http', path: '/api/v1/status', status: null, failure: 'network ECONNREFUSED' });
    expect(
      p.traffic({ kind: 'http', path: '/api/v1/status', status: null, body: null, failure: 'at 10.0.0.7' }),
    ).toMatchObject({ failure: expect.stringMatching(/^<str:\d+>$/) });
  });

  it('never lets a secret-looking string through, wherever it sits (property)', () => {
    const secret = fc
      .tuple(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9@._-]{7,30}$/),
        fc.constantFrom('', '.3mf', '.gcode', '@example.com'),
      )
      .map(([s, suffix]) => `${s}${suffix}`);
    const key = fc.constantFrom('name', 'display_name', 'path', 'serial', 'sn', 'url', 'message', 'subtask_name', 'x');
    const json = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        secret,
        fc.array(tie('node'), { maxLength: 3 }),
        fc.dictionary(key, tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(json, fc.constantFrom('bambu' as const, 'prusalink' as const), (value, protocol) => {
        const out = JSON.stringify(new Redactor(protocol).value(value));
        const secrets: string[] = [];
        const collect = (v: unknown) => {
          if (typeof v === 'string') secrets.push(v);
          else if (Array.isArray(v)) v.forEach(collect);
          else if (v && typeof v === 'object') Object.values(v).forEach(collect);
        };
        collect(value);
        for (const s of secrets) {
          const base = s.replace(/(\.3mf|\.gcode)$/, '');
          expect(out).not.toContain(base);
        }
      }),
      { numRuns: 300 },
    );
  });
});
