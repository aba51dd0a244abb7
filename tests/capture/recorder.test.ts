import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCapture, readCaptureFile } from '../../src/capture/format.js';
import { type CaptureFs, CaptureRecorder, type CaptureStatus } from '../../src/capture/recorder.js';
import { silentLogger } from '../../src/log.js';
import { ManualClock } from '../../src/printers/clock.js';
import { tempDir } from '../helpers.js';

const REPORT = (state: string, name = 'alice@example.com bracket') =>
  JSON.stringify({ print: { command: 'push_status', gcode_state: state, subtask_name: name } });

function recorder(
  path: string,
  options: { fs?: CaptureFs; minutes?: number; onEnd?: (s: CaptureStatus) => void } = {},
) {
  const clock = new ManualClock();
  const rec = new CaptureRecorder({
    printerId: 'workshop',
    printerType: 'bambu_lab',
    model: 'P1S',
    firmware: null,
    session: 'started',
    minutes: options.minutes ?? 10,
    outputPath: path,
    clock,
    daemonVersion: '0.1.0',
    logger: silentLogger(),
    fs: options.fs,
    onEnd: options.onEnd,
  });
  return { rec, clock };
}

describe('CaptureRecorder', () => {
  it('writes the header, then redacted traffic and events as they arrive, and ends after its minutes', () => {
    const path = join(tempDir(), 'c.jsonl');
    const ended: CaptureStatus[] = [];
    const { rec, clock } = recorder(path, { minutes: 1, onEnd: (s) => ended.push(s) });
    rec.start();
    rec.traffic({ kind: 'link', up: true });
    clock.advance(1200);
    rec.traffic({ kind: 'mqtt', topic: 'device/01P00A000000001/report', payload: REPORT('RUNNING') });
    rec.event('job_created', { printer_type: 'bambu_lab', printer_model: 'P1S' });
    // Written as it arrives: the file already holds it before the capture ends.
    expect(fs.readFileSync(path, 'utf8').split('\n')).toHaveLength(5);
    clock.advance(2000);
    rec.traffic({
      kind: 'mqtt',
      topic: 'device/01P00A000000001/report',
      payload:
        '{"info":{"command":"get_version","module":[{"name":"ota","sw_ver":"01.08.02.00","sn":"01P00A000000001"}]}}',
    });
    expect(rec.status()).toMatchObject({ state: 'recording', remaining_seconds: 57, events: 1 });
    clock.advance(60_000);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ state: 'done', end_reason: 'time_up', remaining_seconds: 0 });

    const raw = fs.readFileSync(path, 'utf8');
    expect(raw).not.toMatch(/alice|example\.com|01P00A000000001/);
    const capture = parseCapture(raw);
    expect(capture.complete).toBe(true);
    expect(capture.header).toMatchObject({ printer_type: 'bambu_lab', model: 'P1S', session: 'started', minutes: 1 });
    expect(capture.lines.map((l) => `${l.t} ${l.kind}`)).toEqual([
      '0 link',
      '1200 mqtt',
      '1200 event',
      '3200 mqtt',
      '3200 printer',
      '60000 end',
    ]);
    // The firmware learned during the capture is noted once it is known.
    expect(capture.lines[4]).toEqual({ t: 3200, kind: 'printer', model: 'P1S', firmware: '01.08.02.00' });
    expect((fs.statSync(path).mode & 0o777).toString(8)).toBe('600');
  });

  it('notes a printer that disconnects mid-capture and goes on recording', () => {
    const path = join(tempDir(), 'c.jsonl');
    const { rec, clock } = recorder(path);
    rec.start();
    rec.traffic({ kind: 'link', up: true });
    clock.advance(1000);
    rec.traffic({ kind: 'link', up: false, reason: 'timeout' });
    rec.event('printer_disconnected', {
      printer_type: 'bambu_lab',
      printer_model: 'P1S',
      reason: 'timeout',
      connected_seconds: 1,
    });
    clock.advance(30_000);
    rec.traffic({ kind: 'link', up: true });
    rec.traffic({ kind: 'mqtt', topic: 'device/x/report', payload: REPORT('IDLE') });
    rec.stop();
    const lines = readCaptureFile(path).lines;
    expect(lines.map((l) => (l.kind === 'note' ? `note ${l.note}` : l.kind))).toEqual([
      'link',
      'link',
      'note printer_disconnected',
      'event',
      'link',
      'note printer_reconnected',
      'mqtt',
      'end',
    ]);
    expect(rec.status()).toMatchObject({ state: 'done', end_reason: 'stopped' });
  });

  it('stops cleanly on a full disk, keeps every whole line written, and says so', () => {
    const path = join(tempDir(), 'c.jsonl');
    // A disk with room for about 700 bytes: writes past it fail with ENOSPC, possibly half-way through a line.
    const limit = 700;
    const full: CaptureFs = {
      ...fs,
      writeSync: ((fd: number, buffer: Buffer, offset: number, length: number, position: number) => {
        const room = limit - position;
        if (room <= 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        return fs.writeSync(fd, buffer, offset, Math.min(length, room), position);
      }) as CaptureFs['writeSync'],
    };
    const ended: CaptureStatus[] = [];
    const { rec, clock } = recorder(path, { fs: full, onEnd: (s) => ended.push(s) });
    rec.start();
    for (let i = 0; i < 20 && rec.recording; i++) {
      clock.advance(1000);
      rec.traffic({ kind: 'mqtt', topic: 'device/x/report', payload: REPORT('RUNNING', `job ${i}`) });
    }
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ state: 'failed', end_reason: 'disk_full' });
    expect(ended[0]!.message).toMatch(
      /^the disk is full: the capture stopped early; the \d+ lines written so far are kept$/,
    );
    // What is on disk is a readable capture: whole lines only.
    const capture = readCaptureFile(path);
    expect(capture.lines.length).toBeGreaterThan(1);
    expect(fs.readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    // Nothing more is written after the stop.
    const size = fs.statSync(path).size;
    rec.traffic({ kind: 'mqtt', topic: 'device/x/report', payload: REPORT('IDLE') });
    expect(fs.statSync(path).size).toBe(size);
  });

  it('stops at its size limit and on EFBIG, with the end line when it fits', () => {
    const path = join(tempDir(), 'c.jsonl');
    const clock = new ManualClock();
    const rec = new CaptureRecorder({
      printerId: 'p',
      printerType: 'prusa',
      model: 'MK4',
      firmware: '6.5.3',
      session: 'joined',
      minutes: 10,
      outputPath: path,
      clock,
      daemonVersion: '0.1.0',
      logger: silentLogger(),
      maxBytes: 2000,
      pollIntervalS: 30,
    });
    rec.start();
    while (rec.recording) {
      clock.advance(1000);
      rec.traffic({ kind: 'http', path: '/api/v1/status', status: 200, body: '{"printer":{"state":"IDLE"}}' });
    }
    expect(rec.status()).toMatchObject({ state: 'failed', end_reason: 'file_too_large' });
    expect(readCaptureFile(path).header).toMatchObject({ printer_type: 'prusa', poll_interval_s: 30 });

    const efbig: CaptureFs = {
      ...fs,
      writeSync: (() => {
        throw Object.assign(new Error('EFBIG'), { code: 'EFBIG' });
      }) as CaptureFs['writeSync'],
    };
    const second = recorder(join(tempDir(), 'd.jsonl'), { fs: efbig });
    expect(() => second.rec.start()).toThrow(/refuses a larger file \(EFBIG\): nothing could be written/);
  });

  // The project's full-disk technique (tests/reliability/disk-full.test.ts): a real 1 MiB tmpfs, where the test may
  // mount (root in a container), filled to the last byte.
  const mountRoot = join(tmpdir(), `pstats-capture-tmpfs-${process.pid}`);
  let mounted = false;
  try {
    fs.mkdirSync(mountRoot, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountRoot], { stdio: 'ignore' });
    mounted = true;
  } catch {
    fs.rmSync(mountRoot, { recursive: true, force: true });
  }
  afterAll(() => {
    if (!mounted) return;
    execFileSync('umount', ['-l', mountRoot], { stdio: 'ignore' });
    fs.rmSync(mountRoot, { recursive: true, force: true });
  });

  it.skipIf(!mounted)('a real full file system (1 MiB tmpfs): stops with a clear message, keeps the lines', () => {
    const path = join(mountRoot, 'capture.jsonl');
    const { rec, clock } = recorder(path);
    rec.start();
    rec.traffic({ kind: 'link', up: true });
    // Fill what is left, then record until the disk refuses.
    const ballast = join(mountRoot, 'ballast');
    const fd = fs.openSync(ballast, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096, 1));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    for (let i = 0; i < 10_000 && rec.recording; i++) {
      clock.advance(1000);
      rec.traffic({ kind: 'mqtt', topic: 'device/x/report', payload: REPORT('RUNNING', 'x'.repeat(200)) });
    }
    expect(rec.status()).toMatchObject({ state: 'failed', end_reason: 'disk_full' });
    expect(rec.status().message).toMatch(/the disk is full/);
    fs.unlinkSync(ballast);
    const capture = readCaptureFile(path);
    expect(capture.lines[0]).toEqual({ t: 0, kind: 'link', up: true });
  });
});
