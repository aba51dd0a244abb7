/**
 * What the browser tests run against: the real daemon (optionally with simulated printers), twelve weeks of seeded
 * history, and an ingress-like proxy that serves /api/hassio_ingress/<token>/* from the daemon with X-Ingress-Path.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { databasePath, openDatabase } from '../../src/db/open.js';
import { silentLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { type BambuSimulator, startBambuSimulator } from '../../src/simulators/bambu.js';
import { type PrusaLinkSimulator, startPrusaLinkSimulator } from '../../src/simulators/prusalink.js';
import type { EventMetadata, EventType } from '../../src/stats/events.js';
import { UsageRepository } from '../../src/stats/repository.js';

/** Deterministic jobs, files, connections and errors on most of the last 84 days, so the chart has a shape. */
export function seedHistory(dataDir: string, now = new Date()): number {
  const db = openDatabase(databasePath(dataDir));
  const repository = new UsageRepository(db);
  let state = 42;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  let count = 0;
  const add = (eventType: EventType, at: Date, metadata: EventMetadata) => {
    const timestamp = at.toISOString();
    repository.insertEvent({ id: randomUUID(), event_type: eventType, timestamp, metadata, created_at: timestamp });
    count++;
  };
  const models = [
    { printer_type: 'bambu_lab', printer_model: 'X1C' },
    { printer_type: 'bambu_lab', printer_model: 'A1' },
    { printer_type: 'prusa', printer_model: 'MK4' },
  ] as const;
  repository.transaction(() => {
    for (let day = 83; day >= 1; day--) {
      const base = now.getTime() - day * 86_400_000;
      // Busier toward the present, with quiet days.
      const jobs = random() < 0.2 ? 0 : Math.floor(random() * (2 + (84 - day) / 20));
      for (let j = 0; j < jobs; j++) {
        const at = new Date(base + j * 3_600_000);
        const printer = models[Math.floor(random() * models.length)]!;
        const duration = 1200 + Math.floor(random() * 14_400);
        add('job_created', at, { ...printer });
        if (random() < 0.85)
          add('job_completed', new Date(at.getTime() + 60_000), { ...printer, duration_seconds: duration });
        else
          add('job_failed', new Date(at.getTime() + 60_000), {
            ...printer,
            duration_seconds: Math.floor(duration / 3),
            failure_type: random() < 0.5 ? 'cancelled' : 'failed',
          });
        if (random() < 0.4)
          add('file_uploaded', at, { printer_type: printer.printer_type, file_type: '3mf', size_bytes: 2_000_000 });
      }
      if (day % 7 === 0) add('printer_connected', new Date(base), { ...models[0], connection: 'mqtt' });
      if (day % 11 === 0)
        add('error_occurred', new Date(base), {
          error_type: 'connection_timeout',
          component: 'bambu_mqtt',
          printer_type: 'bambu_lab',
        });
    }
  });
  db.close();
  return count;
}

export interface TestDaemon {
  daemon: Daemon;
  base: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** The daemon on 127.0.0.1:0 in a throwaway data directory, seeded; without printers unless `printers` is set. */
export async function startTestDaemon(options: { printers?: boolean } = {}): Promise<TestDaemon> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pstats-ui-'));
  seedHistory(dataDir);
  const sims: { bambu?: BambuSimulator; prusa?: PrusaLinkSimulator } = {};
  const printers: unknown[] = [];
  if (options.printers) {
    // Fast: a job in progress at start, ~2.5 % per half-second tick, a short idle between jobs.
    sims.bambu = await startBambuSimulator({
      serial: '00M00A000000001',
      accessCode: 'test1234',
      model: 'X1C',
      port: 0,
      host: '127.0.0.1',
      autoJobs: true,
      initialState: 'RUNNING',
      speed: 20,
      tickMs: 500,
      jobSeconds: 400,
      idleSeconds: 40,
    });
    sims.prusa = await startPrusaLinkSimulator({
      password: 'testpass',
      model: 'MK4',
      port: 0,
      host: '127.0.0.1',
      autoJobs: true,
      speed: 20,
    });
    sims.prusa.startJob({ durationS: 600 });
    printers.push(
      {
        name: 'Workshop X1C',
        type: 'bambu_lab',
        host: '127.0.0.1',
        port: sims.bambu.port,
        serial: sims.bambu.serial,
        access_code: 'test1234',
      },
      {
        name: 'Desk MK4',
        type: 'prusa',
        host: sims.prusa.url,
        username: 'maker',
        password: 'testpass',
        poll_interval_s: 1,
      },
    );
  }
  const daemon = new Daemon({
    config: parseConfig({ timezone: 'Europe/Berlin', printers }),
    dataDir,
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger(),
    env: {},
    ...(options.printers ? { createDriver } : {}),
  });
  const { port } = await daemon.start();
  return {
    daemon,
    base: `http://127.0.0.1:${port}`,
    dataDir,
    async stop() {
      await daemon.stop();
      await Promise.allSettled([sims.bambu?.stop(), sims.prusa?.stop()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const INGRESS_PREFIX = '/api/hassio_ingress/abc';

export interface IngressProxy {
  base: string;
  /** `ok` forwards; `500` answers API calls with an HTML 500 page; `down` drops API connections. */
  mode: 'ok' | '500' | 'down';
  /** Paths the proxy forwarded or refused, as the daemon would see them. */
  seen: string[];
  close(): Promise<void>;
}

/** Serves INGRESS_PREFIX/* from the daemon, as Home Assistant's ingress does, and sets X-Ingress-Path. */
export async function startIngressProxy(daemonBase: string): Promise<IngressProxy> {
  const target = new URL(daemonBase);
  const proxy: IngressProxy = { base: '', mode: 'ok', seen: [], close: async () => {} };
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url !== INGRESS_PREFIX && !url.startsWith(`${INGRESS_PREFIX}/`) && !url.startsWith(`${INGRESS_PREFIX}?`)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not under the ingress prefix');
      return;
    }
    let path = url.slice(INGRESS_PREFIX.length);
    if (!path.startsWith('/')) path = `/${path}`;
    proxy.seen.push(path);
    if (path.startsWith('/api/') && proxy.mode === '500') {
      res.writeHead(500, { 'Content-Type': 'text/html' }).end('<html><body>500 Internal Server Error</body></html>');
      return;
    }
    if (path.startsWith('/api/') && proxy.mode === 'down') {
      req.socket.destroy();
      return;
    }
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path,
        headers: { ...req.headers, host: target.host, 'x-ingress-path': INGRESS_PREFIX },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end('bad gateway');
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
