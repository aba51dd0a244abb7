import { createServer, type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { BambuDriver } from '../../../src/printers/bambu/driver.js';
import { ManualClock } from '../../../src/printers/clock.js';
import type { PrinterUpdate } from '../../../src/printers/types.js';
import { simulatorCertificate } from '../../../src/simulators/bambu.js';
import {
  ACCESS_CODE,
  captureLogger,
  delta,
  fullReport,
  liveRig,
  onCleanup,
  replayRig,
  simulator,
  sleep,
  versionReply,
  waitFor,
} from './helpers.js';

const TOPIC = 'device/00M09A350100123/report';

describe('BambuDriver message handling (no network)', () => {
  it('ignores reports on another serial’s topic', () => {
    const rig = replayRig('00M09A350100123');
    rig.driver.handleMessage('device/01S00C999999999/report', fullReport('p1pFinish'));
    expect(rig.driver.counters).toMatchObject({ foreignReports: 1, reportsHandled: 0 });
    expect(rig.snapshot()).toMatchObject({ state: null, online: false });
    expect(rig.events).toEqual([]);
    expect(rig.traffic.filter((t) => t.kind === 'mqtt')).toEqual([]);
  });

  it('skips malformed reports: one report_unparseable per connection, a notice with the count, and keeps working', () => {
    const rig = replayRig('00M09A350100123');
    for (const bad of ['{', '{"print":null}', '[1]', JSON.stringify({ print: { pad: 'x'.repeat(2_100_000) } })]) {
      rig.feed(bad, 1000);
    }
    rig.feed(fullReport('x1c'), 2000);
    expect(rig.driver.counters).toMatchObject({ malformedReports: 4, reportsHandled: 1 });
    expect(rig.events).toEqual([
      {
        type: 'printer_connected',
        metadata: { printer_type: 'bambu_lab', printer_model: 'X1C', connection: 'mqtt' },
      },
      {
        type: 'error_occurred',
        metadata: { error_type: 'report_unparseable', component: 'bambu_mqtt', printer_type: 'bambu_lab' },
      },
    ]);
    expect(rig.snapshot()).toMatchObject({ state: 'FINISH', progress: 100, problem: '4 malformed reports skipped' });
    // A new connection, a new count.
    rig.driver.sessionDown('closed');
    rig.driver.sessionUp();
    rig.feed('{', 3000);
    expect(rig.of('error_occurred')).toHaveLength(2);
    expect(rig.snapshot().problem).toBe('5 malformed reports skipped');
  });

  it('takes the model from get_version, the serial prefix until then', () => {
    const rig = replayRig('MOCK-A1');
    expect(rig.snapshot().model).toBe('other');
    rig.feed(versionReply('a1'), 1000);
    expect(rig.snapshot().model).toBe('A1');
    expect(rig.driver.printerModel).toBe('A1');
  });

  it('records file_uploaded for a project_file ack with the type only, nothing for a refused one', () => {
    const rig = replayRig('00M09A350100123');
    const ack = JSON.stringify({
      print: {
        command: 'project_file',
        sequence_id: '42',
        param: 'Metadata/plate_1.gcode',
        url: 'file:///sdcard/My secret part.3mf',
        subtask_name: 'My secret part',
        result: 'success',
      },
    });
    rig.feed(ack, 1000);
    rig.feed(ack, 1001);
    rig.feed(JSON.stringify({ print: { command: 'project_file', url: 'ftp:///a.gcode', result: 'fail' } }), 2000);
    expect(rig.of('file_uploaded')).toEqual([
      { type: 'file_uploaded', metadata: { printer_type: 'bambu_lab', file_type: '3mf' } },
    ]);
    expect(JSON.stringify(rig.snapshot())).not.toContain('secret');
    expect(JSON.stringify(rig.updates)).not.toContain('secret');
  });

  it('does not treat an ack as state', () => {
    const rig = replayRig('00M09A350100123');
    rig.feed(fullReport('a1'), 1000);
    rig.feed(JSON.stringify({ print: { command: 'resume', gcode_state: 'RUNNING', result: 'success' } }), 2000);
    expect(rig.snapshot().state).toBe('IDLE');
    rig.feed(delta({ gcode_state: 'RUNNING', mc_percent: 12, mc_remaining_time: 80 }), 3000);
    expect(rig.snapshot()).toMatchObject({ state: 'RUNNING', progress: 12, remaining_minutes: 80 });
  });

  it('hands every report-topic message to the traffic tap as received, and the session going up and down', () => {
    const rig = replayRig('00M09A350100123');
    const report = fullReport('x1c');
    rig.feed(report, 1000);
    rig.feed('not json', 2000);
    rig.driver.handleMessage(TOPIC, Buffer.from(delta({ bed_temper: 30 })));
    rig.driver.sessionDown('timeout');
    const seen = rig.traffic.map((t) =>
      t.kind === 'mqtt' ? [t.kind, t.payload.slice(0, 12)] : t.kind === 'link' ? [t.kind, t.up] : [t.kind],
    );
    expect(seen).toEqual([
      ['link', true],
      ['mqtt', report.slice(0, 12)],
      ['mqtt', 'not json'],
      ['mqtt', '{"print":{"b'],
      ['link', false],
    ]);
    expect(rig.traffic.at(-1)).toEqual({ kind: 'link', up: false, reason: 'timeout' });
  });

  it('sends observations with the live status, and a problem (never an event) for notices', () => {
    const rig = replayRig('00M09A350100123');
    rig.feed(fullReport('x1c', { gcode_state: 'RUNNING', mc_percent: 40, mc_remaining_time: 33 }), 1000);
    const observation = rig.updates.find((u) => u.kind === 'observation') as Extract<
      PrinterUpdate,
      { kind: 'observation' }
    >;
    expect(observation.status).toEqual({ state: 'RUNNING', progress: 40, remaining_minutes: 33 });
    expect(observation.observation).toMatchObject({ state: 'printing', jobKey: 'task:702383065', errorSlugs: [] });
    expect(rig.updates.map((u) => u.kind)).toEqual(['connected', 'seen', 'observation']);
  });

  it('watchdog (on the injected clock): offline after 60 s of silence, asked again, online with the next data', () => {
    const rig = replayRig('00M09A350100123', { timings: { watchdogMs: 60_000 } });
    rig.feed(fullReport('x1c'), 1000);
    rig.feed(versionReply('x1c'), 1100);
    rig.feed(delta({ bed_temper: 30 }), 30_000);
    rig.at(89_999);
    expect(rig.snapshot().online).toBe(true);
    rig.at(90_000);
    expect(rig.snapshot()).toMatchObject({ online: false, problem: 'no data for 60 s' });
    rig.feed(delta({ bed_temper: 31 }), 100_000);
    expect(rig.snapshot()).toMatchObject({ online: true, problem: null });
    expect(rig.events.map((e) => [e.type, e.metadata.reason ?? null])).toEqual([
      ['printer_connected', null],
      ['printer_disconnected', 'timeout'],
      ['printer_connected', null],
    ]);
  });

  it('logs as component bambu under the fleet’s printer id, never the serial', () => {
    const log = captureLogger();
    const clock = new ManualClock();
    const driver = new BambuDriver(
      {
        id: 'workshop',
        host: '127.0.0.1',
        port: 1,
        serial: '00M09A350100123',
        accessCode: ACCESS_CODE,
        tls: true,
        verifyCertificate: false,
      },
      { update: () => {}, logger: log.logger.child({ printer: 'workshop' }), clock },
    );
    driver.sessionUp();
    driver.handleMessage(TOPIC, '{');
    driver.handleMessage(TOPIC, versionReply('x1c'));
    expect(log.lines.length).toBeGreaterThan(0);
    for (const line of log.lines) expect(line).toMatchObject({ component: 'bambu', printer: 'workshop' });
    expect(log.text()).not.toContain('00M09A350100123');
  });

  it('needs no network to be built and stopped', async () => {
    const driver = new BambuDriver(
      {
        id: 'x',
        host: '127.0.0.1',
        port: 1,
        serial: '00M09A350100123',
        accessCode: ACCESS_CODE,
        tls: true,
        verifyCertificate: false,
      },
      { update: () => {}, logger: silentLogger(), clock: new ManualClock() },
    );
    await driver.stop();
    expect(driver.counters.connectAttempts).toBe(0);
  });
});

describe('BambuDriver ↔ simulator over TLS on 127.0.0.1', () => {
  it('connects once, asks for version and one full report, and records a finished job', async () => {
    const sim = await simulator({ model: 'X1C', serial: '00M09A350100123' });
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1, 8000, 'printer_connected');
    expect(d.snapshot()).toMatchObject({ online: true, state: 'IDLE', model: 'X1C', problem: null });

    sim.startJob({ seconds: 200 });
    await waitFor(() => d.of('job_completed').length === 1, 8000, 'job_completed');
    expect(d.events.map((e) => e.type)).toEqual(['printer_connected', 'job_created', 'job_completed']);
    expect(d.of('job_completed')[0]?.metadata).toMatchObject({ printer_type: 'bambu_lab', printer_model: 'X1C' });
    expect(d.of('job_completed')[0]?.metadata.duration_seconds).toBeTypeOf('number');
    expect(d.stored()).toEqual({ printer_connected: 1, job_created: 1, job_completed: 1 });
    expect(sim.stats).toMatchObject({
      connections: 1,
      maxConcurrentClients: 1,
      pushall: 1,
      getVersion: 1,
      droppedForRequestTopic: 0,
    });
    expect(d.driver.counters.malformedReports).toBe(0);
    expect(d.snapshot()).toMatchObject({ state: 'FINISH', progress: 100 });
  });

  it('records a cancel as cancelled and a failure as failed with its HMS error', async () => {
    const sim = await simulator({ model: 'P1S', serial: '01P00A123456789' });
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);

    sim.startJob({ seconds: 1000 });
    await waitFor(() => sim.state() === 'RUNNING');
    await sleep(150);
    sim.cancelJob();
    await waitFor(() => d.of('job_failed').length === 1, 8000, 'cancelled job');
    expect(d.of('job_failed')[0]?.metadata.failure_type).toBe('cancelled');

    sim.startJob({ seconds: 300, outcome: 'fail' });
    await waitFor(() => d.of('job_failed').length === 2, 8000, 'failed job');
    expect(d.of('job_failed')[1]?.metadata.failure_type).toBe('failed');
    expect(d.of('error_occurred').map((e) => e.metadata.error_type)).toEqual(['hms_0300_0100']);
    expect(d.stored()).toMatchObject({ job_created: 2, job_failed: 2, error_occurred: 1 });
  });

  it('records pause/resume as one job and a project_file as an upload', async () => {
    const sim = await simulator({ model: 'A1', serial: '039000000000001' });
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    sim.simulateProjectFile({ fileType: '3mf', seconds: 200 });
    await waitFor(() => sim.state() === 'RUNNING');
    sim.pause();
    await waitFor(() => d.snapshot().state === 'PAUSE');
    sim.resume();
    await waitFor(() => d.of('job_completed').length === 1, 8000, 'job_completed');
    expect(d.events.map((e) => e.type)).toEqual(['printer_connected', 'file_uploaded', 'job_created', 'job_completed']);
    expect(d.of('file_uploaded')[0]?.metadata).toEqual({ printer_type: 'bambu_lab', file_type: '3mf' });
    expect(d.snapshot().model).toBe('A1');
  });

  it('survives the broker closing mid-job: one disconnect, one reconnect, the job counted once', async () => {
    const sim = await simulator();
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    sim.startJob({ seconds: 400 });
    await waitFor(() => sim.state() === 'RUNNING');
    sim.dropClients();
    await waitFor(() => d.of('printer_connected').length === 2, 8000, 'reconnect');
    await waitFor(() => d.of('job_completed').length === 1, 8000, 'job_completed');
    expect(d.events.map((e) => e.type)).toEqual([
      'printer_connected',
      'job_created',
      'printer_disconnected',
      'printer_connected',
      'job_completed',
    ]);
    expect(d.of('printer_disconnected')[0]?.metadata).toMatchObject({ reason: 'closed' });
    // Never two sessions at once; a full report asked for on every session, whatever the pushall rate limit says
    // (issue 12, Bambu item 3).
    expect(sim.stats).toMatchObject({ connections: 2, maxConcurrentClients: 1, pushall: 2, getVersion: 2 });
  });

  it('stays quiet while the printer is off: one disconnect, retries with backoff, one connect when back', async () => {
    const sim = await simulator();
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    sim.setReachable(false);
    await waitFor(() => d.driver.counters.connectAttempts >= 5, 8000, 'retries');
    expect(d.snapshot()).toMatchObject({ online: false });
    expect(d.snapshot().problem).toMatch(/^unreachable/);
    sim.setReachable(true);
    await waitFor(() => d.of('printer_connected').length === 2, 8000, 'back online');
    expect(d.events.map((e) => e.type)).toEqual(['printer_connected', 'printer_disconnected', 'printer_connected']);
    expect(d.events.filter((e) => e.type === 'error_occurred')).toEqual([]);
    expect(d.snapshot().problem).toBeNull();
    const warnings = d.log.lines.filter((l) => l.level >= 40 && /unreachable/.test(l.msg));
    expect(warnings.length).toBeLessThanOrEqual(2);
  });

  it('reports a wrong access code as an auth problem once, retrying slowly, with no event storm', async () => {
    const sim = await simulator();
    const d = liveRig(sim, { accessCode: 'wrong-code', timings: { authRetryMs: 100 } });
    d.driver.start();
    await waitFor(() => sim.stats.authRejected >= 4, 8000, 'several refused logins');
    expect(d.events).toEqual([
      {
        type: 'error_occurred',
        metadata: { error_type: 'auth_failed', component: 'bambu_mqtt', printer_type: 'bambu_lab' },
      },
    ]);
    expect(d.snapshot()).toMatchObject({ online: false, state: null });
    expect(d.snapshot().problem).toMatch(/access code refused/);
    expect(d.log.lines.filter((l) => l.level >= 40 && /access code/.test(l.msg))).toHaveLength(1);
    expect(d.log.text()).not.toContain('wrong-code');
    expect(d.log.text()).not.toContain(sim.serial);
  });

  it('fails TLS with verify_certificate against a self-signed printer, and says so', async () => {
    const sim = await simulator();
    const d = liveRig(sim, { verifyCertificate: true });
    d.driver.start();
    await waitFor(() => d.driver.counters.connectAttempts >= 3, 8000, 'retries');
    expect(d.events).toEqual([
      {
        type: 'error_occurred',
        metadata: { error_type: 'tls_failed', component: 'bambu_mqtt', printer_type: 'bambu_lab' },
      },
    ]);
    expect(d.snapshot().problem).toMatch(/^TLS failed \(/);
    expect(sim.stats.connections).toBe(0);
  });

  it('verifies the chain and the serial as server name when given the right CA', async () => {
    const serial = '01P00A555555555';
    const ca = await generate([{ name: 'commonName', value: 'Test BBL CA' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    const leaf = await generate([{ name: 'commonName', value: serial }], {
      keySize: 2048,
      algorithm: 'sha256',
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
      ],
    });
    const sim = await simulator({ serial, model: 'P1S', certificate: { key: leaf.private, cert: leaf.cert } });
    const good = liveRig(sim, { verifyCertificate: true, ca: ca.cert });
    good.driver.start();
    await waitFor(() => good.of('printer_connected').length === 1, 8000, 'verified connect');

    // Same chain, but the certificate names a different printer.
    const other = liveRig({ port: sim.port, serial: '01P00A000000000' }, { verifyCertificate: true, ca: ca.cert });
    other.driver.start();
    await waitFor(() => other.of('error_occurred').length === 1, 8000, 'name mismatch');
    expect(other.of('error_occurred')[0]?.metadata.error_type).toBe('tls_failed');
    expect(other.snapshot().problem).toMatch(/TLS failed/);
  });

  it('watchdog: a printer that goes silent is marked offline and asked to push again', async () => {
    const sim = await simulator();
    const d = liveRig(sim, { timings: { watchdogMs: 400 } });
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    sim.silence(true);
    await waitFor(() => d.of('printer_disconnected').length === 1, 8000, 'watchdog');
    expect(d.of('printer_disconnected')[0]?.metadata).toMatchObject({ reason: 'timeout' });
    expect(d.snapshot()).toMatchObject({ online: false, problem: 'no data for 0 s' });
    await waitFor(() => sim.stats.pushingStart >= 1, 8000, 'pushing.start');
    sim.silence(false);
    await waitFor(() => d.of('printer_connected').length === 2, 8000, 'data again');
    expect(d.snapshot()).toMatchObject({ online: true, problem: null });
    expect(d.events.map((e) => e.type)).toEqual(['printer_connected', 'printer_disconnected', 'printer_connected']);
  });

  it('a broker that accepts but never sends: offline, no events, a fresh session after two silent periods', async () => {
    const sim = await simulator();
    sim.silence(true);
    const d = liveRig(sim, { timings: { watchdogMs: 200 } });
    d.driver.start();
    await waitFor(() => d.driver.counters.sessions >= 2, 8000, 'second session');
    expect(d.events).toEqual([]);
    expect(d.snapshot()).toMatchObject({ online: false, state: null, problem: 'no data for 0 s' });
    expect(sim.stats.pushingStart).toBeGreaterThanOrEqual(1);
    expect(sim.stats.maxConcurrentClients).toBe(1);
  });

  it('a TLS server that never answers the MQTT CONNECT times out and retries', async () => {
    const { key, cert } = await simulatorCertificate('01S00C000000077');
    const sockets = new Set<Socket>();
    const server = tls.createServer({ key, cert }, (socket) => socket.on('error', () => {}));
    // Raw sockets, tracked before their handshake, so that closing the server never waits on one.
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    );
    const port = (server.address() as { port: number }).port;
    const d = liveRig({ port, serial: '01S00C000000077' }, { timings: { connectTimeoutMs: 200 } });
    d.driver.start();
    await waitFor(() => d.driver.counters.connectAttempts >= 2, 8000, 'retry after connack timeout');
    expect(d.events).toEqual([]);
    expect(d.snapshot().problem).toMatch(/^unreachable \(CONNACK_TIMEOUT\)/);
  });

  it('skips malformed reports from the printer and keeps tracking', async () => {
    const sim = await simulator();
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    await sim.publishRaw('this is not json');
    await sim.publishRaw(JSON.stringify({ print: { command: 'push_status', pad: 'x'.repeat(2 * 1024 * 1024) } }));
    await sim.publishRaw('{"print":null}');
    await waitFor(() => d.driver.counters.malformedReports === 3, 8000, 'malformed counted');
    sim.startJob({ seconds: 200 });
    await waitFor(() => d.of('job_completed').length === 1, 8000, 'job_completed');
    expect(d.of('error_occurred').map((e) => e.metadata.error_type)).toEqual(['report_unparseable']);
    expect(d.snapshot().problem).toBe('3 malformed reports skipped');
    expect(d.snapshot().online).toBe(true);
  });

  it('firmware that ignores pushall and get_version: a notice naming why, and jobs counted from deltas', async () => {
    const sim = await simulator({ serial: '01S00C000000042', ignoreRequests: true });
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    await waitFor(() => d.snapshot().problem !== null, 8000, 'the notice');
    expect(d.snapshot().problem).toMatch(/^printer ignores pushall and get_version \(usual when LAN-only mode is off/);
    expect(d.snapshot()).toMatchObject({ model: 'P1P', state: null });
    sim.startJob({ seconds: 200 });
    await waitFor(() => d.of('job_completed').length === 1, 8000, 'job_completed');
    expect(d.events.map((e) => e.type)).toEqual(['printer_connected', 'job_created', 'job_completed']);
    expect(sim.stats).toMatchObject({ pushall: 1, getVersion: 1 });
  });

  it('talks plain MQTT when tls is off', async () => {
    const sim = await simulator({ tls: false });
    expect(sim.url).toMatch(/^mqtt:\/\//);
    const d = liveRig(sim, { tls: false });
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    expect(d.snapshot().state).toBe('IDLE');
  });

  it('keeps other printers unaffected by one that is misconfigured', async () => {
    const good = await simulator({ serial: '01P00A111111111', model: 'P1S' });
    const bad = await simulator({ serial: '039000000000002', model: 'A1' });
    const a = liveRig(good);
    const b = liveRig(bad, { accessCode: 'nope' });
    a.driver.start();
    b.driver.start();
    await waitFor(() => a.of('printer_connected').length === 1);
    good.startJob({ seconds: 200 });
    await waitFor(() => a.of('job_completed').length === 1);
    expect(a.events.map((e) => e.type)).toEqual(['printer_connected', 'job_created', 'job_completed']);
    expect(b.events.map((e) => e.metadata.error_type)).toEqual(['auth_failed']);
  });

  it('stop() ends the session, timers and listeners quickly, also while waiting to reconnect', async () => {
    const sim = await simulator();
    const d = liveRig(sim);
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1);
    let t = Date.now();
    await d.driver.stop();
    expect(Date.now() - t).toBeLessThan(2000);
    await waitFor(() => sim.connectedClients() === 0, 2000, 'session closed');
    await sleep(300);
    expect(d.driver.counters).toMatchObject({ sessions: 1, connectAttempts: 1 });

    const unreachable = await new Promise<Server>((resolve) => {
      const s = createServer((socket) => socket.destroy());
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    onCleanup(() => new Promise<void>((resolve) => unreachable.close(() => resolve())));
    const e = liveRig({ port: (unreachable.address() as { port: number }).port, serial: sim.serial });
    e.driver.start();
    await waitFor(() => e.driver.counters.connectAttempts >= 2);
    t = Date.now();
    await e.driver.stop();
    expect(Date.now() - t).toBeLessThan(2000);
    const attempts = e.driver.counters.connectAttempts;
    await sleep(600);
    expect(e.driver.counters.connectAttempts).toBe(attempts);
  });
});
