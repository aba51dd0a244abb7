/**
 * What the daemon knows of a printer's session, kept from its raw traffic so that a capture joining a running session
 * can start with it (the capture's prelude): without it, a replay would take the first report of the capture as its
 * baseline, and a job that ends in the capture would look different from what the daemon, which knew the job, saw.
 *
 * Bambu Lab: the last `get_version` reply and the status reports since the last full one, merged field by field into
 * one full report (P1 and A1 send only changes). PrusaLink: the last answer of each path (version, status, job, storage
 * listings), every poll being a full answer. Raw text is kept as it came; it is redacted only when written.
 */
import type { RawTraffic } from '../printers/types.js';
import { parseObject } from './printer-facts.js';

/**
 * Change reports are kept as text until this many bytes pile up, then merged into the full report (one parse each,
 * spread out): bounded memory for a printer that never pushes all, and no parse at all for most of them.
 */
const MAX_PENDING_BYTES = 64 * 1024;
const FULL_REPORT = /"msg"\s*:\s*0\s*[,}]/;

type HttpTraffic = Extract<RawTraffic, { kind: 'http' }>;

export interface PreludeKeeper {
  observe(entry: RawTraffic): void;
  /** The prelude for a capture starting now: the link state and what the printer last said. */
  prelude(): RawTraffic[];
}

export class BambuPrelude implements PreludeKeeper {
  private up = false;
  private topic: string | null = null;
  private version: string | null = null;
  /** The last full report as it came, and the change reports after it (merged when they pile up). */
  private full: string | null = null;
  private merged: Record<string, unknown> | null = null;
  private pending: string[] = [];
  private pendingBytes = 0;

  observe(entry: RawTraffic): void {
    if (entry.kind === 'link') {
      this.up = entry.up;
      return;
    }
    if (entry.kind !== 'mqtt') return;
    this.topic = entry.topic;
    const text = entry.payload;
    if (text.includes('"get_version"')) {
      this.version = text;
      return;
    }
    if (!text.includes('"print"')) return;
    // A full report replaces everything before it. Told apart without parsing (the driver parses every report
    // already; a second parse of every X1 full report, 25 kB a second, would double that): kept as text, parsed only
    // when a capture starts.
    if (FULL_REPORT.test(text) && text.includes('"push_status"')) {
      this.full = text;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    this.pending.push(text);
    this.pendingBytes += text.length;
    if (this.pendingBytes >= MAX_PENDING_BYTES) this.compact();
  }

  prelude(): RawTraffic[] {
    const out: RawTraffic[] = [];
    if (this.up) out.push({ kind: 'link', up: true });
    if (!this.topic) return out;
    if (this.version) out.push({ kind: 'mqtt', topic: this.topic, payload: this.version });
    this.compact();
    if (this.merged) {
      const print = { ...this.merged, command: 'push_status', msg: 0 };
      out.push({ kind: 'mqtt', topic: this.topic, payload: JSON.stringify({ print }) });
    }
    return out;
  }

  private printOf(text: string): Record<string, unknown> | null {
    const print = parseObject(text)?.print;
    if (typeof print !== 'object' || print === null || Array.isArray(print)) return null;
    const command = (print as { command?: unknown }).command;
    // Status reports only: acknowledgements carry `print` too.
    return command === 'push_status' || command === undefined ? (print as Record<string, unknown>) : null;
  }

  private compact(): void {
    if (this.full !== null) {
      this.merged = this.printOf(this.full);
      this.full = null;
    }
    if (this.pending.length === 0) return;
    const merged = { ...(this.merged ?? {}) };
    for (const text of this.pending) {
      const print = this.printOf(text);
      if (print) Object.assign(merged, print);
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.merged = Object.keys(merged).length > 0 ? merged : null;
  }
}

/** Paths in the order a driver asks for them after (re)connecting. */
const PATH_ORDER = [/^\/api\/version/, /^\/api\/v1\/info/, /^\/api\/v1\/status/, /^\/api\/v1\/job/];

export class PrusaLinkPrelude implements PreludeKeeper {
  private up = false;
  private readonly last = new Map<string, HttpTraffic>();

  observe(entry: RawTraffic): void {
    if (entry.kind === 'link') {
      this.up = entry.up;
      return;
    }
    if (entry.kind !== 'http' || entry.status === null) return;
    // Map order is insertion order: delete first, so the last answer of each path comes last.
    this.last.delete(entry.path);
    this.last.set(entry.path, entry);
  }

  prelude(): RawTraffic[] {
    const out: RawTraffic[] = [];
    if (this.up) out.push({ kind: 'link', up: true });
    const rank = (path: string) => {
      const index = PATH_ORDER.findIndex((re) => re.test(path));
      return index < 0 ? PATH_ORDER.length : index;
    };
    const entries = [...this.last.values()].sort((a, b) => rank(a.path) - rank(b.path));
    out.push(...entries);
    return out;
  }
}
