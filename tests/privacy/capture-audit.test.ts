/**
 * Privacy audit of diagnostic captures (issue 16): simulated printers of both kinds with recognisable secrets and
 * personal data in every field they have (serial, access code, host and IP address, user, password, API key, file,
 * folder and job names with e-mail addresses, printer messages, network details), captured through the running
 * daemon while they run jobs, uploads and errors. The capture files' raw bytes must hold none of the seeds, and the
 * replay of each capture must record the same events as the live daemon did.
 *
 * The captures cover two minutes of the printers' (simulated) time: the simulators run 6 times faster than the wall
 * clock, so the test takes about 25 seconds. What the PrusaLink simulator cannot be told (its serial, a host name the
 * user chose, messages on its screen) is put into its answers by a loopback proxy in front of it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { type Capture, capturedEvents, parseCapture } from '../../src/capture/format.js';
import { compareEvents, type ReplayedEvent, replayCapture } from '../../src/capture/replay.js';
import { parseConfig } from '../../src/config.js';
import { databasePath } from '../../src/db/open.js';
import { silentLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { type BambuSimulator, startBambuSimulator, studioProjectFile } from '../../src/simulators/bambu.js';
import { type PrusaLinkSimulator, startPrusaLinkSimulator } from '../../src/simulators/prusalink.js';

const SEEDS = {
  bambuSerial: '01S00C9PRIVATE7',
  accessCode: 'Zq8SECRETcode',
  bambuIp: '127.0.0.77',
  prusaIp: '127.0.0.78',
  prusaKeyIp: '127.0.0.79',
  prusaUser: 'erinprivate',
  prusaPassword: 'pw-SECRET-4711',
  apiKey: 'key-SECRET-9a7c',
  prusaSerial: 'CZPX4711X004XK99999',
  hostName: 'erins-workshop.fritz.box',
  jobEmail: 'alice.smith@example.com',
  fileEmail: 'bob.jones@example.org',
  folderName: 'Erins Geheimprojekte',
  bambuJobEmail: 'carol.white@example.net',
  uploadEmail: 'dave.private@example.com',
  printerMessage: 'Call Frank Privatmann 0151-2345678',
  mac: 'a4:5e:60:12:34:56',
  wifi: 'ErinsHomeWifi',
} as const;

/** 127.0.0.77 as Bambu's `net.info[].ip`: a little-endian uint32. */
const BAMBU_IP_NUMBER = 77 * 2 ** 24 + 0 * 2 ** 16 + 0 * 2 ** 8 + 127;
const SPEED = 6;
/** Two minutes of the printers' time. */
const CAPTURE_MINUTES = 2 / SPEED;

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Simulated seconds as wall-clock milliseconds. */
const simMs = (seconds: number) => (seconds * 1000) / SPEED;

async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * A proxy in front of a PrusaLink simulator that puts the printer-side seeds into its answers: the serial and a host
 * name the user chose (/api/version, /api/v1/info) and a message on the printer's screen (/api/v1/status). Digest
 * authentication passes through untouched.
 */
async function seedingProxy(target: PrusaLinkSimulator, host: string): Promise<{ url: string; server: Server }> {
  const upstream = new URL(target.url);
  const server = createServer((req, res) => {
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          let body = Buffer.concat(chunks);
          const type = String(answer.headers['content-type'] ?? '');
          if (type.includes('json') && body.length > 0) {
            try {
              const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
              const path = req.url ?? '';
              if (path.startsWith('/api/version')) json.hostname = SEEDS.hostName;
              if (path.startsWith('/api/v1/info'))
                Object.assign(json, { serial: SEEDS.prusaSerial, hostname: SEEDS.hostName });
              if (path.startsWith('/api/v1/status') && typeof json.printer === 'object' && json.printer) {
                Object.assign(json.printer, {
                  status_printer: { ok: false, message: `${SEEDS.printerMessage} <${SEEDS.jobEmail}>` },
                });
              }
              body = Buffer.from(JSON.stringify(json));
            } catch {
              // Not JSON after all: passed on as it is.
            }
          }
          const headers = { ...answer.headers, 'content-length': String(body.length) };
          delete headers['transfer-encoding'];
          res.writeHead(answer.statusCode ?? 502, headers).end(body);
        });
      },
    );
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { url: `http://${host}:${(server.address() as AddressInfo).port}`, server };
}

function leaks(where: string, text: string): string[] {
  const lower = text.toLowerCase();
  const found = Object.entries(SEEDS)
    .filter(([, value]) => lower.includes(value.toLowerCase()))
    .map(([name]) => `${name} in ${where}`);
  if (text.includes(String(BAMBU_IP_NUMBER))) found.push(`bambuIp (as a number) in ${where}`);
  // Parts of the e-mail addresses too: a name or a domain left behind is a leak as well.
  for (const part of ['alice', 'bob.jones', 'carol', 'dave.private', 'example.com', 'example.org', 'example.net']) {
    if (lower.includes(part)) found.push(`"${part}" in ${where}`);
  }
  return found;
}

describe('privacy audit of diagnostic captures: no seed in a capture file, and replays agree', () => {
  const dataDir = tempDir('privacy-capture-');
  let bambu: BambuSimulator;
  let buddy: PrusaLinkSimulator;
  let rpi: PrusaLinkSimulator;
  const proxies: Server[] = [];
  let daemon: Daemon;
  let base = '';
  const files: Record<string, string> = {};

  beforeAll(async () => {
    bambu = await startBambuSimulator({
      serial: SEEDS.bambuSerial,
      accessCode: SEEDS.accessCode,
      model: 'P1P',
      host: SEEDS.bambuIp,
      port: 0,
      speed: SPEED,
      tickMs: 250,
    });
    buddy = await startPrusaLinkSimulator({
      username: SEEDS.prusaUser,
      password: SEEDS.prusaPassword,
      model: 'MK4',
      host: '127.0.0.1',
      port: 0,
      speed: SPEED,
    });
    rpi = await startPrusaLinkSimulator({
      flavour: 'rpi',
      password: SEEDS.prusaPassword,
      apiKey: SEEDS.apiKey,
      model: 'MK3S',
      host: '127.0.0.1',
      port: 0,
      speed: SPEED,
    });
    const buddyProxy = await seedingProxy(buddy, SEEDS.prusaIp);
    const rpiProxy = await seedingProxy(rpi, SEEDS.prusaKeyIp);
    proxies.push(buddyProxy.server, rpiProxy.server);
    daemon = new Daemon({
      config: parseConfig({
        printers: [
          {
            name: 'Workshop',
            type: 'bambu_lab',
            host: SEEDS.bambuIp,
            port: bambu.port,
            serial: SEEDS.bambuSerial,
            access_code: SEEDS.accessCode,
          },
          {
            name: 'Desk',
            type: 'prusa',
            host: buddyProxy.url,
            username: SEEDS.prusaUser,
            password: SEEDS.prusaPassword,
            poll_interval_s: 1,
          },
          { name: 'Attic', type: 'prusa', host: rpiProxy.url, api_key: SEEDS.apiKey, poll_interval_s: 1 },
        ],
      }),
      dataDir,
      port: 0,
      host: '127.0.0.1',
      logger: silentLogger(),
      createDriver,
      env: {},
    });
    const { port } = await daemon.start();
    base = `http://127.0.0.1:${port}`;
    await waitFor('all printers online', () => (daemon.fleet?.snapshots() ?? []).every((p) => p.online));
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    for (const server of proxies) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([bambu?.stop(), buddy?.stop(), rpi?.stop()]);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('captures two minutes of jobs, uploads and errors from each printer', async () => {
    const ids = ['workshop', 'desk', 'attic'];
    for (const id of ids) {
      const response = await fetch(`${base}/api/v1/printers/${id}/capture`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ minutes: CAPTURE_MINUTES }),
      });
      expect(response.status).toBe(202);
    }
    await sleep(simMs(4));

    // Bambu Lab: a slicer upload named after its owner that starts a job, printer messages and network details with
    // the seeds, an HMS error, then a job that fails.
    const ack = bambu.printer.projectFile(studioProjectFile('3mf', `${SEEDS.bambuJobEmail} bracket`), { seconds: 600 });
    await bambu.publishRaw(JSON.stringify({ print: ack }));
    await bambu.publishRaw(
      JSON.stringify({
        print: {
          command: 'push_status',
          msg: 1,
          subtask_name: `${SEEDS.bambuJobEmail} bracket`,
          gcode_file: `/sdcard/${SEEDS.folderName}/${SEEDS.bambuJobEmail}.gcode.3mf`,
          fail_reason: SEEDS.printerMessage,
          upload: { status: 'uploading', progress: 50, message: `${SEEDS.uploadEmail} ${SEEDS.hostName}` },
          ipcam: { rtsp_url: `rtsps://${SEEDS.bambuIp}/streaming/live/1`, tutk_server: 'disable' },
          net: { conf: 0, info: [{ ip: BAMBU_IP_NUMBER, mask: 16777215, mac: SEEDS.mac, ssid: SEEDS.wifi }] },
          dev_name: SEEDS.hostName,
        },
      }),
    );
    await bambu.publishRaw(
      JSON.stringify({ mc_print: { command: 'push_info', param: `[${SEEDS.hostName}] ${SEEDS.printerMessage}` } }),
    );
    await bambu.publishRaw(
      JSON.stringify({
        system: { command: 'get_access_code', access_code: SEEDS.accessCode, sequence_id: '7', result: 'success' },
      }),
    );
    bambu.setHms([{ attr: 0x05000600, code: 0x00020070 }]);

    await sleep(simMs(8));
    // It fails early: the end of a job that FAILED waits 15 s (wall clock) for a cancel code before it is recorded.
    bambu.failJob();

    // PrusaLink (Buddy, digest): a file that appears, an upload, a job from a file in a named folder, an error.
    buddy.addFile({ name: `${SEEDS.fileEmail} holder.bgcode`, sizeBytes: 12_345, folder: [SEEDS.folderName] });
    buddy.upload({ name: `${SEEDS.uploadEmail} clip.bgcode`, sizeBytes: 40_000, durationS: 10 });
    // Prusa-Link (Raspberry Pi, API key): a job from a file named after its owner, an upload that prints.
    rpi.startJob({ fileName: `${SEEDS.jobEmail} gear.gcode`, durationS: 40 });
    rpi.upload({ name: `${SEEDS.fileEmail} knob.gcode`, sizeBytes: 9_000, durationS: 10, print: true, printS: 20 });

    await sleep(simMs(12));
    buddy.startJob({ fileName: `${SEEDS.jobEmail} bracket.bgcode`, durationS: 300, folder: [SEEDS.folderName] });
    await sleep(simMs(30));
    buddy.error();
    await sleep(simMs(12));
    // Answers that are not JSON for a while (an HTML error page): counted, captured as a length only.
    buddy.setFault('html');
    await sleep(3500);
    buddy.setFault(null);

    // Then quiet until the captures end by themselves.
    await waitFor(
      'the captures to end',
      () => ids.every((id) => daemon.core?.captures.status(id)?.state === 'done'),
      60_000,
    );
    for (const id of ids) {
      const response = await fetch(`${base}/api/v1/printers/${id}/capture/download`);
      expect(response.status).toBe(200);
      files[id] = Buffer.from(await response.arrayBuffer()).toString('latin1');
    }
  }, 90_000);

  it('finds none of the seeds in the capture files’ raw bytes', () => {
    expect(Object.keys(files)).toHaveLength(3);
    const found: string[] = [];
    for (const [id, text] of Object.entries(files)) found.push(...leaks(`the capture of ${id}`, text));
    // The files on disk in the data directory, byte for byte, too.
    for (const id of Object.keys(files)) {
      const path = daemon.core?.captures.finishedFile(id)?.path;
      if (path) found.push(...leaks(`the capture file of ${id} on disk`, readFileSync(path).toString('latin1')));
    }
    expect(found).toEqual([]);
  });

  it('did capture the activity it audits, so the audit cannot pass by capturing nothing', () => {
    const captures = Object.fromEntries(Object.entries(files).map(([id, text]) => [id, parseCapture(text)]));
    const types = (capture: Capture) => capturedEvents(capture).map((e) => e.event_type);
    for (const id of ['workshop', 'desk', 'attic']) {
      expect(types(captures[id]!), id).toEqual(expect.arrayContaining(['job_created', 'file_uploaded']));
    }
    expect(types(captures.workshop!)).toEqual(expect.arrayContaining(['job_failed', 'error_occurred']));
    expect(types(captures.desk!)).toEqual(expect.arrayContaining(['job_failed', 'error_occurred']));
    // The seeded network details and messages arrived, and were replaced.
    expect(files.workshop).toContain('"net":"<redacted>"');
    expect(files.workshop).toMatch(/"fail_reason":"<str:\d+>"/);
    expect(files.desk).toMatch(/"serial":"<str:\d+>"|"message":"<str:\d+>"/);
    expect(files.desk).toMatch(/"text":"<non-json:\d+ bytes>"/);
  });

  it('replays each capture to the events the live daemon recorded for that printer', async () => {
    const key = (e: { event_type: string; metadata: Record<string, unknown> }) =>
      `${e.event_type} ${JSON.stringify(Object.fromEntries(Object.entries(e.metadata).sort()))}`;
    const replayed: Record<string, ReplayedEvent[]> = {};
    const windows: Record<string, { start: number; end: number }> = {};
    for (const [id, text] of Object.entries(files)) {
      const capture = parseCapture(text);
      const start = Date.parse(capture.header.started_at);
      windows[id] = { start, end: start + (capture.lines.at(-1)?.t ?? 0) };
      const result = await replayCapture(capture, { instant: true });
      // The replay records what the capture says the daemon recorded...
      expect(compareEvents(capturedEvents(capture), result.events, capture.header.session).differences, id).toEqual([]);
      replayed[id] = result.events;
    }
    // ... and that is what the daemon's own database holds for the printer while its capture ran (from its start to
    // its end line). Events name no printer, only its type: the two PrusaLink printers, captured over the same
    // minutes, are checked together.
    const db = new Database(databasePath(dataDir), { readonly: true });
    const stored = (type: string, ...ids: string[]) => {
      const start = Math.min(...ids.map((id) => windows[id]!.start));
      const end = Math.max(...ids.map((id) => windows[id]!.end));
      const rows = db
        .prepare('SELECT event_type, metadata FROM usage_events WHERE timestamp >= ? AND timestamp <= ?')
        .all(new Date(start).toISOString(), new Date(end).toISOString()) as { event_type: string; metadata: string }[];
      return rows
        .map((row) => ({ event_type: row.event_type, metadata: JSON.parse(row.metadata) as Record<string, unknown> }))
        .filter((e) => e.metadata.printer_type === type)
        .map(key)
        .sort();
    };
    try {
      expect(replayed.workshop!.map(key).sort()).toEqual(stored('bambu_lab', 'workshop'));
      expect([...replayed.desk!, ...replayed.attic!].map(key).sort()).toEqual(stored('prusa', 'desk', 'attic'));
    } finally {
      db.close();
    }
  }, 60_000);
});
