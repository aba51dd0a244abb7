/**
 * A PrusaLink printer on loopback for tests, the demo and the benchmark (PROTOCOLS.md part B and section C).
 * - `buddy` (default): MINI/MK4/XL/CORE One firmware. Digest RFC 2069 (realm "Printer API", no qop, no opaque),
 *   16-hex nonces valid 5 s then `stale=true`; an `algorithm` parameter the server never sent is refused like firmware
 *   before 5.2.0 does; a bad X-Api-Key gets 401 `ApiKey`; storage `usb`, reported as one object. Firmware before
 *   4.7.0 (`firmware: '4.6.4'`) has no /api/v1/status, /api/v1/job or /api/v1/transfer (404).
 * - `rpi`: Prusa-Link on a Raspberry Pi (MK3S). Digest qop=auth with MD5-sess and an opaque (realm "Administrator");
 *   a bad X-Api-Key gets 403; storages `local` (writable) and `sdcard` (read-only), reported as a list.
 * The printer itself is printer.ts, its bodies wire.ts, the issue's sequences scenarios.ts. The digest check is
 * written independently of the bridge's client so that tests can catch it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type HttpBindings, type ServerType, serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import {
  type PrusaLinkFlavour,
  type PrusaLinkSimModel,
  type SimFile,
  type SimStorage,
  SimulatedPrusaPrinter,
  type StartJobOptions,
  type UploadOptions,
} from './printer.js';
import { runScenario, SCENARIO_NAMES, SCENARIOS, type ScenarioName, type ScenarioTarget } from './scenarios.js';
import {
  buddyJob,
  buddyLegacyJob,
  buddyLegacyPrinter,
  buddyListing,
  buddyStatus,
  buddyVersion,
  fileInfo,
  hasApiV1,
  infoBody,
  prusaLinkJob,
  prusaLinkListing,
  prusaLinkStatus,
  prusaLinkVersion,
  storageList,
  transferBody,
  type WireOptions,
} from './wire.js';

export type PrusaLinkFault = 'html' | 'truncated' | '500' | 'hang' | '503' | null;

export interface PrusaLinkSimulatorOptions {
  flavour?: PrusaLinkFlavour;
  username?: string;
  password: string;
  /** Accepted X-Api-Key; Buddy compares the key with the password when none is set. */
  apiKey?: string;
  model?: PrusaLinkSimModel;
  /** Buddy firmware version (6.5.3): before 6.5.3 no model code in /api/version, before 4.7.0 no API v1. */
  firmware?: string;
  /** Prusa-Link: "Unknown printer type" in /api/version for this many simulated seconds after start (0). */
  unknownPrinterTypeS?: number;
  /** 0 = ephemeral. */
  port?: number;
  host?: string;
  /** Simulated seconds per wall-clock second. */
  speed?: number;
  /** Start, finish and occasionally cancel jobs by themselves (demo). */
  autoJobs?: boolean;
  /** With autoJobs: run these scenarios in turn instead of random jobs ('all': every one for this flavour). */
  scenarios?: readonly ScenarioName[] | 'all';
  /** Nonce lifetime: 5 s on Buddy, 60 s on the Raspberry Pi unless given. */
  nonceTtlMs?: number;
  /** The first job id (ids are kept across reboots, as the firmware keeps them in EEPROM). */
  firstJobId?: number;
}

export interface PrusaLinkSimulatorStats {
  requests: number;
  /** Requests answered 401 with a Digest challenge, and how many of those said stale. */
  challenges: number;
  staleChallenges: number;
  /** Most requests in progress at the same time. */
  maxConcurrent: number;
  byPath: Record<string, number>;
}

export interface PrusaLinkSimulator {
  readonly port: number;
  readonly url: string;
  readonly flavour: PrusaLinkFlavour;
  /** The printer.state word reported now. */
  readonly state: string;
  readonly jobId: number | null;
  /** The state machine, for tests that need more than the controls below. */
  readonly printer: SimulatedPrusaPrinter;
  stop(): Promise<void>;
  startJob(opts?: StartJobOptions): number;
  /** Cancel from the printer: STOPPED. */
  stopJob(): void;
  finishJob(): void;
  pauseJob(): void;
  resumeJob(): void;
  /** A question on the screen during a print: ATTENTION, job kept. */
  attention(): void;
  /** ATTENTION with no job: a warning dialog on an idle Buddy, a fan error on Prusa-Link; false clears it. */
  idleAttention(on: boolean): void;
  /** A fault ends the job: ERROR. */
  error(): void;
  /** A reset, red screen or power cut: the job is lost (no ERROR), job ids are kept; unreachable for downMs. */
  reboot(opts?: { downMs?: number }): Promise<void>;
  /** A power cut with power-panic recovery: unreachable for downMs, then BUSY, then ATTENTION with the same job. */
  powerPanic(opts?: { downMs?: number; busyS?: number }): Promise<void>;
  /** A file appears in a storage at once (no transfer seen). */
  addFile(opts: { name: string; sizeBytes?: number; storage?: string; folder?: string[] }): void;
  /** An upload running as a transfer on simulated time. */
  upload(opts: UploadOptions): number;
  /** Buddy: pull the USB stick (null) or put one in with these files. */
  setUsb(files: { name: string; sizeBytes?: number; folder?: string[] }[] | null): void;
  setFault(kind: PrusaLinkFault): void;
  /** Every connection reset, as a printer that is off or rebooting. */
  setReachable(on: boolean): void;
  staleEveryRequest(on: boolean): void;
  /** Report this printer.state word regardless of the job (states not in the list); null to stop. */
  forceState(word: string | null): void;
  runScenario(name: ScenarioName): Promise<void>;
  stats(): PrusaLinkSimulatorStats;
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** Parse `Digest k=v, k="v"` the simple way a small firmware would. */
function parseAuthorization(header: string): {
  scheme: string;
  params: Map<string, { value: string; quoted: boolean }>;
} {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params = new Map<string, { value: string; quoted: boolean }>();
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const m of header.slice(space + 1).matchAll(re)) {
    const quoted = m[2] !== undefined;
    params.set(m[1]!.toLowerCase(), {
      value: quoted ? m[2]!.replace(/\\(.)/g, '$1') : (m[3] ?? ''),
      quoted,
    });
  }
  return { scheme, params };
}

export async function startPrusaLinkSimulator(opts: PrusaLinkSimulatorOptions): Promise<PrusaLinkSimulator> {
  const flavour: PrusaLinkFlavour = opts.flavour ?? 'buddy';
  const buddy = flavour === 'buddy';
  const username = opts.username ?? 'maker';
  const password = opts.password;
  const apiKey = opts.apiKey ?? password;
  const nonceTtlMs = opts.nonceTtlMs ?? (buddy ? 5000 : 60_000);
  const realm = buddy ? 'Printer API' : 'Administrator';
  const opaque = randomBytes(16).toString('hex');
  const host = opts.host ?? '127.0.0.1';
  const wire: WireOptions = {
    model: opts.model ?? (buddy ? 'MK4' : 'MK3S'),
    firmware: opts.firmware ?? '6.5.3',
    printerTypeKnown: (opts.unknownPrinterTypeS ?? 0) <= 0,
  };
  const apiV1 = !buddy || hasApiV1(wire);

  const printer = new SimulatedPrusaPrinter({
    flavour,
    speed: opts.speed ?? 1,
    firstJobId: opts.firstJobId ?? 1,
    autoJobs: opts.autoJobs === true && opts.scenarios === undefined,
  });
  const main = printer.defaultStorage;
  printer.storeFile(main, [], 'TabletStand3.bgcode', 754_535);
  printer.storeFile(main, [], buddy ? 'Benchy_0.4n_0.2mm_PLA.bgcode' : 'Benchy_0.4n_0.2mm_PLA.gcode', 1_301_224);
  printer.storeFile(main, ['Parts'], 'Gear.bgcode', 98_765);
  if (!buddy) printer.storeFile(printer.storage('sdcard'), [], 'BENCHY~1.GCO', 1_201_224);
  if (!wire.printerTypeKnown) printer.at(opts.unknownPrinterTypeS ?? 0, () => (wire.printerTypeKnown = true));

  let fault: PrusaLinkFault = null;
  let alwaysStale = false;
  let reachable = true;
  const nonces = new Map<string, number>();
  const hanging = new Set<() => void>();
  const stats: PrusaLinkSimulatorStats = {
    requests: 0,
    challenges: 0,
    staleChallenges: 0,
    maxConcurrent: 0,
    byPath: {},
  };
  let concurrent = 0;

  // --- auth ----------------------------------------------------------------------------------------------------
  function newNonce(): string {
    const now = Date.now();
    if (nonces.size > 500) {
      for (const [n, at] of nonces) if (now - at > nonceTtlMs * 2) nonces.delete(n);
    }
    const nonce = buddy ? randomBytes(8).toString('hex') : randomBytes(24).toString('hex');
    nonces.set(nonce, now);
    return nonce;
  }

  function challengeHeader(stale: boolean): string {
    const nonce = newNonce();
    if (buddy) return `Digest realm="${realm}", nonce="${nonce}", stale=${stale ? 'true' : 'false'}`;
    // poorwsgi's layout: no spaces after commas, Python's capitalised booleans.
    return `Digest realm="${realm}",qop="auth",algorithm="MD5-sess",nonce="${nonce}",opaque="${opaque}"${stale ? ',stale=True' : ''}`;
  }

  function unauthorized(c: Context, stale: boolean): Response {
    stats.challenges++;
    if (stale) stats.staleChallenges++;
    c.header('WWW-Authenticate', challengeHeader(stale));
    return statusPage(c, 401, 'Unauthorized');
  }

  /** Buddy status_page.cpp: `{"title": "401: Unauthorized","message":""}` for JSON clients, else plain text. */
  function statusPage(c: Context, code: 400 | 401 | 404 | 409 | 411 | 415 | 501, text: string): Response {
    if ((c.req.header('accept') ?? '').includes('application/json')) {
      return c.body(`{"title": "${code}: ${text}","message":""}`, code, { 'Content-Type': 'application/json' });
    }
    return c.text(`${code}: ${text}\n\n\n`, code);
  }

  /** null when the request may pass, else the response to send. */
  function authenticate(c: Context): Response | null {
    const key = c.req.header('x-api-key');
    if (key !== undefined) {
      if (key === apiKey) return null;
      if (buddy) {
        c.header('WWW-Authenticate', `ApiKey realm="${realm}"`);
        return statusPage(c, 401, 'Unauthorized');
      }
      return c.text('Bad X-Api-Key.', 403);
    }
    const header = c.req.header('authorization');
    if (!header) return unauthorized(c, false);
    const { scheme, params } = parseAuthorization(header);
    if (scheme !== 'digest') return unauthorized(c, false);
    const get = (k: string) => params.get(k)?.value;
    const nonce = get('nonce') ?? '';
    const uri = get('uri') ?? '';
    const url = new URL(c.req.url);
    if (get('username') !== username || get('realm') !== realm || uri !== url.pathname + url.search) {
      return unauthorized(c, false);
    }
    let expected: string;
    const ha2 = md5(`${c.req.method}:${uri}`);
    if (buddy) {
      // Firmware before 5.2.0 cannot parse an unquoted algorithm it never asked for (Buddy PR #3665).
      const algorithm = params.get('algorithm');
      if (algorithm && !algorithm.quoted) return c.text('400: Bad Request\n\n\n', 400);
      expected = md5(`${md5(`${username}:${realm}:${password}`)}:${nonce}:${ha2}`);
    } else {
      const nc = get('nc');
      const cnonce = get('cnonce');
      if (get('qop') !== 'auth' || !nc || !cnonce || get('opaque') !== opaque) return unauthorized(c, false);
      if ((get('algorithm') ?? '').toUpperCase() !== 'MD5-SESS') return unauthorized(c, false);
      const ha1 = md5(`${md5(`${username}:${realm}:${password}`)}:${nonce}:${cnonce}`);
      expected = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
    }
    if (get('response') !== expected) return unauthorized(c, false);
    const issued = nonces.get(nonce);
    // Right credentials with an old or unknown nonce: stale, try again with the new one.
    if (alwaysStale || issued === undefined || Date.now() - issued >= nonceTtlMs) return unauthorized(c, true);
    return null;
  }

  function faultResponse(c: Context): Response | Promise<Response> | null {
    switch (fault) {
      case 'html':
        return c.html('<!DOCTYPE html><html><head><title>Router login</title></head><body>Log in</body></html>');
      case 'truncated':
        return c.body('{"storage":{"path":"/usb/","name":"usb","read_only":false},"printer":{"state":"PRI', 200, {
          'Content-Type': 'application/json',
        });
      case '500':
        return c.text('500: Internal Server Error\n\n\n', 500);
      case '503':
        return c.text('Printer not ready', 503);
      case 'hang':
        return new Promise<Response>((resolve) => {
          const release = () => resolve(c.text('', 503));
          hanging.add(release);
        });
      default:
        return null;
    }
  }

  const json = (c: Context, body: string) => c.body(body, 200, { 'Content-Type': 'application/json' });

  // --- routes --------------------------------------------------------------------------------------------------
  const app = new Hono<{ Bindings: HttpBindings }>();

  app.use('*', async (c, next) => {
    printer.advance();
    if (!reachable) {
      // Off or rebooting: the connection is reset before anything is answered.
      c.env.incoming.socket.destroy();
      return c.body(null, 503);
    }
    stats.requests++;
    const path = new URL(c.req.url).pathname;
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    concurrent++;
    stats.maxConcurrent = Math.max(stats.maxConcurrent, concurrent);
    try {
      if (!buddy) c.header('Server', 'PrusaLink');
      const faulty = faultResponse(c);
      if (faulty) return await faulty;
      const denied = authenticate(c);
      if (denied) return denied;
      await next();
    } finally {
      concurrent--;
    }
  });

  app.get('/api/version', (c) => json(c, buddy ? buddyVersion(wire) : prusaLinkVersion(wire)));

  app.get('/api/v1/info', (c) => (apiV1 ? json(c, infoBody(printer, wire)) : statusPage(c, 404, 'Not Found')));

  app.get('/api/v1/status', (c) => {
    if (!apiV1) return statusPage(c, 404, 'Not Found');
    return json(c, buddy ? buddyStatus(printer) : prusaLinkStatus(printer));
  });

  app.get('/api/v1/job', (c) => {
    if (!apiV1) return statusPage(c, 404, 'Not Found');
    const body = buddy ? buddyJob(printer) : prusaLinkJob(printer);
    return body === null ? c.body(null, 204) : json(c, body);
  });

  app.get('/api/v1/transfer', (c) => {
    if (!apiV1) return statusPage(c, 404, 'Not Found');
    const body = transferBody(printer);
    return body === null ? c.body(null, 204) : json(c, body);
  });

  app.delete('/api/v1/job/:id', (c) => {
    const id = c.req.param('id');
    if (!/^\d+$/.test(id)) return statusPage(c, 400, 'Bad Request');
    if (!printer.job || Number(id) !== printer.job.id) return statusPage(c, 404, 'Not Found');
    if (!printer.hasJob()) return statusPage(c, 409, 'Conflict');
    printer.endJob('STOPPED');
    return c.body(null, 204);
  });

  app.put('/api/v1/job/:id/:action', (c) => {
    const id = c.req.param('id');
    const action = c.req.param('action');
    if (!printer.job || Number(id) !== printer.job.id) return statusPage(c, 404, 'Not Found');
    if (action === 'pause' && printer.state === 'PRINTING') printer.state = 'PAUSED';
    else if (
      (action === 'resume' && printer.state === 'PAUSED') ||
      (action === 'continue' && printer.state === 'ATTENTION')
    ) {
      printer.state = 'PRINTING';
    } else return statusPage(c, 409, 'Conflict');
    return c.body(null, 204);
  });

  app.get('/api/v1/storage', (c) => json(c, storageList(printer)));

  /** `/api/v1/files/usb/PARTS/GEAR~1.BGC` → the storage, folder path segments and the last segment. */
  function splitFilesPath(c: Context): { storage: SimStorage | undefined; parts: string[] } {
    const rest = decodeURIComponent(new URL(c.req.url).pathname.replace(/^\/api\/v1\/files\/?/, ''));
    const [name = '', ...parts] = rest.split('/');
    return { storage: printer.storages.find((s) => s.name === name), parts: parts.filter(Boolean) };
  }

  function lookup(storage: SimStorage, parts: string[]): { folderPath: string[]; file: SimFile | null } | null {
    const folder = printer.folderAt(storage, parts);
    if (folder) return { folderPath: parts, file: null };
    const parent = printer.folderAt(storage, parts.slice(0, -1));
    const last = parts[parts.length - 1];
    const file = parent?.files.find((f) => f.name === last || f.display_name === last);
    return file ? { folderPath: parts.slice(0, -1), file } : null;
  }

  app.get('/api/v1/files/*', (c) => {
    const { storage, parts } = splitFilesPath(c);
    if (!storage) return statusPage(c, 404, 'Not Found');
    if (buddy && !storage.available) {
      // A missing stick: the root lists as an empty folder, anything under it is not found.
      return parts.length === 0 ? json(c, buddyListing(storage, [], null)) : statusPage(c, 404, 'Not Found');
    }
    const found = lookup(storage, parts);
    if (!found) return statusPage(c, 404, 'Not Found');
    if (found.file)
      return json(c, fileInfo(printer, storage, printer.shortPath(storage, found.folderPath), found.file));
    const folder = printer.folderAt(storage, parts)!;
    const short = printer.shortPath(storage, parts);
    return json(c, buddy ? buddyListing(storage, short, folder) : prusaLinkListing(storage, short, folder));
  });

  app.put('/api/v1/files/*', async (c) => {
    const { storage, parts } = splitFilesPath(c);
    const name = parts[parts.length - 1];
    if (!storage || !name) return statusPage(c, 404, 'Not Found');
    if (storage.readOnly) return statusPage(c, 409, 'Conflict');
    if (c.req.header('content-length') === undefined) return statusPage(c, 411, 'Length Required');
    if (!/\.(b?gcode|gco|g|bgc)$/i.test(name)) return statusPage(c, 415, 'Unsupported Media Type');
    const body = await c.req.arrayBuffer();
    if (body.byteLength === 0) return statusPage(c, 501, 'Not Implemented');
    const folder = parts.slice(0, -1);
    const exists = printer.folderAt(storage, folder)?.files.some((f) => f.display_name === name);
    // Only `?1` counts (B4): Prusa-Link reads anything else as false.
    if (exists && c.req.header('overwrite') !== '?1') return statusPage(c, 409, 'Conflict');
    // The body is here already: the transfer is over at once.
    const file = printer.storeFile(storage, folder, name, body.byteLength);
    if (c.req.header('print-after-upload') === '?1') {
      if (printer.hasJob()) return statusPage(c, 409, 'Conflict'); // stored, but not started (B4)
      printer.startJob({ fileName: file.display_name, folder });
    }
    return c.body(null, 201);
  });

  app.post('/api/v1/files/*', (c) => {
    const { storage, parts } = splitFilesPath(c);
    const found = storage ? lookup(storage, parts) : null;
    if (!storage || !found?.file) return statusPage(c, 404, 'Not Found');
    if (printer.hasJob()) return statusPage(c, 409, 'Conflict');
    printer.startJob({ storage: storage.name, fileName: found.file.display_name, folder: found.folderPath });
    return c.body(null, 204);
  });

  app.get('/api/printer', (c) => json(c, buddyLegacyPrinter(printer)));
  app.get('/api/job', (c) => json(c, buddyLegacyJob(printer)));

  app.notFound((c) => statusPage(c, 404, 'Not Found'));

  // --- scenarios -----------------------------------------------------------------------------------------------
  const target: ScenarioTarget = { printer, setReachable: (on) => setReachable(on) };
  const rotation: ScenarioName[] = (
    opts.scenarios === 'all' ? [...SCENARIO_NAMES] : [...(opts.scenarios ?? [])]
  ).filter((name) => SCENARIOS[name].flavours.includes(flavour));
  let nextScenario = 0;
  function startNextScenario(): void {
    if (rotation.length === 0 || stopped) return;
    const name = rotation[nextScenario++ % rotation.length] as ScenarioName;
    // A short pause between scenarios, so each starts from an idle printer.
    void runScenario(target, SCENARIOS[name]).then(() => printer.at(60, startNextScenario));
  }
  if (opts.autoJobs && rotation.length > 0) printer.at(10, startNextScenario);

  // --- server --------------------------------------------------------------------------------------------------
  let server: ServerType = await listen(opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;

  function listen(p: number): Promise<ServerType> {
    return new Promise((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: p, hostname: host }, () => resolve(s));
      s.once('error', reject);
    });
  }

  async function close(s: ServerType): Promise<void> {
    for (const release of hanging) release();
    hanging.clear();
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      if ('closeAllConnections' in s) s.closeAllConnections();
    });
  }

  function setReachable(on: boolean): void {
    reachable = on;
    if (!on && 'closeAllConnections' in server) server.closeAllConnections();
    if (!on) nonces.clear(); // a printer that comes back has forgotten its nonces
  }

  let stopped = false;
  let rebooting: Promise<void> | null = null;

  async function down(downMs: number): Promise<void> {
    if (downMs <= 0 || stopped) return;
    rebooting = (async () => {
      await close(server);
      await new Promise((r) => setTimeout(r, downMs));
      if (!stopped) server = await listen(port);
    })();
    await rebooting;
    rebooting = null;
  }

  return {
    port,
    url: `http://${host}:${port}`,
    flavour,
    printer,
    get state() {
      printer.advance();
      return printer.reportedState();
    },
    get jobId() {
      printer.advance();
      return printer.hasJob() && printer.job ? printer.job.id : null;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await rebooting;
      await close(server);
    },
    startJob: (o) => printer.startJob(o),
    stopJob() {
      printer.advance();
      if (printer.hasJob()) printer.endJob('STOPPED');
    },
    finishJob() {
      printer.advance();
      if (printer.hasJob()) printer.endJob('FINISHED');
    },
    pauseJob() {
      printer.advance();
      if (printer.state === 'PRINTING') printer.state = 'PAUSED';
    },
    resumeJob() {
      printer.advance();
      printer.resume();
    },
    attention() {
      printer.advance();
      if (printer.hasJob()) printer.state = 'ATTENTION';
    },
    idleAttention(on) {
      printer.advance();
      printer.idleAttention = on;
    },
    error() {
      printer.advance();
      printer.endJob('ERROR');
    },
    async reboot(o = {}) {
      printer.advance();
      printer.reboot();
      nonces.clear();
      await down(o.downMs ?? 0);
    },
    async powerPanic(o = {}) {
      printer.advance();
      printer.startPowerPanic(null);
      nonces.clear();
      await down(o.downMs ?? 0);
      // BUSY from when it is back, then waiting for the user in ATTENTION.
      printer.advance();
      printer.at(o.busyS ?? 20, () => printer.awaitResume());
    },
    addFile({ name, sizeBytes, storage, folder }) {
      printer.advance();
      printer.storeFile(printer.storage(storage), folder ?? [], name, sizeBytes ?? 500_000);
    },
    upload: (o) => printer.upload(o),
    setUsb(files) {
      printer.advance();
      printer.setUsb(files);
    },
    setFault(kind) {
      fault = kind;
      if (kind !== 'hang') {
        for (const release of hanging) release();
        hanging.clear();
      }
    },
    setReachable,
    staleEveryRequest(on) {
      alwaysStale = on;
    },
    forceState(word) {
      printer.forced = word;
    },
    runScenario: (name) => runScenario(target, SCENARIOS[name]),
    stats() {
      return { ...stats, byPath: { ...stats.byPath } };
    },
  };
}
