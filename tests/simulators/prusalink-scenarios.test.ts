/**
 * The PrusaLink sequences as the simulator plays them (src/simulators/prusalink/scenarios.ts), each run
 * end to end: simulator over real HTTP with digest auth → the real driver → a real fleet and tracker. The events
 * recorded must be the ones the scenario says a correct bridge records.
 */
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { PrinterFleet } from '../../src/printers/fleet.js';
import { PrusaLinkDriver } from '../../src/printers/prusalink/driver.js';
import {
  type PrusaLinkFlavour,
  type PrusaLinkSimulator,
  SCENARIO_NAMES,
  SCENARIOS,
  type ScenarioName,
  startPrusaLinkSimulator,
} from '../../src/simulators/prusalink.js';
import type { EventMetadata, EventType } from '../../src/stats/events.js';

const SPEED = 200;

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function bridge(sim: PrusaLinkSimulator): Promise<{ type: EventType; metadata: EventMetadata }[]> {
  const events: { type: EventType; metadata: EventMetadata }[] = [];
  const config = parseConfig({
    printers: [{ name: 'Scenario', type: 'prusa', host: sim.url, password: 'pw', poll_interval_s: 1 }],
  });
  const fleet = new PrinterFleet(config.printers, {
    emit: (type, metadata) => events.push({ type, metadata: metadata as EventMetadata }),
    logger: pino({ level: 'silent' }),
    // Poll about every 4 simulated seconds; list the storage about every 40.
    createDriver: (printer, id, deps) =>
      new PrusaLinkDriver(
        {
          id,
          name: printer.name,
          host: sim.url,
          username: 'maker',
          password: 'pw',
          apiKey: '',
          pollIntervalS: 0.02,
          activePollIntervalS: 0.02,
          filesIntervalS: 0.2,
          timeoutMs: 300,
          maxBackoffS: 0.05,
        },
        deps,
      ),
  });
  fleet.start();
  // Per test (they run concurrently): stopped before the simulator, which was registered first.
  onTestFinished(() => fleet.stop());
  await waitFor('connected and listed', () =>
    Object.keys(sim.stats().byPath).some((p) => p.startsWith('/api/v1/files/')),
  );
  return events;
}

const cases = SCENARIO_NAMES.flatMap((name) =>
  SCENARIOS[name].flavours.map((flavour) => [name, flavour] as [ScenarioName, PrusaLinkFlavour]),
);

describe.concurrent('PrusaLink scenarios end to end', () => {
  it.each(cases)(
    '%s (%s)',
    async (name, flavour) => {
      const sim = await startPrusaLinkSimulator({ flavour, password: 'pw', speed: SPEED });
      onTestFinished(() => sim.stop());
      const events = await bridge(sim);
      await sim.runScenario(name);
      await new Promise((r) => setTimeout(r, 300)); // the last polls
      const of = (type: EventType) => events.filter((e) => e.type === type);
      const expected = SCENARIOS[name].expected;
      const summary = {
        job_created: of('job_created').length,
        job_completed: of('job_completed').length,
        job_failed: of('job_failed').map((e) => e.metadata['failure_type']),
        file_uploaded: of('file_uploaded').length,
        error_occurred: of('error_occurred').map((e) => e.metadata['error_type']),
      };
      expect(summary, JSON.stringify(events.map((e) => e.type))).toEqual(expected);
    },
    40_000,
  );
});
