/**
 * The simulated Bambu Lab printer's server: an MQTT broker (aedes) over TLS with a self-signed certificate whose CN is
 * the serial, behaving like the printer's local MQTT server (PROTOCOLS.md A and the checklist in C):
 * - only `bblp` + the access code may connect (CONNACK 5 otherwise), at most `maxClients` at once (CONNACK 3);
 * - a client that subscribes to `device/<serial>/request` (directly or through a wildcard such as `#`) is dropped,
 *   as P1 firmware does;
 * - `pushall` answers with a full `msg: 0` report, `get_version` with the module list (unless the firmware ignores
 *   them, as cloud-mode P1 firmware does), print commands with an ack echoing the command;
 * - about once a second (`tickMs`) a `msg: 1` delta carries only the keys that changed.
 * The printer itself (jobs, cancels, HMS) is printer.ts, its wire format wire.ts, the sequences scenarios.ts.
 * Test hooks drop clients, go silent, become unreachable and publish raw payloads.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { generate } from 'selfsigned';
import {
  type HmsEntry,
  type Json,
  type JsonObject,
  type Outgoing,
  type PrinterCounts,
  type PrinterOptions,
  type SimulatedModel,
  SimulatedPrinter,
  type StartJobOptions,
} from './printer.js';
import { runScenario, SCENARIOS, type ScenarioName, type ScenarioTarget } from './scenarios.js';
import {
  changedKeys,
  deltaReport,
  fullReport,
  mirrorX1Fields,
  staticFields,
  studioProjectFile,
  versionReply,
  WIRE_PROFILES,
} from './wire.js';

export interface BambuSimulatorOptions {
  serial: string;
  accessCode: string;
  model: SimulatedModel;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** TLS (default) or plain MQTT, as some P1S firmware serves on 1883. */
  tls?: boolean;
  /** Simulated seconds per real second (default 1). */
  speed?: number;
  /** Start jobs by themselves after a pause, with mostly successful outcomes (default false). */
  autoJobs?: boolean;
  /** With autoJobs: run these scenarios in turn instead of random jobs ('all': every one). */
  scenarios?: readonly ScenarioName[] | 'all';
  /** Real milliseconds between delta reports (default 1000). */
  tickMs?: number;
  /** Default simulated job length in seconds (default 1800). */
  jobSeconds?: number;
  /** Simulated seconds between auto jobs (default 300). */
  idleSeconds?: number;
  /** gcode_state at power-on (default IDLE); INIT boots first; RUNNING starts with a job already half done. */
  initialState?: PrinterOptions['initialState'];
  /** Simulated seconds in INIT at power-on (default 10). */
  bootSeconds?: number;
  /** HMS entries already on the printer at power-on, kept across jobs (the real P2S has some from months before). */
  hms?: HmsEntry[];
  /** Firmware that ignores pushall and get_version (BambuStudio #4154): only deltas, no full report, no version. */
  ignoreRequests?: boolean;
  maxClients?: number;
  /** A certificate to present instead of the generated self-signed one (e.g. one signed by a test CA). */
  certificate?: { key: string; cert: string };
}

export type { StartJobOptions };

export interface BambuSimulatorStats {
  connections: number;
  maxConcurrentClients: number;
  authRejected: number;
  droppedForRequestTopic: number;
  pushall: number;
  getVersion: number;
  pushingStart: number;
  reportsPublished: number;
  clientIds: string[];
}

export interface BambuSimulator {
  readonly port: number;
  readonly url: string;
  readonly serial: string;
  readonly model: SimulatedModel;
  /** The PEM certificate the simulator presents. */
  readonly certificate: string;
  readonly stats: BambuSimulatorStats;
  /** Jobs as the printer ran them. */
  readonly counts: PrinterCounts;
  /** The printer's state machine (tests). */
  readonly printer: SimulatedPrinter;
  /** Current gcode_state. */
  state(): string;
  connectedClients(): number;
  startJob(opts?: StartJobOptions): void;
  cancelJob(): void;
  failJob(): void;
  pause(): void;
  resume(): void;
  /** Close every client connection, as a printer rebooting its MQTT server does. */
  dropClients(): void;
  /** Stop sending anything (reports, replies) while on. */
  silence(on: boolean): void;
  /** Unreachable: drop clients and reset every new connection, like a printer switched off. */
  setReachable(on: boolean): void;
  /** Ignore pushall and get_version while on (cloud-mode firmware). */
  ignoreRequests(on: boolean): void;
  /** The whole list of HMS entries ({attr, code}) that stay on the printer. */
  setHms(entries: HmsEntry[]): void;
  /** Publish anything on the report topic (malformed-input tests). */
  publishRaw(payload: string | Buffer): Promise<void>;
  /** What the printer echoes when Bambu Studio sends `project_file` (sequence_id "20001"); starts the job. */
  simulateProjectFile(opts?: { fileType?: '3mf' | 'gcode'; start?: boolean; seconds?: number; echoes?: number }): void;
  /** Publish the full report now, as a periodic full push does. */
  publishFullReport(): void;
  /** Run one of the sequences; resolves when it is over (in simulated time). */
  runScenario(name: ScenarioName): Promise<void>;
  stop(): Promise<void>;
}

const certCache = new Map<string, Promise<{ key: string; cert: string }>>();

/** A self-signed certificate with CN = serial and no subjectAltName, as the printers present; cached per serial. */
export function simulatorCertificate(serial: string): Promise<{ key: string; cert: string }> {
  let pending = certCache.get(serial);
  if (!pending) {
    const notAfter = new Date();
    notAfter.setFullYear(notAfter.getFullYear() + 10);
    pending = generate([{ name: 'commonName', value: serial }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate: notAfter,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
      ],
    }).then((pems) => ({ key: pems.private, cert: pems.cert }));
    certCache.set(serial, pending);
    pending.catch(() => certCache.delete(serial));
  }
  return pending;
}

const REQUEST_SUFFIX = '/request';

/** Whether an MQTT subscription filter would receive messages published on `topic`. */
function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export async function startBambuSimulator(options: BambuSimulatorOptions): Promise<BambuSimulator> {
  const serial = options.serial;
  const profile = WIRE_PROFILES[options.model];
  const speed = options.speed ?? 1;
  const tickMs = options.tickMs ?? 1000;
  const maxClients = options.maxClients ?? 4;
  const reportTopic = `device/${serial}/report`;
  const requestTopic = `device/${serial}${REQUEST_SUFFIX}`;
  const useTls = options.tls ?? true;
  const certificate = useTls ? (options.certificate ?? (await simulatorCertificate(serial))) : null;

  const stats: BambuSimulatorStats = {
    connections: 0,
    maxConcurrentClients: 0,
    authRejected: 0,
    droppedForRequestTopic: 0,
    pushall: 0,
    getVersion: 0,
    pushingStart: 0,
    reportsPublished: 0,
    clientIds: [],
  };

  const printer = new SimulatedPrinter({
    model: options.model,
    jobSeconds: options.jobSeconds,
    idleSeconds: options.idleSeconds,
    autoJobs: options.autoJobs,
    initialState: options.initialState,
    bootSeconds: options.bootSeconds,
    hms: options.hms,
    x1Fields: profile.x1Fields,
  });
  const fixed = staticFields(profile);
  let sequence = 1;
  let silenced = false;
  let reachable = true;
  let ignoring = options.ignoreRequests ?? false;
  let lastPublished: JsonObject = {};

  // --- broker --------------------------------------------------------------------------------------------------------
  const broker = await Aedes.createBroker({
    authenticate(client: Client, username, password, done) {
      const ok = username === 'bblp' && password !== undefined && password.toString('utf8') === options.accessCode;
      if (!ok) {
        stats.authRejected++;
        const error = new Error('not authorized') as AuthenticateError;
        error.returnCode = 5;
        done(error, false);
        return;
      }
      if (broker.connectedClients >= maxClients) {
        const error = new Error('too many clients') as AuthenticateError;
        error.returnCode = 3;
        done(error, false);
        return;
      }
      stats.clientIds.push(client.id);
      done(null, true);
    },
    authorizeSubscribe(client, subscription, done) {
      if (filterMatches(subscription.topic, requestTopic)) {
        // P1 firmware drops a client that subscribes to the request topic (OpenBambuAPI #26).
        stats.droppedForRequestTopic++;
        done(new Error('request topic is not for subscribers'));
        setImmediate(() => client.close());
        return;
      }
      done(null, subscription);
    },
    authorizePublish(client, packet, done) {
      if (client && packet.topic !== requestTopic) {
        done(new Error('clients publish only requests'));
        return;
      }
      done(null);
    },
  });

  broker.on('client', () => {
    stats.connections++;
    stats.maxConcurrentClients = Math.max(stats.maxConcurrentClients, broker.connectedClients);
  });
  broker.on('clientReady', () => {
    stats.maxConcurrentClients = Math.max(stats.maxConcurrentClients, broker.connectedClients);
  });
  broker.on('publish', (packet, client) => {
    if (client && packet.topic === requestTopic) handleRequest(Buffer.from(packet.payload));
  });

  function publish(body: JsonObject | Record<string, unknown> | string | Buffer): Promise<void> {
    if (silenced || broker.closed) return Promise.resolve();
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    stats.reportsPublished++;
    return new Promise((resolve) => {
      const packet: PublishPacket = { cmd: 'publish', topic: reportTopic, payload, qos: 0, retain: false, dup: false };
      broker.publish(packet, () => resolve());
    });
  }

  function publishDelta(): void {
    mirrorX1Fields(printer.fields, profile);
    const delta = changedKeys(printer.fields, lastPublished);
    if (Object.keys(delta).length === 0) return;
    void publish(deltaReport(delta, sequence++));
    if (!silenced) lastPublished = structuredClone(printer.fields);
  }

  function publishFull(): void {
    mirrorX1Fields(printer.fields, profile);
    void publish(fullReport(fixed, printer.fields, sequence++));
    if (!silenced) lastPublished = structuredClone(printer.fields);
  }

  /** What the printer asked to send right now, in order; then whatever else changed. */
  function flush(): void {
    for (const out of printer.outbox.splice(0) as Outgoing[]) {
      if (out.kind === 'delta') {
        publishDelta();
        continue;
      }
      void publish(out.body);
      const print = out.body.print;
      if (!silenced && print && typeof print === 'object' && !Array.isArray(print) && print.command === undefined) {
        Object.assign(lastPublished, print);
      }
    }
    publishDelta();
  }

  function handleRequest(payload: Buffer): void {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (typeof body !== 'object' || body === null) return;
    const request = body as Record<string, Record<string, Json> | undefined>;
    const pushing = request.pushing;
    if (pushing?.command === 'pushall') {
      stats.pushall++;
      if (!ignoring) publishFull();
    } else if (pushing?.command === 'start') {
      stats.pushingStart++;
    }
    const info = request.info;
    if (info?.command === 'get_version') {
      stats.getVersion++;
      if (!ignoring) void publish(versionReply(profile, serial, info.sequence_id ?? '0'));
    }
    const print = request.print;
    if (print && typeof print.command === 'string') {
      void publish({ print: printer.handlePrintCommand(print) });
      flush();
    }
  }

  // --- server --------------------------------------------------------------------------------------------------------
  const sockets = new Set<net.Socket>();
  const onConnection = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (!reachable) socket.destroy();
  };
  const server = certificate
    ? tls.createServer({ key: certificate.key, cert: certificate.cert }, (socket) => broker.handle(socket))
    : net.createServer((socket) => broker.handle(socket));
  server.on('connection', onConnection);
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  // --- scenarios -----------------------------------------------------------------------------------------------------
  const target: ScenarioTarget = {
    printer,
    setReachable: (on) => sim.setReachable(on),
    ignoreRequests: (on) => {
      ignoring = on;
    },
    publish: (body) => {
      void publish(body);
    },
  };
  const rotation: ScenarioName[] =
    options.scenarios === 'all' ? (Object.keys(SCENARIOS) as ScenarioName[]) : [...(options.scenarios ?? [])];
  let scenarioRunning = false;
  let nextScenario = 0;
  function startScenario(name: ScenarioName): Promise<void> {
    scenarioRunning = true;
    return runScenario(target, SCENARIOS[name]).finally(() => {
      scenarioRunning = false;
    });
  }
  printer.onIdle = () => {
    if (scenarioRunning) return true;
    if (rotation.length === 0) return false;
    const name = rotation[nextScenario++ % rotation.length] as ScenarioName;
    void startScenario(name);
    return true;
  };

  lastPublished = structuredClone(printer.fields);

  const timer = setInterval(() => {
    printer.advance((tickMs / 1000) * speed);
    flush();
  }, tickMs);
  timer.unref();

  let stopped = false;
  const sim: BambuSimulator = {
    port,
    url: `${certificate ? 'mqtts' : 'mqtt'}://${options.host ?? '127.0.0.1'}:${port}`,
    serial,
    model: options.model,
    certificate: certificate?.cert ?? '',
    stats,
    counts: printer.counts,
    printer,
    state: () => printer.state,
    connectedClients: () => broker.connectedClients,
    startJob(opts) {
      printer.startJob(opts);
      flush();
    },
    cancelJob() {
      printer.cancel();
      flush();
    },
    failJob() {
      printer.fail();
      flush();
    },
    pause() {
      if (printer.pause()) flush();
    },
    resume() {
      if (printer.resume()) flush();
    },
    dropClients() {
      for (const socket of sockets) socket.destroy();
    },
    silence(on) {
      silenced = on;
    },
    setReachable(on) {
      reachable = on;
      if (!on) sim.dropClients();
    },
    ignoreRequests(on) {
      ignoring = on;
    },
    setHms(entries) {
      printer.setHms(entries);
      flush();
    },
    publishRaw(payload) {
      return publish(payload);
    },
    simulateProjectFile(opts = {}) {
      const ack = printer.projectFile(studioProjectFile(opts.fileType ?? '3mf'), {
        start: opts.start,
        seconds: opts.seconds,
      });
      for (let i = 0; i < (opts.echoes ?? 1); i++) void publish({ print: ack });
      flush();
    },
    publishFullReport() {
      publishFull();
    },
    runScenario(name) {
      return startScenario(name);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
  return sim;
}
