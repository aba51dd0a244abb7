/**
 * Wires the daemon for `run`: its parts start in the order of one list and stop in reverse (STYLE.md, zigbee2mqtt's
 * controller). The data directory lock and the database come first and go last, so every part can record events
 * until the end; a part that fails is named in the log. Objects are built before anything starts and only store what
 * they are given; starting is what does work.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { CaptureHub } from './capture/hub.js';
import { type Config, rejectedPrinterSnapshots } from './config.js';
import { databasePath, ensureWritableDir, openDatabase } from './db/open.js';
import { accessOptionsFrom } from './http/access.js';
import { createHttpApp } from './http/app.js';
import { acquireDataDirLock } from './lock.js';
import type { MirrorTuning, MqttMirror } from './mqtt/publisher.js';
import { type DriverFactory, PrinterFleet } from './printers/fleet.js';
import type { Feature } from './stats/events.js';
import { appVersion, effectiveTimezone } from './stats/privacy.js';
import { UsageRepository } from './stats/repository.js';
import { SubmissionScheduler } from './stats/scheduler.js';
import { UsageStatsService } from './stats/service.js';
import { featureSettingKey } from './stats/settings-keys.js';
import { type SubmitterOptions, UsageSubmitter } from './stats/submitter.js';

export interface DaemonOptions {
  config: Config;
  dataDir: string;
  port: number;
  host: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** The drivers for configured printers; without it no printer is run (one-shot tools, some tests). */
  createDriver?: DriverFactory;
  /** Test hooks for the submitter (backoff sleep, retry delays, timeout, catch-up delay). */
  submitter?: Pick<SubmitterOptions, 'sleep' | 'retryDelaysMs' | 'timeoutMs' | 'random'> & { catchUpDelayMs?: number };
  /** Test hooks for the MQTT mirror (reconnect period, debounce, queue bound). */
  mqtt?: MirrorTuning;
}

const CLEANUP_INTERVAL_MS = 24 * 3600 * 1000;

/** One piece of the running daemon: started in list order, stopped in reverse. */
interface DaemonPart {
  name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** What runs once the database is open; built in one go, read by tests and one-shot tools. */
export interface DaemonCore {
  service: UsageStatsService;
  fleet: PrinterFleet;
  mirror: MqttMirror | null;
  submitter: UsageSubmitter;
  scheduler: SubmissionScheduler | null;
  /** Diagnostic captures of the running printers (issue 16). */
  captures: CaptureHub;
}

/** The optional features as the config switches them; usage_statistics comes from the user's opt-in instead. */
export function configuredFeatures(config: Config): Partial<Record<Feature, boolean>> {
  return {
    mqtt_publish: config.mqtt.enabled,
    ha_discovery: config.mqtt.enabled && config.mqtt.discovery,
    api_token: config.api_token !== undefined,
  };
}

type HttpServer = ReturnType<typeof serve>;

export class Daemon {
  /** Parts that started, in start order. */
  private readonly started: DaemonPart[] = [];
  private built: DaemonCore | null = null;
  private stopping: Promise<void> | null = null;
  private listeningPort = 0;

  constructor(private readonly options: DaemonOptions) {}

  get core(): DaemonCore | null {
    return this.built;
  }
  get service(): UsageStatsService | null {
    return this.built?.service ?? null;
  }
  get fleet(): PrinterFleet | null {
    return this.built?.fleet ?? null;
  }
  get submitter(): UsageSubmitter | null {
    return this.built?.submitter ?? null;
  }
  get port(): number {
    return this.listeningPort;
  }

  async start(): Promise<{ port: number }> {
    const { config, dataDir, logger } = this.options;
    try {
      ensureWritableDir(dataDir);
      const lock = acquireDataDirLock(dataDir);
      await this.startPart({ name: 'data directory lock', start: () => {}, stop: () => lock.release() });
      const db = openDatabase(databasePath(dataDir));
      await this.startPart({
        name: 'database',
        start: () => {},
        stop: () => {
          db.close();
        },
      });
      const core = await this.build(db);
      this.built = core;
      for (const part of this.parts(core)) await this.startPart(part);
      logger.info(
        { port: this.port, host: this.options.host, printers: config.printers.length, version: appVersion() },
        'printernizer-stats is running',
      );
      return { port: this.port };
    } catch (error) {
      await this.stop('start-up failed');
      throw error;
    }
  }

  /** Every object the parts run, wired to each other; nothing starts here. */
  private async build(db: Database.Database): Promise<DaemonCore> {
    const { config, logger } = this.options;
    const env = this.options.env ?? process.env;
    const timezone = resolveOnce(() => effectiveTimezone(config.timezone, env));
    const service: UsageStatsService = new UsageStatsService({
      repository: new UsageRepository(db),
      logger,
      env,
      timezone,
      fleet: () => fleet.members(),
      features: () => configuredFeatures(config),
      nextSubmission: () => scheduler?.nextSubmission() ?? null,
    });
    const printers = this.options.createDriver ? config.printers : [];
    const captures = new CaptureHub({
      printers,
      logger,
      daemonVersion: appVersion(),
      directory: join(this.options.dataDir, 'captures'),
    });
    const fleet = new PrinterFleet(printers, {
      emit: (type, metadata) => {
        service.recordEvent(type, metadata);
        captures.recorded(type, metadata);
      },
      logger,
      createDriver: this.options.createDriver ?? noDriver,
      // Carries the printer into tracker timers, so a capture knows whose event a held job's end is.
      clock: captures.clock,
    });
    // Loaded only when switched on: mqtt.js is the largest part of an idle daemon's memory.
    const mirror = config.mqtt.enabled
      ? (await import('./mqtt/publisher.js')).mirrorFromConfig({
          config,
          env,
          source: service,
          snapshots: () => fleet.snapshots(),
          logger,
          version: appVersion(),
          tuning: this.options.mqtt,
        })
      : null;
    const { catchUpDelayMs, ...hooks } = this.options.submitter ?? {};
    const endpoint = config.usage_statistics.endpoint;
    const submitter = new UsageSubmitter({ service, endpoint, logger, ...hooks });
    const scheduler = endpoint
      ? new SubmissionScheduler({
          service,
          submitter,
          logger,
          schedule: config.usage_statistics.schedule,
          timezone: timezone(),
          catchUpDelayMs,
        })
      : null;
    return { service, fleet, mirror, submitter, scheduler, captures };
  }

  /** The parts after the database, in start order. */
  private parts(core: DaemonCore): DaemonPart[] {
    const { config, logger } = this.options;
    const { service, fleet, mirror, submitter, scheduler, captures } = core;
    let cleanupTimer: NodeJS.Timeout | null = null;
    let stopMirroringPrinters: (() => void) | null = null;
    let server: HttpServer | null = null;
    return [
      {
        // Before app_start, so the mirror sees every event; it stops after app_shutdown for the same reason.
        name: 'mqtt mirror',
        start: () => {
          if (!mirror) return;
          service.onRecorded((event) => mirror.publishEvent(event));
          stopMirroringPrinters = fleet.onChange((changed) => mirror.printersChanged(changed));
          mirror.start();
        },
        stop: async () => {
          stopMirroringPrinters?.();
          await mirror?.stop();
        },
      },
      {
        name: 'usage statistics',
        start: () => {
          service.recordEvent('app_start', service.appStartMetadata());
          this.recordFeatureChanges(service);
          this.runCleanup(service);
          cleanupTimer = setInterval(() => this.runCleanup(service), CLEANUP_INTERVAL_MS);
          cleanupTimer.unref();
        },
        stop: () => {
          if (cleanupTimer) clearInterval(cleanupTimer);
          service.recordEvent('app_shutdown', { uptime_seconds: service.uptimeSeconds() });
          service.flushPending();
        },
      },
      {
        name: 'printers',
        start: () => {
          fleet.start();
          captures.attach(fleet);
        },
        stop: async () => {
          // A running capture ends with its end line before the printers stop.
          captures.close('daemon_stopping');
          await fleet.stop();
        },
      },
      {
        name: 'submission',
        start: () => {
          if (!config.usage_statistics.endpoint) {
            logger.info('usage_statistics.endpoint is not set: statistics are kept locally and never submitted');
          }
          scheduler?.start();
        },
        stop: async () => {
          scheduler?.stop();
          await submitter.stop();
        },
      },
      {
        name: 'http server',
        start: async () => {
          const app = createHttpApp({
            service,
            logger,
            version: appVersion(),
            // Printers left out of the config are listed too, with the reason (issue 13).
            printers: () => [...fleet.snapshots(), ...rejectedPrinterSnapshots(config.rejected_printers)],
            submission: submitter,
            captures: this.options.createDriver ? captures : undefined,
            access: accessOptionsFrom(config, this.options.env ?? process.env),
          });
          const listening = await this.listen(app.fetch);
          server = listening.server;
          this.listeningPort = listening.port;
        },
        stop: async () => {
          if (!server) return;
          const closing = server;
          server = null;
          await new Promise<void>((resolve) => {
            closing.close(() => resolve());
            // Keep-alive connections (a browser tab) would hold close() open.
            (closing as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          });
        },
      },
    ];
  }

  private async startPart(part: DaemonPart): Promise<void> {
    try {
      await part.start();
    } catch (error) {
      this.options.logger.error({ err: error, part: part.name }, `${part.name} failed to start`);
      throw error;
    }
    this.started.push(part);
  }

  private listen(
    fetch: (request: Request) => Response | Promise<Response>,
  ): Promise<{ server: HttpServer; port: number }> {
    const { port, host } = this.options;
    return new Promise((resolve, reject) => {
      const server = serve({ fetch, port, hostname: host }, (info: AddressInfo) =>
        resolve({ server, port: info.port }),
      );
      server.once('error', (error: NodeJS.ErrnoException) => {
        server.close();
        const reason =
          error.code === 'EADDRINUSE'
            ? `port ${port} on ${host} is already in use`
            : `cannot listen on ${host}:${port} (${error.code ?? error.message})`;
        reject(new Error(reason));
      });
    });
  }

  /** feature_enabled / feature_disabled when a start finds a feature switched differently from the last run. */
  private recordFeatureChanges(service: UsageStatsService): void {
    for (const [feature, enabled] of Object.entries(configuredFeatures(this.options.config)) as [Feature, boolean][]) {
      const key = featureSettingKey(feature);
      const previous = service.getSetting(key);
      const now = enabled ? 'on' : 'off';
      if (previous === now) continue;
      service.setSetting(key, now);
      // The first run only records features that are on; "off" is the default and not news.
      if (previous !== null || enabled)
        service.recordEvent(enabled ? 'feature_enabled' : 'feature_disabled', { feature });
    }
  }

  private runCleanup(service: UsageStatsService): void {
    try {
      service.cleanup(this.options.config.usage_statistics.retention_days);
    } catch (error) {
      this.options.logger.error({ err: error }, 'retention cleanup failed');
    }
  }

  /** Stops every started part in reverse order; safe to call more than once. */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const { logger } = this.options;
    logger.info({ reason }, 'stopping');
    for (const part of this.started.splice(0).reverse()) {
      try {
        await part.stop();
      } catch (error) {
        logger.error({ err: error, part: part.name }, `${part.name} failed to stop`);
      }
    }
    logger.info('stopped');
  }
}

/** A driver factory for a daemon run without printers. */
const noDriver: DriverFactory = (_printer, id) => ({ id, start: () => {}, stop: async () => {} });

/** Resolved on first use only: without TZ or a configured zone it loads Intl's zone data (memory). */
function resolveOnce<T>(compute: () => T): () => T {
  let value: { v: T } | null = null;
  return () => {
    value ??= { v: compute() };
    return value.v;
  };
}
