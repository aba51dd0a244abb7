/**
 * The bridge against a real broker: mosquitto over TLS with a CN = serial certificate and a bblp password, and a
 * "printer" client that answers requests with the real fixture payloads. Skipped (with a message) when mosquitto is
 * not installed, failed under CI: `apt-get install -y mosquitto`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { simulatorCertificate } from '../../../src/simulators/bambu.js';
import { tempDir } from '../../helpers.js';
import { findExecutable, requireTool } from '../../requirements.js';
import { ACCESS_CODE, delta, fullReport, liveRig, onCleanup, versionReply, waitFor } from './helpers.js';

const mosquitto = findExecutable('mosquitto');
const mosquittoPasswd = findExecutable('mosquitto_passwd');
const haveMosquitto = requireTool(
  'mosquitto and mosquitto_passwd',
  () => mosquitto !== null && mosquittoPasswd !== null,
  'apt-get install -y mosquitto',
);

const SERIAL = '01P00A987654321';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function startMosquitto(): Promise<{ port: number; cert: string }> {
  const dir = tempDir('bambu-mosquitto-');
  const { key, cert } = await simulatorCertificate(SERIAL);
  writeFileSync(join(dir, 'key.pem'), key);
  writeFileSync(join(dir, 'cert.pem'), cert);
  execFileSync(mosquittoPasswd as string, ['-b', '-c', join(dir, 'passwd'), 'bblp', ACCESS_CODE]);
  const port = await freePort();
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [
      // Started as root, mosquitto drops to the `mosquitto` user, which cannot read our private temp dir.
      process.getuid?.() === 0 ? 'user root' : '',
      'persistence false',
      'allow_anonymous false',
      `password_file ${join(dir, 'passwd')}`,
      `listener ${port} 127.0.0.1`,
      `certfile ${join(dir, 'cert.pem')}`,
      `keyfile ${join(dir, 'key.pem')}`,
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(mosquitto as string, ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  );
  await waitFor(() => child.exitCode === null, 100);
  const deadline = Date.now() + 5000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) break;
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`mosquitto did not start: ${stderr.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, cert };
}

/** The printer's side: answers pushall and get_version with fixture payloads, publishes what the test says. */
async function fakePrinter(port: number): Promise<{ publish: (payload: string) => Promise<void>; requests: string[] }> {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port,
    username: 'bblp',
    password: ACCESS_CODE,
    rejectUnauthorized: false,
    reconnectPeriod: 0,
  });
  onCleanup(() => new Promise<void>((resolve) => client.end(true, {}, () => resolve())));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const report = `device/${SERIAL}/report`;
  const publish = (payload: string) =>
    new Promise<void>((resolve) => client.publish(report, payload, { qos: 0 }, () => resolve()));
  const requests: string[] = [];
  client.on('message', (_topic, payload) => {
    const body = JSON.parse(payload.toString('utf8')) as {
      pushing?: { command?: string };
      info?: { command?: string };
    };
    const command = body.pushing?.command ?? body.info?.command ?? 'other';
    requests.push(command);
    if (command === 'pushall') void publish(fullReport('p1pFinish'));
    if (command === 'get_version') void publish(versionReply('p1pFinish'));
  });
  await new Promise<void>((resolve) => client.subscribe(`device/${SERIAL}/request`, { qos: 1 }, () => resolve()));
  return { publish, requests };
}

describe.skipIf(!haveMosquitto)('BambuDriver against a real mosquitto over TLS', () => {
  it.each([false, true])(
    'verify_certificate %s: baseline FINISH counts nothing, a new job is recorded once',
    async (verify) => {
      const broker = await startMosquitto();
      const printer = await fakePrinter(broker.port);
      const d = liveRig(
        { port: broker.port, serial: SERIAL },
        // With verification the self-signed printer certificate is the trust anchor and the serial the server name.
        verify ? { verifyCertificate: true, ca: broker.cert } : {},
      );
      d.driver.start();
      await waitFor(() => d.of('printer_connected').length === 1, 8000, 'printer_connected');
      // Both answers are in (they race each other through the broker).
      await waitFor(() => d.snapshot().model === 'P1P' && d.snapshot().state === 'FINISH');
      expect(printer.requests).toContain('get_version');
      expect(printer.requests.filter((r) => r === 'pushall')).toHaveLength(1);
      expect(d.snapshot()).toMatchObject({ state: 'FINISH', online: true, problem: null });

      await printer.publish(fullReport('p1pFinish'));
      await printer.publish(delta({ gcode_state: 'PREPARE', task_id: '990000001', gcode_file_prepare_percent: '10' }));
      await printer.publish(delta({ gcode_state: 'RUNNING', mc_percent: 50 }));
      await printer.publish(delta({ hms: [{ attr: 50331904, code: 65543 }] }));
      await printer.publish(delta({ gcode_state: 'FINISH', mc_percent: 100 }));
      await printer.publish(fullReport('p1pFinish', { task_id: '990000001' }));
      await waitFor(() => d.of('job_completed').length === 1, 8000, 'job_completed');
      await waitFor(() => d.driver.counters.reportsHandled >= 7, 4000, 'all reports');
      expect(d.events.map((e) => e.type)).toEqual([
        'printer_connected',
        'job_created',
        'error_occurred',
        'job_completed',
      ]);
      expect(d.stored()).toEqual({ printer_connected: 1, job_created: 1, error_occurred: 1, job_completed: 1 });
    },
  );

  it('a wrong access code is CONNACK 5 from mosquitto: auth problem, one event', async () => {
    const broker = await startMosquitto();
    const d = liveRig({ port: broker.port, serial: SERIAL }, { accessCode: 'wrong', timings: { authRetryMs: 100 } });
    d.driver.start();
    await waitFor(() => d.driver.counters.connectAttempts >= 3, 8000, 'retries');
    expect(d.events.map((e) => e.metadata.error_type)).toEqual(['auth_failed']);
    expect(d.snapshot().problem).toMatch(/access code refused/);
  });
});
