/**
 * A PrusaLink printer's state machine for the simulator: jobs, states, storages, transfers, reboots and power panics
 * on simulated time (`speed` × the wall clock, moved on lazily whenever something asks). No HTTP and no wire format
 * here: wire.ts renders what this holds the way Buddy firmware or Prusa-Link would, server.ts serves it.
 *
 * Behaviour follows the firmware (issue 12): job ids are kept across reboots (Buddy reserves them in EEPROM,
 * marlin_server.cpp; Prusa-Link writes them to the printer's EEPROM, job.py), a reboot or a power cut mid-job loses
 * the job without any ERROR (the printer stops answering and comes back IDLE), power-panic recovery comes back with
 * the same job id (BUSY, then ATTENTION until the user resumes), ATTENTION can show without a job (a warning dialog on
 * Buddy, a fan error on Prusa-Link), uploads run as transfers whose file is listed read-only until complete.
 */

export type PrusaLinkFlavour = 'buddy' | 'rpi';
export type PrusaLinkSimModel =
  | 'MK4'
  | 'MK4S'
  | 'MK3.9'
  | 'MK3.9S'
  | 'MK3.5'
  | 'MK3.5S'
  | 'MINI'
  | 'XL'
  | 'CORE One'
  | 'CORE One L'
  | 'MK3S';
export type PrinterStateWord = 'IDLE' | 'BUSY' | 'PRINTING' | 'PAUSED' | 'ATTENTION' | 'FINISHED' | 'STOPPED' | 'ERROR';

export interface SimFile {
  /** Buddy: the 8.3 short name (what listings and job `name` carry); Prusa-Link: the long name. */
  name: string;
  display_name: string;
  size: number;
  m_timestamp: number;
  /** Still being transferred: Buddy lists it read-only without refs.download; Prusa-Link hides it (`.name.part`). */
  partial: boolean;
}

export interface SimFolder {
  /** Short (Buddy) or long name; '' for a storage root. */
  name: string;
  display_name: string;
  m_timestamp: number;
  files: SimFile[];
  folders: SimFolder[];
}

export interface SimStorage {
  /** `usb`, `local`, `sdcard`. */
  name: string;
  /** Prusa-Link's display name of the storage (`PrusaLink gcodes`, `SD Card`); Buddy: `usb`. */
  display: string;
  readOnly: boolean;
  /** A USB stick is in (Buddy); always true on Prusa-Link. */
  available: boolean;
  root: SimFolder;
}

export interface SimJob {
  id: number;
  storage: SimStorage;
  /** Folder path segments below the storage root (short names). */
  folder: string[];
  file: SimFile;
  durationS: number;
  printedS: number;
}

export interface SimTransfer {
  id: number;
  type: 'FROM_CLIENT' | 'FROM_CONNECT';
  storage: SimStorage;
  folder: string[];
  file: SimFile;
  size: number;
  transferred: number;
  /** Simulated seconds since it started. */
  elapsedS: number;
  durationS: number;
  toPrint: boolean;
  printS: number;
  /** Abort when this share (0..1) has arrived. */
  abortAt: number | null;
}

export interface StartJobOptions {
  fileName?: string;
  sizeBytes?: number;
  /** Simulated print time in seconds (1800). */
  durationS?: number;
  storage?: string;
  /** A subfolder (display names), e.g. ['Parts']. */
  folder?: string[];
}

export interface UploadOptions {
  name: string;
  sizeBytes?: number;
  /** Simulated seconds the transfer takes (30). */
  durationS?: number;
  folder?: string[];
  /** Print-After-Upload: start printing it once complete. */
  print?: boolean;
  /** Simulated print time of that job (1800). */
  printS?: number;
  /** Abort the transfer when this share (0..1) has arrived. */
  abortAt?: number;
  type?: 'FROM_CLIENT' | 'FROM_CONNECT';
}

export interface PrinterOptions {
  flavour: PrusaLinkFlavour;
  speed: number;
  firstJobId: number;
  autoJobs: boolean;
  /** Wall clock in ms (tests may drive it). */
  now?: () => number;
  random?: () => number;
}

type Timed = { atS: number; run: () => void };

export class SimulatedPrusaPrinter {
  readonly flavour: PrusaLinkFlavour;
  state: PrinterStateWord = 'IDLE';
  forced: string | null = null;
  job: SimJob | null = null;
  transfer: SimTransfer | null = null;
  /** ATTENTION without a job: a warning dialog on an idle Buddy, a fan error on Prusa-Link. */
  idleAttention = false;
  /** Power-panic recovery in progress: the job is kept while the printer is BUSY or waits in ATTENTION. */
  powerPanic: 'busy' | 'awaiting' | null = null;
  readonly storages: SimStorage[];
  /** Simulated seconds since start. */
  simS = 0;
  private nextJobId: number;
  private nextTransferId = 1;
  private lastTick: number;
  private idleS = 0;
  private readonly timeline: Timed[] = [];
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly opts: PrinterOptions) {
    this.flavour = opts.flavour;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.lastTick = this.now();
    this.nextJobId = opts.firstJobId;
    const folder = (name: string): SimFolder => ({
      name,
      display_name: name,
      m_timestamp: this.epoch(),
      files: [],
      folders: [],
    });
    this.storages =
      opts.flavour === 'buddy'
        ? [{ name: 'usb', display: 'usb', readOnly: false, available: true, root: folder('') }]
        : [
            { name: 'local', display: 'PrusaLink gcodes', readOnly: false, available: true, root: folder('') },
            { name: 'sdcard', display: 'SD Card', readOnly: true, available: true, root: folder('') },
          ];
  }

  get buddy(): boolean {
    return this.flavour === 'buddy';
  }

  get defaultStorage(): SimStorage {
    return this.storages[0]!;
  }

  storage(name: string | undefined): SimStorage {
    const found = name === undefined ? this.defaultStorage : this.storages.find((s) => s.name === name);
    if (!found) throw new Error(`no storage ${name}`);
    return found;
  }

  /** What printer.state says now. */
  reportedState(): string {
    if (this.forced) return this.forced;
    if (this.powerPanic === 'busy') return 'BUSY';
    if (this.powerPanic === 'awaiting') return 'ATTENTION';
    if (this.idleAttention && !this.jobRunning()) return 'ATTENTION';
    return this.state;
  }

  /** A job the API shows (Buddy printer_state.cpp has_job: PRINTING, PAUSED, ATTENTION with the print dialog). */
  hasJob(): boolean {
    if (!this.job) return false;
    if (this.powerPanic === 'awaiting') return true;
    if (this.powerPanic === 'busy') return false;
    return this.jobRunning();
  }

  private jobRunning(): boolean {
    return this.job !== null && (this.state === 'PRINTING' || this.state === 'PAUSED' || this.state === 'ATTENTION');
  }

  epoch(): number {
    return Math.floor(this.now() / 1000);
  }

  // --- time ------------------------------------------------------------------------------------------------------

  /** Runs `run` after `afterS` simulated seconds. */
  at(afterS: number, run: () => void): void {
    this.timeline.push({ atS: this.simS + afterS, run });
    this.timeline.sort((a, b) => a.atS - b.atS);
  }

  /** Move simulated time forward to now. */
  advance(): void {
    const now = this.now();
    let dt = ((now - this.lastTick) / 1000) * this.opts.speed;
    this.lastTick = now;
    while (dt > 1e-9) {
      const nextEvent = this.timeline[0];
      const step = nextEvent ? Math.min(dt, Math.max(0, nextEvent.atS - this.simS)) : dt;
      this.run(step);
      dt -= step;
      if (nextEvent && this.simS >= nextEvent.atS - 1e-9) {
        this.timeline.shift();
        nextEvent.run();
      }
    }
    while (this.timeline[0] && this.timeline[0].atS <= this.simS) this.timeline.shift()!.run();
  }

  private run(dt: number): void {
    this.simS += dt;
    this.moveTransfer(dt);
    let left = dt;
    while (left > 1e-9) {
      if (this.state === 'PRINTING' && this.job && !this.powerPanic) {
        const remaining = this.job.durationS - this.job.printedS;
        if (left < remaining) {
          this.job.printedS += left;
          left = 0;
        } else {
          this.job.printedS = this.job.durationS;
          left -= remaining;
          this.endJob('FINISHED');
        }
        if (
          this.opts.autoJobs &&
          this.job &&
          this.job.durationS === Number.POSITIVE_INFINITY &&
          this.job.printedS > 300
        ) {
          this.endJob('STOPPED');
        }
      } else if (
        this.opts.autoJobs &&
        (this.state === 'IDLE' || this.state === 'FINISHED' || this.state === 'STOPPED')
      ) {
        const pause = 120;
        if (this.idleS + left < pause) {
          this.idleS += left;
          left = 0;
        } else {
          left -= pause - this.idleS;
          const files = this.defaultStorage.root.files.filter((f) => !f.partial);
          const pick = files[Math.floor(this.random() * files.length)];
          this.startJob({ fileName: pick?.display_name, durationS: 600 + Math.floor(this.random() * 1800) });
          // Now and then a job is cancelled part-way, as people do.
          if (this.random() < 0.15 && this.job) this.job.durationS = Number.POSITIVE_INFINITY;
        }
      } else {
        left = 0;
      }
    }
  }

  private moveTransfer(dt: number): void {
    const t = this.transfer;
    if (!t) return;
    t.elapsedS += dt;
    const share = Math.min(1, t.elapsedS / Math.max(t.durationS, 1e-6));
    t.transferred = Math.floor(t.size * share);
    if (t.abortAt !== null && share >= t.abortAt) {
      this.removeFile(t.storage, t.folder, t.file);
      this.transfer = null;
      return;
    }
    if (share >= 1) {
      t.file.partial = false;
      t.file.size = t.size;
      t.file.m_timestamp = this.epoch();
      this.transfer = null;
      if (t.toPrint && !this.jobRunning()) this.startJobWith(t.storage, t.folder, t.file, t.printS);
    }
  }

  // --- jobs ------------------------------------------------------------------------------------------------------

  startJob(o: StartJobOptions = {}): number {
    this.advance();
    if (this.jobRunning() || this.powerPanic) throw new Error('a job is running');
    const storage = this.storage(o.storage);
    const folderNames = o.folder ?? [];
    const folder = this.folderAt(storage, folderNames, true)!;
    let file: SimFile | undefined;
    if (o.fileName !== undefined) {
      file =
        folder.files.find((f) => f.display_name === o.fileName && !f.partial) ??
        this.storeFile(storage, folderNames, o.fileName, o.sizeBytes ?? 500_000);
    } else {
      file = folder.files.find((f) => !f.partial) ?? this.storeFile(storage, folderNames, 'Benchy.bgcode', 500_000);
    }
    return this.startJobWith(storage, this.shortPath(storage, folderNames), file, o.durationS ?? 1800);
  }

  private startJobWith(storage: SimStorage, folder: string[], file: SimFile, durationS: number): number {
    this.job = { id: this.nextJobId++, storage, folder, file, durationS, printedS: 0 };
    this.state = 'PRINTING';
    this.idleS = 0;
    return this.job.id;
  }

  endJob(end: 'FINISHED' | 'STOPPED' | 'ERROR'): void {
    this.job = null;
    this.state = end;
    this.idleS = 0;
    this.powerPanic = null;
  }

  /** The printer restarts (reset, red-screen error, power cut without recovery): the job is lost, ids are kept. */
  reboot(): void {
    this.job = null;
    this.state = 'IDLE';
    this.forced = null;
    this.idleS = 0;
    this.powerPanic = null;
    this.idleAttention = false;
    if (this.transfer) {
      this.removeFile(this.transfer.storage, this.transfer.folder, this.transfer.file);
      this.transfer = null;
    }
  }

  /**
   * A power cut mid-job with power-panic recovery: BUSY after the restart, then ATTENTION until resumed. `busyS`
   * null: BUSY until awaitResume() (the caller times it from when the printer is back).
   */
  startPowerPanic(busyS: number | null): void {
    if (!this.job) return;
    this.powerPanic = 'busy';
    if (busyS !== null) this.at(busyS, () => this.awaitResume());
  }

  awaitResume(): void {
    if (this.powerPanic === 'busy') this.powerPanic = 'awaiting';
  }

  resume(): void {
    if (this.powerPanic) {
      this.powerPanic = null;
      this.state = 'PRINTING';
      return;
    }
    if (this.state === 'PAUSED' || this.state === 'ATTENTION') this.state = 'PRINTING';
  }

  // --- files -----------------------------------------------------------------------------------------------------

  /** The folder at display-name `path` below the storage root; created when asked to. */
  folderAt(storage: SimStorage, path: string[], create = false): SimFolder | null {
    let folder = storage.root;
    for (const part of path) {
      let next = folder.folders.find((f) => f.display_name === part || f.name === part);
      if (!next) {
        if (!create) return null;
        next = {
          name: this.buddy ? shortName(part, '', (n) => folder.folders.some((f) => f.name === n)) : part,
          display_name: part,
          m_timestamp: this.epoch(),
          files: [],
          folders: [],
        };
        folder.folders.push(next);
      }
      folder = next;
    }
    return folder;
  }

  /** Display-name path → short-name path (what Buddy's API paths use). */
  shortPath(storage: SimStorage, path: string[]): string[] {
    const out: string[] = [];
    let folder = storage.root;
    for (const part of path) {
      const next = folder.folders.find((f) => f.display_name === part || f.name === part);
      if (!next) break;
      out.push(next.name);
      folder = next;
    }
    return out;
  }

  storeFile(storage: SimStorage, path: string[], longName: string, size: number, partial = false): SimFile {
    const folder = this.folderAt(storage, path, true)!;
    const existing = folder.files.find((f) => f.display_name === longName);
    if (existing) {
      existing.size = size;
      existing.m_timestamp = this.epoch();
      existing.partial = partial;
      return existing;
    }
    const name = this.buddy
      ? shortName(longName, extOf(longName), (n) => folder.files.some((f) => f.name === n))
      : longName.replace(/[^A-Za-z0-9 ._()@+~-]/g, '_');
    const file: SimFile = { name, display_name: longName, size, m_timestamp: this.epoch(), partial };
    folder.files.push(file);
    return file;
  }

  removeFile(storage: SimStorage, path: string[], file: SimFile): void {
    const folder = this.folderAt(storage, path);
    if (folder) folder.files = folder.files.filter((f) => f !== file);
  }

  /** An upload (PUT from the slicer or the web page) or a Connect download, running on simulated time. */
  upload(o: UploadOptions): number {
    this.advance();
    if (this.transfer) throw new Error('Another transfer in progress');
    const storage = this.defaultStorage;
    const folder = o.folder ?? [];
    const size = o.sizeBytes ?? 500_000;
    const file = this.storeFile(storage, folder, o.name, 0, true);
    this.transfer = {
      id: this.nextTransferId++,
      type: o.type ?? 'FROM_CLIENT',
      storage,
      folder: this.shortPath(storage, folder),
      file,
      size,
      transferred: 0,
      elapsedS: 0,
      durationS: o.durationS ?? 30,
      toPrint: o.print ?? false,
      printS: o.printS ?? 1800,
      abortAt: o.abortAt ?? null,
    };
    return this.transfer.id;
  }

  /** Buddy: the USB stick is pulled (listed as an empty folder, `available: false`) or put in with these files. */
  setUsb(files: { name: string; sizeBytes?: number; folder?: string[] }[] | null): void {
    const usb = this.storages.find((s) => s.name === 'usb');
    if (!usb) throw new Error('only Buddy printers have a USB stick');
    usb.root = { name: '', display_name: '', m_timestamp: this.epoch(), files: [], folders: [] };
    usb.available = files !== null;
    for (const f of files ?? []) this.storeFile(usb, f.folder ?? [], f.name, f.sizeBytes ?? 500_000);
  }
}

function extOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1) : '';
}

/** A FAT 8.3 short name as Buddy lists it: `TABLET~1.BGC`. */
export function shortName(longName: string, ext: string, taken: (n: string) => boolean): string {
  const dot = ext ? longName.lastIndexOf('.') : -1;
  const stem = (dot > 0 ? longName.slice(0, dot) : longName).toUpperCase().replace(/[^A-Z0-9]/g, '');
  const e = ext
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .slice(0, 3);
  if (stem.length <= 8 && stem.length > 0 && !taken(e ? `${stem}.${e}` : stem)) return e ? `${stem}.${e}` : stem;
  for (let i = 1; ; i++) {
    const candidate = `${stem.slice(0, 8 - 1 - String(i).length) || 'FILE'}~${i}${e ? `.${e}` : ''}`;
    if (!taken(candidate)) return candidate;
  }
}
