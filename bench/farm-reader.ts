/**
 * The baseline of the farm benchmark's idle scaling (bench/farm.ts): the cost of the printers' reports themselves.
 * It receives what the daemon receives and parses it, and does nothing else: an MQTT session over TLS to each Bambu
 * Lab simulator, with the daemon's own connection settings (mqtt.js), every report through JSON.parse; and each
 * PrusaLink simulator's /api/v1/status polled at the daemon's interval with the daemon's own client (node:http,
 * digest auth), every body through JSON.parse. Started with the daemon's node flags; talks JSON lines
 * (bench/farm-ipc.ts).
 *
 *   node --import tsx bench/farm-reader.ts '<ReaderOptions>'
 */
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { connectOptions } from '../src/printers/bambu/client.js';
import { PrusaLinkClient } from '../src/printers/prusalink/client.js';
import { serveCommands } from './farm-ipc.js';

export interface ReaderOptions {
  bambu: { port: number; serial: string }[];
  accessCode: string;
  prusa: { url: string }[];
  password: string;
  pollS: number;
}

export interface ReaderCounts {
  reports: number;
  polls: number;
  connected: number;
}

async function main(opts: ReaderOptions): Promise<void> {
  const counts: ReaderCounts = { reports: 0, polls: 0, connected: 0 };
  let parsedBytes = 0;
  const clients: MqttClient[] = [];
  const connecting: Promise<void>[] = [];
  for (const [i, printer] of opts.bambu.entries()) {
    const client = mqtt.connect(
      connectOptions({
        host: '127.0.0.1',
        port: printer.port,
        serial: printer.serial,
        accessCode: opts.accessCode,
        tls: true,
        verifyCertificate: false,
        clientId: `farm-reader-${i}`,
        connectTimeoutMs: 30_000,
        keepaliveSeconds: 30,
      }),
    );
    clients.push(client);
    const topic = `device/${printer.serial}/report`;
    client.on('message', (_topic, payload) => {
      // What every report costs before any use of it: the bytes as text, the text as JSON.
      const report = JSON.parse(payload.toString('utf8')) as { print?: unknown };
      if (report.print !== undefined) counts.reports++;
      parsedBytes += payload.length;
    });
    connecting.push(
      new Promise<void>((resolve) => {
        client.once('connect', () => {
          counts.connected++;
          client.subscribe(topic, { qos: 0 }, () => resolve());
        });
        setTimeout(resolve, 60_000).unref();
      }),
    );
  }

  const pollers = opts.prusa.map(
    (printer) => new PrusaLinkClient({ host: printer.url, username: 'maker', password: opts.password }),
  );
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  pollers.forEach((client, i) => {
    const poll = async () => {
      const started = performance.now();
      const res = await client.get('/api/v1/status');
      if (res.ok) {
        JSON.parse(res.body);
        counts.polls++;
      }
      // As the daemon's driver schedules: fixed rate, the time the poll took counted towards the interval.
      const wait = Math.max(0, opts.pollS * 1000 - (performance.now() - started));
      if (!stopped) timers[i] = setTimeout(poll, wait);
    };
    // All at once at start, as the daemon's drivers start (so both poll in the same rhythm: together, every interval).
    timers[i] = setTimeout(poll, 0);
  });
  await Promise.all(connecting);

  serveCommands({ connected: counts.connected }, { counts: () => ({ ...counts, parsedBytes }) }, async () => {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    for (const client of pollers) client.close?.();
    await Promise.allSettled(clients.map((client) => client.endAsync(true)));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(JSON.parse(process.argv[2] as string) as ReaderOptions);
}
