/**
 * What the daemon knows of a printer's session, kept from its raw traffic so that a capture joining a running session
 * can start with it (the capture's prelude): without it, a replay would take the first report of the capture as its
 * baseline, and a job that ends in the capture would look different from what the daemon, which knew the job, saw.
 *
 * Bambu Lab: the last `get_version` reply and the status reports since the last full one, merged field by field into
 * one full report (P1 and A1 send only changes). PrusaLink: the last answer of each path (version, status, job, storage
 * listings), every poll being a full answer. What is kept is redacted only when a capture writes it.
 */
import { isStatusCommand } from '../printers/bambu/report.js';
import type { RawTraffic } from '../printers/types.js';
import { parseObject } from './printer-facts.js';

type HttpTraffic = Extract<RawTraffic, { kind: 'http' }>;
type MqttTraffic = Extract<RawTraffic, { kind: 'mqtt' }>;

export interface PreludeKeeper {
  observe(entry: RawTraffic): void;
  /** The prelude for a capture starting now: the link state and what the printer last said. */
  prelude(): RawTraffic[];
}

export class BambuPrelude implements PreludeKeeper {
  private up = false;
  private topic: string | null = null;
  private version: string | null = null;
  /**
   * The last full report merged with every change report since, field by field, as each arrives. Kept as the driver's
   * own parse of each report (entry.json), not as text: a farm's printers send hundreds of reports a second, and text
   * kept until a capture asks outlived the young generation and filled the old one (bench/farm.ts).
   */
  private merged: Record<string, unknown> | null = null;

  observe(entry: RawTraffic): void {
    if (entry.kind === 'link') {
      this.up = entry.up;
      return;
    }
    if (entry.kind !== 'mqtt') return;
    this.topic = entry.topic;
    if (entry.payload.includes('"get_version"')) {
      this.version = entry.payload;
      return;
    }
    const print = statusReportOf(entry);
    if (!print) return;
    // A full report replaces everything before it; the merged object is ours, the reports' values are shared.
    if (print.msg === 0 || this.merged === null) this.merged = { ...print };
    else Object.assign(this.merged, print);
  }

  prelude(): RawTraffic[] {
    const out: RawTraffic[] = [];
    if (this.up) out.push({ kind: 'link', up: true });
    if (!this.topic) return out;
    if (this.version) out.push({ kind: 'mqtt', topic: this.topic, payload: this.version });
    if (this.merged) {
      const print = { ...this.merged, command: 'push_status', msg: 0 };
      out.push({ kind: 'mqtt', topic: this.topic, payload: JSON.stringify({ print }) });
    }
    return out;
  }
}

/** The `print` object of a status report (acknowledgements carry `print` too), from the driver's parse if it made one. */
function statusReportOf(entry: MqttTraffic): Record<string, unknown> | null {
  const body = 'json' in entry ? entry.json : parseObject(entry.payload);
  if (typeof body !== 'object' || body === null) return null;
  const print = (body as { print?: unknown }).print;
  if (typeof print !== 'object' || print === null || Array.isArray(print)) return null;
  return isStatusCommand((print as { command?: unknown }).command) ? (print as Record<string, unknown>) : null;
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
