/**
 * End to end: each scripted sequence of issue 12 run by the simulator (TLS MQTT, the model's own cancel order), seen
 * by the real driver, tracked by a real PrinterTracker into SQLite: the events recorded must be the ones the scenario
 * says a correct bridge records.
 */
import { describe, expect, it } from 'vitest';
import { SCENARIOS, type ScenarioName, type SimulatedModel } from '../../../src/simulators/bambu.js';
import { liveRig, simulator, sleep, waitFor } from './helpers.js';

const RUNS: [ScenarioName, SimulatedModel, string][] = [
  ['cancel', 'P2S', '22E00A000000001'],
  ['cancel', 'A1', '03900A000000001'],
  ['slicer-prints', 'H2S', '09300A000000001'],
  ['outage-print-ends', 'P1S', '01P00A000000001'],
  ['ignores-requests', 'P1P', '01S00C000000001'],
  ['hms-stays', 'X2D', '20P00A000000001'],
  ['power-cut-init', 'A2L', '26A00A000000001'],
  ['system-calibration', 'P1S', '01P00A000000002'],
];

describe('the simulator’s scenarios through the driver', () => {
  it.each(RUNS)('%s on a simulated %s', async (name, model, serial) => {
    const scenario = SCENARIOS[name];
    const sim = await simulator({ model, serial, speed: 400, tickMs: 25 });
    const d = liveRig(sim, { timings: { requestReplyMs: 800 } });
    d.driver.start();
    await waitFor(() => d.of('printer_connected').length === 1 && d.snapshot().state !== null, 8000, 'baseline');
    await sim.runScenario(name);
    const expected = scenario.expected;
    const jobEvents = expected.job_created + expected.job_completed + expected.job_failed.length;
    await waitFor(
      () => d.events.filter((e) => e.type.startsWith('job_')).length >= jobEvents,
      8000,
      `${jobEvents} job events`,
    );
    // Anything more (a second end, a stray upload) would come within the cancel grace.
    await sleep(600);
    expect({
      job_created: d.of('job_created').length,
      job_completed: d.of('job_completed').length,
      job_failed: d.of('job_failed').map((e) => e.metadata.failure_type),
      file_uploaded: d.of('file_uploaded').length,
      error_occurred: d.of('error_occurred').map((e) => e.metadata.error_type),
    }).toEqual(expected);
    for (const e of d.events) if ('printer_model' in e.metadata) expect(e.metadata.printer_model).toBe(model);
    if (name === 'ignores-requests') {
      expect(d.snapshot().problem).toMatch(/^printer ignores pushall and get_version/);
    }
    if (name === 'outage-print-ends' || name === 'power-cut-init') {
      expect(d.of('printer_disconnected')).toHaveLength(1);
      expect(d.of('printer_connected')).toHaveLength(2);
      // A full report asked for on the reconnect too.
      expect(sim.stats.pushall).toBe(2);
    }
  });
});
