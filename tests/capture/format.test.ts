import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CAPTURE_VERSION,
  CaptureFormatError,
  type CaptureHeader,
  type CaptureLine,
  CaptureVersionError,
  capturedEvents,
  parseCapture,
  readCaptureFile,
  serializeLine,
} from '../../src/capture/format.js';
import { tempDir } from '../helpers.js';

const HEADER: CaptureHeader = {
  format: 'printernizer-capture',
  version: 1,
  printer_type: 'bambu_lab',
  model: 'P2S',
  firmware: '01.02.00.00',
  daemon_version: '0.1.0',
  started_at: '2026-11-02T10:00:00.000Z',
  session: 'started',
  minutes: 10,
};

const LINES: CaptureLine[] = [
  { t: 0, kind: 'link', up: true },
  { t: 120, kind: 'mqtt', topic: 'device/<serial>/report', payload: { print: { gcode_state: 'IDLE' } } },
  {
    t: 120,
    kind: 'event',
    event_type: 'printer_connected',
    metadata: { printer_type: 'bambu_lab', printer_model: 'P2S', connection: 'mqtt' },
  },
  { t: 400, kind: 'http', path: '/api/v1/status', status: null, failure: 'timeout' },
  { t: 500, kind: 'note', note: 'printer_disconnected' },
  { t: 600, kind: 'printer', model: 'P2S', firmware: '01.02.00.01' },
  { t: 900, kind: 'end', reason: 'time_up' },
];

function text(header: object = HEADER, lines: object[] = LINES): string {
  return [header, ...lines].map((line) => serializeLine(line as CaptureLine)).join('');
}

function errorOf(input: string): CaptureFormatError {
  try {
    parseCapture(input);
  } catch (error) {
    if (error instanceof CaptureFormatError) return error;
    throw error;
  }
  throw new Error('parsed without error');
}

describe('capture format', () => {
  it('reads back what it writes, events in order, with the end line making it complete', () => {
    const capture = parseCapture(text());
    expect(capture.header).toEqual(HEADER);
    expect(capture.lines).toEqual(LINES);
    expect(capture.complete).toBe(true);
    expect(capturedEvents(capture).map((e) => e.event_type)).toEqual(['printer_connected']);
  });

  it('accepts a capture without an end line (stopped early) and CRLF line ends', () => {
    const capture = parseCapture(text(HEADER, LINES.slice(0, 3)).replace(/\n/g, '\r\n'));
    expect(capture.complete).toBe(false);
    expect(capture.lines).toHaveLength(3);
  });

  it('names the line of a malformed file and stops there', () => {
    const lines = text().split('\n');
    lines[3] = '{"t": 130, "kind": "mqtt", "topic": ';
    expect(errorOf(lines.join('\n')).message).toBe('line 4: not valid JSON');
    expect(errorOf(text(HEADER, [{ t: 5, kind: 'teleport' }])).message).toMatch(/^line 2: invalid line/);
    expect(errorOf(text(HEADER, [{ t: 5, kind: 'link', up: 'yes' }])).line).toBe(2);
    expect(
      errorOf(
        text(HEADER, [
          { t: 50, kind: 'link', up: true },
          { t: 10, kind: 'link', up: false },
        ]),
      ).message,
    ).toBe('line 3: time goes backwards (10 ms after 50 ms)');
    expect(errorOf(`${text()}${serializeLine({ t: 950, kind: 'link', up: true })}`).message).toBe(
      'line 9: content after the end line',
    );
    expect(errorOf('[1,2]\n').message).toBe('line 1: not a JSON object');
  });

  it('says a file cut off in the middle of a line is truncated', () => {
    const whole = text();
    const cut = whole.slice(0, whole.indexOf('"payload"') + 12);
    const error = errorOf(cut);
    expect(error.line).toBe(3);
    expect(error.message).toBe('line 3: the file ends in the middle of this line: the capture is truncated');
  });

  it('refuses a capture of a future version clearly, and anything that is not a capture', () => {
    const future = errorOf(text({ ...HEADER, version: CAPTURE_VERSION + 1 }));
    expect(future).toBeInstanceOf(CaptureVersionError);
    expect(future.message).toMatch(/newer printernizer-stats \(capture format version 2\).*update printernizer-stats/);
    expect(errorOf('{"hello":"world"}\n').message).toMatch(/^line 1: not a printernizer-stats capture/);
    expect(errorOf('').message).toBe('the file is empty: no capture header');
    expect(errorOf(text({ ...HEADER, version: 0 })).message).toBe('line 1: the header has no valid format version');
    expect(errorOf(text({ ...HEADER, model: 'Ender 3' })).message).toMatch(/^line 1: invalid header \(model/);
  });

  it('reads files from disk and names unreadable ones', () => {
    const dir = tempDir();
    const path = join(dir, 'c.jsonl');
    writeFileSync(path, text());
    expect(readCaptureFile(path).lines).toHaveLength(LINES.length);
    expect(() => readCaptureFile(join(dir, 'missing.jsonl'))).toThrow(/cannot read .*missing\.jsonl \(ENOENT\)/);
  });
});
