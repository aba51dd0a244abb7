/**
 * Diagnostic captures of one printer (DESIGN.md "Captures"), under /api/v1/printers/:id/capture:
 * - POST   start one (`{ "minutes": 10 }`, above 0 and at most 120; 10 without a body): 202, or 409 while one runs, 404 for an
 *          unknown printer;
 * - GET    its status and countdown (`{ capture: null }` before the first);
 * - DELETE stop it early (what was recorded is kept);
 * - GET    .../download: the finished capture as a JSON Lines attachment.
 * The file is redacted as it is written; the API never shows its path.
 */
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { z } from 'zod';
import {
  CaptureBusyError,
  type CaptureHub,
  captureFileName,
  MAX_CAPTURE_MINUTES,
  UnknownPrinterError,
} from '../../capture/hub.js';
import type { CaptureStatus } from '../../capture/recorder.js';
import { readJsonBody } from '../body.js';
import { ApiError, errorResponse } from '../errors.js';

/** What the routes need of the daemon's CaptureHub. */
export type CaptureControl = Pick<CaptureHub, 'hasPrinter' | 'start' | 'stop' | 'status' | 'finishedFile'>;

const startSchema = z.strictObject({
  minutes: z.number().gt(0).max(MAX_CAPTURE_MINUTES).optional(),
});

export interface CaptureView extends CaptureStatus {
  /** The capture is finished and its file can be downloaded. */
  download_ready: boolean;
}

function view(status: CaptureStatus | null, fileReady: boolean): CaptureView | null {
  return status === null ? null : { ...status, download_ready: status.state !== 'recording' && fileReady };
}

export function captureRoutes(captures: CaptureControl | undefined): Hono {
  const routes = new Hono();

  const known = (id: string): CaptureControl => {
    if (!captures) throw new ApiError(404, 'not_found', 'no printer is running, so there is nothing to capture');
    if (!captures.hasPrinter(id)) throw new ApiError(404, 'not_found', 'no configured printer has this id');
    return captures;
  };
  const fileReady = (control: CaptureControl, id: string): boolean => {
    const file = control.finishedFile(id);
    if (!file) return false;
    try {
      return statSync(file.path).isFile();
    } catch {
      return false;
    }
  };

  routes.get('/:id/capture', (c) => {
    const id = c.req.param('id');
    const control = known(id);
    return c.json({ capture: view(control.status(id), fileReady(control, id)) });
  });

  routes.post('/:id/capture', async (c) => {
    const id = c.req.param('id');
    const control = known(id);
    const body = await readJsonBody(c, startSchema);
    try {
      const status = control.start(id, { minutes: body.minutes });
      return c.json({ capture: view(status, false) }, 202);
    } catch (error) {
      if (error instanceof CaptureBusyError) return errorResponse(c, 409, 'capture_running', error.message);
      if (error instanceof UnknownPrinterError) return errorResponse(c, 404, 'not_found', error.message);
      const code = (error as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
        return errorResponse(c, 503, 'capture_not_writable', `the capture file could not be created (${code})`);
      }
      throw error;
    }
  });

  routes.delete('/:id/capture', (c) => {
    const id = c.req.param('id');
    const control = known(id);
    const status = control.stop(id);
    if (!status) return errorResponse(c, 409, 'no_capture_running', 'no capture of this printer is running');
    return c.json({ capture: view(status, fileReady(control, id)) });
  });

  routes.get('/:id/capture/download', (c) => {
    const id = c.req.param('id');
    const control = known(id);
    const current = control.status(id);
    if (current?.state === 'recording') {
      return errorResponse(c, 409, 'capture_running', 'the capture is still running; download it when it ends');
    }
    const file = control.finishedFile(id);
    let size: number;
    try {
      if (!file) throw new Error('none');
      size = statSync(file.path).size;
    } catch {
      return errorResponse(c, 404, 'not_found', 'there is no finished capture of this printer to download');
    }
    const stream = Readable.toWeb(createReadStream(file.path)) as ReadableStream<Uint8Array>;
    const name = captureFileName(id, new Date(file.status.started_at));
    return c.body(stream, 200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Content-Disposition': `attachment; filename="${name}"`,
      'Content-Length': String(size),
    });
  });

  return routes;
}
