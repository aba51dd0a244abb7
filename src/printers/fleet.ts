/**
 * The configured printers as running drivers: one driver, one tracker and one live state per printer. Updates from a
 * driver go to its tracker (usage events) and its live state (API and MQTT mirror); changed live states are pushed to
 * listeners as they happen.
 */
import type { Logger } from 'pino';
import type { PrinterConfig } from '../config.js';
import type { FleetMember } from '../stats/aggregate.js';
import type { PrinterModel } from '../stats/events.js';
import { modelFromSerial } from './bambu/model.js';
import { type Clock, systemClock } from './clock.js';
import { LivePrinter } from './live-printer.js';
import { TRACKING_POLICIES } from './policies.js';
import { PrinterTracker } from './tracker.js';
import {
  type DriverDeps,
  type EventSink,
  type PrinterDriver,
  type PrinterSnapshot,
  type PrinterUpdate,
  printerIdFromName,
  type RawTraffic,
} from './types.js';

export type DriverFactory = (printer: PrinterConfig, id: string, deps: DriverDeps) => PrinterDriver;

/** Sees every update of every printer before it is applied (diagnostic captures). */
export type UpdateObserver = (printerId: string, update: PrinterUpdate) => void;

export interface FleetDeps {
  emit: EventSink;
  logger: Logger;
  createDriver: DriverFactory;
  clock?: Clock;
}

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

interface FleetMemberState {
  config: PrinterConfig;
  live: LivePrinter;
  tracker: PrinterTracker;
  driver: PrinterDriver | null;
  /** Taps on this printer's raw traffic (diagnostic captures); empty almost always. */
  trafficTaps: Set<(entry: RawTraffic) => void>;
}

export class PrinterFleet {
  private readonly members_: FleetMemberState[] = [];
  private started = false;
  private readonly changeListeners = new Set<FleetChangeListener>();
  private readonly updateObservers = new Set<UpdateObserver>();

  constructor(
    private readonly printers: readonly PrinterConfig[],
    private readonly deps: FleetDeps,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    const clock = this.deps.clock ?? systemClock;
    const ids = assignPrinterIds(this.printers.map((p) => p.name));
    for (const [index, config] of this.printers.entries()) {
      const id = ids[index]!;
      const logger = this.deps.logger.child({ printer: id });
      const live = new LivePrinter(id, config.name, config.type, configuredModel(config), clock);
      const policy = TRACKING_POLICIES[config.type];
      const tracker = new PrinterTracker({
        printerType: config.type,
        model: () => live.currentModel,
        connection: policy.connection,
        cancelGraceMs: policy.cancelGraceMs,
        idleAfterActive: policy.idleAfterActive,
        emit: this.deps.emit,
        clock,
      });
      const member: FleetMemberState = { config, live, tracker, driver: null, trafficTaps: new Set() };
      this.members_.push(member);
      try {
        member.driver = this.deps.createDriver(config, id, {
          update: (update) => this.dispatch(member, update),
          logger,
          clock,
          traffic: (entry) => {
            for (const tap of member.trafficTaps) tap(entry);
          },
        });
        member.driver.start();
      } catch (error) {
        // One printer's bad setup must not keep the others (or the daemon) from running.
        logger.error({ err: error }, 'could not start this printer’s bridge');
        live.apply({ kind: 'problem', scope: 'notice', problem: 'bridge could not start (see the log)' });
      }
    }
  }

  private dispatch(member: FleetMemberState, update: PrinterUpdate): void {
    for (const observer of this.updateObservers) {
      try {
        observer(member.live.id, update);
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'a printer update observer failed');
      }
    }
    try {
      // Model first: events fired by this very update already name it.
      const changed = member.live.apply(update);
      member.tracker.handle(update);
      if (changed && this.changeListeners.size > 0) this.notify([member.live.snapshot()]);
    } catch (error) {
      // A bug in tracking must cost this update, never the driver's session or the daemon.
      this.deps.logger.error({ err: error, printer: member.live.id }, 'printer update failed');
    }
  }

  private notify(changed: PrinterSnapshot[]): void {
    for (const listener of this.changeListeners) {
      try {
        listener(changed);
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'a printer change listener failed');
      }
    }
  }

  /** Calls `listener` with a printer's snapshot whenever what it shows changes (last_seen alone is no change). */
  onChange(listener: FleetChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Sees every update of every printer as it arrives (diagnostic captures). */
  observeUpdates(observer: UpdateObserver): () => void {
    this.updateObservers.add(observer);
    return () => this.updateObservers.delete(observer);
  }

  /** Receives the raw traffic of one printer until the returned function is called; null for an unknown id. */
  tapTraffic(printerId: string, tap: (entry: RawTraffic) => void): (() => void) | null {
    const member = this.members_.find((m) => m.live.id === printerId);
    if (!member) return null;
    member.trafficTaps.add(tap);
    return () => member.trafficTaps.delete(tap);
  }

  async stop(): Promise<void> {
    this.changeListeners.clear();
    const members = this.members_.splice(0);
    await Promise.allSettled(members.map((member) => member.driver?.stop()));
    // A job held for its cancel code ends now, while the database is still open.
    for (const member of members) member.tracker.flush();
    this.started = false;
  }

  snapshots(): PrinterSnapshot[] {
    return this.members_.map((member) => member.live.snapshot());
  }

  /** The driver of the printer with this id (diagnostic captures). */
  driver(id: string): PrinterDriver | null {
    return this.members_.find((member) => member.live.id === id)?.driver ?? null;
  }

  /**
   * Type and best-known model of every configured printer, for the payload's fleet counts: the live model once the
   * printer told it, before that what the config alone says (a Bambu serial's prefix names the model).
   */
  members(): FleetMember[] {
    if (this.members_.length === 0) return configuredMembers(this.printers);
    return this.members_.map((member) => ({ type: member.config.type, model: member.live.currentModel }));
  }
}

/** The model known from the configuration alone, before the printer answers (PrusaLink only says it when asked). */
export function configuredModel(printer: PrinterConfig): PrinterModel {
  return printer.type === 'bambu_lab' ? modelFromSerial(printer.serial) : 'other';
}

/** Fleet members from the configuration alone, for one-shot commands that run no drivers (`preview`). */
export function configuredMembers(printers: readonly PrinterConfig[]): FleetMember[] {
  return printers.map((printer) => ({ type: printer.type, model: configuredModel(printer) }));
}
