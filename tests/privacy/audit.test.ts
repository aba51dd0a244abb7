/**
 * Privacy audit (issue 8): every input path is seeded with recognisable secrets and personal data, the daemon runs jobs,
 * errors and uploads on simulated printers, then exports, previews, submits to the real collector and mirrors on a real
 * mosquitto. None of the seeded values may appear in the SQLite files (raw bytes), the export, the preview, what the
 * collector received or stored, any MQTT message, or the log output; the logs may only show redaction markers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { type RunningCollector, startCollector } from '../../src/collector/server.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { type BambuSimulator, startBambuSimulator } from '../../src/simulators/bambu.js';
import { type PrusaLinkSimulator, startPrusaLinkSimulator } from '../../src/simulators/prusalink.js';

const SEEDS = {
  bambuSerial: '01S00C9PRIVATE7',
  accessCode: 'Zq8SECRETcode',
  prusaUser: 'erinprivate',
  prusaPassword: 'pw-SECRET-4711',
  apiToken: 'tok-SECRET-api-0042',
  mqttUser: 'frank-mqtt-user',
  mqttPassword: 'mqtt-SECRET-pass',
  // Printers on their own loopback addresses, so the addresses are recognisable (Linux routes 127/8 to lo).
  bambuIp: '127.0.0.77',
  prusaIp: '127.0.0.78',
  jobEmail: 'alice.smith@example.com',
  fileEmail: 'bob.jones@example.org',
  bambuJobEmail: 'carol.white@example.net',
  headerUser: 'dave.private@example.com',
  headerDisplayName: 'Dave Privatperson',
} as const;

const mosquittoPath = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
});
if (!mosquittoPath) console.warn('privacy audit: mosquitto not installed, the MQTT mirror part is skipped');

// Not tests/helpers' tempDir: that one is removed after each test, and this audit reads the files in a later test.
const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  seen: () => unknown = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await seen())}`);
    await sleep(50);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startMosquitto(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      process.getuid?.() === 0 ? 'user root' : '',
      'persistence false',
      'allow_anonymous true',
      `listener ${port} 127.0.0.1`,
      'log_dest none',
      '',
    ].join('\n'),
  );
  const child = spawn(mosquittoPath as string, ['-c', conf], { stdio: 'ignore' });
  await waitFor('mosquitto', async () => {
    const probe = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 500 });
    const ok = await new Promise<boolean>((resolve) => {
      probe.once('connect', () => resolve(true));
      probe.once('error', () => resolve(false));
      probe.once('close', () => resolve(false));
    });
    probe.end(true);
    return ok;
  });
  return { port, child };
}

/** A loopback proxy in front of the collector that keeps every request exactly as the daemon sent it. */
async function recordingProxy(target: string): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push(`${req.method} ${req.url}\n${JSON.stringify(req.headers)}\n${body.toString('utf8')}`);
      const headers: IncomingHttpHeaders = { ...req.headers, host: upstream.host };
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.writeHead(502).end());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

/** Every file under dir as raw bytes decoded as latin1, so any byte sequence of a seed is found. */
function rawFiles(dir: string): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) out.push({ file: path, text: readFileSync(path).toString('latin1') });
  }
  return out;
}

function leaks(where: string, text: string): string[] {
  return Object.entries(SEEDS)
    .filter(([, value]) => text.toLowerCase().includes(value.toLowerCase()))
    .map(([name]) => `${name} in ${where}`);
}

describe('privacy audit: no seeded secret or personal value leaves its input', () => {
  const dataDir = tempDir('privacy-audit-');
  const collectorDir = tempDir('privacy-collector-');
  const logs: string[] = [];
  const mqttMessages: string[] = [];
  let bambu: BambuSimulator;
  let prusa: PrusaLinkSimulator;
  let collector: RunningCollector;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let broker: { port: number; child: ChildProcess } | null = null;
  let observer: mqtt.MqttClient | null = null;
  let daemon: Daemon;
  let base = '';
  const outputs: Record<string, string> = {};

  const piiHeaders = {
    'X-Remote-User-Id': SEEDS.headerUser,
    'X-Remote-User-Name': SEEDS.headerUser,
    'X-Remote-User-Display-Name': SEEDS.headerDisplayName,
    Authorization: `Bearer ${SEEDS.apiToken}`,
  };
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${base}/api/v1/${path}`, { ...init, headers: { ...piiHeaders, ...(init.headers ?? {}) } });

  beforeAll(async () => {
    collector = await startCollector({ port: 0, host: '127.0.0.1', dataDir: collectorDir, k: 2, logger: logSink() });
    proxy = await recordingProxy(collector.url);
    if (mosquittoPath) {
      broker = await startMosquitto(tempDir('privacy-mosquitto-'));
      observer = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, { reconnectPeriod: 0 });
      await new Promise<void>((resolve) => observer?.once('connect', () => resolve()));
      observer.on('message', (topic, payload) => mqttMessages.push(`${topic} ${payload.toString('utf8')}`));
      await observer.subscribeAsync('#');
    }
    bambu = await startBambuSimulator({
      serial: SEEDS.bambuSerial,
      accessCode: SEEDS.accessCode,
      model: 'X1C',
      host: SEEDS.bambuIp,
      port: 0,
      speed: 200,
      tickMs: 50,
    });
    prusa = await startPrusaLinkSimulator({
      username: SEEDS.prusaUser,
      password: SEEDS.prusaPassword,
      host: SEEDS.prusaIp,
      port: 0,
      speed: 200,
    });
    const config = parseConfig({
      log_level: 'debug',
      timezone: 'Europe/Berlin',
      api_token: SEEDS.apiToken,
      printers: [
        {
          name: 'Workshop X1C',
          type: 'bambu_lab',
          host: SEEDS.bambuIp,
          port: bambu.port,
          serial: SEEDS.bambuSerial,
          access_code: SEEDS.accessCode,
        },
        {
          name: 'Garage MK4',
          type: 'prusa',
          host: `http://${SEEDS.prusaIp}:${prusa.port}`,
          username: SEEDS.prusaUser,
          password: SEEDS.prusaPassword,
          poll_interval_s: 1,
        },
      ],
      usage_statistics: { endpoint: `${proxy.url}/v1/submit` },
      mqtt: broker
        ? {
            enabled: true,
            url: `mqtt://127.0.0.1:${broker.port}`,
            username: SEEDS.mqttUser,
            password: SEEDS.mqttPassword,
          }
        : { enabled: false },
    });
    // The real logger with its real redaction, at debug level, writing into memory.
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => logs.push(line) } });
    // The daemon logs its effective config at start, with the seeds in it: that must come out redacted.
    logger.info({ config }, 'configuration');
    daemon = new Daemon({ config, dataDir, port: 0, host: '127.0.0.1', logger, createDriver, env: {} });
    const { port } = await daemon.start();
    base = `http://127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    observer?.end(true);
    broker?.child.kill('SIGTERM');
    await bambu?.stop();
    await prusa?.stop();
    await new Promise<void>((resolve) => (proxy ? proxy.server.close(() => resolve()) : resolve()));
    await collector?.stop();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });

  function logSink() {
    return createLogger({ level: 'debug', destination: { write: (line: string) => logs.push(line) } });
  }

  it('runs jobs, errors and uploads with personal names, then exports, previews, submits and mirrors', async () => {
    const optIn = await api('usage-stats/opt-in', { method: 'POST' });
    expect(optIn.status).toBe(200);

    const counts = async (): Promise<Record<string, number>> =>
      ((await (await api('usage-stats/local')).json()) as { events_by_type: Record<string, number> }).events_by_type;
    await waitFor('both printers connected', async () => ((await counts()).printer_connected ?? 0) >= 2);

    // Bambu: a slicer upload and job whose names carry an e-mail address, then an HMS error and a failure.
    await bambu.publishRaw(
      JSON.stringify({
        print: {
          command: 'project_file',
          sequence_id: '7',
          param: 'Metadata/plate_1.gcode',
          subtask_name: `${SEEDS.bambuJobEmail} bracket`,
          url: `ftp://${SEEDS.bambuJobEmail}/cache/${SEEDS.bambuJobEmail}.3mf`,
          result: 'success',
        },
      }),
    );
    bambu.startJob({ seconds: 2, outcome: 'fail' });
    bambu.setHms([{ attr: 0x03000100, code: 0x00010001 }]);
    // PrusaLink: a job from a file named after its owner, finished, and an uploaded file named likewise.
    prusa.addFile({ name: `${SEEDS.fileEmail} holder.bgcode`, sizeBytes: 12_345 });
    prusa.startJob({ fileName: `${SEEDS.jobEmail} gear.bgcode`, durationS: 3600 });

    await waitFor(
      'jobs, uploads and errors',
      async () => {
        const c = await counts();
        return (c.job_failed ?? 0) >= 1 && (c.job_created ?? 0) >= 2 && (c.file_uploaded ?? 0) >= 2;
      },
      30_000,
      counts,
    );
    prusa.finishJob();
    await waitFor('the PrusaLink job completed', async () => ((await counts()).job_completed ?? 0) >= 1);
    expect((await counts()).error_occurred ?? 0).toBeGreaterThanOrEqual(1);

    const exported = await api('usage-stats/export');
    expect(exported.status).toBe(200);
    outputs.export = await exported.text();
    const preview = await api('usage-stats/preview');
    outputs.preview = await preview.text();
    outputs.local = await (await api('usage-stats/local')).text();
    outputs.printers = await (await api('printers')).text();
    outputs.status = await (await api('usage-stats/status')).text();

    const submitted = await api('usage-stats/submit', { method: 'POST' });
    outputs.submit = await submitted.text();
    expect(submitted.status, outputs.submit).toBe(200);
    expect(proxy.seen.some((r) => r.startsWith('POST /v1/submit'))).toBe(true);

    if (broker) {
      await waitFor('events mirrored on MQTT', () => mqttMessages.some((m) => m.includes('job_completed')));
      await waitFor('discovery published', () => mqttMessages.some((m) => m.startsWith('homeassistant/')));
    }
    await daemon.stop();
  }, 120_000);

  it('finds none of the seeds in the database files, the outputs, the collector, MQTT or the logs', () => {
    const found: string[] = [];
    for (const { file, text } of rawFiles(dataDir)) found.push(...leaks(`data dir file ${file}`, text));
    for (const [name, text] of Object.entries(outputs)) found.push(...leaks(`API output ${name}`, text));
    for (const request of proxy.seen) found.push(...leaks('a request the collector received', request));
    for (const { file, text } of rawFiles(collectorDir)) found.push(...leaks(`collector file ${file}`, text));
    for (const message of mqttMessages) found.push(...leaks(`MQTT message ${message.slice(0, 80)}`, message));
    for (const line of logs) found.push(...leaks(`log line ${line.slice(0, 160)}`, line));
    expect(found).toEqual([]);
  });

  it('did see the data it audits, so the audit cannot pass by seeing nothing', () => {
    const exported = JSON.parse(outputs.export ?? 'null') as { events: { event_type: string }[] };
    const types = new Set(exported.events.map((e) => e.event_type));
    for (const type of ['job_created', 'job_completed', 'job_failed', 'file_uploaded', 'error_occurred'])
      expect(types).toContain(type);
    expect(JSON.parse(outputs.preview ?? 'null')).toHaveProperty('usage_stats');
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(logs.length).toBeGreaterThan(10);
    // The configuration was logged with its secrets, and came out with markers in their place.
    expect(logs.some((l) => l.includes('[redacted]'))).toBe(true);
    if (mosquittoPath) expect(mqttMessages.length).toBeGreaterThan(5);
  });
});
