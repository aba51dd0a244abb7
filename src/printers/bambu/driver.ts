/**
 * The Bambu Lab driver: one MQTT session per printer (PROTOCOLS.md A6/A7). It only reports what the printer says, as
 * PrinterUpdates (DESIGN.md "Data flow"): reports merged into one state and reduced to job observations, the live
 * status, uploads, the model, faults and problems. The fleet's PrinterTracker turns them into events.
 *
 * Message handling needs no socket: `handleMessage`, `sessionUp` and `sessionDown` are what the MQTT session calls,
 * and what a replay of a capture calls with a manual clock.
 *
 * Session life: connect (mqtt.js, no automatic reconnect) → subscribe to the report topic only → get_version and
 * pushall on every session, whatever the pushall rate limit says (a P1 sends only changes: without a full report a
 * print that ended while the link was down stays open and swallows the next one) → reports. A printer that answers
 * neither within `requestReplyMs` is shown as ignoring requests and counted from its change reports alone. A watchdog
 * marks the printer offline after 60 s without data and asks for `pushing.start`; a second silent period ends the
 * session. After any close the driver reconnects itself: backoff with jitter (1 s → 60 s), or every 5 minutes after a
 * refused login.
 */
import { createHash } from 'node:crypto';
import { connect, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { DisconnectReason, ErrorType, PrinterModel } from '../../stats/events.js';
import type { TimerHandle } from '../clock.js';
import { LinkHealth } from '../link-health.js';
import type { DriverDeps, PrinterDriver } from '../types.js';
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
  decodeJson,
  liveStatus,
  NOT_JSON,
  type ParsedReport,
  parseReportBody,
} from './report.js';

export interface BambuTimings {
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Retry interval after CONNACK 4/5: a wrong access code does not fix itself. */
  authRetryMs: number;
  watchdogMs: number;
  /**
   * A full report asked for outside a new session (data again after the watchdog) at most this often: OpenBambuAPI
   * warns against pushall more often than every 5 minutes on the P1P. A new session always asks.
   */
  pushallMinIntervalMs: number;
  /** How long a session waits for the answers to pushall and get_version before saying the printer ignores them. */
  requestReplyMs: number;
  /** The same project_file ack again within this window, with no job start between, is the printer echoing it. */
  uploadEchoMs: number;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
  /** stop() gives the session this long to close politely. */
  stopTimeoutMs: number;
}

export const DEFAULT_TIMINGS: BambuTimings = {
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  authRetryMs: 5 * 60_000,
  watchdogMs: 60_000,
  pushallMinIntervalMs: 5 * 60_000,
  // ha-bambulab's setup test waits 10 s for both answers (bambu_client.py try_connection); twice that for a busy one.
  requestReplyMs: 20_000,
  uploadEchoMs: 10_000,
  connectTimeoutMs: 10_000,
  keepaliveSeconds: 30,
  stopTimeoutMs: 1500,
};

/** The connection settings the driver passes on to the client, minus what the driver fills in itself. */
export interface BambuDriverOptions
  extends Pick<ConnectionSettings, 'host' | 'port' | 'serial' | 'accessCode' | 'tls' | 'verifyCertificate' | 'ca'> {
  /** Already a slug of the configured name. */
  id: string;
  /** Shorter timings for tests. */
  timings?: Partial<BambuTimings>;
  maxReportBytes?: number;
  /** 0..1 for the backoff jitter; Math.random when absent (tests pass a fixed one). */
  random?: () => number;
}

export interface BambuDriverCounters {
  reportsHandled: number;
  malformedReports: number;
  /** Messages on a topic that is not this printer's report topic. */
  foreignReports: number;
  sessions: number;
  connectAttempts: number;
  /** project_file acks taken for an echo of one already counted. */
  uploadEchoes: number;
}

/** Shown while a printer ignores pushall or get_version; why, in the words a user can act on. */
export function ignoresRequestsProblem(ignored: readonly string[]): string {
  return (
    `printer ignores ${ignored.join(' and ')} (usual when LAN-only mode is off, the printer in cloud mode: ` +
    'Bambu Studio issue 4154); counting from its change reports alone'
  );
}

interface SeenUpload {
  sequenceId: string | null;
  fingerprint: string;
  at: number;
  jobStarts: number;
}

export class BambuDriver implements PrinterDriver {
  readonly id: string;
  readonly counters: BambuDriverCounters = {
    reportsHandled: 0,
    malformedReports: 0,
    foreignReports: 0,
    sessions: 0,
    connectAttempts: 0,
    uploadEchoes: 0,
  };

  private readonly timings: BambuTimings;
  private readonly log: Logger;
  private readonly link: LinkHealth;
  private readonly clientId = newClientId();
  private readonly report = new BambuReportState();
  private readonly topic: string;
  private readonly maxReportBytes: number;
  private model: PrinterModel;

  private client: MqttClient | null = null;
  private stopped = true;
  private reconnectTimer: TimerHandle | null = null;
  private watchdogTimer: TimerHandle | null = null;
  private replyTimer: TimerHandle | null = null;
  private lastError: unknown = null;

  // Per session.
  private sessionOpen = false;
  private dataThisSession = false;
  private fullReportThisSession = false;
  private versionThisSession = false;
  private silentPeriods = 0;
  /** The watchdog took the printer offline in this session; data again is a reconnect from the tracker's view. */
  private silenced = false;
  private lastMessageAt = 0;

  private lastPushallAt: number | null = null;
  /** The tracker has been sent a known state since the driver started (its baseline). */
  private stateKnown = false;
  private lastUpload: SeenUpload | null = null;
  private ignoredRequests: string[] = [];
  private noticeShown: string | null = null;
  private loggedFailures = new Set<string>();
  private loggedMalformed = new Set<string>();

  constructor(
    private readonly opts: BambuDriverOptions,
    private readonly deps: DriverDeps,
  ) {
    this.id = opts.id;
    this.timings = { ...DEFAULT_TIMINGS, ...opts.timings };
    this.log = deps.logger.child({ component: 'bambu' });
    this.topic = reportTopic(opts.serial);
    this.maxReportBytes = opts.maxReportBytes ?? DEFAULT_MAX_REPORT_BYTES;
    this.model = modelFromSerial(opts.serial);
    this.link = new LinkHealth(deps.update, deps.clock, {
      initialMs: this.timings.backoffInitialMs,
      maxMs: this.timings.backoffMaxMs,
      random: opts.random,
    });
  }

  /** The model as known now: from get_version once it answered, else from the serial prefix. */
  get printerModel(): PrinterModel {
    return this.model;
  }

  /** Data arrived and no outage since. */
  get online(): boolean {
    return this.link.online;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer('reconnectTimer');
    this.endSessionTimers();
    this.sessionOpen = false;
    const client = this.client;
    this.client = null;
    if (!client) return;
    client.removeAllListeners();
    client.on('error', () => {});
    // Real time, not the injected clock: this waits on the socket, and a manual clock would never let it go.
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

  // --- session (also driven by replays) ------------------------------------------------------------------------------

  /** The MQTT session is up (CONNACK, subscribed): ask for the version and a full report, start the watchdog. */
  sessionUp(): void {
    this.endSessionTimers();
    this.sessionOpen = true;
    this.counters.sessions++;
    this.dataThisSession = false;
    this.fullReportThisSession = false;
    this.versionThisSession = false;
    this.silentPeriods = 0;
    this.lastMessageAt = this.deps.clock.now();
    this.deps.traffic?.({ kind: 'link', up: true });
    // The login and the handshake worked; "no data" stays until data arrives.
    if (!this.silenced) this.link.setProblem(null);
    this.log.debug('MQTT session up');
    this.request(REQUESTS.getVersion);
    // Every session: the link may have been down while a print ended (issue 12, Bambu item 3).
    this.requestFullReport(true);
    this.armWatchdog(this.timings.watchdogMs);
    this.replyTimer = this.deps.clock.setTimer(() => this.checkReplies(), this.timings.requestReplyMs);
  }

  /** The MQTT session ended: printer_disconnected (once per outage) when the printer had been online. */
  sessionDown(reason: DisconnectReason): void {
    if (!this.sessionOpen) return;
    this.sessionOpen = false;
    this.endSessionTimers();
    this.deps.traffic?.({ kind: 'link', up: false, reason });
    this.link.down(reason);
  }

  private connect(): void {
    if (this.stopped || this.client) return;
    this.counters.connectAttempts++;
    this.lastError = null;
    this.dataThisSession = false;
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
    client.on('connect', () => {
      if (this.client !== client) return;
      // Only the report topic: subscribing to /request (or '#', which covers it) makes P1 printers drop the client.
      // Subscribed before the requests go out, so their answers are not missed.
      client.subscribe(this.topic, { qos: 0 }, (error) => {
        if (error && this.client === client) this.log.warn({ err_code: errorCode(error) }, 'subscribe refused');
      });
      this.sessionUp();
    });
    client.on('message', (topic, payload) => {
      if (this.client === client) this.handleMessage(topic, payload);
    });
    client.on('error', (error) => {
      if (this.client !== client) return;
      // Keep the most telling error of the attempt: a refused login or a TLS failure beats the socket noise after it.
      const kind = classifyError(error);
      if (this.lastError === null || kind === 'auth' || kind === 'tls') this.lastError = error;
    });
    client.on('close', () => {
      if (this.client === client) this.onClose(client);
    });
  }

  private onClose(client: MqttClient): void {
    client.removeAllListeners();
    client.on('error', () => {});
    client.end(true);
    this.client = null;
    const error = this.lastError;
    const kind: FailureKind | 'closed' = error === null ? 'closed' : classifyError(error);
    const hadData = this.dataThisSession;
    if (this.sessionOpen) {
      const reason: DisconnectReason = kind === 'auth' ? 'auth' : kind === 'tls' ? 'error' : kind;
      this.sessionDown(reason);
      if (hadData) this.log.info({ reason }, 'MQTT session closed; reconnecting');
    }
    if (this.stopped) return;

    if (kind === 'auth') {
      this.link.failed('access code refused (check the access code and LAN mode)');
      this.fault('auth_failed');
      this.logFailureOnce(
        'auth',
        `the printer refused the access code; retrying every ${Math.round(this.timings.authRetryMs / 1000)} s`,
        error,
      );
      this.scheduleReconnect(this.timings.authRetryMs);
      return;
    }
    if (kind === 'tls') {
      this.link.failed(`TLS failed (${errorCode(error)})`);
      this.fault('tls_failed');
      this.logFailureOnce('tls', 'TLS handshake with the printer failed; check verify_certificate', error);
    } else if (!hadData) {
      // Nothing came from this attempt: unreachable, refused, or a broker that never said anything.
      this.link.failed(this.silenced && this.link.problem ? this.link.problem : `unreachable (${errorCode(error)})`);
      this.logFailureOnce('network', 'printer unreachable; retrying with backoff', error);
    }
    this.scheduleReconnect(this.link.nextBackoffMs());
  }

  private scheduleReconnect(delayMs: number): void {
    this.cancelTimer('reconnectTimer');
    this.reconnectTimer = this.deps.clock.setTimer(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
  }

  private armWatchdog(delayMs: number): void {
    this.cancelTimer('watchdogTimer');
    this.watchdogTimer = this.deps.clock.setTimer(() => this.onWatchdog(), delayMs);
  }

  /**
   * No data for watchdogMs: offline, and ask for pushes again (old firmware silently stopped sending, BambuStudio
   * #4154; ha-bambulab bambu_client.py watchdog). The timer is re-armed from the last message, not on each one.
   */
  private onWatchdog(): void {
    this.watchdogTimer = null;
    if (!this.sessionOpen) return;
    const now = this.deps.clock.now();
    const quietMs = now - this.lastMessageAt;
    if (quietMs < this.timings.watchdogMs) {
      this.armWatchdog(this.timings.watchdogMs - quietMs);
      return;
    }
    this.silentPeriods++;
    this.lastMessageAt = now;
    if (this.silentPeriods === 1) {
      this.silenced = true;
      this.link.down('timeout', `no data for ${Math.round(this.timings.watchdogMs / 1000)} s`);
      this.log.warn('no report from the printer; marked offline, asking it to push again');
    }
    if (this.silentPeriods >= 2 && this.client) {
      // Still nothing: start a fresh session.
      this.lastError = Object.assign(new Error('watchdog'), { code: 'ETIMEDOUT' });
      this.client.end(true);
      return;
    }
    this.request(REQUESTS.pushingStart);
    this.armWatchdog(this.timings.watchdogMs);
  }

  /** The reply deadline of a session: whatever was not answered by now, the printer ignores. */
  private checkReplies(): void {
    this.replyTimer = null;
    // A printer that sends nothing at all is the watchdog's case, not this one.
    if (!this.sessionOpen || !this.dataThisSession) return;
    const ignored: string[] = [];
    if (!this.fullReportThisSession) ignored.push('pushall');
    if (!this.versionThisSession) ignored.push('get_version');
    if (ignored.length > 0 && ignored.join() !== this.ignoredRequests.join()) {
      this.log.warn({ ignored }, 'the printer does not answer requests; counting from its change reports alone');
    }
    this.ignoredRequests = ignored;
    this.showNotice();
  }

  private requestFullReport(newSession: boolean): void {
    const now = this.deps.clock.now();
    if (!newSession && this.lastPushallAt !== null && now - this.lastPushallAt < this.timings.pushallMinIntervalMs) {
      return;
    }
    this.lastPushallAt = now;
    this.request(REQUESTS.pushall);
  }

  private request(body: object): void {
    // QoS 1: printers may ignore QoS 0 requests while busy (wreuel/bambuddy).
    this.client?.publish(requestTopic(this.opts.serial), JSON.stringify(body), { qos: 1 }, () => {});
  }

  // --- reports -------------------------------------------------------------------------------------------------------

  /** One message from the broker (or a replay). Never throws. */
  handleMessage(topic: string, payload: Buffer | string): void {
    if (topic !== this.topic) {
      this.counters.foreignReports++;
      return;
    }
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    const text = typeof payload === 'string' ? payload : payload.toString('utf8');
    if (bytes > this.maxReportBytes) {
      this.deps.traffic?.({ kind: 'mqtt', topic, payload: text });
      this.onData();
      this.onMalformed('oversized');
      return;
    }
    const body = decodeJson(text);
    // The one parse of this report, shared with the capture prelude (it would otherwise keep the text to parse later).
    this.deps.traffic?.({ kind: 'mqtt', topic, payload: text, json: body === NOT_JSON ? undefined : body });
    const parsed = parseReportBody(body);
    // The model first: a get_version reply that is the first message names the model in printer_connected.
    if (parsed.kind === 'version') this.onVersion(parsed.model);
    this.onData();
    this.onParsed(parsed, text);
  }

  /** Any message: the printer is there. */
  private onData(): void {
    this.lastMessageAt = this.deps.clock.now();
    this.silentPeriods = 0;
    const wasOnline = this.link.online;
    this.link.seen();
    if (!this.dataThisSession) {
      this.dataThisSession = true;
      this.loggedFailures.clear();
      this.log.info({ model: this.model }, 'printer connected');
    }
    if (this.silenced) {
      this.silenced = false;
      // Back after the watchdog took it offline, in the same session: what changed meanwhile may not come as a
      // change report again, so ask for the whole state (within the pushall rate limit).
      if (!wasOnline && this.sessionOpen) this.requestFullReport(false);
    }
  }

  private onParsed(parsed: ParsedReport, text: string): void {
    switch (parsed.kind) {
      case 'malformed':
        this.onMalformed(parsed.reason);
        return;
      case 'status': {
        this.counters.reportsHandled++;
        if (parsed.full && !this.fullReportThisSession) {
          this.fullReportThisSession = true;
          this.clearIgnored('pushall');
        }
        const observation = this.report.apply(parsed.fields);
        if (!this.stateKnown && observation.state !== 'unknown') {
          this.stateKnown = true;
          // Firmware that never answers pushall (BambuStudio #4154) gives its first state in a change report. A change
          // into PREPARE or SLICING is a job starting now, so the baseline is the idle state it left.
          if (!parsed.full && parsed.fields.gcode_state !== undefined && observation.state === 'preparing') {
            this.deps.update({
              kind: 'observation',
              observation: { state: 'idle', errorSlugs: observation.errorSlugs },
            });
          }
        }
        this.deps.update({ kind: 'observation', observation, status: liveStatus(this.report.fields) });
        return;
      }
      case 'version':
        if (!this.versionThisSession) {
          this.versionThisSession = true;
          this.clearIgnored('get_version');
        }
        return;
      case 'ack':
        if (parsed.command === 'project_file' && parsed.success && parsed.fileType) {
          if (this.isUploadEcho(parsed.sequenceId, text)) {
            this.counters.uploadEchoes++;
            return;
          }
          this.deps.update({ kind: 'file_uploaded', fileType: parsed.fileType });
        }
        return;
      default:
        return;
    }
  }

  private onVersion(model: PrinterModel | null): void {
    if (!model) return;
    if (model !== this.model) {
      this.model = model;
      this.log.info({ model }, 'printer model from get_version');
    }
    this.deps.update({ kind: 'model', model });
  }

  /**
   * Whether a project_file ack is the printer repeating one already counted. Bambu Studio sends every print with
   * sequence_id "20001" (real P2S capture, snapcon; H2S and X2D, bambuddy) and Home Assistant always with "0"
   * (ha-bambulab commands.py), so a sequence id names no print: only the same ack (same id, same content) again
   * within a short window, with no job started in between, is an echo.
   */
  private isUploadEcho(sequenceId: string | null, content: string): boolean {
    const now = this.deps.clock.now();
    const fingerprint = createHash('sha256').update(content).digest('base64');
    const last = this.lastUpload;
    const echo =
      last !== null &&
      last.sequenceId === sequenceId &&
      last.fingerprint === fingerprint &&
      now - last.at < this.timings.uploadEchoMs &&
      last.jobStarts === this.report.jobStarts;
    if (!echo) this.lastUpload = { sequenceId, fingerprint, at: now, jobStarts: this.report.jobStarts };
    return echo;
  }

  private onMalformed(reason: string): void {
    this.counters.malformedReports++;
    // Counted once per connection by the tracker; the notice keeps the running count.
    this.deps.update({ kind: 'fault', errorType: 'report_unparseable', scope: 'connection' });
    this.showNotice();
    if (!this.loggedMalformed.has(reason)) {
      this.loggedMalformed.add(reason);
      this.log.warn({ reason }, 'skipped a malformed report (further ones are counted, not logged)');
    }
  }

  // --- helpers -------------------------------------------------------------------------------------------------------

  private clearIgnored(request: string): void {
    if (!this.ignoredRequests.includes(request)) return;
    this.ignoredRequests = this.ignoredRequests.filter((r) => r !== request);
    this.showNotice();
  }

  /** The notice problem: requests the printer ignores, malformed reports skipped. */
  private showNotice(): void {
    const parts: string[] = [];
    if (this.ignoredRequests.length > 0) parts.push(ignoresRequestsProblem(this.ignoredRequests));
    const malformed = this.counters.malformedReports;
    if (malformed > 0) parts.push(`${malformed} malformed report${malformed === 1 ? '' : 's'} skipped`);
    const notice = parts.length > 0 ? parts.join('; ') : null;
    if (notice === this.noticeShown) return;
    this.noticeShown = notice;
    this.deps.update({ kind: 'problem', scope: 'notice', problem: notice });
  }

  private fault(errorType: ErrorType): void {
    this.deps.update({ kind: 'fault', errorType, scope: 'outage' });
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

  private endSessionTimers(): void {
    this.cancelTimer('watchdogTimer');
    this.cancelTimer('replyTimer');
  }

  private cancelTimer(name: 'reconnectTimer' | 'watchdogTimer' | 'replyTimer'): void {
    this[name]?.cancel();
    this[name] = null;
  }
}
