/**
 * Bambu Lab report handling (issue 3 "Numbers", target: at least 0.3× the rate of plain JSON.parse).
 *
 * A realistic mix of the fixture payloads as MQTT buffers: X1C full reports (the X1 sends the whole object every
 * time), P1P and A1 full reports, the real deltas, and progress deltas such as a P1 sends every second. Each buffer
 * goes through BambuDriver.handleMessage (topic check, size check, the raw-traffic tap, JSON.parse, zod, field merge,
 * JobObservation) and its PrinterUpdates through the real PrinterTracker and LivePrinter, as the fleet wires them; the
 * baseline is `JSON.parse(buffer.toString())` of the same buffers in the same run.
 *
 *   node --import tsx bench/bambu-report.ts
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { BambuDriver } from '../src/printers/bambu/driver.js';
import { modelFromSerial } from '../src/printers/bambu/model.js';
import { systemClock } from '../src/printers/clock.js';
import { LivePrinter } from '../src/printers/live-printer.js';
import { TRACKING_POLICIES } from '../src/printers/policies.js';
import { PrinterTracker } from '../src/printers/tracker.js';
import type { RawTraffic } from '../src/printers/types.js';
import type { BenchRow } from './types.js';
import { sized } from './util.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository's own copy of the shared fixtures, so that a clean clone has them. */
const FIXTURES = join(here, '..', 'tests', 'fixtures', 'bambu');
const SERIAL = '00M09A350100123';
const TOPIC = `device/${SERIAL}/report`;
const TARGET_RATIO = 0.3;
/** Many short rounds, each timing both sides back to back: the ratio of each pair is taken under the same load. */
const ROUNDS = sized(21, 3);
const MIN_ROUND_MS = sized(150, 50);

type Json = Record<string, unknown>;

function fixturePrint(file: string): Json {
  const body = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Json;
  return ((body.pushall as Json | undefined)?.print ?? body.push_all) as Json;
}

/** One cycle of payloads, in the proportions a small mixed fleet produces them. */
function payloadMix(): Buffer[] {
  const x1 = fixturePrint('ha-bambulab__2AMS1-1AMS2-1AMSHT.json');
  const p1Finish = fixturePrint('ha-bambulab__MOCK-P1PNOAMS.json');
  const p1Failed = fixturePrint('ha-bambulab__P1P.json');
  const a1 = fixturePrint('ha-bambulab__MOCK-A1.json');
  const realDeltas = readFileSync(join(FIXTURES, 'real-captures__deltas.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const mix: string[] = [];
  let seq = 1;
  const full = (print: Json, over: Json) =>
    JSON.stringify({ print: { ...print, ...over, msg: 0, sequence_id: String(seq++) } });
  const progress = (pct: number) =>
    JSON.stringify({
      print: {
        mc_percent: pct,
        mc_remaining_time: 100 - pct,
        layer_num: pct * 2,
        nozzle_temper: 219.5 + (pct % 3) * 0.25,
        bed_temper: 55 + (pct % 2) * 0.03125,
        wifi_signal: `-${40 + (pct % 7)}dBm`,
        command: 'push_status',
        msg: 1,
        sequence_id: String(seq++),
      },
    });
  // A job on the X1 (full reports), then on a P1 (deltas), with the state walking through a whole job.
  mix.push(full(x1, { gcode_state: 'IDLE' }));
  mix.push(full(x1, { gcode_state: 'PREPARE', task_id: '800000001', gcode_file_prepare_percent: '50' }));
  for (let pct = 0; pct <= 100; pct += 10)
    mix.push(full(x1, { gcode_state: 'RUNNING', task_id: '800000001', mc_percent: pct }));
  mix.push(full(x1, { gcode_state: 'FINISH', task_id: '800000001' }));
  mix.push(full(p1Finish, {}), full(a1, {}), full(p1Failed, {}));
  mix.push(JSON.stringify({ print: { gcode_state: 'RUNNING', task_id: '800000002', command: 'push_status', msg: 1 } }));
  for (let pct = 0; pct <= 100; pct += 2) mix.push(progress(pct));
  for (let i = 0; i < 5; i++) mix.push(...realDeltas);
  mix.push(JSON.stringify({ print: { gcode_state: 'FINISH', command: 'push_status', msg: 1 } }));
  return mix.map((s) => Buffer.from(s));
}

function measure(fn: () => void): number {
  fn(); // warm the path
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < MIN_ROUND_MS) {
    fn();
    iterations++;
    elapsed = performance.now() - start;
  }
  return iterations / (elapsed / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

export async function run(): Promise<BenchRow[]> {
  const buffers = payloadMix();
  const bytes = buffers.reduce((n, b) => n + b.length, 0);
  let events = 0;
  let taps = 0;
  // One printer as PrinterFleet wires it: the driver's updates go to its live state and its tracker.
  const clock = systemClock;
  const live = new LivePrinter('bench_x1c', 'Bench X1C', 'bambu_lab', modelFromSerial(SERIAL), clock);
  const policy = TRACKING_POLICIES.bambu_lab;
  const tracker = new PrinterTracker({
    printerType: 'bambu_lab',
    model: () => live.currentModel,
    connection: policy.connection,
    cancelGraceMs: policy.cancelGraceMs,
    idleAfterActive: policy.idleAfterActive,
    emit: () => {
      events++;
    },
    clock,
  });
  const trafficTaps = new Set<(entry: RawTraffic) => void>();
  const driver = new BambuDriver(
    {
      id: 'bench_x1c',
      host: '127.0.0.1',
      port: 8883,
      serial: SERIAL,
      accessCode: 'bench',
      tls: true,
      verifyCertificate: false,
    },
    {
      update: (update) => {
        live.apply(update);
        tracker.handle(update);
      },
      logger: pino({ level: 'silent' }),
      clock,
      // The fleet always passes a tap (empty unless a capture runs).
      traffic: (entry) => {
        taps++;
        for (const tap of trafficTaps) tap(entry);
      },
    },
  );
  let sink = 0;
  const handle = () => {
    for (const b of buffers) driver.handleMessage(TOPIC, b);
  };
  const baseline = () => {
    for (const b of buffers) sink += (JSON.parse(b.toString('utf8')) as Json).print === undefined ? 0 : 1;
  };

  const handled: number[] = [];
  const parsed: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which side goes first, so a load change within a round favours neither.
    let h: number;
    let p: number;
    if (round % 2 === 0) {
      h = measure(handle);
      p = measure(baseline);
    } else {
      p = measure(baseline);
      h = measure(handle);
    }
    handled.push(h * buffers.length);
    parsed.push(p * buffers.length);
    ratios.push(h / p);
  }
  const handledRate = median(handled);
  const parseRate = median(parsed);
  // The median of the paired ratios: on a busy machine the two medians above can come from different moments.
  const ratio = median(ratios);
  if (driver.counters.malformedReports > 0 || sink === 0 || taps === 0) {
    throw new Error('the benchmark mix did not parse');
  }
  const note =
    `${buffers.length} payloads per cycle (${Math.round(bytes / 1024)} kB: X1C/P1P/A1 full reports, real and ` +
    `progress deltas), median of ${ROUNDS} paired rounds; ${events} events fired; target ratio >= ${TARGET_RATIO}`;
  return [
    {
      name: 'bambu_report_handling',
      value: Math.round(handledRate),
      unit: 'reports/s',
      baseline: Math.round(parseRate),
      ratio: Math.round(ratio * 1000) / 1000,
      note: `${note}; baseline = JSON.parse of the same buffers`,
    },
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.table(await run());
}
