import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseReport } from '../../src/printers/bambu/report.js';
import {
  type BambuSimulator,
  type BambuSimulatorOptions,
  CANCEL_PRINT_ERROR,
  SCENARIOS,
  startBambuSimulator,
} from '../../src/simulators/bambu.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bambu');
type Json = Record<string, unknown>;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const SERIAL = '01S00C123456789';
const CODE = '87654321';

async function sim(opts: Partial<BambuSimulatorOptions> = {}): Promise<BambuSimulator> {
  const s = await startBambuSimulator({
    serial: SERIAL,
    accessCode: CODE,
    model: 'P1P',
    speed: 100,
    tickMs: 50,
    ...opts,
  });
  cleanups.push(() => s.stop());
  return s;
}

interface Session {
  client: MqttClient;
  messages: Json[];
  request(body: object): void;
  closed: Promise<void>;
}

/** A raw mqtt.js client; resolves after CONNACK or rejects with the refusal. */
function session(
  s: BambuSimulator,
  opts: { username?: string; password?: string; subscribe?: string } = {},
): Promise<Session> {
  const client = mqtt.connect(s.url, {
    username: opts.username ?? 'bblp',
    password: opts.password ?? CODE,
    rejectUnauthorized: false,
    reconnectPeriod: 0,
    protocolVersion: 4,
    connectTimeout: 3000,
  });
  cleanups.push(() => new Promise<void>((resolve) => client.end(true, {}, () => resolve())));
  const messages: Json[] = [];
  client.on('message', (_topic, payload) => messages.push(JSON.parse(payload.toString('utf8')) as Json));
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    client.once('error', reject);
    client.once('connect', () => {
      client.subscribe(opts.subscribe ?? `device/${s.serial}/report`, () => {
        resolve({
          client,
          messages,
          closed,
          request: (body) => client.publish(`device/${s.serial}/request`, JSON.stringify(body)),
        });
      });
    });
  });
}

async function until(check: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const prints = (m: Json[]) => m.map((x) => x.print as Json | undefined).filter((p): p is Json => p !== undefined);

describe('Bambu Lab simulator', () => {
  it('presents a self-signed certificate with CN = serial', async () => {
    const s = await sim();
    const cert = new X509Certificate(s.certificate);
    expect(cert.subject).toBe(`CN=${SERIAL}`);
    expect(cert.issuer).toBe(`CN=${SERIAL}`);
    expect(s.url).toBe(`mqtts://127.0.0.1:${s.port}`);
  });

  it.each([
    ['a wrong access code', { password: 'wrong' }],
    ['another user name', { username: 'admin' }],
  ])('refuses %s with CONNACK 5', async (_label, creds) => {
    const s = await sim();
    await expect(session(s, creds)).rejects.toMatchObject({ code: 5 });
    expect(s.stats.authRejected).toBe(1);
  });

  it.each([
    ['P1P', 'ha-bambulab__MOCK-P1PNOAMS.json'],
    ['A1', 'ha-bambulab__MOCK-A1.json'],
    ['X1C', 'ha-bambulab__2AMS1-1AMS2-1AMSHT.json'],
  ] as const)('%s: answers pushall with a full report carrying every key of the real one', async (model, file) => {
    const s = await sim({ model });
    const c = await session(s);
    c.request({ pushing: { sequence_id: '0', command: 'pushall' } });
    await until(() => prints(c.messages).some((p) => p.msg === 0));
    const full = prints(c.messages).find((p) => p.msg === 0) as Json;
    const fixture = JSON.parse(readFileSync(join(fixtures, file), 'utf8')) as Json;
    const real = ((fixture.pushall as Json | undefined)?.print ?? fixture.push_all) as Json;
    expect(Object.keys(real).filter((k) => !(k in full))).toEqual([]);
    expect(full).toMatchObject({ command: 'push_status', msg: 0, gcode_state: 'IDLE' });
    expect(s.stats.pushall).toBe(1);
  });

  it.each([
    ['X1C', 'X1C'],
    ['P1S', 'P1S'],
    ['A1', 'A1'],
    ['P2S', 'P2S'],
    ['H2S', 'H2S'],
    ['X2D', 'X2D'],
    ['A2L', 'A2L'],
  ] as const)('%s: answers get_version so the bridge finds model %s', async (model, expected) => {
    const s = await sim({ model });
    const c = await session(s);
    c.request({ info: { sequence_id: '0', command: 'get_version' } });
    await until(() => c.messages.some((m) => m.info !== undefined));
    const reply = c.messages.find((m) => m.info !== undefined);
    expect(parseReport(JSON.stringify(reply))).toEqual({ kind: 'version', model: expected });
  });

  it('runs a job IDLE → PREPARE (prepare percent rising) → RUNNING → FINISH in msg 1 deltas of changed keys', async () => {
    const s = await sim();
    const c = await session(s);
    s.startJob({ seconds: 200 });
    await until(() => s.state() === 'FINISH');
    await new Promise((r) => setTimeout(r, 100));
    const deltas = prints(c.messages);
    expect(deltas.every((d) => d.msg === 1 && d.command === 'push_status')).toBe(true);
    // Static blocks are never repeated in deltas.
    expect(deltas.some((d) => 'ams' in d || 'nozzle_diameter' in d)).toBe(false);
    const states = deltas.map((d) => d.gcode_state).filter((x) => x !== undefined);
    expect(states).toEqual(['PREPARE', 'RUNNING', 'FINISH']);
    const prepare = deltas.map((d) => d.gcode_file_prepare_percent).filter((x): x is string => typeof x === 'string');
    const numbers = prepare.map(Number);
    expect(numbers.length).toBeGreaterThan(2);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
    const last = deltas.filter((d) => d.mc_percent !== undefined).at(-1);
    expect(last?.mc_percent).toBe(100);
  });

  it('cancels with the transient print_error before FAILED, then resets it', async () => {
    const s = await sim();
    const c = await session(s);
    s.startJob({ seconds: 1000 });
    await until(() => s.state() === 'RUNNING');
    s.cancelJob();
    await until(() => s.state() === 'FAILED');
    await until(() => prints(c.messages).filter((p) => p.print_error !== undefined).length >= 2);
    const relevant = prints(c.messages)
      .filter((p) => p.print_error !== undefined || p.gcode_state !== undefined)
      .map((p) => [p.gcode_state ?? null, p.print_error ?? null]);
    const cancelAt = relevant.findIndex(([, e]) => e === CANCEL_PRINT_ERROR);
    const failedAt = relevant.findIndex(([st]) => st === 'FAILED');
    const resetAt = relevant.findIndex(([, e], i) => i > cancelAt && e === 0);
    expect(cancelAt).toBeGreaterThan(-1);
    expect(failedAt).toBeGreaterThan(cancelAt);
    expect(resetAt).toBeGreaterThan(cancelAt);
  });

  it('P2S: cancels as the real one does: FAILED with print_error 0, the code (and "16396") 4.6 s later, then reset', async () => {
    const s = await sim({ model: 'P2S', serial: '22E00A000000001' });
    const c = await session(s);
    s.startJob({ seconds: 1000 });
    await until(() => s.state() === 'RUNNING');
    s.cancelJob();
    await until(() => prints(c.messages).some((p) => p.print_error === 0 && p.mc_print_error_code === '0'));
    const states = prints(c.messages)
      .filter((p) => p.gcode_state !== undefined || p.print_error !== undefined)
      .map((p) => [p.gcode_state ?? null, p.print_error ?? null, p.mc_print_error_code ?? null, p.fail_reason ?? null]);
    const failedAt = states.findIndex(([st]) => st === 'FAILED');
    const codeAt = states.findIndex(([, e]) => e === CANCEL_PRINT_ERROR);
    expect(failedAt).toBeGreaterThan(-1);
    expect(codeAt).toBeGreaterThan(failedAt);
    expect(states[codeAt]).toEqual([null, CANCEL_PRINT_ERROR, '16396', '50348044']);
    // fail_reason keeps the code after the reset (H2C's real report).
    expect(s.printer.fields).toMatchObject({ print_error: 0, fail_reason: '50348044', gcode_state: 'FAILED' });
    expect(s.counts).toMatchObject({ started: 1, cancelled: 1 });
  });

  it('A1: cancels with the bare code first, twice, then FAILED', async () => {
    const s = await sim({ model: 'A1', serial: '03900A000000001' });
    const raw: string[] = [];
    const c = await session(s);
    c.client.on('message', (_t, p) => raw.push(p.toString('utf8')));
    s.startJob({ seconds: 1000 });
    await until(() => s.state() === 'RUNNING');
    s.cancelJob();
    await until(() => raw.some((r) => r.includes('"gcode_state":"FAILED"')));
    const bare = raw.filter((r) => r === '{"print":{"print_error":50348044}}');
    expect(bare).toHaveLength(2);
    const failed = raw.findIndex((r) => r.includes('"gcode_state":"FAILED"'));
    expect(raw.lastIndexOf(bare[1] as string)).toBeLessThan(failed);
  });

  it('acks Bambu Studio’s project_file with sequence_id "20001" every time', async () => {
    const s = await sim();
    const c = await session(s);
    s.simulateProjectFile({ seconds: 100 });
    await until(() => s.state() === 'FINISH');
    s.simulateProjectFile({ seconds: 100 });
    await until(() => prints(c.messages).filter((p) => p.command === 'project_file').length === 2);
    const acks = prints(c.messages).filter((p) => p.command === 'project_file');
    expect(acks.map((a) => a.sequence_id)).toEqual(['20001', '20001']);
    expect(parseReport(JSON.stringify({ print: acks[0] }))).toMatchObject({
      kind: 'ack',
      fileType: '3mf',
      success: true,
    });
    expect(s.counts.uploads).toBe(2);
  });

  it('powers on through INIT; ignores pushall and get_version when told to (cloud-mode firmware)', async () => {
    const s = await sim({ initialState: 'INIT', bootSeconds: 20, ignoreRequests: true });
    expect(s.state()).toBe('INIT');
    const c = await session(s);
    c.request({ pushing: { sequence_id: '0', command: 'pushall' } });
    c.request({ info: { sequence_id: '0', command: 'get_version' } });
    await until(() => s.state() === 'IDLE');
    await until(() => prints(c.messages).some((p) => p.gcode_state === 'IDLE'));
    expect(s.stats).toMatchObject({ pushall: 1, getVersion: 1 });
    expect(prints(c.messages).every((p) => p.msg === 1)).toBe(true);
    expect(c.messages.some((m) => m.info !== undefined)).toBe(false);
  });

  it('keeps HMS entries from before across jobs; a failure’s entry clears when the next job starts', async () => {
    const old = { attr: 83887616, code: 131184, ts_boot: 33429, ts_unix: '20260708111841' };
    const s = await sim({ hms: [old] });
    s.startJob({ seconds: 100, outcome: 'fail' });
    await until(() => s.state() === 'FAILED');
    expect(s.printer.fields.hms).toEqual([old, { attr: 50331904, code: 65543 }]);
    s.startJob({ seconds: 100 });
    expect(s.printer.fields.hms).toEqual([old]);
    await until(() => s.state() === 'FINISH');
    expect(s.printer.fields.hms).toEqual([old]);
  });

  it('runs calibrations under print_type "system" with firmware G-code, not counted as jobs', async () => {
    const s = await sim();
    const c = await session(s);
    s.startJob({ system: true, seconds: 100 });
    expect(s.printer.fields).toMatchObject({ gcode_state: 'RUNNING', print_type: 'system' });
    await until(() => s.state() === 'FINISH');
    await until(() => prints(c.messages).some((p) => p.gcode_state === 'FINISH'));
    expect(prints(c.messages).find((p) => p.gcode_state === 'RUNNING')).toMatchObject({ print_type: 'system' });
    expect(s.counts).toMatchObject({ started: 0, systemRuns: 1, finished: 0 });
  });

  it('runs each scripted scenario of issue 12 to its end', async () => {
    const s = await sim({ speed: 400, tickMs: 20 });
    for (const name of Object.keys(SCENARIOS) as (keyof typeof SCENARIOS)[]) await s.runScenario(name);
    expect(s.state()).toMatch(/^(FINISH|IDLE)$/);
    // cancel 1, slicer 3, outage 2, ignores 1, hms 2, power cut 2, system 1 (+2 calibrations).
    expect(s.counts).toMatchObject({ started: 12, systemRuns: 2, finished: 10, cancelled: 1, uploads: 3 });
  });

  it('echoes print commands as acks and acts on them', async () => {
    const s = await sim();
    const c = await session(s);
    s.startJob({ seconds: 1000 });
    await until(() => s.state() === 'RUNNING');
    c.request({ print: { sequence_id: '5', command: 'pause', param: '' } });
    await until(() => s.state() === 'PAUSE');
    await until(() => prints(c.messages).some((p) => p.command === 'pause'));
    expect(prints(c.messages).find((p) => p.command === 'pause')).toMatchObject({
      sequence_id: '5',
      result: 'success',
    });
    c.request({ print: { sequence_id: '6', command: 'resume', param: '' } });
    await until(() => s.state() === 'RUNNING');
  });

  it.each(['#', `device/${SERIAL}/request`, 'device/+/request', `device/${SERIAL}/+`])(
    'drops a client that subscribes to %s',
    async (topic) => {
      const s = await sim();
      const c = await session(s, { subscribe: topic }).catch(() => null);
      if (c) await c.closed;
      expect(s.stats.droppedForRequestTopic).toBe(1);
      await until(() => s.connectedClients() === 0);
    },
  );

  it('limits concurrent clients (CONNACK 3 beyond the limit)', async () => {
    const s = await sim({ maxClients: 2 });
    await session(s);
    await session(s);
    await expect(session(s)).rejects.toMatchObject({ code: 3 });
    expect(s.stats.maxConcurrentClients).toBe(2);
  });

  it('silence, dropClients and setReachable act like a printer misbehaving', async () => {
    const s = await sim();
    const c = await session(s);
    s.silence(true);
    // A report already on its way over TLS when the printer went quiet still arrives.
    await new Promise((r) => setTimeout(r, 150));
    const before = c.messages.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(c.messages.length).toBe(before);
    s.silence(false);
    await until(() => c.messages.length > before);
    s.dropClients();
    await c.closed;
    s.setReachable(false);
    await expect(session(s)).rejects.toBeDefined();
    s.setReachable(true);
    await session(s);
  });

  it('publishes raw payloads and project_file acks for tests', async () => {
    const s = await sim();
    const raw: string[] = [];
    const c = await session(s);
    c.client.on('message', (_t, p) => raw.push(p.toString('utf8')));
    await s.publishRaw('{"print":{"print_error":50348044}}');
    s.simulateProjectFile({ fileType: 'gcode', seconds: 100 });
    await until(() => raw.some((r) => r.includes('project_file')));
    const ack = JSON.parse(raw.find((r) => r.includes('project_file')) as string) as Json;
    expect(parseReport(JSON.stringify(ack))).toMatchObject({ kind: 'ack', command: 'project_file', fileType: 'gcode' });
    // A tick's delta may come first.
    expect(raw).toContain('{"print":{"print_error":50348044}}');
    await until(() => s.state() !== 'IDLE');
  });

  it('serves plain MQTT when tls is off', async () => {
    const s = await sim({ tls: false });
    expect(s.url.startsWith('mqtt://')).toBe(true);
    expect(s.certificate).toBe('');
    const c = await session(s);
    c.request({ pushing: { sequence_id: '0', command: 'pushall' } });
    await until(() => prints(c.messages).some((p) => p.msg === 0));
  });

  it('starts jobs by itself with autoJobs', async () => {
    const s = await sim({ autoJobs: true, idleSeconds: 10, jobSeconds: 100 });
    await until(() => s.state() !== 'IDLE', 4000);
    await until(() => ['FINISH', 'FAILED'].includes(s.state()), 6000);
  });

  it('can start in a running job (for restart-mid-job tests)', async () => {
    const s = await sim({ initialState: 'RUNNING', jobSeconds: 400 });
    expect(s.state()).toBe('RUNNING');
    const c = await session(s);
    c.request({ pushing: { sequence_id: '0', command: 'pushall' } });
    await until(() => prints(c.messages).some((p) => p.msg === 0));
    const full = prints(c.messages).find((p) => p.msg === 0) as Json;
    expect(full.mc_percent).toBeGreaterThan(30);
    expect(full.task_id).not.toBe('0');
  });
});
