import { createHash } from 'node:crypto';
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
    expect(await res.json()).toEqual({ title: '401: Unauthorized', message: '' });
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
    expect(listing['children']).toHaveLength(2);
    const put = (name: string, body: string, headers: Record<string, string> = {}) =>
      api(s, `/api/v1/files/usb/${name}`, { method: 'PUT', body, headers });
    expect((await put('new.bgcode', 'G1')).status).toBe(201);
    expect((await put('new.bgcode', 'G1')).status).toBe(409);
    expect((await put('new.bgcode', 'G1 X2', { Overwrite: '?1' })).status).toBe(201);
    expect((await put('new.stl', 'solid')).status).toBe(415);
    expect((await put('empty.gcode', '')).status).toBe(501);
    expect((await api(s, '/api/v1/files/usb')).json()['children']).toHaveLength(3);
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
    expect(s.startJob()).toBe(1);
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
