/**
 * Captures in the running daemon (issue 16): started, counted down, stopped and downloaded through the HTTP API while
 * the daemon keeps bridging simulated printers; the replay of each download records the events the daemon recorded
 * meanwhile, through a disconnection in the middle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { capturedEvents, parseCapture } from '../../src/capture/format.js';
import { compareEvents, replayCapture } from '../../src/capture/replay.js';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { type BambuSimulator, startBambuSimulator } from '../../src/simulators/bambu.js';
import { type PrusaLinkSimulator, startPrusaLinkSimulator } from '../../src/simulators/prusalink.js';
import { sleep, waitFor } from '../helpers.js';

let bambu: BambuSimulator;
let prusa: PrusaLinkSimulator;
let daemon: Daemon;
let base = '';
let dataDir = '';

const api = (path: string, init: RequestInit = {}) => fetch(`${base}/api/v1/printers/${path}`, init);
const post = (path: string, body?: unknown) =>
  api(path, {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
  });

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'pstats-capture-daemon-'));
  bambu = await startBambuSimulator({
    serial: '01P00A000000301',
    accessCode: 'cap30001',
    model: 'P1S',
    host: '127.0.0.1',
    port: 0,
    speed: 20,
    tickMs: 100,
  });
  prusa = await startPrusaLinkSimulator({ password: 'cappass', model: 'MK4S', host: '127.0.0.1', port: 0, speed: 20 });
  daemon = new Daemon({
    config: parseConfig({
      printers: [
        {
          name: 'Workshop P1S',
          type: 'bambu_lab',
          host: '127.0.0.1',
          port: bambu.port,
          serial: bambu.serial,
          access_code: 'cap30001',
        },
        { name: 'Desk MK4S', type: 'prusa', host: prusa.url, password: 'cappass', poll_interval_s: 1 },
      ],
    }),
    dataDir,
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger(),
    createDriver,
    env: {},
  });
  const { port } = await daemon.start();
  base = `http://127.0.0.1:${port}`;
  await waitFor(() => (daemon.fleet?.snapshots() ?? []).every((p) => p.online), 15_000, 'both printers online');
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await Promise.allSettled([bambu?.stop(), prusa?.stop()]);
  rmSync(dataDir, { recursive: true, force: true });
});

async function download(id: string): Promise<string> {
  const response = await api(`${id}/capture/download`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/application\/x-ndjson/);
  expect(response.headers.get('content-disposition')).toMatch(
    new RegExp(`^attachment; filename="printernizer-capture-${id}-\\d{8}T\\d{6}Z\\.jsonl"$`),
  );
  return response.text();
}

async function replayMatches(text: string): Promise<{ events: string[] }> {
  const capture = parseCapture(text);
  expect(capture.complete).toBe(true);
  const expected = capturedEvents(capture);
  const result = await replayCapture(capture, { instant: true });
  const comparison = compareEvents(expected, result.events, capture.header.session);
  expect(comparison.differences).toEqual([]);
  return { events: expected.map((e) => e.event_type) };
}

describe('captures beside the running daemon, through the HTTP API', () => {
  it('answers for unknown printers, before any capture and for bad requests', async () => {
    expect((await api('nope/capture')).status).toBe(404);
    expect(await (await api('workshop_p1s/capture')).json()).toEqual({ capture: null });
    expect((await api('workshop_p1s/capture/download')).status).toBe(404);
    expect((await post('workshop_p1s/capture', { minutes: 0 })).status).toBe(422);
    expect((await post('workshop_p1s/capture', { minutes: 10, extra: 1 })).status).toBe(422);
    expect((await api('workshop_p1s/capture', { method: 'DELETE' })).status).toBe(409);
  });

  it('captures a PrusaLink printer: countdown, a disconnection, stop, download; the replay agrees', async () => {
    const started = await post('desk_mk4s/capture', { minutes: 2 });
    expect(started.status).toBe(202);
    const body = (await started.json()) as { capture: { state: string; remaining_seconds: number } };
    expect(body.capture).toMatchObject({ state: 'recording', minutes: 2, download_ready: false });
    expect(body.capture.remaining_seconds).toBeGreaterThan(110);
    // A second capture of the same printer at once is refused.
    const second = await post('desk_mk4s/capture');
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('capture_running');
    expect((await api('desk_mk4s/capture/download')).status).toBe(409);

    prusa.addFile({ name: 'dave.private@example.com holder.bgcode', sizeBytes: 5000 });
    prusa.startJob({ fileName: 'alice.smith@example.com gear.bgcode', durationS: 60 });
    await sleep(2500);
    prusa.finishJob();
    await sleep(1500);
    // The printer goes away mid-capture and comes back: noted, and the capture goes on.
    prusa.setReachable(false);
    await waitFor(
      () => daemon.fleet?.snapshots().find((p) => p.id === 'desk_mk4s')?.online === false,
      20_000,
      'offline',
    );
    prusa.setReachable(true);
    await waitFor(() => daemon.fleet?.snapshots().find((p) => p.id === 'desk_mk4s')?.online === true, 20_000, 'online');
    prusa.startJob({ durationS: 600 });
    await sleep(2000);
    prusa.stopJob();
    await sleep(1500);

    const status = (await (await api('desk_mk4s/capture')).json()) as { capture: { remaining_seconds: number } };
    expect(status.capture.remaining_seconds).toBeLessThan(body.capture.remaining_seconds);
    const stopped = await api('desk_mk4s/capture', { method: 'DELETE' });
    expect(((await stopped.json()) as { capture: unknown }).capture).toMatchObject({
      state: 'done',
      end_reason: 'stopped',
      download_ready: true,
    });
    const text = await download('desk_mk4s');
    expect(text).not.toMatch(/alice|dave|example\.com|cappass|127\.0\.0\.1/);
    expect(text).toContain('"note":"printer_disconnected"');
    const { events } = await replayMatches(text);
    expect(events).toEqual(
      expect.arrayContaining(['file_uploaded', 'job_created', 'job_completed', 'printer_disconnected', 'job_failed']),
    );
  }, 90_000);

  it('captures a Bambu Lab printer that joined mid-job; the replay agrees', async () => {
    bambu.startJob({ seconds: 200 });
    await sleep(1500);
    expect((await post('workshop_p1s/capture', { minutes: 1 })).status).toBe(202);
    await sleep(13_000); // the job ends (200 simulated seconds at speed 20)
    bambu.simulateProjectFile({ fileType: '3mf', seconds: 60 });
    await sleep(1500);
    bambu.cancelJob();
    await sleep(2500);
    expect((await api('workshop_p1s/capture', { method: 'DELETE' })).status).toBe(200);
    const text = await download('workshop_p1s');
    expect(text).not.toContain(bambu.serial);
    expect(text).not.toContain('cap30001');
    const { events } = await replayMatches(text);
    expect(events).toEqual(expect.arrayContaining(['job_completed', 'file_uploaded', 'job_created', 'job_failed']));
  }, 60_000);
});
