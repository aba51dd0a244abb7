/**
 * Which files arrived on a PrusaLink printer (file_uploaded), from response bodies alone (no HTTP here): folder
 * listings, the transfers /api/v1/status shows, and the file of each new job. File names stay in this object's memory
 * and never leave it; what leaves is a file type and, where the printer gives one, a size.
 *
 * A file counts once, when it is complete, and only with something that shows it arrived (issue 12, PrusaLink items 2
 * and 4):
 * - A transfer: /api/v1/status carries `transfer` while an upload (or a Prusa Connect download) runs; /api/v1/transfer
 *   names its file, folder and size. It counts when its file shows up complete (in a listing, or as the file a job
 *   prints), and not at all when the transfer ends and the file is not there (aborted).
 * - A listing: a complete file that was not in the last listing of a folder we had listed before. Buddy lists a file
 *   still being uploaded read-only and without `refs.download` (lib/WUI/nhttp/file_info.cpp renderStateV1: the
 *   transfer's partial file is a folder shown as a file); it counts once it is complete, and not at all if it vanishes.
 * - Not a listing of a medium just inserted: Buddy lists a missing USB stick as an empty folder (file_info.cpp
 *   FileType::Empty) and /api/v1/storage says `available: false` (basic_gets.cpp get_storage); the first listing with
 *   the stick in is a new baseline. A listing that shares no file with the last one is another stick: also a baseline.
 * - Not a job's file we never had a listing for: a file in a subfolder (Buddy: `path` "/usb/PARTS"), on Prusa-Link's
 *   read-only SD card, or on a stick just inserted was there before, as far as anything shows.
 * Paths are compared in storage terms: Buddy's job `path` is the folder (`/usb/PARTS`) of `name`, Prusa-Link's is the
 * whole path under the storages' display names (`/PrusaLink gcodes/Benchy.gcode`; prusa/link/web/main.py job_info,
 * lib/files.py storage_display_path), mapped back to `/local/Benchy.gcode` through the status's storage names.
 */
import { type FileType, fileTypeOf } from '../../stats/events.js';
import {
  listingEntrySchema,
  type PrusaLinkJob,
  type PrusaLinkListing,
  type PrusaLinkStatus,
  type PrusaLinkStatusTransfer,
  type PrusaLinkStorageEntry,
  type PrusaLinkTransfer,
  storagePathName,
} from './status.js';

export interface FileArrival {
  fileType: FileType;
  sizeBytes: number | null;
}

interface Entry {
  complete: boolean;
  displayName: string;
  size: number | null;
  mtime: number | null;
}

interface Folder {
  /** Listed since the medium was last seen inserted: files not in `entries` are new. */
  baseline: boolean;
  entries: Map<string, Entry>;
}

interface Transfer {
  displayName: string | null;
  /** Folder key (`/usb/parts`), or a storage root key when the printer names only the storage (Prusa-Link). */
  folder: string | null;
  /** The same as a request path, in the printer's own case (`/usb/PARTS`). */
  folderPath: string | null;
  size: number | null;
  ended: boolean;
  progress: number | null;
  transferred: number | null;
}

/** Where a job's file lies, in storage terms. */
export interface FileLocation {
  /** Lower-cased folder key (`/usb/parts`) and entry key (`gear~1.bgc`). */
  folder: string;
  entry: string;
  /** The folder as a request path under /api/v1/files (`/usb/PARTS`), original case. */
  folderPath: string;
  displayName: string;
  size: number | null;
}

export interface JobFileResult {
  arrivals: FileArrival[];
  /** List this folder now and pass `hint` with it: the job's file is new there unless the listing says otherwise. */
  listFolder: string | null;
  hint: FileHint | null;
}

/** What a job told about one file, for the listing that decides about it. */
export interface FileHint {
  folder: string;
  entry: string;
  size: number | null;
}

const MAX_TRANSFERS = 64;
const MAX_ENTRIES_PER_FOLDER = 5000;
const MAX_FOLDERS = 64;
const MAX_STORAGES = 16;

export class PrusaLinkFiles {
  private readonly folders = new Map<string, Folder>();
  private readonly transfers = new Map<string, Transfer>();
  private currentTransfer: string | null = null;
  /** Display name (`PrusaLink gcodes`, `SD Card`) → storage path name (`local`, `sdcard`). */
  private readonly displayRoots = new Map<string, string>();
  /** Writable storage roots as request paths (`/usb`, `/local`). */
  private writable: readonly string[] = [];
  /** Folders (request paths) to list at the next chance: a transfer into them ended. */
  private readonly wanted = new Set<string>();

  /** The storages of a status: which can receive files, and how Prusa-Link's display names map to them. */
  storages(status: PrusaLinkStatus): void {
    const storage = status.storage;
    if (storage === undefined) return;
    // Every poll carries the same storages: only a change costs more than a comparison.
    if (Array.isArray(storage)) {
      for (const entry of storage) this.storage(entry);
    } else {
      this.storage(storage);
    }
  }

  private storage(entry: PrusaLinkStorageEntry): void {
    const name = storagePathName(entry);
    if (!name) return;
    if (entry.name !== undefined && this.displayRoots.get(entry.name.toLowerCase()) !== name) {
      if (this.displayRoots.size >= MAX_STORAGES) this.displayRoots.clear();
      this.displayRoots.set(entry.name.toLowerCase(), name);
    }
    const root = `/${name}`;
    const known = this.writable.includes(root);
    if (!entry.read_only && !known) this.writable = [...this.writable, root];
    else if (entry.read_only && known) this.writable = this.writable.filter((r) => r !== root);
  }

  /** Writable storage roots as request paths (`/usb`, `/local`). */
  get roots(): readonly string[] {
    return this.writable;
  }

  /** A folder to list was asked for (a transfer into it ended). */
  get wantsListing(): boolean {
    return this.wanted.size > 0;
  }

  /**
   * The `transfer` of a status (or its absence). Returns the id of a transfer seen for the first time, whose details
   * the driver should read from /api/v1/transfer.
   */
  statusTransfer(transfer: PrusaLinkStatusTransfer | undefined): string | null {
    const id = transfer ? String(transfer.id) : null;
    if (this.currentTransfer !== null && this.currentTransfer !== id) this.transferEnded(this.currentTransfer);
    if (!transfer || id === null) {
      this.currentTransfer = null;
      return null;
    }
    this.currentTransfer = id;
    let known = this.transfers.get(id);
    const isNew = known === undefined;
    if (!known) {
      if (this.transfers.size >= MAX_TRANSFERS) this.transfers.delete(this.transfers.keys().next().value as string);
      known = {
        displayName: null,
        folder: null,
        folderPath: null,
        size: null,
        ended: false,
        progress: null,
        transferred: null,
      };
      this.transfers.set(id, known);
    }
    known.progress = transfer.progress ?? known.progress;
    known.transferred = transfer.transferred ?? transfer.data_transferred ?? known.transferred;
    return isNew ? id : null;
  }

  /** The details of a transfer from /api/v1/transfer. */
  transferDetails(id: string, details: PrusaLinkTransfer): void {
    const transfer = this.transfers.get(id);
    if (!transfer) return;
    if (details.display_name) transfer.displayName = details.display_name.toLowerCase();
    if (details.path) {
      transfer.folderPath = this.storagePath(details.path);
      transfer.folder = transfer.folderPath.toLowerCase();
    }
    if (details.size !== undefined && details.size >= 0) transfer.size = details.size;
  }

  /** Folders to list now, besides the regular listings of the roots (then forgotten). */
  takeWanted(): string[] {
    const folders = [...this.wanted];
    this.wanted.clear();
    return folders;
  }

  /** A job that was not running before: was its file uploaded for it? */
  jobFile(job: PrusaLinkJob): JobFileResult {
    const none: JobFileResult = { arrivals: [], listFolder: null, hint: null };
    const location = this.locate(job);
    if (!location) return none;
    const type = fileTypeOf(location.displayName);
    const transfer = this.matchTransfer(location.folder, location.displayName);
    if (transfer) {
      // Printed right after its transfer (the slicer's "upload and print", Print-After-Upload): one upload.
      this.resolveTransfer(transfer[0]);
      this.remember(location, true);
      return { ...none, arrivals: [{ fileType: type, sizeBytes: location.size ?? transfer[1].size }] };
    }
    const folder = this.folders.get(location.folder);
    const entry = folder?.entries.get(location.entry);
    if (entry?.complete) return none;
    if (entry && !entry.complete) {
      // Still uploading at our last listing, printed now: it completed.
      entry.complete = true;
      return { ...none, arrivals: [{ fileType: type, sizeBytes: location.size ?? entry.size }] };
    }
    if (folder?.baseline) {
      return {
        arrivals: [],
        listFolder: location.folderPath,
        hint: { folder: location.folder, entry: location.entry, size: location.size },
      };
    }
    // A folder we never listed: nothing shows this file arrived rather than was there.
    return none;
  }

  /**
   * A listing of `folderPath`. `available`: for a storage root, whether /api/v1/storage said its medium is in (null
   * when it did not say); undefined for subfolders.
   */
  listing(
    folderPath: string,
    listing: PrusaLinkListing,
    available?: boolean | null,
    hint?: FileHint | null,
  ): FileArrival[] {
    const key = this.folderKey(folderPath);
    const raw = listing.children ?? listing.files ?? [];
    const current = new Map<string, Entry>();
    for (const item of raw) {
      const parsed = listingEntrySchema.safeParse(item);
      if (!parsed.success) continue;
      const e = parsed.data;
      const kind = (e.type ?? '').toUpperCase();
      if (kind === 'FOLDER' || kind === 'DIR' || kind === 'DIRECTORY') continue;
      if (current.size >= MAX_ENTRIES_PER_FOLDER) break;
      current.set(e.name.toLowerCase(), {
        // Buddy's file still being uploaded: read-only, refs without `download` (file_info.cpp renderStateV1).
        complete: !(e.ro === true && e.refs !== undefined && e.refs.download === undefined),
        displayName: (e.display_name ?? e.name).toLowerCase(),
        size: e.size ?? null,
        mtime: e.m_timestamp ?? null,
      });
    }

    const isRoot = this.isRoot(key);
    if (isRoot && (available === false || (available !== true && current.size === 0))) {
      // No medium (or one we cannot tell from an empty one): whatever shows up next was on the stick.
      this.forgetStorage(key);
      this.abortEndedTransfers(key);
      return [];
    }

    const folder = this.folder(key);
    const arrivals: FileArrival[] = [];
    const completeBefore = [...folder.entries].filter(([, e]) => e.complete).map(([k]) => k);
    const completeNow = [...current].filter(([, e]) => e.complete).map(([k]) => k);
    const anotherMedium =
      isRoot &&
      folder.baseline &&
      completeBefore.length > 0 &&
      completeNow.length > 0 &&
      !completeNow.some((k) => folder.entries.get(k)?.complete);
    const baseline = !folder.baseline || anotherMedium;

    for (const [entryKey, entry] of current) {
      if (!entry.complete) continue;
      const before = folder.entries.get(entryKey);
      const transfer = this.matchTransfer(key, entry.displayName);
      const size = hint && hint.folder === key && hint.entry === entryKey ? (hint.size ?? entry.size) : entry.size;
      if (transfer) {
        const [id, t] = transfer;
        // An overwrite in progress still shows the old file: wait for the transfer to end or the file to change.
        const changed = !before?.complete || (before.mtime !== null && entry.mtime !== before.mtime);
        if (t.ended || changed) {
          this.resolveTransfer(id);
          arrivals.push({ fileType: fileTypeOf(entry.displayName), sizeBytes: t.size ?? size });
        }
        continue;
      }
      if (baseline) continue;
      if (!before?.complete) arrivals.push({ fileType: fileTypeOf(entry.displayName), sizeBytes: size });
    }

    this.abortEndedTransfers(key);
    folder.entries = current;
    folder.baseline = true;
    return arrivals;
  }

  /** Every folder of the storage whose root is `rootKey` is forgotten: its medium is out. */
  private forgetStorage(rootKey: string): void {
    for (const key of [...this.folders.keys()]) {
      if (key === rootKey || key.startsWith(`${rootKey}/`)) this.folders.delete(key);
    }
  }

  /**
   * Transfers into this folder that ended without their file in it: aborted, never counted. One the printer did not
   * name (its details could not be read) ends with the next root listing, which counts its file as a new one if it
   * is there.
   */
  private abortEndedTransfers(folderKey: string): void {
    for (const [id, t] of this.transfers) {
      if (!t.ended) continue;
      if (t.folder === folderKey || (t.folder === null && this.isRoot(folderKey))) this.transfers.delete(id);
    }
  }

  private transferEnded(id: string): void {
    const transfer = this.transfers.get(id);
    if (!transfer) return;
    transfer.ended = true;
    // List where it went (or every root, when the printer did not say) at the next chance.
    const folders = transfer.folderPath ? [transfer.folderPath] : this.writable;
    for (const folder of folders) this.wanted.add(folder);
  }

  private resolveTransfer(id: string): void {
    this.transfers.delete(id);
    if (this.currentTransfer === id) this.currentTransfer = null;
  }

  /** A transfer whose file this is: same display name, same folder (or only the same storage, on Prusa-Link). */
  private matchTransfer(folderKey: string, displayName: string): [string, Transfer] | null {
    const name = displayName.toLowerCase();
    for (const entry of this.transfers) {
      const t = entry[1];
      if (t.displayName !== name) continue;
      if (t.folder === null || t.folder === folderKey) return entry;
      if (this.isRoot(t.folder) && folderKey.startsWith(`${t.folder}/`)) return entry;
    }
    return null;
  }

  private remember(location: FileLocation, complete: boolean): void {
    const folder = this.folders.get(location.folder);
    if (!folder) return;
    folder.entries.set(location.entry, {
      complete,
      displayName: location.displayName.toLowerCase(),
      size: location.size,
      mtime: null,
    });
  }

  /** Where a job's file lies, in storage terms; null when the job names no file. */
  locate(job: PrusaLinkJob): FileLocation | null {
    const file = job.file;
    if (!file?.name) return null;
    const name = file.name;
    let path = (file.path ?? '').replace(/\/+$/, '');
    // Prusa-Link: `path` is the whole path, file name included (main.py job_info); Buddy: the folder.
    const whole =
      file.display_path !== undefined || path.toLowerCase().endsWith(`/${name.toLowerCase()}`) || path === '';
    if (!whole || path === '') path = `${path}/${name}`;
    const segments = path.split('/').filter(Boolean);
    if (segments.length < 2) return null;
    const root = this.displayRoots.get(segments[0]!.toLowerCase());
    if (root) segments[0] = root;
    const base = segments.pop()!;
    const folderPath = `/${segments.join('/')}`;
    return {
      folder: folderPath.toLowerCase(),
      entry: base.toLowerCase(),
      folderPath,
      displayName: file.display_name ?? name,
      size: file.size !== undefined && file.size >= 0 ? file.size : null,
    };
  }

  /** `/usb/PARTS/` → `/usb/parts`. */
  private folderKey(path: string): string {
    return this.storagePath(path).toLowerCase();
  }

  /** `/usb/PARTS/` → `/usb/PARTS`; Prusa-Link's display roots (`/PrusaLink gcodes/x`) mapped to storages (`/local/x`). */
  private storagePath(path: string): string {
    const segments = path.split('/').filter(Boolean);
    if (segments.length > 0) {
      const root = this.displayRoots.get(segments[0]!.toLowerCase());
      if (root) segments[0] = root;
    }
    return `/${segments.join('/')}`;
  }

  private isRoot(folderKey: string): boolean {
    return folderKey.split('/').filter(Boolean).length === 1;
  }

  private folder(key: string): Folder {
    let folder = this.folders.get(key);
    if (!folder) {
      if (this.folders.size >= MAX_FOLDERS) this.folders.delete(this.folders.keys().next().value as string);
      folder = { baseline: false, entries: new Map() };
      this.folders.set(key, folder);
    }
    return folder;
  }
}
