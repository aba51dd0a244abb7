import { describe, expect, it } from 'vitest';
import { CaptureBusyError } from '../../src/capture/hub.js';
import type { CaptureStatus } from '../../src/capture/recorder.js';
import { createHttpApp } from '../../src/http/app.js';
import type { CaptureControl } from '../../src/http/routes/captures.js';
import { silentLogger } from '../../src/log.js';
import { testService } from '../helpers.js';

const FAILED: CaptureStatus = {
  printer_id: 'desk',
  state: 'failed',
  started_at: '2026-11-02T10:00:00.000Z',
  ends_at: '2026-11-02T10:10:00.000Z',
  minutes: 10,
  remaining_seconds: 0,
  lines: 12,
  events: 1,
  bytes: 2048,
  end_reason: 'disk_full',
  message: 'the disk is full: the capture stopped early; the 12 lines written so far are kept',
};

function app(control: Partial<CaptureControl>) {
  const { service } = testService();
  const captures: CaptureControl = {
    hasPrinter: (id) => id === 'desk',
    start: () => FAILED,
    stop: () => null,
    status: () => null,
    finishedFile: () => null,
    ...control,
  };
  return createHttpApp({ service, logger: silentLogger(), version: '0.1.0', captures });
}

describe('capture routes', () => {
  it('answers 503 with a reason when the capture file cannot be written, 409 when one runs', async () => {
    const full = app({
      start: () => {
        throw Object.assign(new Error('the disk is full: nothing could be written'), { code: 'ENOSPC' });
      },
    });
    const refused = await full.request('/api/v1/printers/desk/capture', { method: 'POST' });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({
      error: { code: 'capture_not_writable', message: 'the capture file could not be created (ENOSPC)' },
    });
    const busy = app({
      start: () => {
        throw new CaptureBusyError('desk');
      },
    });
    expect((await busy.request('/api/v1/printers/desk/capture', { method: 'POST' })).status).toBe(409);
  });

  it('shows a capture stopped by a full disk with its message; no file means no download', async () => {
    const routes = app({ status: () => FAILED });
    const response = await routes.request('/api/v1/printers/desk/capture');
    expect(await response.json()).toEqual({ capture: { ...FAILED, download_ready: false } });
    expect((await routes.request('/api/v1/printers/desk/capture/download')).status).toBe(404);
  });

  it('says there is nothing to capture when no printer runs', async () => {
    const { service } = testService();
    const none = createHttpApp({ service, logger: silentLogger(), version: '0.1.0' });
    const response = await none.request('/api/v1/printers/desk/capture', { method: 'POST' });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(/no printer is running/);
  });
});
