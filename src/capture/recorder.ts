/**
 * Records one printer's capture file as it happens (DESIGN.md "Captures"): the header, then every piece of raw
 * traffic redacted before it is written (redact.ts), the events recorded for the printer, notes when the printer goes
 * away and comes back, and an end line. Lines are written synchronously and in order, so a crash or a full disk
 * leaves every line before it intact.
 *
 * A full disk (ENOSPC, EDQUOT) or a file over the size limit (EFBIG) ends the capture with a clear message: the file is
 * cut back to its last whole line, so what was written stays readable, and an end line is added if it still fits.
 */
import * as nodeFs from 'node:fs';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../printers/clock.js';
import type { RawTraffic } from '../printers/types.js';
import type { EventMetadata, EventType, PrinterModel, PrinterType } from '../stats/events.js';
import {
  CAPTURE_FORMAT,
  CAPTURE_VERSION,
  type CaptureHeader,
  type CaptureLine,
  type EndReason,
  type Note,
  type SessionKind,
  serializeLine,
} from './format.js';
import { firmwareFromTraffic } from './printer-facts.js';
import { type CaptureProtocol, Redactor } from './redact.js';

/** The file operations the recorder needs; node:fs by default, replaceable to test failing disks. */
export type CaptureFs = Pick<typeof nodeFs, 'openSync' | 'writeSync' | 'ftruncateSync' | 'closeSync'>;

/** A capture larger than this stops (a runaway printer or a bug must not fill the user's disk). */
export const MAX_CAPTURE_BYTES = 256 * 1024 * 1024;

export interface RecorderOptions {
  printerId: string;
  printerType: PrinterType;
  /** The model as known when the capture starts. */
  model: PrinterModel;
  firmware: string | null;
  session: SessionKind;
  minutes: number;
  outputPath: string;
  clock: Clock;
  daemonVersion: string;
  logger: Logger;
  pollIntervalS?: number;
  /** For a joined session: what the daemon knew of the printer when the capture began (written first, at t 0). */
  prelude?: readonly RawTraffic[];
  maxBytes?: number;
  fs?: CaptureFs;
  /** Called once, when the capture ends for whatever reason. */
  onEnd?: (status: CaptureStatus) => void;
}

export type CaptureState = 'recording' | 'done' | 'failed';

/** What the API and the CLI show about a capture; no paths, names or printer data. */
export interface CaptureStatus {
  printer_id: string;
  state: CaptureState;
  started_at: string;
  ends_at: string;
  minutes: number;
  remaining_seconds: number;
  lines: number;
  events: number;
  bytes: number;
  end_reason: EndReason | null;
  /** One sentence for a person: why it stopped when it did not run its course. */
  message: string | null;
}

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

export class CaptureRecorder {
  private readonly fs: CaptureFs;
  private readonly redactor: Redactor;
  private readonly maxBytes: number;
  private readonly startedAt: number;
  private readonly endsAt: number;
  private readonly log: Logger;
  private fd: number | null = null;
  private bytes = 0;
  private lineCount = 0;
  private eventCount = 0;
  private state: CaptureState = 'recording';
  private endReason: EndReason | null = null;
  private message: string | null = null;
  private timer: TimerHandle | null = null;
  private model: PrinterModel;
  private firmware: string | null;
  private lastT = 0;
  private linkWentDown = false;
  /** The errno of the write that ended the capture. */
  private failureCode: string | null = null;

  constructor(private readonly opts: RecorderOptions) {
    this.fs = opts.fs ?? nodeFs;
    this.redactor = new Redactor(protocolOf(opts.printerType));
    this.maxBytes = opts.maxBytes ?? MAX_CAPTURE_BYTES;
    this.startedAt = opts.clock.now();
    this.endsAt = this.startedAt + Math.round(opts.minutes * 60_000);
    this.model = opts.model;
    this.firmware = opts.firmware;
    this.log = opts.logger.child({ component: 'capture' });
  }

  /**
   * Creates the file and writes the header (and the prelude); throws when the file cannot be created, in which case
   * nothing was recorded. The capture then ends by itself after `minutes`.
   */
  start(): void {
    // 0600: redacted, but still about the user's printer.
    this.fd = this.fs.openSync(this.opts.outputPath, 'w', 0o600);
    const header: CaptureHeader = {
      format: CAPTURE_FORMAT,
      version: CAPTURE_VERSION,
      printer_type: this.opts.printerType,
      model: this.opts.model,
      firmware: this.opts.firmware,
      daemon_version: this.opts.daemonVersion,
      started_at: new Date(this.startedAt).toISOString(),
      session: this.opts.session,
      ...(this.opts.pollIntervalS !== undefined ? { poll_interval_s: this.opts.pollIntervalS } : {}),
      minutes: this.opts.minutes,
    };
    if (!this.write(header)) {
      this.closeFile();
      throw Object.assign(new Error(this.message ?? 'the capture file could not be written'), {
        code: this.failureCode ?? 'EIO',
      });
    }
    for (const entry of this.opts.prelude ?? []) this.write({ t: 0, prelude: true, ...this.redactor.traffic(entry) });
    if (this.opts.prelude && this.opts.prelude.length > 0) this.write({ t: 0, kind: 'note', note: 'prelude_end' });
    this.timer = this.opts.clock.setTimer(() => this.stop('time_up'), this.endsAt - this.startedAt);
    this.log.info({ printer: this.opts.printerId, minutes: this.opts.minutes }, 'diagnostic capture started');
  }

  get recording(): boolean {
    return this.state === 'recording';
  }

  /** Raw traffic from the printer's driver: redacted, then written. */
  traffic(entry: RawTraffic): void {
    if (!this.recording) return;
    const t = this.elapsed();
    if (entry.kind === 'link') {
      this.write({ t, ...this.redactor.traffic(entry) });
      // The capture goes on through an outage; the note is for whoever reads the file.
      if (!entry.up) {
        this.linkWentDown = true;
        this.note(t, 'printer_disconnected');
      } else if (this.linkWentDown) this.note(t, 'printer_reconnected');
      return;
    }
    const firmware = firmwareFromTraffic(entry);
    this.write({ t, ...this.redactor.traffic(entry) });
    if (firmware !== null && firmware !== this.firmware) {
      this.firmware = firmware;
      this.write({ t, kind: 'printer', model: this.model, firmware });
    }
  }

  /** An event recorded for this printer (metadata already allow-listed by the event schema). */
  event(eventType: EventType, metadata: EventMetadata): void {
    if (!this.recording) return;
    if (this.write({ t: this.elapsed(), kind: 'event', event_type: eventType, metadata })) this.eventCount++;
  }

  /** The printer told its model during the capture. */
  modelChanged(model: PrinterModel): void {
    if (!this.recording || model === this.model) return;
    this.model = model;
    this.write({ t: this.elapsed(), kind: 'printer', model, firmware: this.firmware });
  }

  /** Ends the capture (idempotent); returns its final status. */
  stop(reason: EndReason = 'stopped'): CaptureStatus {
    if (this.recording) {
      this.timer?.cancel();
      this.timer = null;
      this.endReason = reason;
      this.write({ t: this.elapsed(), kind: 'end', reason });
      // A failed end line has already finished the capture as failed.
      if (this.recording) this.finish(reason === 'time_up' || reason === 'stopped' ? 'done' : 'failed', reason);
    }
    return this.status();
  }

  status(): CaptureStatus {
    const now = this.opts.clock.now();
    return {
      printer_id: this.opts.printerId,
      state: this.state,
      started_at: new Date(this.startedAt).toISOString(),
      ends_at: new Date(this.endsAt).toISOString(),
      minutes: this.opts.minutes,
      remaining_seconds: this.recording ? Math.max(0, Math.ceil((this.endsAt - now) / 1000)) : 0,
      lines: this.lineCount,
      events: this.eventCount,
      bytes: this.bytes,
      end_reason: this.endReason,
      message: this.message,
    };
  }

  private note(t: number, note: Note): void {
    this.write({ t, kind: 'note', note });
  }

  private elapsed(): number {
    // Never backwards, even if the wall clock is set back during a capture.
    this.lastT = Math.max(this.lastT, this.opts.clock.now() - this.startedAt);
    return this.lastT;
  }

  /** Writes one whole line; on failure ends the capture and returns false. */
  private write(line: CaptureHeader | CaptureLine): boolean {
    if (this.fd === null) return false;
    const text = serializeLine(line);
    const buffer = Buffer.from(text, 'utf8');
    if (this.bytes + buffer.length > this.maxBytes) {
      this.failWrite('file_too_large', `the capture reached its size limit of ${formatBytes(this.maxBytes)}`);
      return false;
    }
    try {
      this.writeAll(this.fd, buffer);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      this.failureCode = code;
      if (DISK_FULL_CODES.has(code)) this.failWrite('disk_full', 'the disk is full');
      else if (code === 'EFBIG') this.failWrite('file_too_large', 'the file system refuses a larger file (EFBIG)');
      else this.failWrite('write_failed', `writing the capture failed (${code})`);
      return false;
    }
    this.bytes += buffer.length;
    this.lineCount++;
    return true;
  }

  /** Writes a whole buffer at the end of what is written; a short write is continued, a failure thrown. */
  private writeAll(fd: number, buffer: Buffer): void {
    let written = 0;
    while (written < buffer.length) {
      written += this.fs.writeSync(fd, buffer, written, buffer.length - written, this.bytes + written);
    }
  }

  /**
   * A write failed: cut the file back to its last whole line (that always frees space), try to add the end line,
   * and stop. What was written stays a readable capture.
   */
  private failWrite(reason: EndReason, cause: string): void {
    if (this.fd === null) return;
    const fd = this.fd;
    try {
      this.fs.ftruncateSync(fd, this.bytes);
    } catch {
      // Nothing more can be done; the reader names a cut-off last line if there is one.
    }
    this.endReason = reason;
    const state = this.state;
    this.state = 'failed'; // before the end line, so it cannot recurse into another failure
    if (state === 'recording' && this.lineCount > 0) {
      const end = Buffer.from(serializeLine({ t: this.lastT, kind: 'end', reason }), 'utf8');
      try {
        this.writeAll(fd, end);
        this.bytes += end.length;
        this.lineCount++;
      } catch {
        try {
          this.fs.ftruncateSync(fd, this.bytes);
        } catch {
          // As above.
        }
      }
    }
    this.message =
      this.lineCount > 0
        ? `${cause}: the capture stopped early; the ${this.lineCount} lines written so far are kept`
        : `${cause}: nothing could be written`;
    this.finish('failed', reason);
  }

  private finish(state: CaptureState, reason: EndReason): void {
    this.state = state;
    this.endReason = reason;
    this.timer?.cancel();
    this.timer = null;
    this.closeFile();
    const status = this.status();
    if (state === 'failed') {
      this.log.warn(
        { printer: this.opts.printerId, reason, lines: this.lineCount },
        'diagnostic capture stopped early',
      );
    } else {
      this.log.info({ printer: this.opts.printerId, reason, lines: this.lineCount }, 'diagnostic capture finished');
    }
    this.opts.onEnd?.(status);
  }

  private closeFile(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      this.fs.closeSync(fd);
    } catch {
      // Closing a file on a full disk can fail too; the data written is already in it.
    }
  }
}

export function protocolOf(printerType: PrinterType): CaptureProtocol {
  return printerType === 'bambu_lab' ? 'bambu' : 'prusalink';
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MiB` : `${bytes} bytes`;
}
