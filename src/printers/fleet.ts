/**
 * The configured printers as running drivers: starts one driver per printer (exactly one session each), stops them
 * all, and answers what the API, the MQTT mirror and the payload need to know about them.
 */
import type { Logger } from 'pino';
import type { PrinterConfig } from '../config.js';
import type { FleetMember } from '../stats/aggregate.js';
import type { PrinterModel } from '../stats/events.js';
import { type EventSink, type PrinterDriver, type PrinterSnapshot, printerIdFromName } from './types.js';

export type DriverFactory = (
  printer: PrinterConfig,
  id: string,
  deps: { emit: EventSink; logger: Logger },
) => PrinterDriver;

export class PrinterFleet {
  private readonly drivers: PrinterDriver[] = [];
  private started = false;

  constructor(
    private readonly printers: readonly PrinterConfig[],
    private readonly deps: { emit: EventSink; logger: Logger; createDriver: DriverFactory },
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    const used = new Set<string>();
    for (const printer of this.printers) {
      let id = printerIdFromName(printer.name);
      for (let n = 2; used.has(id); n++) id = `${printerIdFromName(printer.name)}_${n}`;
      used.add(id);
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

  async stop(): Promise<void> {
    const drivers = this.drivers.splice(0);
    await Promise.allSettled(drivers.map((driver) => driver.stop()));
    this.started = false;
  }

  snapshots(): PrinterSnapshot[] {
    return this.drivers.map((driver) => driver.snapshot());
  }

  /** Type and best-known model of every configured printer, for the payload's fleet counts. */
  members(): FleetMember[] {
    const live = new Map(this.snapshots().map((s) => [s.name, s.model] as const));
    return this.printers.map((printer) => ({
      type: printer.type,
      model: live.get(printer.name) ?? ('other' satisfies PrinterModel),
    }));
  }
}
