/**
 * The Bambu Lab driver: one MQTT session per printer (PROTOCOLS.md A6/A7), reports merged into a live state and fed
 * to the shared PrinterTracker, which owns every job and connection event.
 *
 * Session life: connect (mqtt.js, no automatic reconnect) → subscribe to the report topic only → get_version and at
 * most one pushall per 5 minutes → reports. A watchdog marks the printer offline after 60 s without data and asks for
 * `pushing.start`; a second silent period ends the session. After any close the driver reconnects itself: exponential
 * backoff with jitter (1 s → 60 s), or every 5 minutes after a refused login, which is logged and counted once.
 */

import { connect, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { DisconnectReason, PrinterModel } from '../../stats/events.js';
import { PrinterTracker } from '../tracker.js';
import type { EventSink, PrinterDriver, PrinterSnapshot } from '../types.js';
import {
  type ConnectionSettings,
  classifyError,
  connectOptions,
  errorCode,
  type FailureKind,
  newClientId,
  REQUESTS,
  reportTopic,
  requestTopic,
} from './client.js';
import { modelFromSerial } from './model.js';
import {
  BambuReportState,
  DEFAULT_MAX_REPORT_BYTES,
  parseReport,
  snapshotProgress,
  snapshotRemainingMinutes,
  snapshotState,
} from './report.js';

export interface BambuTimings {
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Retry interval after CONNACK 4/5: a wrong access code does not fix itself. */
  authRetryMs: number;
  watchdogMs: number;
  /** P1 firmware must not be asked for a full report more often (OpenBambuAPI). */
  pushallMinIntervalMs: number;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
  /** At most one report_unparseable event per this interval. */
  unparseableEventIntervalMs: number;
  /** stop() gives the session this long to close politely. */
  stopTimeoutMs: number;
}

export const DEFAULT_TIMINGS: BambuTimings = {
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  authRetryMs: 5 * 60_000,
  watchdogMs: 60_000,
  pushallMinIntervalMs: 5 * 60_000,
  connectTimeoutMs: 10_000,
  keepaliveSeconds: 30,
  unparseableEventIntervalMs: 60 * 60_000,
  stopTimeoutMs: 1500,
};

/** The connection settings the driver passes on to the client, minus what the driver fills in itself. */
export interface BambuDriverOptions
  extends Pick<ConnectionSettings, 'host' | 'port' | 'serial' | 'accessCode' | 'tls' | 'verifyCertificate' | 'ca'> {
  /** Already a slug of the configured name. */
  id: string;
  name: string;
  /** Shorter timings for tests. */
  timings?: Partial<BambuTimings>;
  maxReportBytes?: number;
}

export interface BambuDriverDeps {
  emit: EventSink;
  logger: Logger;
  tracker?: PrinterTracker;
}

export interface BambuDriverCounters {
  reportsHandled: number;
  malformedReports: number;
  /** Messages on a topic that is not this printer's report topic. */
  foreignReports: number;
  sessions: number;
  connectAttempts: number;
}

type Cause = 'auth' | 'tls';

export class BambuDriver implements PrinterDriver {
  readonly id: string;
  readonly counters: BambuDriverCounters = {
    reportsHandled: 0,
    malformedReports: 0,
    foreignReports: 0,
    sessions: 0,
    connectAttempts: 0,
  };

  private readonly timings: BambuTimings;
  private readonly tracker: PrinterTracker;
  private readonly log: Logger;
  private readonly clientId = newClientId();
  private readonly report = new BambuReportState();
  private readonly topic: string;
  private model: PrinterModel;
  private modelFromVersion = false;

  private client: MqttClient | null = null;
  private stopped = true;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private sessionUp = false;
  /** A report arrived in this session (the session is healthy). */
  private reportSeen = false;
  private lastError: unknown = null;
  private silentPeriods = 0;
  private online = false;
  private lastSeen: number | null = null;
  private lastPushallAt: number | null = null;
  private connectionProblem: string | null = null;
  private problemKind: FailureKind | 'silent' | null = null;
  /** Causes already counted (error_occurred) and logged in the current outage. */
  private countedCauses = new Set<Cause>();
  private loggedFailures = new Set<string>();
  private lastUnparseableEventAt: number | null = null;
  private loggedMalformed = new Set<string>();
  private lastProjectFileSeq: string | null = null;

  constructor(
    private readonly opts: BambuDriverOptions,
    private readonly deps: BambuDriverDeps,
  ) {
    this.id = opts.id;
    this.timings = { ...DEFAULT_TIMINGS, ...opts.timings };
    this.log = deps.logger;
    this.topic = reportTopic(opts.serial);
    this.model = modelFromSerial(opts.serial);
    this.tracker =
      deps.tracker ??
      new PrinterTracker({ printerType: 'bambu_lab', model: () => this.model, connection: 'mqtt', emit: deps.emit });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer('reconnectTimer');
    this.clearTimer('watchdogTimer');
    const client = this.client;
    this.client = null;
    this.sessionUp = false;
    this.online = false;
    if (!client) return;
    client.removeAllListeners();
    client.on('error', () => {});
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.end(true);
        resolve();
      }, this.timings.stopTimeoutMs);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  snapshot(): PrinterSnapshot {
    const fields = this.report.fields;
    const malformed = this.counters.malformedReports;
    return {
      id: this.id,
      name: this.opts.name,
      type: 'bambu_lab',
      model: this.model,
      online: this.online,
      state: snapshotState(fields),
      progress: snapshotProgress(fields),
      remaining_minutes: snapshotRemainingMinutes(fields),
      last_seen: this.lastSeen === null ? null : new Date(this.lastSeen).toISOString(),
      problem:
        this.connectionProblem ??
        (malformed > 0 ? `${malformed} malformed report${malformed === 1 ? '' : 's'} skipped` : null),
    };
  }

  /** The model as known now: from get_version once it answered, else from the serial prefix. */
  get printerModel(): PrinterModel {
    return this.model;
  }

  // --- session -------------------------------------------------------------------------------------------------------

  private connect(): void {
    if (this.stopped || this.client) return;
    this.counters.connectAttempts++;
    this.sessionUp = false;
    this.reportSeen = false;
    this.lastError = null;
    this.silentPeriods = 0;
    const client = connect(
      connectOptions({
        host: this.opts.host,
        port: this.opts.port,
        serial: this.opts.serial,
        accessCode: this.opts.accessCode,
        tls: this.opts.tls,
        verifyCertificate: this.opts.verifyCertificate,
        clientId: this.clientId,
        connectTimeoutMs: this.timings.connectTimeoutMs,
        keepaliveSeconds: this.timings.keepaliveSeconds,
        ca: this.opts.ca,
      }),
    );
    this.client = client;
    client.on('connect', () => this.client === client && this.onConnect(client));
    client.on('message', (topic, payload) => this.client === client && this.onMessage(topic, payload));
    client.on('error', (error) => {
      if (this.client !== client) return;
      // Keep the most telling error of the attempt: a refused login or a TLS failure beats the socket noise after it.
      const kind = classifyError(error);
      if (this.lastError === null || kind === 'auth' || kind === 'tls') this.lastError = error;
    });
    client.on('close', () => this.client === client && this.onClose(client));
  }

  private onConnect(client: MqttClient): void {
    this.sessionUp = true;
    this.counters.sessions++;
    // The login and the handshake worked; "no data" stays until data arrives.
    if (this.problemKind !== 'silent') this.setProblem(null);
    this.log.debug('MQTT session up');
    // Only the report topic: subscribing to /request (or '#', which covers it) makes P1 printers drop the client.
    client.subscribe(this.topic, { qos: 0 }, (error) => {
      if (error && this.client === client) this.log.warn({ err_code: errorCode(error) }, 'subscribe refused');
    });
    this.request(REQUESTS.getVersion);
    const now = Date.now();
    if (this.lastPushallAt === null || now - this.lastPushallAt >= this.timings.pushallMinIntervalMs) {
      this.lastPushallAt = now;
      this.request(REQUESTS.pushall);
    }
    this.tracker.connected();
    this.armWatchdog();
  }

  private onClose(client: MqttClient): void {
    client.removeAllListeners();
    client.on('error', () => {});
    client.end(true);
    this.client = null;
    this.clearTimer('watchdogTimer');
    const wasUp = this.sessionUp;
    this.sessionUp = false;
    this.online = false;
    if (this.stopped) return;

    const error = this.lastError;
    const kind: FailureKind | 'closed' = error === null ? 'closed' : classifyError(error);
    if (wasUp) {
      const reason: DisconnectReason = kind === 'auth' ? 'auth' : kind === 'tls' ? 'error' : kind;
      this.tracker.disconnected(reason);
      this.log.info({ reason }, 'MQTT session closed; reconnecting');
    }

    if (kind === 'auth') {
      this.setProblem('auth', 'access code refused (check the access code and LAN mode)');
      this.countOnce('auth', 'auth_failed');
      this.logFailureOnce(
        'auth',
        `the printer refused the access code; retrying every ${Math.round(this.timings.authRetryMs / 1000)} s`,
        error,
      );
      this.scheduleReconnect(this.timings.authRetryMs);
      return;
    }
    if (kind === 'tls') {
      this.setProblem('tls', `TLS failed (${errorCode(error)})`);
      this.countOnce('tls', 'tls_failed');
      this.logFailureOnce('tls', 'TLS handshake with the printer failed; check verify_certificate', error);
    } else if (!wasUp) {
      this.setProblem('network', `unreachable (${errorCode(error)})`);
      this.logFailureOnce('network', 'printer unreachable; retrying with backoff', error);
    }
    this.scheduleReconnect(this.backoffMs());
  }

  private backoffMs(): number {
    const { backoffInitialMs, backoffMaxMs } = this.timings;
    const ceiling = Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    // Equal jitter: half fixed, half random, so many printers coming back together do not reconnect in lockstep.
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  private scheduleReconnect(delayMs: number): void {
    this.clearTimer('reconnectTimer');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
  }

  private armWatchdog(): void {
    this.clearTimer('watchdogTimer');
    this.watchdogTimer = setTimeout(() => this.onWatchdog(), this.timings.watchdogMs);
  }

  /** No data for watchdogMs: offline, and ask for pushes again (old firmware silently stopped, BambuStudio #4154). */
  private onWatchdog(): void {
    this.watchdogTimer = null;
    const client = this.client;
    if (!client || this.stopped) return;
    this.silentPeriods++;
    if (this.online || this.silentPeriods === 1) {
      this.online = false;
      this.setProblem('silent', `no data for ${Math.round(this.timings.watchdogMs / 1000)} s`);
      this.tracker.disconnected('timeout');
      this.log.warn('no report from the printer; marked offline, asking it to push again');
    }
    if (this.silentPeriods >= 2) {
      // Still nothing: start a fresh session.
      this.lastError = Object.assign(new Error('watchdog'), { code: 'ETIMEDOUT' });
      client.end(true);
      return;
    }
    this.request(REQUESTS.pushingStart);
    this.armWatchdog();
  }

  private request(body: object): void {
    // QoS 1: printers may ignore QoS 0 requests while busy (wreuel/bambuddy).
    this.client?.publish(requestTopic(this.opts.serial), JSON.stringify(body), { qos: 1 }, () => {});
  }

  // --- reports -------------------------------------------------------------------------------------------------------

  /** One message from the broker. Public for tests and the benchmark; never throws. */
  handleMessage(topic: string, payload: Buffer | string): void {
    if (topic !== this.topic) {
      this.counters.foreignReports++;
      return;
    }
    const parsed = parseReport(payload, this.opts.maxReportBytes ?? DEFAULT_MAX_REPORT_BYTES);
    switch (parsed.kind) {
      case 'malformed':
        this.onMalformed(parsed.reason);
        return;
      case 'status': {
        this.counters.reportsHandled++;
        const observation = this.report.apply(parsed.fields);
        this.tracker.observe(observation);
        return;
      }
      case 'version':
        if (parsed.model && (!this.modelFromVersion || parsed.model !== this.model)) {
          this.model = parsed.model;
          this.modelFromVersion = true;
          this.log.info({ model: parsed.model }, 'printer model from get_version');
        }
        return;
      case 'ack':
        if (parsed.command === 'project_file' && parsed.success && parsed.fileType) {
          // The ack can be seen more than once (re-sent, or by two sessions); one upload per sequence id.
          if (parsed.sequenceId !== null && parsed.sequenceId === this.lastProjectFileSeq) return;
          this.lastProjectFileSeq = parsed.sequenceId;
          this.deps.emit('file_uploaded', { printer_type: 'bambu_lab', file_type: parsed.fileType });
        }
        return;
      default:
        return;
    }
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic === this.topic) {
      this.lastSeen = Date.now();
      this.silentPeriods = 0;
      if (!this.online) {
        // Data again after the watchdog marked us offline: the tracker's printer_connected fires with this report.
        if (this.reportSeen) this.tracker.connected();
        this.online = true;
        this.setProblem(null);
      }
      if (!this.reportSeen) {
        this.reportSeen = true;
        this.failures = 0;
        this.countedCauses.clear();
        this.loggedFailures.clear();
        this.log.info({ model: this.model }, 'printer connected');
      }
      this.armWatchdog();
    }
    this.handleMessage(topic, payload);
  }

  private onMalformed(reason: string): void {
    this.counters.malformedReports++;
    const now = Date.now();
    if (
      this.lastUnparseableEventAt === null ||
      now - this.lastUnparseableEventAt >= this.timings.unparseableEventIntervalMs
    ) {
      this.lastUnparseableEventAt = now;
      this.deps.emit('error_occurred', {
        error_type: 'report_unparseable',
        component: 'bambu_mqtt',
        printer_type: 'bambu_lab',
      });
    }
    if (!this.loggedMalformed.has(reason)) {
      this.loggedMalformed.add(reason);
      this.log.warn({ reason }, 'skipped a malformed report (further ones are counted, not logged)');
    }
  }

  // --- helpers -------------------------------------------------------------------------------------------------------

  private countOnce(cause: Cause, errorType: 'auth_failed' | 'tls_failed'): void {
    if (this.countedCauses.has(cause)) return;
    this.countedCauses.add(cause);
    this.deps.emit('error_occurred', { error_type: errorType, component: 'bambu_mqtt', printer_type: 'bambu_lab' });
  }

  private logFailureOnce(key: string, message: string, error: unknown): void {
    const code = errorCode(error);
    if (this.loggedFailures.has(key)) {
      this.log.debug({ err_code: code }, message);
      return;
    }
    this.loggedFailures.add(key);
    this.log.warn({ err_code: code }, message);
  }

  private setProblem(kind: FailureKind | 'silent' | null, text: string | null = null): void {
    this.problemKind = kind;
    this.connectionProblem = kind === null ? null : text;
  }

  private clearTimer(name: 'reconnectTimer' | 'watchdogTimer'): void {
    const timer = this[name];
    if (timer) clearTimeout(timer);
    this[name] = null;
  }
}
