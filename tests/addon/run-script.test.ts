/**
 * The add-on's s6 scripts, executed by bash as s6-overlay would, against a fake Supervisor HTTP API on loopback.
 *
 * What is real: the unmodified `run` and `finish` scripts, bash with bashio's shell options (errexit, nounset,
 * pipefail), curl and jq, HTTP to a server that answers like the Supervisor (bearer token, {result, data} envelope,
 * 400 "Service not enabled"). What is not: bashio itself (tests/addon/fixtures/bashio implements the few functions
 * the scripts call, with bashio's semantics), `with-contenv` (the environment is passed directly), and `node` (a
 * stand-in records the command line and environment the daemon would get). `finish` runs in a private mount
 * namespace with a tmpfs on /run, so its s6 paths are real paths; that part is skipped where `unshare` is refused.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { requireTool, runsCleanly } from '../requirements.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const fixtures = join(import.meta.dirname, 'fixtures');
const bashio = join(fixtures, 'bashio');
const service = join(root, 'rootfs', 'etc', 's6-overlay', 's6-rc.d', 'printernizer-stats');
const TOKEN = 'supervisor-test-token';

interface MqttService {
  host: string;
  port: number;
  ssl: boolean;
  protocol: string;
  username: string;
  password: string;
  addon: string;
}

/** What the fake Supervisor offers, and what it was asked. */
const supervisor = {
  timezone: 'Europe/Berlin' as string | null,
  infoStatus: 200,
  mqtt: null as MqttService | null,
  requests: [] as { method: string; url: string; authorized: boolean }[],
};

const MOSQUITTO: MqttService = {
  host: 'core-mosquitto',
  port: 1883,
  ssl: false,
  protocol: '3.1.1',
  username: 'addons',
  password: 'Zz9-broker-secret',
  addon: 'core_mosquitto',
};

function answer(request: IncomingMessage): { status: number; body: unknown } {
  if (request.headers.authorization !== `Bearer ${TOKEN}`) {
    return { status: 401, body: { result: 'error', message: 'Unauthorized' } };
  }
  if (request.method === 'GET' && request.url === '/info') {
    if (supervisor.infoStatus !== 200)
      return { status: supervisor.infoStatus, body: { result: 'error', message: 'x' } };
    return {
      status: 200,
      body: { result: 'ok', data: { supervisor: '2026.11.0', arch: 'amd64', timezone: supervisor.timezone } },
    };
  }
  if (request.method === 'GET' && request.url === '/services/mqtt') {
    // supervisor/api/services.py: an APIError (400) when no add-on provides the service.
    return supervisor.mqtt
      ? { status: 200, body: { result: 'ok', data: supervisor.mqtt } }
      : { status: 400, body: { result: 'error', message: 'Service not enabled' } };
  }
  return { status: 404, body: { result: 'error', message: 'not found' } };
}

let server: Server;
let api: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    supervisor.requests.push({
      method: request.method ?? '',
      url: request.url ?? '',
      authorized: request.headers.authorization === `Bearer ${TOKEN}`,
    });
    const { status, body } = answer(request);
    response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  supervisor.timezone = 'Europe/Berlin';
  supervisor.infoStatus = 200;
  supervisor.mqtt = null;
  supervisor.requests = [];
});

interface Started {
  argv: string[];
  tz: string | null;
  mqtt_url: string | null;
  mqtt_username: string | null;
  mqtt_password: string | null;
  supervisor_token: string | null;
  malloc_arena_max: string | null;
}

/** Runs `run` as `/command/with-contenv bashio run` would, with /data/options.json replaced by `options`. */
async function runService(options: unknown, env: { addon: boolean; TZ?: string }) {
  const dir = tempDir('pstats-run-');
  const optionsPath = join(dir, 'options.json');
  const startedPath = join(dir, 'started.json');
  writeFileSync(optionsPath, JSON.stringify(options));
  const { stdout, stderr } = await run('bash', [bashio, join(service, 'run')], {
    env: {
      PATH: `${join(fixtures, 'bin')}:${process.env.PATH}`,
      BASHIO_TEST_SUPERVISOR_API: api,
      BASHIO_TEST_OPTIONS: optionsPath,
      FAKE_NODE_OUT: startedPath,
      ...(env.addon ? { SUPERVISOR_TOKEN: TOKEN } : {}),
      ...(env.TZ ? { TZ: env.TZ } : {}),
    },
    timeout: 15_000,
  });
  const started = JSON.parse(readFileSync(startedPath, 'utf8')) as Started;
  return { log: stdout + stderr, started };
}

const mqttOptions = (mqtt: Record<string, unknown>) => ({
  log_level: 'info',
  printers: [],
  usage_statistics: { retention_days: 365 },
  mqtt: { enabled: true, base_topic: 'printernizer', discovery: true, discovery_prefix: 'homeassistant', ...mqtt },
});

const DAEMON_ARGV = [
  '--max-semi-space-size=2',
  '--heap-growing-percent=50',
  '--single-threaded-gc',
  '/opt/printernizer-stats/dist/src/cli.js',
  'run',
  '--data-dir',
  '/data',
];

describe('run (add-on)', () => {
  it("uses the Supervisor's MQTT service and time zone when mqtt.url is empty", async () => {
    supervisor.mqtt = MOSQUITTO;
    const { log, started } = await runService(mqttOptions({ url: '' }), { addon: true, TZ: 'UTC' });
    expect(started).toEqual({
      argv: DAEMON_ARGV,
      tz: 'Europe/Berlin',
      mqtt_url: 'mqtt://core-mosquitto:1883',
      mqtt_username: 'addons',
      mqtt_password: MOSQUITTO.password,
      supervisor_token: TOKEN,
      malloc_arena_max: '2',
    });
    expect(supervisor.requests.length).toBeGreaterThan(0);
    expect(supervisor.requests.every((r) => r.authorized && r.method === 'GET')).toBe(true);
    expect(new Set(supervisor.requests.map((r) => r.url))).toEqual(new Set(['/info', '/services/mqtt']));
    expect(log).toContain('mqtt://core-mosquitto:1883');
    expect(log).not.toContain(MOSQUITTO.password);
  });

  it('builds an mqtts:// URL with a bracketed IPv6 host', async () => {
    supervisor.mqtt = { ...MOSQUITTO, host: 'fd00::5', port: 8883, ssl: true };
    const { started } = await runService(mqttOptions({}), { addon: true });
    expect(started.mqtt_url).toBe('mqtts://[fd00::5]:8883');
  });

  it("keeps the user's broker credentials when mqtt.username is set", async () => {
    supervisor.mqtt = MOSQUITTO;
    const { log, started } = await runService(mqttOptions({ username: 'me', password: 'mine' }), { addon: true });
    // The daemon uses the user's login with this address (tests/addon/mqtt-login.test.ts runs it against mosquitto).
    expect(started.mqtt_url).toBe('mqtt://core-mosquitto:1883');
    expect(started.mqtt_username).toBeNull();
    expect(started.mqtt_password).toBeNull();
    expect(log).toContain('at mqtt://core-mosquitto:1883 with the configured mqtt.username');
    expect(log).not.toContain('mine');
  });

  it('leaves MQTT alone when the user set mqtt.url', async () => {
    supervisor.mqtt = MOSQUITTO;
    const { started } = await runService(mqttOptions({ url: 'mqtt://192.0.2.2:1883' }), { addon: true });
    expect(started.mqtt_url).toBeNull();
    expect(supervisor.requests.map((r) => r.url)).not.toContain('/services/mqtt');
  });

  it('does not ask for the MQTT service when MQTT is disabled', async () => {
    supervisor.mqtt = MOSQUITTO;
    const { started } = await runService(mqttOptions({ enabled: false }), { addon: true });
    expect(started.mqtt_url).toBeNull();
    expect(supervisor.requests.map((r) => r.url)).toEqual(['/info']);
  });

  it('starts without MQTT and says why when no broker add-on provides the service', async () => {
    const { log, started } = await runService(mqttOptions({}), { addon: true });
    expect(started.argv).toEqual(DAEMON_ARGV);
    expect(started.mqtt_url).toBeNull();
    expect(log).toMatch(/\[WARNING\] MQTT is enabled without a broker URL/);
  });

  it('starts with the container time zone when the Supervisor cannot tell', async () => {
    supervisor.infoStatus = 500;
    const { log, started } = await runService(mqttOptions({ enabled: false }), { addon: true, TZ: 'UTC' });
    expect(started.tz).toBe('UTC');
    expect(started.argv).toEqual(DAEMON_ARGV);
    expect(log).toMatch(/\[WARNING\] Could not read the time zone/);
  });
});

describe('run (plain Docker, no Supervisor)', () => {
  it('asks no Supervisor anything and starts the daemon as it is', async () => {
    const { started } = await runService({}, { addon: false, TZ: 'Europe/Paris' });
    expect(supervisor.requests).toEqual([]);
    expect(started).toEqual({
      argv: DAEMON_ARGV,
      tz: 'Europe/Paris',
      mqtt_url: null,
      mqtt_username: null,
      mqtt_password: null,
      supervisor_token: null,
      malloc_arena_max: '2',
    });
  });
});

const canUnshare = requireTool(
  'a private mount namespace (unshare -m)',
  () => runsCleanly('unshare', ['-m', '--propagation', 'private', 'true']),
  'run as root, with util-linux',
);

/** `finish CODE SIGNAL` with s6's files on a private /run: the container exit code after, and whether it halted. */
async function finish(serviceCode: number, signal: number, containerCode = 0) {
  const script = `
    set -e
    mount -t tmpfs tmpfs /run
    mkdir -p /run/s6-linux-init-container-results /run/s6/basedir/bin
    echo ${containerCode} > /run/s6-linux-init-container-results/exitcode
    printf '#!/bin/sh\\necho halted > /run/halted\\n' > /run/s6/basedir/bin/halt
    chmod +x /run/s6/basedir/bin/halt
    bash "$1" "$2" "$3" "$4" >/dev/null || true
    printf '%s %s' "$(cat /run/s6-linux-init-container-results/exitcode)" "$(cat /run/halted 2>/dev/null || echo running)"
  `;
  const { stdout } = await run(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'bash',
      '-c',
      script,
      'finish',
      bashio,
      join(service, 'finish'),
      `${serviceCode}`,
      `${signal}`,
    ],
    { env: { PATH: process.env.PATH }, timeout: 15_000 },
  );
  const [exitcode, state] = stdout.trim().split(' ');
  return { exitcode: Number(exitcode), halted: state === 'halted' };
}

describe.skipIf(!canUnshare)('finish', () => {
  it('halts the container with the exit code when the daemon crashed', async () => {
    expect(await finish(1, 0)).toEqual({ exitcode: 1, halted: true });
    expect(await finish(2, 0)).toEqual({ exitcode: 2, halted: true });
  });

  it('halts with 128+15 when the daemon was killed by SIGTERM', async () => {
    expect(await finish(256, 15)).toEqual({ exitcode: 143, halted: true });
  });

  it('records another signal and lets s6 restart the service', async () => {
    expect(await finish(256, 9)).toEqual({ exitcode: 137, halted: false });
  });

  it('lets s6 restart a clean exit, and keeps an exit code already set for the container', async () => {
    expect(await finish(0, 0)).toEqual({ exitcode: 0, halted: false });
    expect(await finish(1, 0, 3)).toEqual({ exitcode: 3, halted: true });
  });
});
