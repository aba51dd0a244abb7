import { describe, expect, it } from 'vitest';
import { BambuPrelude, PrusaLinkPrelude } from '../../src/capture/prelude.js';
import type { RawTraffic } from '../../src/printers/types.js';

const mqtt = (print: object): RawTraffic => ({
  kind: 'mqtt',
  topic: 'device/S/report',
  payload: JSON.stringify({ print: { command: 'push_status', ...print } }),
});

describe('preludes', () => {
  it('Bambu Lab: the last full report merged with every change after it, however many', () => {
    const prelude = new BambuPrelude();
    prelude.observe({ kind: 'link', up: true });
    prelude.observe(mqtt({ msg: 0, gcode_state: 'IDLE', mc_percent: 0, hms: [] }));
    prelude.observe(mqtt({ msg: 1, gcode_state: 'RUNNING' }));
    // More change reports than are kept as text: merged as they pile up.
    for (let i = 1; i <= 400; i++) prelude.observe(mqtt({ msg: 1, mc_percent: i % 100, pad: 'x'.repeat(200) }));
    prelude.observe({ kind: 'mqtt', topic: 'device/S/report', payload: '{"print":{"command":"project_file"}}' });
    const [link, report] = prelude.prelude();
    expect(link).toEqual({ kind: 'link', up: true });
    const print = JSON.parse((report as { payload: string }).payload).print;
    expect(print).toMatchObject({ command: 'push_status', msg: 0, gcode_state: 'RUNNING', mc_percent: 0, hms: [] });
    // A new full report replaces what was merged before it.
    prelude.observe(mqtt({ msg: 0, gcode_state: 'FINISH' }));
    const again = JSON.parse((prelude.prelude()[1] as { payload: string }).payload).print;
    expect(again).toEqual({ command: 'push_status', msg: 0, gcode_state: 'FINISH' });
    prelude.observe({ kind: 'link', up: false, reason: 'timeout' });
    expect(prelude.prelude().map((e) => e.kind)).toEqual(['mqtt']);
  });

  it('Bambu Lab: merges the driver’s own parse of each report, keeps no report text and changes no report', () => {
    const prelude = new BambuPrelude();
    // The text is never parsed again when the driver's parse comes with it (a wrong text would show otherwise).
    const parsed = (print: Record<string, unknown>): RawTraffic => ({
      kind: 'mqtt',
      topic: 'device/S/report',
      payload: '{"print":{"command":"push_status","ignored":true}}',
      json: { print: { command: 'push_status', ...print } },
    });
    const full = parsed({ msg: 0, gcode_state: 'IDLE', mc_percent: 0 });
    prelude.observe(full);
    prelude.observe(parsed({ msg: 1, mc_percent: 40 }));
    // Not JSON (no parse from the driver): nothing to merge, nothing kept.
    prelude.observe({ kind: 'mqtt', topic: 'device/S/report', payload: 'not json', json: undefined });
    const print = JSON.parse((prelude.prelude()[0] as { payload: string }).payload).print;
    expect(print).toEqual({ command: 'push_status', msg: 0, gcode_state: 'IDLE', mc_percent: 40 });
    expect((full as { json: { print: object } }).json.print).toEqual({
      command: 'push_status',
      msg: 0,
      gcode_state: 'IDLE',
      mc_percent: 0,
    });
  });

  it('PrusaLink: the last answer of each path, version and status first', () => {
    const prelude = new PrusaLinkPrelude();
    const http = (path: string, body: string): RawTraffic => ({ kind: 'http', path, status: 200, body });
    prelude.observe({ kind: 'link', up: true });
    prelude.observe(http('/api/v1/files/usb/', '{"children":[]}'));
    prelude.observe(http('/api/v1/status', '{"printer":{"state":"IDLE"}}'));
    prelude.observe(http('/api/version', '{"api":"2.0.0"}'));
    prelude.observe(http('/api/v1/status', '{"printer":{"state":"PRINTING"}}'));
    prelude.observe({ kind: 'http', path: '/api/v1/status', status: null, body: null, failure: 'timeout' });
    expect(prelude.prelude()).toEqual([
      { kind: 'link', up: true },
      http('/api/version', '{"api":"2.0.0"}'),
      http('/api/v1/status', '{"printer":{"state":"PRINTING"}}'),
      http('/api/v1/files/usb/', '{"children":[]}'),
    ]);
  });
});
