/**
 * `printernizer-stats capture` and `printernizer-stats replay` (issue 16).
 *
 * capture --printer NAME [--minutes N] [--output FILE]: when a daemon runs on the data directory (its lock names a
 * live process), the capture is asked of that daemon over its local HTTP API, so the daemon keeps its one session to
 * the printer (Bambu Lab printers accept only a few) and goes on recording; the CLI shows the countdown and downloads
 * the file. Without a daemon, the CLI runs that one printer itself, holding the data directory like a daemon (so none
 * starts meanwhile and opens a second session), records the events into the same database, and writes the file.
 *
 * replay FILE [--speed N | --instant] [--expect]: plays the file into a throwaway store and prints the events; exit 1
 * when --expect finds a difference, 2 for a file it cannot read (malformed, truncated, a newer format).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Config, loadConfigFile, type PrinterConfig } from '../config.js';
import { databasePath, ensureWritableDir, openDatabase } from '../db/open.js';
import { acquireDataDirLock, LOCK_FILE } from '../lock.js';
import { createLogger } from '../log.js';
import { assignPrinterIds, PrinterFleet } from '../printers/fleet.js';
import { type Runtime, type RuntimeFlags, resolveRuntime, UsageError } from '../runtime.js';
import { appVersion, effectiveTimezone } from '../stats/privacy.js';
import { UsageRepository } from '../stats/repository.js';
import { UsageStatsService } from '../stats/service.js';
import { CaptureFormatError, capturedEvents, readCaptureFile } from './format.js';
import { CaptureHub, captureFileName, DEFAULT_CAPTURE_MINUTES, MAX_CAPTURE_MINUTES } from './hub.js';
import type { CaptureStatus } from './recorder.js';
import { compareEvents, formatEvent, replayCapture } from './replay.js';

const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** One sentence on what a capture file does not contain, shown wherever a capture is made. */
export const REDACTION_NOTE =
  'Serials, access codes, passwords, API keys, host names, IP and MAC addresses, user names, e-mail addresses, URLs, ' +
  'and file, job and folder names are replaced by placeholders before anything is written.';

type Values = Record<string, string | boolean | undefined>;

function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

function formatCountdown(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
}

/** The printer named by --printer: its configured name (any case) or its id. */
export function findPrinter(config: Config, name: string): { printer: PrinterConfig; id: string } {
  const ids = assignPrinterIds(config.printers.map((p) => p.name));
  const wanted = name.trim().toLowerCase();
  const index = config.printers.findIndex((p, i) => p.name.toLowerCase() === wanted || ids[i] === wanted);
  if (index < 0) {
    const names = config.printers.map((p) => `"${p.name}"`).join(', ');
    throw new UsageError(
      config.printers.length === 0
        ? 'no printers are configured'
        : `no configured printer is called "${name}"; configured: ${names}`,
    );
  }
  return { printer: config.printers[index]!, id: ids[index]! };
}

function parseMinutes(value: string | boolean | undefined): number {
  if (value === undefined) return DEFAULT_CAPTURE_MINUTES;
  const minutes = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(minutes) || minutes <= 0 || minutes > MAX_CAPTURE_MINUTES) {
    throw new UsageError(`--minutes must be a number above 0 and at most ${MAX_CAPTURE_MINUTES}`);
  }
  return minutes;
}

/** The pid in the data directory's lock when that process still runs, else null. */
export function runningDaemonPid(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(join(dataDir, LOCK_FILE), 'utf8').trim(), 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

export async function runCapture(values: Values): Promise<number> {
  if (typeof values.printer !== 'string' || values.printer.trim() === '') {
    throw new UsageError('capture needs --printer NAME (the name of a configured printer)');
  }
  const runtime = resolveRuntime(values as RuntimeFlags);
  const config = loadConfigFile(runtime.configPath);
  const { printer, id } = findPrinter(config, values.printer);
  const minutes = parseMinutes(values.minutes);
  const output = resolve(
    typeof values.output === 'string'
      ? values.output
      : captureFileName(id, new Date(Math.floor(Date.now() / 1000) * 1000)),
  );
  const pid = runningDaemonPid(runtime.dataDir);
  say(`recording ${minutes} minute${minutes === 1 ? '' : 's'} of "${printer.name}" into ${output}`);
  say(REDACTION_NOTE);
  return pid !== null
    ? captureThroughDaemon({ runtime, config, id, minutes, output, pid })
    : captureStandalone({ runtime, config, printer, minutes, output });
}

interface DaemonCapture {
  runtime: Runtime;
  config: Config;
  id: string;
  minutes: number;
  output: string;
  pid: number;
}

/** The address the daemon answers on from this machine. */
function daemonBase(runtime: Runtime): string {
  const host = runtime.host === '0.0.0.0' || runtime.host === '::' || runtime.host === '' ? '127.0.0.1' : runtime.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${runtime.port}`;
}

async function captureThroughDaemon(job: DaemonCapture): Promise<number> {
  const base = `${daemonBase(job.runtime)}/api/v1/printers/${encodeURIComponent(job.id)}/capture`;
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (job.config.api_token) headers.Authorization = `Bearer ${job.config.api_token}`;
  const call = async (method: string, path = '', body?: unknown): Promise<Response> => {
    try {
      return await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? headers : { ...headers, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new Error(
        `a printernizer-stats daemon (pid ${job.pid}) runs on ${job.runtime.dataDir} but does not answer on ` +
          `${daemonBase(job.runtime)}; pass --port (and --host) as the daemon listens, or stop it to capture without it`,
      );
    }
  };
  const failure = async (response: Response): Promise<string> => {
    try {
      const data = (await response.json()) as { error?: { message?: string } };
      return data.error?.message ?? `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status}`;
    }
  };

  say(`the daemon (pid ${job.pid}) records it and keeps running`);
  const started = await call('POST', '', { minutes: job.minutes });
  if (started.status !== 202) {
    say(`the daemon refused the capture: ${await failure(started)}`);
    return EXIT.failure;
  }
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let status: CaptureStatus | null = null;
  try {
    for (;;) {
      if (interrupted) {
        say('stopping the capture early; what was recorded is kept');
        await call('DELETE');
        interrupted = false;
      }
      const response = await call('GET');
      if (!response.ok) {
        say(`lost track of the capture: ${await failure(response)}`);
        return EXIT.failure;
      }
      status = ((await response.json()) as { capture: CaptureStatus | null }).capture;
      if (status?.state !== 'recording') break;
      progress(status);
      await sleep(1000);
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  const download = await call('GET', '/download');
  if (!download.ok) {
    say(`the capture could not be downloaded: ${await failure(download)}`);
    return EXIT.failure;
  }
  writeFileSync(job.output, Buffer.from(await download.arrayBuffer()), { mode: 0o600 });
  return finished(status, job.output);
}

function progress(status: CaptureStatus): void {
  const line = `recording: ${formatCountdown(status.remaining_seconds)} left, ${status.lines} lines, ${status.events} events`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line}   `);
}

function finished(status: CaptureStatus | null, output: string): number {
  if (status?.state === 'failed') {
    say(`${status.message ?? 'the capture stopped early'} (${output})`);
    return EXIT.failure;
  }
  say(`wrote ${output}: ${status?.lines ?? 0} lines, ${status?.events ?? 0} events recorded meanwhile`);
  say(`replay it with: printernizer-stats replay ${output} --instant`);
  return EXIT.ok;
}

interface StandaloneCapture {
  runtime: Runtime;
  config: Config;
  printer: PrinterConfig;
  minutes: number;
  output: string;
}

async function captureStandalone(job: StandaloneCapture): Promise<number> {
  const { runtime, config, printer } = job;
  ensureWritableDir(runtime.dataDir);
  // Held like a daemon: a daemon started meanwhile would open a second session to the printer.
  const lock = acquireDataDirLock(runtime.dataDir);
  const logger = createLogger({ level: 'warn' });
  const db = openDatabase(databasePath(runtime.dataDir));
  let fleet: PrinterFleet | null = null;
  try {
    say('no daemon runs on this data directory: running this printer for the capture');
    const service = new UsageStatsService({
      repository: new UsageRepository(db),
      logger,
      timezone: effectiveTimezone(config.timezone),
    });
    const hub = new CaptureHub({ printers: [printer], logger, daemonVersion: appVersion(), keepPreludes: false });
    const { createDriver } = await import('../printers/drivers.js');
    const running = new PrinterFleet([printer], {
      emit: (type, metadata) => {
        service.recordEvent(type, metadata);
        hub.recorded(type, metadata);
      },
      logger,
      createDriver,
      clock: hub.clock,
    });
    fleet = running;
    running.start();
    hub.attach(running);
    const id = hub.printerIds()[0]!;
    let status = hub.start(id, { minutes: job.minutes, outputPath: job.output, session: 'started' });
    let interrupted = false;
    const onSignal = () => {
      interrupted = true;
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      while (status.state === 'recording') {
        if (interrupted) {
          say('\nstopping the capture early; what was recorded is kept');
          hub.stop(id, 'stopped');
        }
        await sleep(interrupted ? 0 : 500);
        status = hub.status(id) ?? status;
        if (status.state === 'recording') progress(status);
      }
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      hub.close('stopped');
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
    return finished(status, job.output);
  } finally {
    await fleet?.stop();
    db.close();
    lock.release();
  }
}

export async function runReplay(values: Values, positionals: readonly string[]): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('replay needs exactly one capture FILE');
  if (values.instant === true && values.speed !== undefined) {
    throw new UsageError('use either --speed N or --instant, not both');
  }
  let speed = 1;
  if (typeof values.speed === 'string') {
    speed = Number(values.speed);
    if (!Number.isFinite(speed) || speed <= 0) throw new UsageError('--speed must be a number above 0');
  }
  const file = positionals[0]!;
  let capture: ReturnType<typeof readCaptureFile>;
  try {
    capture = readCaptureFile(file);
  } catch (error) {
    if (error instanceof CaptureFormatError) {
      say(`${file}: ${error.message}`);
      return EXIT.usage;
    }
    throw error;
  }
  const { header } = capture;
  // The model and firmware as last known: a capture that began with the session learns them during it.
  const learned = capture.lines.filter((line) => line.kind === 'printer').at(-1);
  const model = learned?.model ?? header.model;
  const firmware = learned?.firmware ?? header.firmware;
  say(
    `capture: ${header.printer_type} ${model}${firmware ? `, firmware ${firmware}` : ''}, by printernizer-stats ` +
      `${header.daemon_version}, started ${header.started_at} (${header.session === 'joined' ? 'joined a running session' : 'from the session start'})`,
  );
  if (!capture.complete) {
    say('the capture has no end line (it stopped early: a full disk, or the process ended); replaying what it holds');
  }
  const asJson = values.json === true;
  const result = await replayCapture(capture, {
    instant: values.instant === true,
    speed,
    onEvent: (event) => process.stdout.write(`${asJson ? JSON.stringify(event) : formatEvent(event)}\n`),
  });
  if (result.events.length === 0) say('the replay recorded no events');
  for (const divergence of result.divergences) say(`note: ${divergence}`);
  if (values.expect !== true) return EXIT.ok;
  const expected = capturedEvents(capture);
  const comparison = compareEvents(expected, result.events, header.session);
  if (comparison.equal) {
    say(`--expect: the replay recorded the capture's ${expected.length} events`);
    return EXIT.ok;
  }
  say('--expect: the replay recorded different events than the capture holds:');
  for (const line of comparison.differences) say(`  ${line}`);
  return EXIT.failure;
}
