/**
 * Issue 13, point 1: the broker login, through the path the add-on takes. A real mosquitto that refuses anonymous
 * clients knows two users: `addons` (the login the Supervisor's MQTT service hands out) and `me` (the user's own).
 * The add-on's unmodified s6 `run` script runs with the bashio stand-in against a fake Supervisor whose MQTT service
 * points at that mosquitto, reads options.json, builds the environment and execs the daemon; a `node` stand-in
 * (fixtures/daemon-bin/node) maps the image's paths to this checkout and starts the real daemon with exactly that
 * environment. mosquitto's own log says which user each client logged in as.
 *
 * | mqtt.url | username/password | expected                                                                |
 * |----------|-------------------|-------------------------------------------------------------------------|
 * | set      | set               | that broker, as `me`                                                    |
 * | set      | not set           | that broker, no login: refused; the Supervisor's login is never sent    |
 * | empty    | set               | the Supervisor's broker, as `me` (issue 13's bug: it logged in as nobody)|
 * | empty    | not set           | the Supervisor's broker, as `addons`                                    |
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep, tempDir, waitFor } from '../helpers.js';
import { freePort, mosquittoBinary, mosquittoPasswdBinary } from '../mqtt/helpers.js';
import { requireTool } from '../requirements.js';

const root = join(import.meta.dirname, '..', '..');
const fixtures = join(import.meta.dirname, 'fixtures');
const runScript = join(root, 'rootfs', 'etc', 's6-overlay', 's6-rc.d', 'printernizer-stats', 'run');
const TOKEN = 'supervisor-test-token';
const USERS = { addons: 'Zz9-supervisor-login', me: 'my-own-Qq7-secret', observer: 'observer-pw' } as const;
const HAVE_MOSQUITTO = requireTool(
  'mosquitto and mosquitto_passwd',
  () => mosquittoBinary !== null && mosquittoPasswdBinary !== null,
  'apt-get install -y mosquitto',
);

interface Mosquitto {
  port: number;
  log: () => string;
  stop: () => Promise<void>;
}

async function startMosquitto(): Promise<Mosquitto> {
  const dir = tempDir('pstats-mosq-');
  const passwd = join(dir, 'passwd');
  let first = true;
  for (const [user, password] of Object.entries(USERS)) {
    execFileSync(mosquittoPasswdBinary!, [...(first ? ['-c'] : []), '-b', passwd, user, password]);
    first = false;
  }
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      // Started as root, mosquitto would drop to a user that cannot read the temp dir.
      process.getuid?.() === 0 ? 'user root' : '',
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${passwd}`,
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      '',
    ].join('\n'),
  );
  const child = spawn(mosquittoBinary!, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  await waitFor(() => log.includes('running') || child.exitCode !== null, 5000, 'mosquitto to start');
  if (child.exitCode !== null) throw new Error(`mosquitto did not start: ${log}`);
  return {
    port,
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Users that logged in (mosquitto: "New client connected from ... (p2, c1, k60, u'me')."). */
const loggedIn = (log: string) => [...log.matchAll(/New client connected from .*\bu'([^']*)'\)/g)].map((m) => m[1]);

let broker: Mosquitto;
let supervisor: Server;
let api: string;
let daemon: ChildProcess | null = null;

beforeAll(async () => {
  if (!HAVE_MOSQUITTO) return;
  broker = await startMosquitto();
  // The two Supervisor endpoints `run` asks: /info and /services/mqtt (the Mosquitto add-on's service, here the
  // mosquitto above), behind the bearer token.
  supervisor = createHttpServer((request, response) => {
    const ok = request.headers.authorization === `Bearer ${TOKEN}`;
    const body = !ok
      ? { result: 'error', message: 'Unauthorized' }
      : request.url === '/info'
        ? { result: 'ok', data: { timezone: 'Europe/Berlin' } }
        : request.url === '/services/mqtt'
          ? {
              result: 'ok',
              data: {
                host: '127.0.0.1',
                port: broker.port,
                ssl: false,
                protocol: '3.1.1',
                username: 'addons',
                password: USERS.addons,
                addon: 'core_mosquitto',
              },
            }
          : { result: 'error', message: 'not found' };
    response.writeHead(ok && body.result === 'ok' ? 200 : ok ? 404 : 401, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => supervisor.listen(0, '127.0.0.1', resolve));
  api = `http://127.0.0.1:${(supervisor.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await broker?.stop();
  if (supervisor) await new Promise<void>((resolve) => supervisor.close(() => resolve()));
});

afterEach(async () => {
  await stopDaemon();
});

async function stopDaemon(): Promise<number | null> {
  const child = daemon;
  daemon = null;
  if (!child || child.exitCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

/** Runs the add-on's `run` script with these MQTT options; resolves once the daemon listens. */
async function startAddon(mqttOptions: Record<string, unknown>) {
  const data = tempDir('pstats-addon-');
  writeFileSync(
    join(data, 'options.json'),
    JSON.stringify({
      log_level: 'info',
      printers: [],
      usage_statistics: { retention_days: 365 },
      mqtt: {
        enabled: true,
        base_topic: 'printernizer',
        discovery: true,
        discovery_prefix: 'homeassistant',
        ...mqttOptions,
      },
    }),
  );
  const child = spawn('bash', [join(fixtures, 'bashio'), runScript], {
    cwd: root,
    env: {
      PATH: `${join(fixtures, 'daemon-bin')}:${process.env.PATH}`,
      SUPERVISOR_TOKEN: TOKEN,
      BASHIO_TEST_SUPERVISOR_API: api,
      BASHIO_TEST_OPTIONS: join(data, 'options.json'),
      REAL_NODE: process.execPath,
      REPO: root,
      TEST_DATA_DIR: data,
      HOST: '127.0.0.1',
      PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon = child;
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitFor(
    () => output.includes('printernizer-stats is running') || child.exitCode !== null,
    20_000,
    'the daemon to start',
  );
  if (child.exitCode !== null) throw new Error(`the add-on stopped (${child.exitCode}):\n${output}`);
  return { output: () => output };
}

/** The retained bridge state, as any client of the broker would see it. */
async function bridgeState(): Promise<string | null> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, {
    username: 'observer',
    password: USERS.observer,
    reconnectPeriod: 0,
  });
  let state: string | null = null;
  client.on('message', (_topic, payload) => {
    state = payload.toString();
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => client.subscribe('printernizer/bridge/state', () => resolve()));
    client.once('error', reject);
  });
  await sleep(300);
  await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  return state;
}

async function expectLogin(user: 'me' | 'addons', output: () => string) {
  const before = loggedIn(broker.log()).length;
  await waitFor(() => loggedIn(broker.log()).length > before || /connected to the MQTT broker/.test(output()), 10_000);
  await waitFor(() => /connected to the MQTT broker/.test(output()), 10_000, 'the mirror to connect');
  expect(
    loggedIn(broker.log())
      .filter((u) => u !== 'observer')
      .at(-1),
  ).toBe(user);
  expect(await bridgeState()).toBe('online');
}

describe.skipIf(!HAVE_MOSQUITTO)('MQTT login through the add-on path', () => {
  it("mqtt.url and credentials set: the user's broker with the user's login", async () => {
    const { output } = await startAddon({ url: `mqtt://127.0.0.1:${broker.port}`, username: 'me', password: USERS.me });
    await expectLogin('me', output);
    expect(await stopDaemon()).toBe(0);
    expect(output()).not.toContain(USERS.me);
  }, 40_000);

  it("mqtt.url set without credentials: no login is sent, never the Supervisor's; the broker refuses", async () => {
    const refusedBefore = (broker.log().match(/not authori[sz]ed/gi) ?? []).length;
    const connectedBefore = loggedIn(broker.log()).length;
    const { output } = await startAddon({ url: `mqtt://127.0.0.1:${broker.port}` });
    await waitFor(
      () => (broker.log().match(/not authori[sz]ed/gi) ?? []).length > refusedBefore,
      10_000,
      'the broker to refuse the anonymous client',
    );
    await sleep(500);
    expect(loggedIn(broker.log()).slice(connectedBefore)).toEqual([]);
    // The daemon keeps running without the mirror.
    expect(daemon?.exitCode).toBeNull();
    expect(await stopDaemon()).toBe(0);
    expect(output()).not.toContain(USERS.addons);
    expect(output()).not.toMatch(/Using the MQTT broker of Home Assistant's MQTT service/);
  }, 40_000);

  it("mqtt.url empty with credentials: the Supervisor's broker address with the user's own login (issue 13)", async () => {
    const { output } = await startAddon({ url: '', username: 'me', password: USERS.me });
    expect(output()).toContain(
      `Using the MQTT broker of Home Assistant's MQTT service at mqtt://127.0.0.1:${broker.port}`,
    );
    await expectLogin('me', output);
    expect(await stopDaemon()).toBe(0);
    expect(output()).not.toContain(USERS.me);
    expect(output()).not.toContain(USERS.addons);
  }, 40_000);

  it("mqtt.url and credentials empty: the Supervisor's broker with the Supervisor's login", async () => {
    const { output } = await startAddon({});
    await expectLogin('addons', output);
    expect(await stopDaemon()).toBe(0);
    expect(output()).not.toContain(USERS.addons);
  }, 40_000);
});
