/**
 * The configured printers as running drivers: starts one driver per printer (exactly one session each), stops them
 * all, and answers what the API, the MQTT mirror and the payload need to know about them.
 */
import type { Logger } from 'pino';
import type { PrinterConfig } from '../config.js';
import type { FleetMember } from '../stats/aggregate.js';
import type { PrinterModel } from '../stats/events.js';
import { modelFromSerial } from './bambu/model.js';
import { type EventSink, type PrinterDriver, type PrinterSnapshot, printerIdFromName } from './types.js';

export type DriverFactory = (
  printer: PrinterConfig,
  id: string,
  deps: { emit: EventSink; logger: Logger },
) => PrinterDriver;

/**
 * The id of each configured printer, in config order: the slug of its name, `_2`, `_3`... when slugs collide. The
 * MQTT mirror uses the same ids to remove discovery of printers that left the config, so both must agree.
 */
export function assignPrinterIds(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((name) => {
    const slug = printerIdFromName(name);
    let id = slug;
    for (let n = 2; used.has(id); n++) id = `${slug}_${n}`;
    used.add(id);
    return id;
  });
}

export type FleetChangeListener = (changed: PrinterSnapshot[]) => void;

/** Drivers have no change callback; the fleet compares snapshots this often while someone listens. */
const CHANGE_POLL_MS = 1000;

export class PrinterFleet {
  private readonly drivers: PrinterDriver[] = [];
  private started = false;
  private readonly changeListeners = new Set<FleetChangeListener>();
  private readonly lastSeenKeys = new Map<string, string>();
  private changeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly printers: readonly PrinterConfig[],
    private readonly deps: { emit: EventSink; logger: Logger; createDriver: DriverFactory },
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    const ids = assignPrinterIds(this.printers.map((p) => p.name));
    for (const [index, printer] of this.printers.entries()) {
      const id = ids[index]!;
      const logger = this.deps.logger.child({
        component: printer.type === 'bambu_lab' ? 'bambu' : 'prusalink',
        printer: id,
      });
      try {
        const driver = this.deps.createDriver(printer, id, { emit: this.deps.emit, logger });
        this.drivers.push(driver);
        driver.start();
      } catch (error) {
        // One printer's bad setup must not keep the others (or the daemon) from running.
        logger.error({ err: error }, 'could not start this printer’s bridge');
      }
    }
  }

  /**
   * Calls `listener` with the snapshots that changed since the last check (polled every second). `last_seen` alone
   * is not a change: a Bambu printer reports every second and would otherwise always be "changed".
   */
  onChange(listener: FleetChangeListener, pollMs = CHANGE_POLL_MS): () => void {
    this.changeListeners.add(listener);
    if (!this.changeTimer) {
      for (const snapshot of this.snapshots()) this.lastSeenKeys.set(snapshot.id, changeKey(snapshot));
      this.changeTimer = setInterval(() => this.checkChanges(), pollMs);
      this.changeTimer.unref();
    }
    return () => {
      this.changeListeners.delete(listener);
      if (this.changeListeners.size === 0 && this.changeTimer) {
        clearInterval(this.changeTimer);
        this.changeTimer = null;
      }
    };
  }

  private checkChanges(): void {
    const changed = this.snapshots().filter((snapshot) => {
      const key = changeKey(snapshot);
      if (this.lastSeenKeys.get(snapshot.id) === key) return false;
      this.lastSeenKeys.set(snapshot.id, key);
      return true;
    });
    if (changed.length === 0) return;
    for (const listener of this.changeListeners) {
      try {
        listener(changed);
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'a printer change listener failed');
      }
    }
  }

  async stop(): Promise<void> {
    if (this.changeTimer) clearInterval(this.changeTimer);
    this.changeTimer = null;
    this.changeListeners.clear();
    const drivers = this.drivers.splice(0);
    await Promise.allSettled(drivers.map((driver) => driver.stop()));
    this.started = false;
  }

  snapshots(): PrinterSnapshot[] {
    return this.drivers.map((driver) => driver.snapshot());
  }

  /**
   * Type and best-known model of every configured printer, for the payload's fleet counts: the live model once the
   * printer told it, before that what the config alone says (a Bambu serial's prefix names the model).
   */
  members(): FleetMember[] {
    const live = new Map(this.snapshots().map((s) => [s.name, s.model] as const));
    return this.printers.map((printer) => {
      const model = live.get(printer.name);
      return { type: printer.type, model: model && model !== 'other' ? model : configuredModel(printer) };
    });
  }
}

function changeKey(snapshot: PrinterSnapshot): string {
  const { last_seen: _lastSeen, ...rest } = snapshot;
  return JSON.stringify(rest);
}

/** The model known from the configuration alone, before the printer answers (PrusaLink only says it when asked). */
export function configuredModel(printer: PrinterConfig): PrinterModel {
  return printer.type === 'bambu_lab' ? modelFromSerial(printer.serial) : 'other';
}

/** Fleet members from the configuration alone, for one-shot commands that run no drivers (`preview`). */
export function configuredMembers(printers: readonly PrinterConfig[]): FleetMember[] {
  return printers.map((printer) => ({ type: printer.type, model: configuredModel(printer) }));
}
