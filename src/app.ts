/**
 * Wires the daemon for `run`: parts start in order and stop in reverse (STYLE.md, zigbee2mqtt's controller). The
 * statistics database is opened first and closed last, so every part can record events until the end.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { databasePath, ensureWritableDir, openDatabase } from './db/open.js';
import { accessOptionsFrom } from './http/access.js';
import { createHttpApp } from './http/app.js';
import type { SubmissionControl } from './http/routes/usage-stats.js';
import { acquireDataDirLock, type DataDirLock } from './lock.js';
import type { MirrorTuning, MqttMirror } from './mqtt/publisher.js';
import { type DriverFactory, PrinterFleet } from './printers/fleet.js';
import type { Feature } from './stats/events.js';
import { appVersion, effectiveTimezone } from './stats/privacy.js';
import { UsageRepository } from './stats/repository.js';
import { SubmissionScheduler } from './stats/scheduler.js';
import { UsageStatsService } from './stats/service.js';
import { type SubmitterOptions, UsageSubmitter } from './stats/submitter.js';

export interface DaemonOptions {
  config: Config;
  dataDir: string;
  port: number;
  host: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  createDriver?: DriverFactory;
  /** Test hooks for the submitter (backoff sleep, retry delays, timeout, catch-up delay). */
  submitter?: Pick<SubmitterOptions, 'sleep' | 'retryDelaysMs' | 'timeoutMs' | 'random'> & { catchUpDelayMs?: number };
  /** Test hooks for the MQTT mirror (reconnect period, debounce, queue bound). */
  mqtt?: MirrorTuning;
}

const FEATURE_SETTING_PREFIX = 'feature_state.';
const CLEANUP_INTERVAL_MS = 24 * 3600 * 1000;

type HttpServer = ReturnType<typeof serve>;

/** The optional features as the config switches them; usage_statistics comes from the user's opt-in instead. */
export function configuredFeatures(config: Config): Partial<Record<Feature, boolean>> {
  return {
    mqtt_publish: config.mqtt.enabled,
    ha_discovery: config.mqtt.enabled && config.mqtt.discovery,
    api_token: config.api_token !== undefined,
  };
}

export class Daemon {
  private lock: DataDirLock | null = null;
  private db: Database.Database | null = null;
  private server: HttpServer | null = null;
  private cleanupTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  service: UsageStatsService | null = null;
  fleet: PrinterFleet | null = null;
  mirror: MqttMirror | null = null;
  submission: SubmissionControl | undefined;
  submitter: UsageSubmitter | null = null;
  scheduler: SubmissionScheduler | null = null;
  private resolvedTimezone: string | null | undefined;
  port = 0;

  constructor(private readonly options: DaemonOptions) {}

  async start(): Promise<{ port: number }> {
    const { config, dataDir, logger } = this.options;
    const env = this.options.env ?? process.env;
    ensureWritableDir(dataDir);
    this.lock = acquireDataDirLock(dataDir);
    try {
      this.db = openDatabase(databasePath(dataDir));
      const repository = new UsageRepository(this.db);
      const fleetRef: { current: PrinterFleet | null } = { current: null };
      const service = new UsageStatsService({
        repository,
        logger,
        env,
        timezone: () => this.timezone(),
        fleet: () => fleetRef.current?.members() ?? [],
        features: () => this.features(),
        nextSubmission: () => this.scheduler?.nextSubmission() ?? null,
      });
      this.service = service;
      // Subscribed before app_start so the mirror sees every event; it connects once the fleet runs.
      // Loaded only when switched on: mqtt.js is the largest part of an idle daemon's memory.
      const mirror = config.mqtt.enabled
        ? (await import('./mqtt/publisher.js')).mirrorFromConfig({
            config,
            env,
            source: service,
            snapshots: () => this.fleet?.snapshots() ?? [],
            logger,
            version: appVersion(),
            tuning: this.options.mqtt,
          })
        : null;
      this.mirror = mirror;
      if (mirror) service.onRecorded((event) => mirror.publishEvent(event));
      service.recordEvent('app_start', service.appStartMetadata());
      this.recordFeatureChanges();
      this.runCleanup();
      this.cleanupTimer = setInterval(() => this.runCleanup(), CLEANUP_INTERVAL_MS);
      this.cleanupTimer.unref();

      if (this.options.createDriver) {
        const fleet = new PrinterFleet(config.printers, {
          emit: (type, metadata) => service.recordEvent(type, metadata),
          logger,
          createDriver: this.options.createDriver,
        });
        fleetRef.current = fleet;
        this.fleet = fleet;
        fleet.start();
        if (mirror) fleet.onChange((changed) => mirror.printersChanged(changed));
      }
      mirror?.start();

      this.startSubmission(service);
      const app = createHttpApp({
        service,
        logger,
        version: appVersion(),
        printers: () => this.fleet?.snapshots() ?? [],
        submission: this.submission,
        access: accessOptionsFrom(config, env),
      });
      this.port = await this.listen(app.fetch);
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

  private listen(fetch: (request: Request) => Response | Promise<Response>): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = serve({ fetch, port: this.options.port, hostname: this.options.host }, (info: AddressInfo) =>
        resolve(info.port),
      );
      server.once('error', (error: NodeJS.ErrnoException) => {
        const reason =
          error.code === 'EADDRINUSE'
            ? `port ${this.options.port} on ${this.options.host} is already in use`
            : `cannot listen on ${this.options.host}:${this.options.port} (${error.code ?? error.message})`;
        reject(new Error(reason));
      });
      this.server = server;
    });
  }

  /** Submitter and scheduler; without an endpoint submission stays off (submitNow says why). */
  private startSubmission(service: UsageStatsService): void {
    const { config, logger } = this.options;
    const { catchUpDelayMs, ...hooks } = this.options.submitter ?? {};
    const endpoint = config.usage_statistics.endpoint;
    this.submitter = new UsageSubmitter({ service, endpoint, logger, ...hooks });
    this.submission = this.submitter;
    if (!endpoint) {
      logger.info('usage_statistics.endpoint is not set: statistics are kept locally and never submitted');
      return;
    }
    this.scheduler = new SubmissionScheduler({
      service,
      submitter: this.submitter,
      logger,
      schedule: config.usage_statistics.schedule,
      timezone: this.timezone(),
      catchUpDelayMs,
    });
    this.scheduler.start();
  }

  /** Resolved once, and only when needed: without TZ or a configured zone it loads Intl's zone data (memory). */
  private timezone(): string | null {
    if (this.resolvedTimezone === undefined) {
      this.resolvedTimezone = effectiveTimezone(this.options.config.timezone, this.options.env ?? process.env);
    }
    return this.resolvedTimezone;
  }

  private features(): Partial<Record<Feature, boolean>> {
    return configuredFeatures(this.options.config);
  }

  /** feature_enabled / feature_disabled when a start finds a feature switched differently from the last run. */
  private recordFeatureChanges(): void {
    const service = this.service!;
    for (const [feature, enabled] of Object.entries(this.features()) as [Feature, boolean][]) {
      const key = FEATURE_SETTING_PREFIX + feature;
      const previous = service.getSetting(key);
      const now = enabled ? 'on' : 'off';
      if (previous === now) continue;
      service.setSetting(key, now);
      // The first run only records features that are on; "off" is the default and not news.
      if (previous !== null || enabled)
        service.recordEvent(enabled ? 'feature_enabled' : 'feature_disabled', { feature });
    }
  }

  private runCleanup(): void {
    try {
      this.service?.cleanup(this.options.config.usage_statistics.retention_days);
    } catch (error) {
      this.options.logger.error({ err: error }, 'retention cleanup failed');
    }
  }

  /** Stops every part in reverse order; safe to call more than once. */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const { logger } = this.options;
    logger.info({ reason }, 'stopping');
    this.scheduler?.stop();
    await this.submitter?.stop();
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    if (this.server) {
      const server = this.server;
      this.server = null;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (a browser tab) would hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    }
    await this.fleet?.stop();
    if (this.service) {
      this.service.recordEvent('app_shutdown', { uptime_seconds: this.service.uptimeSeconds() });
      this.service.flushPending();
    }
    // After app_shutdown (so it is mirrored) and before the database closes (the last summary reads it).
    await this.mirror?.stop();
    try {
      this.db?.close();
    } catch (error) {
      logger.error({ err: error }, 'closing the database failed');
    }
    this.db = null;
    this.lock?.release();
    this.lock = null;
    logger.info('stopped');
  }
}
