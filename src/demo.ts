/**
 * `npm run demo`: the real daemon against built-in simulated printers (two Bambu Lab over TLS MQTT, one PrusaLink
 * with digest auth) and a local collector on a throwaway data directory, so events, live state and a submission work
 * without any hardware and without sending anything off this machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from './app.js';
import { startCollector } from './collector/server.js';
import { parseConfig } from './config.js';
import { createLogger } from './log.js';
import { createDriver } from './printers/drivers.js';
import { DEFAULT_PORT } from './runtime.js';
import { startBambuSimulator } from './simulators/bambu.js';
import { startPrusaLinkSimulator } from './simulators/prusalink.js';

export async function runDemo(flags: {
  port?: string;
  host?: string;
  speed?: string;
  'data-dir'?: string;
}): Promise<number> {
  const speed = Number(flags.speed ?? 60);
  const port = flags.port !== undefined ? Number(flags.port) : DEFAULT_PORT;
  const host = flags.host ?? '127.0.0.1';
  const throwaway = flags['data-dir'] === undefined;
  const dataDir = flags['data-dir'] ?? mkdtempSync(join(tmpdir(), 'printernizer-demo-'));
  const logger = createLogger({ level: 'info' });

  // The X1 runs the sequences of issue 12 in turn (cancels, slicer uploads, an outage, firmware ignoring requests,
  // HMS entries that stay, a power cut through INIT, calibrations); the A1 prints at random.
  const x1c = await startBambuSimulator({
    serial: '00M00A000000001',
    accessCode: 'demo1234',
    model: 'X1C',
    port: 0,
    host: '127.0.0.1',
    autoJobs: true,
    scenarios: 'all',
    speed,
  });
  const a1 = await startBambuSimulator({
    serial: '03919A000000002',
    accessCode: 'demo5678',
    model: 'A1',
    port: 0,
    host: '127.0.0.1',
    autoJobs: true,
    speed,
  });
  // The PrusaLink sequences of issue 12 in turn: ATTENTION, lost jobs, power panic, uploads, USB stick, subfolders.
  const mk4 = await startPrusaLinkSimulator({
    password: 'demopass',
    model: 'MK4',
    port: 0,
    host: '127.0.0.1',
    autoJobs: true,
    scenarios: 'all',
    speed,
  });

  // A local collector, so opting in and "submit now" work end to end without sending anything off this machine.
  const collector = await startCollector({
    port: 0,
    host: '127.0.0.1',
    dataDir: join(dataDir, 'collector'),
    logger,
  });

  const config = parseConfig({
    log_level: 'info',
    timezone: 'Europe/Berlin',
    printers: [
      {
        name: 'Demo X1 Carbon',
        type: 'bambu_lab',
        host: '127.0.0.1',
        port: x1c.port,
        serial: x1c.serial,
        access_code: 'demo1234',
      },
      {
        name: 'Demo A1',
        type: 'bambu_lab',
        host: '127.0.0.1',
        port: a1.port,
        serial: a1.serial,
        access_code: 'demo5678',
      },
      { name: 'Demo MK4', type: 'prusa', host: mk4.url, username: 'maker', password: 'demopass', poll_interval_s: 5 },
    ],
    usage_statistics: { endpoint: `${collector.url}/v1/submit` },
  });
  const daemon = new Daemon({ config, dataDir, port, host, logger, createDriver });
  const started = await daemon.start();
  logger.info(
    { url: `http://${host}:${started.port}/`, collector: `${collector.url}/`, data_dir: dataDir, speed },
    'demo running: open the URL; Ctrl+C stops',
  );

  return new Promise<number>((resolve) => {
    const shutdown = async () => {
      await daemon.stop('demo stopped');
      await Promise.allSettled([x1c.stop(), a1.stop(), mk4.stop(), collector.stop()]);
      if (throwaway) rmSync(dataDir, { recursive: true, force: true });
      resolve(0);
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
}
