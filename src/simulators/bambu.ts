/**
 * A simulated Bambu Lab printer (see bambu/server.ts): its state machine (bambu/printer.ts), its wire format
 * (bambu/wire.ts), its MQTT server (bambu/server.ts) and the sequences as scenarios (bambu/scenarios.ts).
 */
export {
  CANCEL_CODE_DELAY_S,
  CANCEL_MC_ERROR_CODE,
  CANCEL_PRINT_ERROR,
  FAILURE_HMS,
  type HmsEntry,
  type PrinterCounts,
  type SimulatedModel,
  SimulatedPrinter,
} from './bambu/printer.js';
export {
  runScenario,
  SCENARIO_NAMES,
  SCENARIOS,
  type Scenario,
  type ScenarioExpectation,
  type ScenarioName,
} from './bambu/scenarios.js';
export {
  type BambuSimulator,
  type BambuSimulatorOptions,
  type BambuSimulatorStats,
  type StartJobOptions,
  simulatorCertificate,
  startBambuSimulator,
} from './bambu/server.js';
export { studioProjectFile } from './bambu/wire.js';
