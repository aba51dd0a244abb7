/**
 * A real mosquitto on loopback for the mirror's tests (one per test, on a free port, restartable on the same port)
 * and an observing mqtt.js client. The tests ask for mosquitto with requireTool (../requirements.ts): they skip with a
 * message when it is not installed, and fail under CI.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach } from 'vitest';
import { captureLogger, type LogLine, sleep, tempDir, waitFor } from '../helpers.js';
import { findExecutable } from '../requirements.js';

export const mosquittoBinary = findExecutable('mosquitto');
export const mosquittoPasswdBinary = findExecutable('mosquitto_passwd');
export const MOSQUITTO_HINT = 'apt-get install -y mosquitto';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export interface Broker {
  port: number;
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** mosquitto with a generated config; `users` switches anonymous access off and adds a password file. */
export async function startBroker(
  options: { users?: Record<string, string>; persist?: boolean } = {},
): Promise<Broker> {
  const dir = tempDir('mqtt-mirror-');
  const port = await freePort();
  const lines = [
    // Started as root, mosquitto drops to the `mosquitto` user, which cannot read our private temp dir.
    process.getuid?.() === 0 ? 'user root' : '',
    // Persistence keeps retained messages and an observer's session (and its queued QoS 1 messages) over a restart.
    options.persist ? `persistence true\npersistence_location ${dir}/` : 'persistence false',
    `listener ${port} 127.0.0.1`,
    'log_dest stderr',
    'log_type error',
  ];
  if (options.users) {
    const passwd = join(dir, 'passwd');
    let first = true;
    for (const [user, password] of Object.entries(options.users)) {
      execFileSync(
        mosquittoPasswdBinary as string,
        first ? ['-b', '-c', passwd, user, password] : ['-b', passwd, user, password],
      );
      first = false;
    }
    lines.push('allow_anonymous false', `password_file ${passwd}`);
  } else {
    lines.push('allow_anonymous true');
  }
  const configPath = join(dir, 'mosquitto.conf');
  writeFileSync(configPath, `${lines.join('\n')}\n`);

  let child: ChildProcess | null = null;
  let stderr = '';
  const broker: Broker = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async start() {
      const proc = spawn(mosquittoBinary as string, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      proc.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
      });
      const deadline = Date.now() + 5000;
      while (!(await portOpen(port))) {
        if (Date.now() > deadline || proc.exitCode !== null) {
          throw new Error(`mosquitto did not start on ${port}: ${stderr.slice(-500)}`);
        }
        await sleep(25);
      }
    },
    async stop() {
      const proc = child;
      child = null;
      if (!proc || proc.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      });
    },
  };
  await broker.start();
  onCleanup(() => broker.stop());
  return broker;
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
  dup: boolean;
}

export interface Observer {
  client: MqttClient;
  messages: Received[];
  /** The last message on a topic, if any. */
  last(topic: string): Received | undefined;
  on(topic: string): Received[];
  waitFor(check: (messages: Received[]) => boolean, what?: string, timeoutMs?: number): Promise<void>;
  publish(topic: string, payload: string, retain?: boolean): Promise<void>;
  end(): Promise<void>;
}

/** An mqtt.js client that records everything under `filters` (all topics by default). */
export async function observe(
  url: string,
  filters: string[] = ['#'],
  options: { username?: string; password?: string; session?: string } = {},
): Promise<Observer> {
  const { session, ...auth } = options;
  // A named session (clean: false) on a persistent broker receives what was published while it was away.
  const sessionOptions = session ? { clientId: session, clean: false } : {};
  const client = mqtt.connect(url, { reconnectPeriod: 200, connectTimeout: 3000, ...sessionOptions, ...auth });
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({
      topic,
      payload: payload.toString('utf8'),
      retain: packet.retain,
      qos: packet.qos,
      dup: packet.dup,
    });
  });
  // Subscribes on every connect: a clean session forgets subscriptions when the broker restarts.
  await new Promise<void>((resolve, reject) => {
    client.on('connect', () => client.subscribe(filters, { qos: 1 }, () => resolve()));
    client.once('error', reject);
  });
  const observer: Observer = {
    client,
    messages,
    last: (topic) => messages.filter((m) => m.topic === topic).at(-1),
    on: (topic) => messages.filter((m) => m.topic === topic),
    waitFor: (check, what = 'messages', timeoutMs = 8000) => waitFor(() => check(messages), timeoutMs, what),
    publish: (topic, payload, retain = false) =>
      new Promise<void>((resolve, reject) =>
        client.publish(topic, payload, { qos: 1, retain }, (error) => (error ? reject(error) : resolve())),
      ),
    end: () => new Promise<void>((resolve) => client.end(true, {}, () => resolve())),
  };
  onCleanup(() => observer.end());
  return observer;
}

/** Retained messages on a fresh connection: what a newly started Home Assistant would see. */
export async function retainedSnapshot(
  url: string,
  filters: string[] = ['#'],
  settleMs = 300,
): Promise<Map<string, string>> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000 });
  const retained = new Map<string, string>();
  client.on('message', (topic, payload, packet) => {
    if (packet.retain) retained.set(topic, payload.toString('utf8'));
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await new Promise<void>((resolve) => client.subscribe(filters, { qos: 1 }, () => resolve()));
  await sleep(settleMs);
  await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  return retained;
}

export { captureLogger, type LogLine, sleep, waitFor };
