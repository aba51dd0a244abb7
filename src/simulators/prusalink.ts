/**
 * A PrusaLink printer on loopback for tests, the demo and the benchmark (PROTOCOLS.md part B and section C).
 * - `buddy` (default): MINI/MK4/XL/CORE One firmware. Digest RFC 2069 (realm "Printer API", no qop, no opaque),
 *   16-hex nonces valid 5 s then `stale=true`; an `algorithm` parameter the server never sent is refused like firmware
 *   before 5.2.0 does; a bad X-Api-Key gets 401 `ApiKey`; storage `usb`, reported as one object.
 * - `rpi`: Prusa-Link on a Raspberry Pi (MK3S). Digest qop=auth with MD5-sess and an opaque (realm "Administrator");
 *   a bad X-Api-Key gets 403; storages `local` (writable) and `sdcard` (read-only), reported as a list.
 * Jobs go IDLE → PRINTING → FINISHED (or STOPPED/ERROR) on simulated time (`speed` × wall clock), evaluated lazily
 * on each request. The digest check is written independently of the bridge's client so that tests can catch it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';

export type PrusaLinkFlavour = 'buddy' | 'rpi';
export type PrusaLinkSimModel = 'MK4' | 'MK4S' | 'MK3.9' | 'MK3.5' | 'MINI' | 'XL' | 'CORE One' | 'MK3S';
export type PrusaLinkFault = 'html' | 'truncated' | '500' | 'hang' | '503' | null;

export interface PrusaLinkSimulatorOptions {
  flavour?: PrusaLinkFlavour;
  username?: string;
  password: string;
  /** Accepted X-Api-Key; Buddy compares the key with the password when none is set. */
  apiKey?: string;
  model?: PrusaLinkSimModel;
  /** 0 = ephemeral. */
  port?: number;
  host?: string;
  /** Simulated seconds per wall-clock second. */
  speed?: number;
  /** Start, finish and occasionally cancel jobs by themselves (demo). */
  autoJobs?: boolean;
  /** Nonce lifetime: 5 s on Buddy, 60 s on the Raspberry Pi unless given. */
  nonceTtlMs?: number;
  /** The first job id and the one a reboot resets to. */
  firstJobId?: number;
}

export interface StartJobOptions {
  fileName?: string;
  sizeBytes?: number;
  /** Simulated print time in seconds (1800). */
  durationS?: number;
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
  stop(): Promise<void>;
  startJob(opts?: StartJobOptions): number;
  /** Cancel from the printer: STOPPED. */
  stopJob(): void;
  finishJob(): void;
  pauseJob(): void;
  resumeJob(): void;
  /** A question on the screen during a print: ATTENTION, job kept. */
  attention(): void;
  /** A fault ends the job: ERROR. */
  error(): void;
  /** Back to IDLE with the job lost, job ids reset and nonces forgotten; down (connection refused) for downMs. */
  reboot(opts?: { downMs?: number }): Promise<void>;
  addFile(opts: { name: string; sizeBytes?: number; storage?: string }): void;
  setFault(kind: PrusaLinkFault): void;
  staleEveryRequest(on: boolean): void;
  /** Report this printer.state word regardless of the job (states not in the list); null to stop. */
  forceState(word: string | null): void;
  stats(): PrusaLinkSimulatorStats;
}

interface SimFile {
  /** Buddy: 8.3 short name; RPi: the long name. */
  name: string;
  display_name: string;
  size: number;
  m_timestamp: number;
}

interface SimJob {
  id: number;
  storage: string;
  file: SimFile;
  durationS: number;
  printedS: number;
}

type PrinterStateWord = 'IDLE' | 'PRINTING' | 'PAUSED' | 'ATTENTION' | 'FINISHED' | 'STOPPED' | 'ERROR';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** /api/version per model: Buddy 6.5.x sends the Connect type code in `printer`; XL and MINI lack it (B5). */
const BUDDY_MODELS: Record<Exclude<PrusaLinkSimModel, 'MK3S'>, { hostname: string; printer?: string }> = {
  MK4: { hostname: 'prusa-mk4', printer: '1.4.0' },
  MK4S: { hostname: 'prusa-mk4s', printer: '1.4.1' },
  'MK3.9': { hostname: 'prusa-mk3-9', printer: '1.3.9' },
  'MK3.5': { hostname: 'prusa-mk3-5', printer: '1.3.5' },
  MINI: { hostname: 'prusa-mini' },
  XL: { hostname: 'PrusaXL' },
  'CORE One': { hostname: 'prusa-core-one', printer: '7.1.0' },
};

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

function shortName(longName: string, taken: (n: string) => boolean): string {
  const dot = longName.lastIndexOf('.');
  const stem = (dot > 0 ? longName.slice(0, dot) : longName).toUpperCase().replace(/[^A-Z0-9]/g, '');
  const ext = (dot > 0 ? longName.slice(dot + 1) : '')
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .slice(0, 3);
  if (stem.length <= 8 && stem.length > 0 && !taken(`${stem}.${ext}`)) return ext ? `${stem}.${ext}` : stem;
  for (let i = 1; ; i++) {
    const candidate = `${stem.slice(0, 8 - 1 - String(i).length) || 'FILE'}~${i}${ext ? `.${ext}` : ''}`;
    if (!taken(candidate)) return candidate;
  }
}

export async function startPrusaLinkSimulator(opts: PrusaLinkSimulatorOptions): Promise<PrusaLinkSimulator> {
  const flavour: PrusaLinkFlavour = opts.flavour ?? 'buddy';
  const buddy = flavour === 'buddy';
  const username = opts.username ?? 'maker';
  const password = opts.password;
  const apiKey = opts.apiKey ?? password;
  const model: PrusaLinkSimModel = opts.model ?? (buddy ? 'MK4' : 'MK3S');
  const speed = opts.speed ?? 1;
  const nonceTtlMs = opts.nonceTtlMs ?? (buddy ? 5000 : 60_000);
  const firstJobId = opts.firstJobId ?? 1;
  const realm = buddy ? 'Printer API' : 'Administrator';
  const opaque = randomBytes(16).toString('hex');
  const host = opts.host ?? '127.0.0.1';

  // --- printer state -------------------------------------------------------------------------------------------
  let state: PrinterStateWord = 'IDLE';
  let forced: string | null = null;
  let job: SimJob | null = null;
  let nextJobId = firstJobId;
  let lastTick = Date.now();
  let idleS = 0;
  let fault: PrusaLinkFault = null;
  let alwaysStale = false;
  const storages: Map<string, { readOnly: boolean; files: SimFile[] }> = buddy
    ? new Map([['usb', { readOnly: false, files: [] }]])
    : new Map([
        ['local', { readOnly: false, files: [] }],
        ['sdcard', { readOnly: true, files: [] }],
      ]);
  const defaultStorage = buddy ? 'usb' : 'local';
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

  function storeFile(storage: string, longName: string, size: number): SimFile {
    const entry = storages.get(storage);
    if (!entry) throw new Error(`no storage ${storage}`);
    const existing = entry.files.find((f) => f.display_name === longName);
    const mtime = Math.floor(Date.now() / 1000);
    if (existing) {
      existing.size = size;
      existing.m_timestamp = mtime;
      return existing;
    }
    const name = buddy
      ? shortName(longName, (n) => entry.files.some((f) => f.name === n))
      : longName.replace(/[^A-Za-z0-9 ._()-]/g, '_');
    const file: SimFile = { name, display_name: longName, size, m_timestamp: mtime };
    entry.files.push(file);
    return file;
  }

  storeFile(defaultStorage, 'TabletStand3.bgcode', 754_535);
  storeFile(defaultStorage, buddy ? 'Benchy_0.4n_0.2mm_PLA.bgcode' : 'Benchy_0.4n_0.2mm_PLA.gcode', 1_301_224);

  function startJob(o: StartJobOptions = {}): number {
    advance();
    if (state === 'PRINTING' || state === 'PAUSED' || state === 'ATTENTION') throw new Error('a job is running');
    const files = storages.get(defaultStorage)!.files;
    let file: SimFile | undefined;
    if (o.fileName !== undefined) {
      file =
        files.find((f) => f.display_name === o.fileName) ??
        storeFile(defaultStorage, o.fileName, o.sizeBytes ?? 500_000);
    } else {
      file = files[0] ?? storeFile(defaultStorage, 'Benchy.bgcode', o.sizeBytes ?? 500_000);
    }
    job = { id: nextJobId++, storage: defaultStorage, file, durationS: o.durationS ?? 1800, printedS: 0 };
    state = 'PRINTING';
    idleS = 0;
    return job.id;
  }

  function endJob(end: 'FINISHED' | 'STOPPED' | 'ERROR'): void {
    job = null;
    state = end;
    idleS = 0;
  }

  /** Move simulated time forward to now. */
  function advance(): void {
    const now = Date.now();
    let dt = ((now - lastTick) / 1000) * speed;
    lastTick = now;
    while (dt > 0) {
      if (state === 'PRINTING' && job) {
        const left = job.durationS - job.printedS;
        if (dt < left) {
          job.printedS += dt;
          dt = 0;
        } else {
          job.printedS = job.durationS;
          dt -= left;
          endJob('FINISHED');
        }
      } else if (opts.autoJobs && (state === 'IDLE' || state === 'FINISHED' || state === 'STOPPED')) {
        const pause = 120;
        if (idleS + dt < pause) {
          idleS += dt;
          dt = 0;
        } else {
          dt -= pause - idleS;
          const files = storages.get(defaultStorage)!.files;
          const pick = files[Math.floor(Math.random() * files.length)];
          startJob({ fileName: pick?.display_name, durationS: 600 + Math.floor(Math.random() * 1800) });
          // Now and then a job is cancelled part-way, as people do.
          if (Math.random() < 0.15 && job) job.durationS = Number.POSITIVE_INFINITY;
        }
      } else {
        dt = 0;
      }
      if (opts.autoJobs && state === 'PRINTING' && job && job.durationS === Number.POSITIVE_INFINITY) {
        if (job.printedS > 300) endJob('STOPPED');
      }
    }
  }

  function reportedState(): string {
    return forced ?? state;
  }

  function hasJob(): boolean {
    return job !== null && (state === 'PRINTING' || state === 'PAUSED' || state === 'ATTENTION');
  }

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
    return unauthorizedBody(c);
  }

  function unauthorizedBody(c: Context): Response {
    if ((c.req.header('accept') ?? '').includes('application/json')) {
      return c.json({ title: '401: Unauthorized', message: '' }, 401);
    }
    return c.text('401: Unauthorized\n\n\n', 401);
  }

  /** null when the request may pass, else the response to send. */
  function authenticate(c: Context): Response | null {
    const key = c.req.header('x-api-key');
    if (key !== undefined) {
      if (key === apiKey) return null;
      if (buddy) {
        c.header('WWW-Authenticate', `ApiKey realm="${realm}"`);
        return unauthorizedBody(c);
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

  // --- responses -----------------------------------------------------------------------------------------------
  function printerObject(): Record<string, unknown> {
    const printing = state === 'PRINTING';
    const base: Record<string, unknown> = {
      state: reportedState(),
      temp_bed: printing ? 60.1 : 24.3,
      target_bed: printing ? 60.0 : 0.0,
      temp_nozzle: printing ? 214.8 : 25.1,
      target_nozzle: printing ? 215.0 : 0.0,
      axis_z: printing ? 5.0 : 1.8,
      flow: 100,
      speed: 100,
      fan_hotend: printing ? 5000 : 0,
      fan_print: printing ? 2500 : 0,
    };
    // axis_x/axis_y are omitted while printing on both servers (B3).
    if (!printing) {
      base['axis_x'] = 7.9;
      base['axis_y'] = 8.4;
    }
    return base;
  }

  function jobNumbers(j: SimJob): Record<string, number> {
    const total = Number.isFinite(j.durationS) ? j.durationS : 3600;
    const progress = Math.min(100, (j.printedS / total) * 100);
    return {
      id: j.id,
      progress: Math.round(progress * 100) / 100,
      time_remaining: Math.max(0, Math.round(total - j.printedS)),
      time_printing: Math.round(j.printedS),
    };
  }

  function statusBody(): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    if (hasJob() && job) body['job'] = jobNumbers(job);
    if (buddy) {
      body['storage'] = { path: '/usb/', name: 'usb', read_only: false };
    } else {
      body['storage'] = [
        { path: '/local', read_only: false, free_space: 28_248_391_680, name: 'PrusaLink gcodes' },
        { path: '/sdcard', read_only: true, name: 'SD Card' },
      ];
    }
    body['printer'] = printerObject();
    if (!buddy) body['camera'] = { id: null };
    return body;
  }

  function fileEntry(storage: string, f: SimFile): Record<string, unknown> {
    return {
      name: f.name,
      display_name: f.display_name,
      ro: storages.get(storage)?.readOnly ?? false,
      type: 'PRINT_FILE',
      m_timestamp: f.m_timestamp,
      size: f.size,
      refs: {
        icon: `/thumb/s/${storage}/${f.name}`,
        thumbnail: `/thumb/l/${storage}/${f.name}`,
        download: `/${storage}/${f.name}`,
      },
    };
  }

  function jobBody(j: SimJob): Record<string, unknown> {
    return {
      ...jobNumbers(j),
      // Buddy maps Attention to PAUSED in /api/v1/job (B3).
      state: state === 'ATTENTION' ? 'PAUSED' : state,
      file: { ...fileEntry(j.storage, j.file), path: `/${j.storage}` },
    };
  }

  function faultResponse(c: Context): Response | Promise<Response> | null {
    switch (fault) {
      case 'html':
        return c.html('<!DOCTYPE html><html><head><title>Router login</title></head><body>Log in</body></html>');
      case 'truncated':
        return c.body(
          '{"storage": {"path": "/usb/", "name": "usb", "read_only": false}, "printer": {"state": "PRI',
          200,
          {
            'Content-Type': 'application/json',
          },
        );
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

  // --- routes --------------------------------------------------------------------------------------------------
  const app = new Hono();

  app.use('*', async (c, next) => {
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
      advance();
      await next();
    } finally {
      concurrent--;
    }
  });

  app.get('/api/version', (c) => {
    if (!buddy) {
      return c.json({
        api: '2.0.0',
        server: '0.8.1',
        original: 'PrusaLink I3MK3S',
        text: 'PrusaLink 0.8.1',
        firmware: '3.14.1',
        sdk: '0.8.0',
        capabilities: { 'upload-by-put': true },
      });
    }
    const m = BUDDY_MODELS[model as keyof typeof BUDDY_MODELS] ?? BUDDY_MODELS.MK4;
    const body: Record<string, unknown> = {
      api: '2.0.0',
      server: '2.1.2',
      nozzle_diameter: 0.4,
      text: 'PrusaLink',
      hostname: m.hostname,
    };
    if (m.printer) {
      body['firmware'] = '6.5.3+12780';
      body['printer'] = m.printer;
    }
    body['capabilities'] = { 'upload-by-put': true };
    return c.json(body);
  });

  app.get('/api/v1/info', (c) => {
    const hostname = buddy ? (BUDDY_MODELS[model as keyof typeof BUDDY_MODELS]?.hostname ?? 'prusa') : 'prusa-mk3s';
    return c.json({ nozzle_diameter: 0.4, mmu: false, serial: 'SIM-0000-0000', hostname, min_extrusion_temp: 170 });
  });

  app.get('/api/v1/status', (c) => c.json(statusBody()));

  app.get('/api/v1/job', (c) => {
    if (!hasJob() || !job) return c.body(null, 204);
    return c.json(jobBody(job));
  });

  app.delete('/api/v1/job/:id', (c) => {
    const id = c.req.param('id');
    if (!/^\d+$/.test(id)) return c.text('400: Bad Request', 400);
    if (!job || Number(id) !== job.id) return c.text('404: Not Found', 404);
    if (!hasJob()) return c.text('409: Conflict', 409);
    endJob('STOPPED');
    return c.body(null, 204);
  });

  app.put('/api/v1/job/:id/:action', (c) => {
    const id = c.req.param('id');
    const action = c.req.param('action');
    if (!job || Number(id) !== job.id) return c.text('404: Not Found', 404);
    if (action === 'pause' && state === 'PRINTING') state = 'PAUSED';
    else if ((action === 'resume' && state === 'PAUSED') || (action === 'continue' && state === 'ATTENTION')) {
      state = 'PRINTING';
    } else return c.text('409: Conflict', 409);
    return c.body(null, 204);
  });

  app.get('/api/v1/storage', (c) =>
    c.json({
      storage_list: [...storages].map(([name, s]) => ({
        type: name === 'usb' ? 'USB' : name === 'local' ? 'LOCAL' : 'SDCARD',
        path: `/${name}`,
        name,
        available: true,
        read_only: s.readOnly,
        free_space: 28_248_391_680,
      })),
    }),
  );

  function splitFilesPath(c: Context): { storage: string; path: string } {
    const rest = decodeURIComponent(new URL(c.req.url).pathname.replace(/^\/api\/v1\/files\/?/, ''));
    const [storage = '', ...parts] = rest.split('/');
    return { storage, path: parts.filter(Boolean).join('/') };
  }

  app.get('/api/v1/files/*', (c) => {
    const { storage, path } = splitFilesPath(c);
    const entry = storages.get(storage);
    if (!entry) return c.text('404: Not Found', 404);
    if (path === '') {
      return c.json({
        type: 'FOLDER',
        ro: entry.readOnly,
        name: storage,
        display_name: storage,
        children: entry.files.map((f) => fileEntry(storage, f)),
      });
    }
    const file = entry.files.find((f) => f.name === path || f.display_name === path);
    if (!file) return c.text('404: Not Found', 404);
    return c.json(fileEntry(storage, file));
  });

  app.put('/api/v1/files/*', async (c) => {
    const { storage, path } = splitFilesPath(c);
    const entry = storages.get(storage);
    if (!entry || path === '' || path.includes('/')) return c.text('404: Not Found', 404);
    if (entry.readOnly) return c.text('409: Conflict', 409);
    if (c.req.header('content-length') === undefined) return c.text('411: Length Required', 411);
    if (!/\.(b?gcode|gco|g|bgc)$/i.test(path)) return c.text('415: Unsupported Media Type', 415);
    const body = await c.req.arrayBuffer();
    if (body.byteLength === 0) return c.text('501: Not Implemented', 501);
    const exists = entry.files.some((f) => f.display_name === path);
    // Only `?1` counts (B4): RPi reads anything else as false.
    if (exists && c.req.header('overwrite') !== '?1') return c.text('409: Conflict', 409);
    storeFile(storage, path, body.byteLength);
    if (c.req.header('print-after-upload') === '?1') {
      if (hasJob()) return c.text('409: Conflict', 409); // stored, but not started (B4)
      startJob({ fileName: path });
    }
    return c.body(null, 201);
  });

  app.post('/api/v1/files/*', (c) => {
    const { storage, path } = splitFilesPath(c);
    const file = storages.get(storage)?.files.find((f) => f.name === path || f.display_name === path);
    if (!file) return c.text('404: Not Found', 404);
    if (hasJob()) return c.text('409: Conflict', 409);
    startJob({ fileName: file.display_name });
    return c.body(null, 204);
  });

  app.get('/api/printer', (c) => c.json({ telemetry: { material: 'PLA' } }));

  app.notFound((c) => c.text('404: Not Found', 404));

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

  let stopped = false;
  let rebooting: Promise<void> | null = null;

  return {
    port,
    url: `http://${host}:${port}`,
    flavour,
    get state() {
      advance();
      return reportedState();
    },
    get jobId() {
      advance();
      return hasJob() && job ? job.id : null;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await rebooting;
      await close(server);
    },
    startJob,
    stopJob() {
      advance();
      if (hasJob()) endJob('STOPPED');
    },
    finishJob() {
      advance();
      if (hasJob()) endJob('FINISHED');
    },
    pauseJob() {
      advance();
      if (state === 'PRINTING') state = 'PAUSED';
    },
    resumeJob() {
      advance();
      if (state === 'PAUSED' || state === 'ATTENTION') state = 'PRINTING';
    },
    attention() {
      advance();
      if (hasJob()) state = 'ATTENTION';
    },
    error() {
      advance();
      endJob('ERROR');
    },
    async reboot(o = {}) {
      job = null;
      state = 'IDLE';
      forced = null;
      nextJobId = firstJobId;
      idleS = 0;
      nonces.clear();
      const downMs = o.downMs ?? 0;
      if (downMs <= 0 || stopped) return;
      rebooting = (async () => {
        await close(server);
        await new Promise((r) => setTimeout(r, downMs));
        if (!stopped) server = await listen(port);
      })();
      await rebooting;
      rebooting = null;
    },
    addFile({ name, sizeBytes, storage }) {
      storeFile(storage ?? defaultStorage, name, sizeBytes ?? 500_000);
    },
    setFault(kind) {
      fault = kind;
      if (kind !== 'hang') {
        for (const release of hanging) release();
        hanging.clear();
      }
    },
    staleEveryRequest(on) {
      alwaysStale = on;
    },
    forceState(word) {
      forced = word;
    },
    stats() {
      return { ...stats, byPath: { ...stats.byPath } };
    },
  };
}
