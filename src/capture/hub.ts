/**
 * Diagnostic captures inside a running fleet (the daemon, or the CLI running one printer on its own): starts and
 * stops one recorder per printer, feeds it that printer's raw traffic (PrinterFleet.tapTraffic) and the events
 * recorded for that printer, and keeps every printer's prelude so a capture can join a running session.
 *
 * Which printer an event belongs to: the fleet's event sink carries no printer, so the hub follows the fleet's
 * dispatch. Every event a tracker records happens either while the fleet hands it an update of its printer (the hub
 * sees that update first, observeUpdates) or in a timer the tracker set while doing so (a job held for its cancel
 * code); the hub's clock carries the printer into those timers. The daemon gives the fleet this clock and passes each
 * recorded event to `recorded`.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PrinterConfig } from '../config.js';
import { type Clock, systemClock } from '../printers/clock.js';
import { assignPrinterIds } from '../printers/fleet.js';
import type { PrinterSnapshot, PrinterUpdate, RawTraffic } from '../printers/types.js';
import { type EventType, type PrinterModel, sanitizeMetadata } from '../stats/events.js';
import type { EndReason, SessionKind } from './format.js';
import { BambuPrelude, type PreludeKeeper, PrusaLinkPrelude } from './prelude.js';
import { type CaptureFs, CaptureRecorder, type CaptureStatus } from './recorder.js';

/** The part of PrinterFleet the hub uses. */
export interface CaptureFleet {
  snapshots(): PrinterSnapshot[];
  tapTraffic(printerId: string, tap: (entry: RawTraffic) => void): (() => void) | null;
  observeUpdates(observer: (printerId: string, update: PrinterUpdate) => void): () => void;
}

export const DEFAULT_CAPTURE_MINUTES = 10;
export const MAX_CAPTURE_MINUTES = 120;
/** Daemon-side capture files older than this are removed when the daemon starts. */
const KEEP_CAPTURE_FILES_MS = 7 * 24 * 3600 * 1000;

export class CaptureBusyError extends Error {
  constructor(readonly printerId: string) {
    super('a capture of this printer is already running; wait for it to end or stop it first');
    this.name = 'CaptureBusyError';
  }
}

export class UnknownPrinterError extends Error {
  constructor(readonly printerId: string) {
    super(`no configured printer has the id "${printerId}"`);
    this.name = 'UnknownPrinterError';
  }
}

export interface CaptureHubOptions {
  printers: readonly PrinterConfig[];
  logger: Logger;
  daemonVersion: string;
  /** Where captures started without an output path go (the daemon: `<data dir>/captures`). */
  directory?: string;
  clock?: Clock;
  /** Keep each printer's prelude (joined captures); the standalone CLI starts the session itself and needs none. */
  keepPreludes?: boolean;
  fs?: CaptureFs;
}

export interface StartCaptureOptions {
  minutes?: number;
  /** Defaults to a new file in the hub's directory. */
  outputPath?: string;
  /** `started` when the caller starts the printer's session itself (standalone CLI), else `joined`. */
  session?: SessionKind;
}

interface Finished {
  status: CaptureStatus;
  path: string;
}

interface Member {
  config: PrinterConfig;
  prelude: PreludeKeeper | null;
  model: PrinterModel | null;
}

export class CaptureHub {
  /** Give this clock to the fleet: it carries the printer into tracker timers. */
  readonly clock: Clock;
  private readonly base: Clock;
  private readonly members = new Map<string, Member>();
  private readonly active = new Map<string, { recorder: CaptureRecorder; path: string; untap: () => void }>();
  private readonly finished = new Map<string, Finished>();
  private readonly detachers: (() => void)[] = [];
  private fleet: CaptureFleet | null = null;
  /** The printer whose update (or tracker timer) is being handled now. */
  private current: string | null = null;

  constructor(private readonly opts: CaptureHubOptions) {
    this.base = opts.clock ?? systemClock;
    const ids = assignPrinterIds(opts.printers.map((p) => p.name));
    opts.printers.forEach((config, index) => {
      const keep = opts.keepPreludes ?? true;
      const prelude = keep ? (config.type === 'bambu_lab' ? new BambuPrelude() : new PrusaLinkPrelude()) : null;
      this.members.set(ids[index]!, { config, prelude, model: null });
    });
    this.clock = {
      now: () => this.base.now(),
      setTimer: (fn, ms) => {
        const owner = this.current;
        return this.base.setTimer(() => this.within(owner, fn), ms);
      },
    };
  }

  /** Follows a started fleet: its dispatch (for attribution and models) and every printer's traffic (preludes). */
  attach(fleet: CaptureFleet): void {
    this.fleet = fleet;
    this.detachers.push(
      fleet.observeUpdates((printerId, update) => {
        this.current = printerId;
        if (update.kind === 'model') {
          const member = this.members.get(printerId);
          if (member) member.model = update.model;
          this.active.get(printerId)?.recorder.modelChanged(update.model);
        }
      }),
    );
    for (const [id, member] of this.members) {
      const prelude = member.prelude;
      if (!prelude) continue;
      const untap = fleet.tapTraffic(id, (entry) => prelude.observe(entry));
      if (untap) this.detachers.push(untap);
    }
    this.removeOldFiles();
  }

  /** An event the daemon recorded (the fleet's event sink, after the stats service took it). */
  recorded(eventType: EventType, metadata: unknown): void {
    const printerId = this.current;
    if (printerId === null) return;
    const capture = this.active.get(printerId);
    if (!capture) return;
    // The same allow-list the stats service applies, so the capture holds what was stored.
    capture.recorder.event(eventType, sanitizeMetadata(eventType, metadata).metadata);
  }

  /** Printer ids with their configured names, in config order. */
  printerIds(): string[] {
    return [...this.members.keys()];
  }

  hasPrinter(printerId: string): boolean {
    return this.members.has(printerId);
  }

  /** Starts capturing a printer. Throws UnknownPrinterError, CaptureBusyError, or a file error. */
  start(printerId: string, options: StartCaptureOptions = {}): CaptureStatus {
    const member = this.members.get(printerId);
    if (!member) throw new UnknownPrinterError(printerId);
    if (this.active.has(printerId)) throw new CaptureBusyError(printerId);
    const fleet = this.fleet;
    if (!fleet) throw new Error('captures need the printers running');
    const minutes = options.minutes ?? DEFAULT_CAPTURE_MINUTES;
    const session = options.session ?? 'joined';
    const path = options.outputPath ?? this.newPath(printerId);
    const snapshot = fleet.snapshots().find((s) => s.id === printerId);
    const model = member.model ?? snapshot?.model ?? 'other';
    const recorder = new CaptureRecorder({
      printerId,
      printerType: member.config.type,
      model,
      firmware: null,
      session,
      minutes,
      outputPath: path,
      clock: this.base,
      daemonVersion: this.opts.daemonVersion,
      logger: this.opts.logger,
      ...(member.config.type === 'prusa' ? { pollIntervalS: member.config.poll_interval_s } : {}),
      prelude: session === 'joined' ? (member.prelude?.prelude() ?? []) : [],
      fs: this.opts.fs,
      onEnd: (status) => this.ended(printerId, status),
    });
    recorder.start();
    const untap = fleet.tapTraffic(printerId, (entry) => recorder.traffic(entry)) ?? (() => {});
    // The previous capture of this printer is replaced (one file per printer is kept).
    const previous = this.finished.get(printerId);
    this.finished.delete(printerId);
    if (previous && previous.path !== path && options.outputPath === undefined) rmSync(previous.path, { force: true });
    this.active.set(printerId, { recorder, path, untap });
    return recorder.status();
  }

  /** Stops a running capture early; null when none runs. */
  stop(printerId: string, reason: EndReason = 'stopped'): CaptureStatus | null {
    return this.active.get(printerId)?.recorder.stop(reason) ?? null;
  }

  /** The running capture's status, else the last finished one's, else null. */
  status(printerId: string): CaptureStatus | null {
    return this.active.get(printerId)?.recorder.status() ?? this.finished.get(printerId)?.status ?? null;
  }

  /** The file of the last finished capture of a printer, for download. */
  finishedFile(printerId: string): { path: string; status: CaptureStatus } | null {
    const finished = this.finished.get(printerId);
    return finished ? { path: finished.path, status: finished.status } : null;
  }

  /** Ends every running capture (the daemon is stopping) and stops following the fleet. */
  close(reason: EndReason = 'daemon_stopping'): void {
    for (const printerId of [...this.active.keys()]) this.stop(printerId, reason);
    for (const detach of this.detachers.splice(0)) detach();
    this.fleet = null;
  }

  private ended(printerId: string, status: CaptureStatus): void {
    const capture = this.active.get(printerId);
    if (!capture) return;
    capture.untap();
    this.active.delete(printerId);
    this.finished.set(printerId, { status, path: capture.path });
  }

  private within(owner: string | null, fn: () => void): void {
    const previous = this.current;
    this.current = owner;
    try {
      fn();
    } finally {
      this.current = previous;
    }
  }

  private newPath(printerId: string): string {
    const directory = this.opts.directory;
    if (!directory) throw new Error('no directory for captures');
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    return join(directory, captureFileName(printerId, new Date(this.base.now())));
  }

  private removeOldFiles(): void {
    const directory = this.opts.directory;
    if (!directory) return;
    try {
      const cutoff = this.base.now() - KEEP_CAPTURE_FILES_MS;
      for (const name of readdirSync(directory)) {
        if (!name.endsWith('.jsonl')) continue;
        const path = join(directory, name);
        if (statSync(path).mtimeMs < cutoff) rmSync(path, { force: true });
      }
    } catch {
      // No directory yet, or one we cannot read: nothing to clean.
    }
  }
}

/** `printernizer-capture-<printer id>-20261102T100000Z.jsonl` */
export function captureFileName(printerId: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `printernizer-capture-${printerId}-${stamp}.jsonl`;
}
