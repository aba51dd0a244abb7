import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type PrusaLinkSimulator,
  type PrusaLinkSimulatorOptions,
  startPrusaLinkSimulator,
} from '../../src/simulators/prusalink.js';

const sims: PrusaLinkSimulator[] = [];
afterEach(async () => {
  for (const sim of sims.splice(0)) await sim.stop();
});

async function sim(opts: Partial<PrusaLinkSimulatorOptions> = {}): Promise<PrusaLinkSimulator> {
  const s = await startPrusaLinkSimulator({ password: 'pw', apiKey: 'key', ...opts });
  sims.push(s);
  return s;
}

/** Requests with the API key, so these tests exercise the printer and not the digest code. */
async function api(s: PrusaLinkSimulator, path: string, init: RequestInit = {}) {
  const res = await fetch(`${s.url}${path}`, {
    ...init,
    headers: { 'X-Api-Key': 'key', Accept: 'application/json', ...(init.headers as Record<string, string>) },
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: these tests read loosely shaped JSON by path
  type Json = Record<string, any>;
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Json };
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

describe('PrusaLink simulator', () => {
  it('challenges like Buddy firmware: RFC 2069, 16-hex nonce, no qop/opaque', async () => {
    const s = await sim();
    const res = await fetch(`${s.url}/api/v1/status`, { headers: { Accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(
      /^Digest realm="Printer API", nonce="[0-9a-f]{16}", stale=false$/,
    );
    expect(await res.text()).toBe('{"title": "401: Unauthorized","message":""}');
    const plain = await fetch(`${s.url}/api/v1/status`);
    expect(await plain.text()).toBe('401: Unauthorized\n\n\n');
  });

  it('accepts a correct RFC 2069 answer and refuses an unquoted algorithm it never sent', async () => {
    const s = await sim();
    const challenge = (await fetch(`${s.url}/api/version`)).headers.get('www-authenticate')!;
    const nonce = /nonce="([^"]+)"/.exec(challenge)![1]!;
    const response = md5(`${md5('maker:Printer API:pw')}:${nonce}:${md5('GET:/api/version')}`);
    const auth = `Digest username="maker", realm="Printer API", nonce="${nonce}", uri="/api/version", response="${response}"`;
    expect((await fetch(`${s.url}/api/version`, { headers: { Authorization: auth } })).status).toBe(200);
    const withAlgorithm = await fetch(`${s.url}/api/version`, { headers: { Authorization: `${auth}, algorithm=MD5` } });
    expect(withAlgorithm.status).toBe(400);
  });

  it('challenges like Prusa-Link on a Raspberry Pi: qop=auth, MD5-sess, opaque; 403 on a bad key', async () => {
    const s = await sim({ flavour: 'rpi' });
    const res = await fetch(`${s.url}/api/v1/status`);
    expect(res.headers.get('www-authenticate')).toMatch(
      /^Digest realm="Administrator",qop="auth",algorithm="MD5-sess",nonce="[0-9a-f]+",opaque="[0-9a-f]+"$/,
    );
    expect(res.headers.get('server')).toBe('PrusaLink');
    const bad = await fetch(`${s.url}/api/v1/status`, { headers: { 'X-Api-Key': 'nope' } });
    expect(bad.status).toBe(403);
    expect(await bad.text()).toBe('Bad X-Api-Key.');
  });

  it('answers a bad key on Buddy with 401 ApiKey', async () => {
    const s = await sim();
    const bad = await fetch(`${s.url}/api/v1/status`, { headers: { 'X-Api-Key': 'nope' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('ApiKey realm="Printer API"');
  });

  it('runs a job: job key and /job only while printing, 204 after', async () => {
    const s = await sim({ firstJobId: 129 });
    expect((await api(s, '/api/v1/job')).status).toBe(204);
    const idle = (await api(s, '/api/v1/status')).json();
    expect(idle).toMatchObject({
      storage: { path: '/usb/', name: 'usb', read_only: false },
      printer: { state: 'IDLE' },
    });
    expect(idle['job']).toBeUndefined();
    expect(Object.keys(idle)).toEqual(['storage', 'printer']);

    expect(s.startJob({ fileName: 'Part.bgcode', sizeBytes: 1234 })).toBe(129);
    const printing = (await api(s, '/api/v1/status')).json();
    expect(Object.keys(printing)).toEqual(['job', 'storage', 'printer']);
    expect(printing['job']).toMatchObject({ id: 129, progress: 0, time_printing: 0 });
    expect(printing['printer']['axis_x']).toBeUndefined();
    const job = (await api(s, '/api/v1/job')).json();
    expect(job).toMatchObject({
      id: 129,
      state: 'PRINTING',
      file: { display_name: 'Part.bgcode', path: '/usb', size: 1234 },
    });
    expect(job['file']['name']).toMatch(/^[A-Z0-9~]{1,8}\.BGC$/);

    s.attention();
    expect((await api(s, '/api/v1/status')).json()['printer']['state']).toBe('ATTENTION');
    expect((await api(s, '/api/v1/job')).json()['state']).toBe('PAUSED');
    s.resumeJob();
    s.finishJob();
    const finished = (await api(s, '/api/v1/status')).json();
    expect(finished['printer']['state']).toBe('FINISHED');
    expect(finished['job']).toBeUndefined();
    expect((await api(s, '/api/v1/job')).status).toBe(204);

    s.startJob();
    expect((await api(s, `/api/v1/job/999`, { method: 'DELETE' })).status).toBe(404);
    expect((await api(s, `/api/v1/job/130`, { method: 'DELETE' })).status).toBe(204);
    expect(s.state).toBe('STOPPED');
    expect((await api(s, `/api/v1/job/130`, { method: 'DELETE' })).status).toBe(404);
  });

  it('moves jobs on simulated time', async () => {
    const s = await sim({ speed: 1000 });
    s.startJob({ durationS: 100 });
    await new Promise((r) => setTimeout(r, 150));
    expect(s.state).toBe('FINISHED');
    const auto = await sim({ speed: 10_000, autoJobs: true });
    await new Promise((r) => setTimeout(r, 30));
    expect(['PRINTING', 'FINISHED', 'STOPPED']).toContain(auto.state);
  });

  it('lists files and takes uploads (PUT) with the Buddy rules', async () => {
    const s = await sim();
    const listing = (await api(s, '/api/v1/files/usb/')).json();
    expect(listing).toMatchObject({ type: 'FOLDER', name: 'usb' });
    // Two files and the Parts folder.
    expect(listing['children']).toHaveLength(3);
    const put = (name: string, body: string, headers: Record<string, string> = {}) =>
      api(s, `/api/v1/files/usb/${name}`, { method: 'PUT', body, headers });
    expect((await put('new.bgcode', 'G1')).status).toBe(201);
    expect((await put('new.bgcode', 'G1')).status).toBe(409);
    expect((await put('new.bgcode', 'G1 X2', { Overwrite: '?1' })).status).toBe(201);
    expect((await put('new.stl', 'solid')).status).toBe(415);
    expect((await put('empty.gcode', '')).status).toBe(501);
    expect((await api(s, '/api/v1/files/usb')).json()['children']).toHaveLength(4);
    expect((await api(s, '/api/v1/files/nope/')).status).toBe(404);
    expect((await put('go.gcode', 'G28', { 'Print-After-Upload': '?1' })).status).toBe(201);
    expect(s.state).toBe('PRINTING');
  });

  it('lists the RPi storages as a list, sdcard read-only', async () => {
    const s = await sim({ flavour: 'rpi' });
    const status = (await api(s, '/api/v1/status')).json();
    expect(status['storage']).toEqual([
      expect.objectContaining({ path: '/local', read_only: false }),
      expect.objectContaining({ path: '/sdcard', read_only: true }),
    ]);
    expect((await api(s, '/api/v1/files/sdcard/x.gcode', { method: 'PUT', body: 'G1' })).status).toBe(409);
    expect((await api(s, '/api/version')).json()).toMatchObject({ api: '2.0.0', original: 'PrusaLink I3MK3S' });
  });

  it('serves the model-specific /api/version', async () => {
    const core = await sim({ model: 'CORE One' });
    expect((await api(core, '/api/version')).json()).toMatchObject({ printer: '7.1.0', hostname: 'prusa-core-one' });
    const xl = await sim({ model: 'XL' });
    expect((await api(xl, '/api/version')).json()['printer']).toBeUndefined();
  });

  it('injects faults and reboots', async () => {
    const s = await sim();
    s.setFault('truncated');
    const truncated = await api(s, '/api/v1/status');
    expect(() => truncated.json()).toThrow();
    s.setFault('html');
    expect((await api(s, '/api/v1/status')).headers.get('content-type')).toMatch(/text\/html/);
    s.setFault('503');
    expect((await api(s, '/api/v1/status')).status).toBe(503);
    s.setFault(null);

    s.startJob();
    expect(s.jobId).toBe(1);
    await s.reboot({ downMs: 50 });
    expect(s.state).toBe('IDLE');
    // The firmware keeps job ids in EEPROM: a reboot does not hand out 1 again.
    expect(s.startJob()).toBe(2);
    expect((await api(s, '/api/v1/status')).status).toBe(200);
    s.forceState('CALIBRATING');
    expect((await api(s, '/api/v1/status')).json()['printer']['state']).toBe('CALIBRATING');
  });

  it('is refused while rebooting', async () => {
    const s = await sim();
    const rebooting = s.reboot({ downMs: 200 });
    await new Promise((r) => setTimeout(r, 50));
    await expect(fetch(`${s.url}/api/version`)).rejects.toThrow();
    await rebooting;
    expect((await api(s, '/api/version')).status).toBe(200);
  });

  it('stops while a request hangs', async () => {
    const s = await sim();
    s.setFault('hang');
    const pending = fetch(`${s.url}/api/v1/status`).catch(() => 'closed');
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await s.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(
      await Promise.race([pending.then(() => 'settled'), new Promise((r) => setTimeout(() => r('open'), 1000))]),
    ).toBe('settled');
  });
});

/** Key paths with value types, in order; arrays by their first element: the shape a parser sees. */
function shape(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.length > 0 ? shape(value[0], `${path}[]`) : [`${path}[]`];
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => shape(v, `${path}.${k}`));
  }
  return [`${path}:${value === null ? 'null' : typeof value}`];
}
const fixtureBody = (server: 'buddy' | 'prusa-link', name: string) =>
  readFileSync(new URL(`../fixtures/prusalink/${server}/${name}.json`, import.meta.url), 'utf8');

describe('PrusaLink simulator answers as the firmware does (the shapes of tests/fixtures/prusalink)', () => {
  it('Buddy: version, status, job, transfer, storage and listings', async () => {
    const s = await sim({ model: 'MK3.9S' });
    const same = async (path: string, fixture: string, init?: RequestInit) => {
      const res = await api(s, path, init);
      const expected = fixtureBody('buddy', fixture);
      expect(shape(res.json()), `${path} vs ${fixture}`).toEqual(shape(JSON.parse(expected)));
      // Compact, as the segmented_json macros write it.
      expect(res.text).not.toMatch(/": |, "/);
      return res;
    };
    await same('/api/version', 'version-6.5.3-mk39s');
    expect((await api(s, '/api/version')).json()).toMatchObject({ hostname: 'prusa-mk4', printer: '1.3.10' });
    await same('/api/v1/status', 'status-idle');
    await same('/api/v1/storage', 'storage');
    s.startJob({ fileName: 'TabletStand3.bgcode' });
    const status = await same('/api/v1/status', 'status-printing');
    expect(status.text).toMatch(/"progress":\d+\.\d{2},/);
    await same('/api/v1/job', 'job-printing');
    s.finishJob();
    s.upload({ name: 'Slicer upload.bgcode', sizeBytes: 2_345_678, durationS: 100 });
    await same('/api/v1/status', 'status-idle-transfer');
    await same('/api/v1/transfer', 'transfer');
    // A file still uploading: read-only, refs without `download`, and no size anywhere in the listing.
    const uploading = await same('/api/v1/files/usb/', 'listing-usb-uploading');
    const partial = (uploading.json()['children'] as Record<string, unknown>[]).find((c) => c['ro'] === true);
    expect(partial).toMatchObject({ type: 'PRINT_FILE', display_name: 'Slicer upload.bgcode' });
    expect(partial!['refs']).not.toHaveProperty('download');
    expect(uploading.text).not.toContain('"size"');
    await same('/api/v1/files/usb/PARTS', 'listing-parts');
  });

  it('Prusa-Link: version, status, job paths under display names, transfer, storage, listing', async () => {
    const s = await sim({ flavour: 'rpi' });
    const same = async (path: string, fixture: string) => {
      const res = await api(s, path);
      expect(shape(res.json()), `${path} vs ${fixture}`).toEqual(shape(JSON.parse(fixtureBody('prusa-link', fixture))));
      // Python's json.dumps separators.
      expect(res.text).toMatch(/^\{"[a-z_]+": /);
      return res;
    };
    await same('/api/version', 'version');
    await same('/api/v1/status', 'status-idle');
    await same('/api/v1/storage', 'storage');
    s.startJob({ fileName: 'TabletStand3.bgcode' });
    expect((await api(s, '/api/v1/job')).json()['file']).toMatchObject({
      path: '/PrusaLink gcodes/TabletStand3.bgcode',
      display_path: '/PrusaLink gcodes/TabletStand3.bgcode',
    });
    s.finishJob();
    s.upload({ name: 'Upload.gcode', sizeBytes: 12_000, durationS: 100, print: true });
    const transfer = await same('/api/v1/status', 'status-idle-transfer');
    expect(transfer.json()['transfer']).toHaveProperty('data_transferred');
    await same('/api/v1/transfer', 'transfer');
    // Prusa-Link hides a file being uploaded (`.name.part`).
    const listing = (await api(s, '/api/v1/files/local')).json();
    expect(listing['children'].map((c: { name: string }) => c.name)).not.toContain('Upload.gcode');
    s.startJob({ storage: 'sdcard', fileName: 'BENCHY~1.GCO' });
    expect((await api(s, '/api/v1/job')).json()['file']).toMatchObject({ path: '/SD Card/BENCHY~1.GCO' });
  });

  it('runs an upload on simulated time, Print-After-Upload starting the job; an abort leaves nothing', async () => {
    const s = await sim({ speed: 1000 });
    s.upload({ name: 'Done.bgcode', sizeBytes: 1000, durationS: 50, print: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(s.state).toBe('PRINTING');
    expect((await api(s, '/api/v1/job')).json()['file']).toMatchObject({ display_name: 'Done.bgcode', size: 1000 });
    s.finishJob();
    s.upload({ name: 'Gone.bgcode', sizeBytes: 1000, durationS: 50, abortAt: 0.5 });
    await new Promise((r) => setTimeout(r, 100));
    expect((await api(s, '/api/v1/transfer')).status).toBe(204);
    const names = (await api(s, '/api/v1/files/usb/'))
      .json()
      ['children'].map((c: { display_name: string }) => c.display_name);
    expect(names).toContain('Done.bgcode');
    expect(names).not.toContain('Gone.bgcode');
  });

  it('lists a missing USB stick as an empty folder and says so in /api/v1/storage', async () => {
    const s = await sim();
    s.setUsb(null);
    expect((await api(s, '/api/v1/files/usb/')).text).toBe(fixtureBody('buddy', 'listing-usb-missing'));
    expect((await api(s, '/api/v1/storage')).text).toBe(fixtureBody('buddy', 'storage-no-usb'));
    s.setUsb([{ name: 'Stick clip.bgcode' }]);
    const listing = (await api(s, '/api/v1/files/usb/')).json();
    expect(listing['children'].map((c: { display_name: string }) => c.display_name)).toEqual(['Stick clip.bgcode']);
  });

  it('shows ATTENTION without a job on an idle printer, and power-panic recovery with the same job', async () => {
    const s = await sim({ speed: 100 });
    s.idleAttention(true);
    const idle = (await api(s, '/api/v1/status')).json();
    expect(idle['printer']['state']).toBe('ATTENTION');
    expect(idle['job']).toBeUndefined();
    s.idleAttention(false);
    const id = s.startJob({ durationS: 100_000 });
    await s.powerPanic({ downMs: 50, busyS: 2 });
    const busy = (await api(s, '/api/v1/status')).json();
    expect(busy['printer']['state']).toBe('BUSY');
    expect(busy['job']).toBeUndefined();
    await new Promise((r) => setTimeout(r, 60));
    const awaiting = (await api(s, '/api/v1/status')).json();
    expect(awaiting).toMatchObject({ printer: { state: 'ATTENTION' }, job: { id } });
    s.resumeJob();
    expect((await api(s, '/api/v1/status')).json()).toMatchObject({ printer: { state: 'PRINTING' }, job: { id } });
  });

  it('old firmware (4.6.4) answers 404 on /api/v1/status; Prusa-Link may not know its printer yet', async () => {
    const old = await sim({ firmware: '4.6.4' });
    const res = await api(old, '/api/v1/status');
    expect(res.status).toBe(404);
    expect(res.text).toBe('{"title": "404: Not Found","message":""}');
    expect((await api(old, '/api/version')).json()).toMatchObject({ hostname: 'PrusaMK4' });
    expect((await api(old, '/api/version')).json()['printer']).toBeUndefined();
    expect((await api(old, '/api/job')).text).toBe('{"state":"Operational","job": null,"progress": null}');
    const rpi = await sim({ flavour: 'rpi', unknownPrinterTypeS: 1, speed: 20 });
    expect((await api(rpi, '/api/version')).json()).toMatchObject({ original: 'Unknown printer type', firmware: null });
    await new Promise((r) => setTimeout(r, 100));
    expect((await api(rpi, '/api/version')).json()['original']).toBe('PrusaLink I3MK3S');
  });

  it('is unreachable while told so: connections reset', async () => {
    const s = await sim();
    s.setReachable(false);
    await expect(fetch(`${s.url}/api/version`)).rejects.toThrow();
    s.setReachable(true);
    expect((await api(s, '/api/version')).status).toBe(200);
  });
});
