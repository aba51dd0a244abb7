/**
 * A simulated PrusaLink printer (see prusalink/server.ts): its state machine (prusalink/printer.ts), its wire format
 * as Buddy firmware and Prusa-Link render it (prusalink/wire.ts), its HTTP server with digest auth
 * (prusalink/server.ts) and the sequences as scenarios (prusalink/scenarios.ts).
 */
export {
  type PrinterStateWord,
  type PrusaLinkFlavour,
  type PrusaLinkSimModel,
  type SimFile,
  SimulatedPrusaPrinter,
  type StartJobOptions,
  type UploadOptions,
} from './prusalink/printer.js';
export {
  runScenario,
  SCENARIO_NAMES,
  SCENARIOS,
  type Scenario,
  type ScenarioExpectation,
  type ScenarioName,
} from './prusalink/scenarios.js';
export {
  type PrusaLinkFault,
  type PrusaLinkSimulator,
  type PrusaLinkSimulatorOptions,
  type PrusaLinkSimulatorStats,
  startPrusaLinkSimulator,
} from './prusalink/server.js';
