/**
 * The MQTT mirror: shows on the user's broker what the daemon records, for inspection and for Home Assistant.
 *
 * `<base>/bridge/state` is retained `online` while connected and `offline` after a clean stop, with the same
 * `offline` as last will for a crash. Each recorded event goes to `<base>/events` (QoS 1, not retained), the summary
 * to `<base>/stats` (retained, debounced) and each printer's live state to `<base>/printers/<id>/state` (retained).
 *
 * The broker is optional infrastructure: recording an event never waits for it. While it is away, events wait in a
 * bounded queue (the oldest dropped and counted) and every retained topic is re-published from current state when it
 * comes back; an outage is recorded as one `error_occurred` (component `mqtt_publish`), however long it lasts.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { PrinterSnapshot } from '../printers/types.js';
import type { ErrorType, EventType, PrinterModel, PrinterType, UsageEvent } from '../stats/events.js';
import { SETTINGS } from '../stats/settings-keys.js';
import {
  bridgeDiscovery,
  bridgeDiscoveryRemoval,
  type DiscoveryContext,
  type DiscoveryMessage,
  printerDiscovery,
  printerDiscoveryRemoval,
} from './discovery.js';
import { type MqttSettings, resolveMqttSettings } from './settings.js';
import { type StatsSource, statsSummary } from './summary.js';
import { assignPrinterIds, type MirrorTopics, mirrorTopics } from './topics.js';

export interface MirrorSource extends StatsSource {
  getSetting(key: string): string | null;
  setSetting(key: string, value: string): void;
  recordEvent(eventType: EventType, metadata?: unknown): unknown;
}

/** A configured printer as the mirror may show it: the slug id, the configured name, the kind. */
export interface MirrorPrinter {
  id: string;
  name: string;
  type: PrinterType;
}

export interface MirrorOptions {
  settings: MqttSettings;
  source: MirrorSource;
  /** The configured printers (ids from assignPrinterIds), including ones whose bridge is not running. */
  printers: readonly MirrorPrinter[];
  snapshots: () => PrinterSnapshot[];
  logger: Logger;
  version: string;
  reconnectPeriodMs?: number;
  connectTimeoutMs?: number;
  statsDebounceMs?: number;
  /**
   * Printer states changed within this window go out together, the latest of each printer (0: each at once). Saves a
   * socket write per change on a busy farm (one per printer and second while Bambu Lab printers print, bench/farm.ts)
   * and keeps a flapping printer from flooding the broker.
   */
  stateFlushMs?: number;
  /** Events kept while the broker is away; the oldest are dropped beyond it. */
  queueLimit?: number;
  /** How long a clean stop waits for the broker to take `offline` and the last events. */
  stopTimeoutMs?: number;
}

/** What a run published, so the next one can remove what is no longer configured. */
interface PublishedRecord {
  base_topic: string;
  discovery_prefix: string;
  node_id: string;
  discovery: boolean;
  printers: string[];
}

const RETAINED: IClientPublishOptions = { qos: 1, retain: true };
const EVENT: IClientPublishOptions = { qos: 1, retain: false };
/**
 * A printer's live state: retained, QoS 0. Each state supersedes the last within seconds and every state is published
 * again on reconnect, so the broker's acknowledgement buys nothing; on a farm it was one PUBACK to track per printer
 * and second (bench/farm.ts). zigbee2mqtt publishes device state the same way by default.
 */
const LIVE_STATE: IClientPublishOptions = { qos: 0, retain: true };

export class MqttMirror {
  private readonly logger: Logger;
  private readonly topics: MirrorTopics;
  private readonly queueLimit: number;
  private readonly statsDebounceMs: number;
  private client: MqttClient | null = null;
  private nodeId = '';
  private readonly queue: string[] = [];
  private statsTimer: NodeJS.Timeout | null = null;
  private readonly stateFlushMs: number;
  /** Printer states waiting for the next flush: the latest of each printer. */
  private readonly pendingStates = new Map<string, PrinterSnapshot>();
  private stateTimer: NodeJS.Timeout | null = null;
  private statsDirty = false;
  private outageReported = false;
  private publishErrorReported = false;
  private droppedThisOutage = 0;
  private stopping = false;
  private readonly publishedModels = new Map<string, PrinterModel>();
  private readonly printersById: ReadonlyMap<string, MirrorPrinter>;
  /** Events dropped from the full queue since start. */
  droppedEvents = 0;
  /** Connections made since start (the first one included). */
  connections = 0;

  constructor(private readonly options: MirrorOptions) {
    this.logger = options.logger.child({ component: 'mqtt' });
    this.topics = mirrorTopics(options.settings.baseTopic, options.settings.discoveryPrefix);
    this.queueLimit = options.queueLimit ?? 1000;
    this.statsDebounceMs = options.statsDebounceMs ?? 2000;
    this.stateFlushMs = options.stateFlushMs ?? 250;
    this.printersById = new Map(options.printers.map((printer) => [printer.id, printer]));
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  queuedEvents(): number {
    return this.queue.length;
  }

  discoveryNodeId(): string {
    return this.nodeId;
  }

  start(): void {
    if (this.client || this.stopping) return;
    const { settings } = this.options;
    this.nodeId = this.resolveNodeId();
    this.logger.info(
      { broker: redactUrl(settings.url), source: settings.source, base_topic: settings.baseTopic },
      'connecting to the MQTT broker',
    );
    const client = mqtt.connect(settings.url, {
      clientId: `printernizer-stats_${randomBytes(4).toString('hex')}`,
      username: settings.username,
      password: settings.password,
      clean: true,
      keepalive: 30,
      reconnectPeriod: this.options.reconnectPeriodMs ?? 5000,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      resubscribe: false,
      queueQoSZero: false,
      // Otherwise mqtt-packet fills a cache of 65,536 two-byte Buffers (one per 16-bit number) on the first packet:
      // 6 MB of heap that every full GC marks again (bench/farm.ts heap snapshot). The switch is process-wide.
      writeCache: false,
      will: { topic: this.topics.bridgeState, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', () => this.onConnect());
    client.on('close', () => this.onClose());
    client.on('error', (error) => this.onError(error));
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload.toString('utf8'), packet.retain));
  }

  /** A recorded event: published now when connected, queued otherwise. Never throws, never waits. */
  publishEvent(event: UsageEvent): void {
    if (this.stopping && !this.client) return;
    const payload = JSON.stringify({
      id: event.id,
      event_type: event.event_type,
      timestamp: event.timestamp,
      metadata: event.metadata,
      submitted: event.submitted,
    });
    if (this.connected && this.queue.length === 0) this.send(this.topics.events, payload, EVENT);
    else this.enqueue(payload);
    this.statsChanged();
  }

  /** Something that the summary counts changed: publish it once things have been quiet for a moment. */
  statsChanged(): void {
    this.statsDirty = true;
    if (this.statsTimer || this.stopping) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = null;
      this.publishStats();
    }, this.statsDebounceMs);
    this.statsTimer.unref();
  }

  /** Printers whose live state changed (PrinterFleet.onChange): their states go out within stateFlushMs. */
  printersChanged(changed: readonly PrinterSnapshot[]): void {
    if (!this.connected) return; // everything is re-published on connect
    for (const snapshot of changed) {
      this.pendingStates.set(snapshot.id, snapshot);
      const printer = this.printersById.get(snapshot.id);
      if (printer && this.options.settings.discovery && this.publishedModels.get(printer.id) !== snapshot.model) {
        this.publishPrinterDiscovery(printer, snapshot.model);
      }
    }
    if (this.stateFlushMs <= 0) this.flushStates();
    else if (!this.stateTimer && !this.stopping) {
      this.stateTimer = setTimeout(() => {
        this.stateTimer = null;
        this.flushStates();
      }, this.stateFlushMs);
      this.stateTimer.unref();
    }
  }

  /** The printer states changed since the last flush, in one go (one socket write for all of them). */
  private flushStates(): void {
    // Disconnected meanwhile: every state is re-published on connect.
    if (this.connected) {
      for (const snapshot of this.pendingStates.values()) {
        this.send(this.topics.printerState(snapshot.id), JSON.stringify(snapshot), LIVE_STATE);
      }
    }
    this.pendingStates.clear();
  }

  /** Clean stop: the last summary and `offline` (retained) reach the broker before the connection closes. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.statsTimer) clearTimeout(this.statsTimer);
    this.statsTimer = null;
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.stateTimer = null;
    const client = this.client;
    if (!client) return;
    const deadline = this.options.stopTimeoutMs ?? 2000;
    if (client.connected) {
      this.flushStates();
      if (this.statsDirty) this.publishStats();
      const said = await withTimeout(this.publish(this.topics.bridgeState, 'offline', RETAINED), deadline);
      // end(false) waits for QoS 1 messages still in flight (the app_shutdown event among them).
      const ended = said && (await withTimeout(client.endAsync(false), deadline));
      if (!ended) await client.endAsync(true).catch(() => undefined);
    } else {
      await client.endAsync(true).catch(() => undefined);
    }
    if (this.queue.length > 0) {
      this.logger.warn({ queued: this.queue.length }, 'stopped with events the broker never received');
    }
    this.client = null;
    this.logger.info('MQTT mirror stopped');
  }

  private onConnect(): void {
    this.connections++;
    if (this.outageReported || this.droppedThisOutage > 0) {
      this.logger.info(
        { queued: this.queue.length, dropped: this.droppedThisOutage },
        'the MQTT broker is reachable again',
      );
    } else {
      this.logger.info('connected to the MQTT broker');
    }
    this.outageReported = false;
    this.publishErrorReported = false;
    this.droppedThisOutage = 0;
    this.send(this.topics.bridgeState, 'online', RETAINED);
    if (this.options.settings.discovery) {
      this.client?.subscribe(this.topics.haStatus, { qos: 1 }, (error) => {
        if (error) this.logger.warn({ err: error }, 'could not subscribe to the Home Assistant status topic');
      });
    }
    void this.removeStale();
    this.publishState();
    // Queued events last: they are history, the retained topics are what is true now.
    while (this.queue.length > 0 && this.connected) this.send(this.topics.events, this.queue.shift()!, EVENT);
  }

  /** Discovery (when on), the summary and every printer's state, from what is true now. */
  private publishState(): void {
    if (this.options.settings.discovery) {
      this.sendAll(bridgeDiscovery(this.discoveryContext()));
      const snapshots = new Map(this.options.snapshots().map((s) => [s.id, s] as const));
      for (const printer of this.options.printers) {
        this.publishPrinterDiscovery(printer, snapshots.get(printer.id)?.model ?? 'other');
      }
    }
    this.publishStats();
    // Every state as it is now: a pending (older) one flushed after these would overwrite them.
    this.pendingStates.clear();
    for (const snapshot of this.options.snapshots()) {
      this.send(this.topics.printerState(snapshot.id), JSON.stringify(snapshot), LIVE_STATE);
    }
  }

  private publishPrinterDiscovery(printer: MirrorPrinter, model: PrinterModel): void {
    this.publishedModels.set(printer.id, model);
    this.sendAll(printerDiscovery(this.discoveryContext(), { ...printer, model }));
  }

  private publishStats(): void {
    if (!this.connected) return; // re-published on connect
    try {
      const summary = statsSummary(this.options.source);
      this.statsDirty = false;
      this.send(this.topics.stats, JSON.stringify(summary), RETAINED);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not build the statistics summary');
    }
  }

  /**
   * Removes what an earlier run published and this one no longer does: the discovery and retained state of printers
   * taken out of the config, and all discovery when it was switched off. The record is saved once the broker took
   * the removals, so a crash in between only repeats them.
   */
  private async removeStale(): Promise<void> {
    const { source, settings } = this.options;
    let previous: PublishedRecord | null = null;
    try {
      const raw = source.getSetting(SETTINGS.mqttPublished);
      previous = raw ? (JSON.parse(raw) as PublishedRecord) : null;
    } catch (error) {
      this.logger.warn({ err: error }, 'could not read what the last run published; nothing removed');
    }
    const current: PublishedRecord = {
      base_topic: settings.baseTopic,
      discovery_prefix: settings.discoveryPrefix,
      node_id: this.nodeId,
      discovery: settings.discovery,
      printers: this.options.printers.map((p) => p.id),
    };
    const removals: DiscoveryMessage[] = [];
    if (previous && Array.isArray(previous.printers)) {
      const oldTopics = mirrorTopics(previous.base_topic, previous.discovery_prefix);
      const oldContext: DiscoveryContext = {
        topics: oldTopics,
        nodeId: previous.node_id,
        version: this.options.version,
      };
      const sameDiscovery =
        current.discovery &&
        previous.discovery_prefix === current.discovery_prefix &&
        previous.node_id === current.node_id;
      const sameBase = previous.base_topic === current.base_topic;
      for (const id of previous.printers) {
        const kept = current.printers.includes(id);
        if (!kept || !sameBase) removals.push({ topic: oldTopics.printerState(id), payload: '' });
        if (previous.discovery && (!kept || !sameDiscovery)) removals.push(...printerDiscoveryRemoval(oldContext, id));
      }
      if (previous.discovery && !sameDiscovery) removals.push(...bridgeDiscoveryRemoval(oldContext));
    }
    if (removals.length > 0) {
      this.logger.info(
        { removed_topics: removals.length },
        'removing retained topics of printers no longer configured',
      );
    }
    const delivered = await Promise.all(removals.map((m) => this.publish(m.topic, m.payload, RETAINED)));
    if (delivered.every(Boolean) && JSON.stringify(previous) !== JSON.stringify(current)) {
      try {
        source.setSetting(SETTINGS.mqttPublished, JSON.stringify(current));
      } catch (error) {
        this.logger.warn({ err: error }, 'could not save what was published');
      }
    }
  }

  private onMessage(topic: string, payload: string, retained: boolean): void {
    // Home Assistant's birth message: it (re)started and forgot non-retained state, so tell it everything again. A
    // retained `online` is old news that arrives with every subscription.
    if (topic === this.topics.haStatus && payload.trim() === 'online' && !retained && this.connected) {
      this.logger.info('Home Assistant came online; re-publishing discovery and state');
      this.publishState();
    }
  }

  private onClose(): void {
    if (this.stopping) return;
    this.reportOutage('broker_unavailable', 'the MQTT broker is unreachable; queueing events until it is back');
  }

  private onError(error: Error & { code?: string | number }): void {
    if (this.stopping) return;
    // CONNACK 4 / 5 (MQTT 3.1.1), 134 / 135 (MQTT 5): the broker refused our login.
    const refused = [4, 5, 134, 135].includes(Number(error.code));
    this.reportOutage(refused ? 'auth_failed' : 'broker_unavailable', 'the MQTT broker refused the connection', error);
  }

  private reportOutage(errorType: ErrorType, message: string, error?: Error): void {
    if (this.outageReported) return;
    this.outageReported = true;
    this.logger.warn({ err: error ? { message: error.message } : undefined, error_type: errorType }, message);
    this.recordError(errorType);
  }

  private recordError(errorType: ErrorType): void {
    try {
      this.options.source.recordEvent('error_occurred', { error_type: errorType, component: 'mqtt_publish' });
    } catch (error) {
      this.logger.warn({ err: error }, 'could not record the MQTT error');
    }
  }

  private enqueue(payload: string): void {
    if (this.queue.length >= this.queueLimit) {
      this.queue.shift();
      this.droppedEvents++;
      this.droppedThisOutage++;
      if (this.droppedThisOutage === 1 || this.droppedThisOutage % 1000 === 0) {
        this.logger.warn(
          { dropped: this.droppedThisOutage, dropped_total: this.droppedEvents, queue_limit: this.queueLimit },
          'MQTT event queue is full; dropping the oldest events',
        );
      }
    }
    this.queue.push(payload);
  }

  private sendAll(messages: readonly DiscoveryMessage[]): void {
    for (const message of messages) this.send(message.topic, message.payload, RETAINED);
  }

  /** Fire and forget; a failure is logged and recorded once per connection. */
  private send(topic: string, payload: string, options: IClientPublishOptions): void {
    void this.publish(topic, payload, options);
  }

  private publish(topic: string, payload: string, options: IClientPublishOptions): Promise<boolean> {
    const client = this.client;
    if (!client) return Promise.resolve(false);
    return new Promise((resolve) => {
      client.publish(topic, payload, options, (error) => {
        if (error) {
          if (!this.publishErrorReported && !this.stopping) {
            this.publishErrorReported = true;
            this.logger.warn({ err: { message: error.message } }, 'publishing to the MQTT broker failed');
            if (!this.outageReported) this.recordError('publish_failed');
          }
          resolve(false);
        } else resolve(true);
      });
    });
  }

  private discoveryContext(): DiscoveryContext {
    return { topics: this.topics, nodeId: this.nodeId, version: this.options.version };
  }

  /** A random id kept in the settings table: stable unique_ids, and nothing that identifies the installation. */
  private resolveNodeId(): string {
    const { source } = this.options;
    const stored = source.getSetting(SETTINGS.mqttNodeId);
    if (stored && /^[A-Za-z0-9_-]+$/.test(stored)) return stored;
    const nodeId = `printernizer_stats_${randomBytes(3).toString('hex')}`;
    source.setSetting(SETTINGS.mqttNodeId, nodeId);
    return nodeId;
  }
}

/** Knobs tests turn; the defaults are for people. */
export type MirrorTuning = Partial<
  Pick<
    MirrorOptions,
    'reconnectPeriodMs' | 'connectTimeoutMs' | 'statsDebounceMs' | 'stateFlushMs' | 'queueLimit' | 'stopTimeoutMs'
  >
>;

/**
 * The mirror as the config asks for it, or null when MQTT is off or no broker is known (logged: the daemon runs on
 * without it). Not started yet: subscribe it to recorded events first so nothing recorded at start-up is missed.
 */
export function mirrorFromConfig(deps: {
  config: Config;
  env: NodeJS.ProcessEnv;
  source: MirrorSource;
  snapshots: () => PrinterSnapshot[];
  logger: Logger;
  version: string;
  tuning?: MirrorTuning;
}): MqttMirror | null {
  const { config } = deps;
  if (!config.mqtt.enabled) return null;
  const resolved = resolveMqttSettings(config.mqtt, deps.env);
  if (!resolved.ok) {
    deps.logger.child({ component: 'mqtt' }).warn(`MQTT mirror not started: ${resolved.reason}`);
    return null;
  }
  const ids = assignPrinterIds(config.printers.map((p) => p.name));
  return new MqttMirror({
    settings: resolved.settings,
    source: deps.source,
    printers: config.printers.map((p, index) => ({ id: ids[index]!, name: p.name, type: p.type })),
    snapshots: deps.snapshots,
    logger: deps.logger,
    version: deps.version,
    ...deps.tuning,
  });
}

/** The broker URL without user info, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    const result = await Promise.race([promise.then((value) => value !== false).catch(() => false), timeout]);
    return result;
  } finally {
    clearTimeout(timer);
  }
}
