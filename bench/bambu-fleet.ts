/**
 * The bridge side of 50 Bambu Lab printers reporting once a second (issue 3, targets: under 5% of one core, RSS under
 * 100 MB).
 *
 * The printers are simulators (each an aedes MQTT broker over TLS, as a real printer is) in a child process, so only
 * the bridge is measured here: a PrinterFleet of 50 BambuDrivers, each with its own TLS MQTT session, parsing and
 * merging every report, its updates tracked and shown live as in the daemon. The simulators send a delta every second
 * and run jobs by themselves at 60× speed.
 *
 *   node --import tsx bench/bambu-fleet.ts            # 30 s
 *   BAMBU_BENCH_SECONDS=10 node --import tsx bench/bambu-fleet.ts
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { BambuPrinterConfig } from '../src/config.js';
import { BambuDriver } from '../src/printers/bambu/driver.js';
import { PrinterFleet } from '../src/printers/fleet.js';
import type { BambuSimulator, SimulatedModel } from '../src/simulators/bambu.js';
import type { BenchRow } from './types.js';
import { bambuPrinterConfigs, mb, measureProcess, round, row, sized, sleep } from './util.js';

const PRINTERS = sized(50, 3);
const TARGET_CPU_PERCENT = 5;
const TARGET_RSS_MB = 100;
const WARMUP_S = sized(4, 2);
export const ACCESS_CODE = 'bench123';
const MODELS: { model: SimulatedModel; prefix: string }[] = [
  { model: 'X1C', prefix: '00M' },
  { model: 'P1S', prefix: '01P' },
  { model: 'P1P', prefix: '01S' },
  { model: 'A1', prefix: '039' },
  { model: 'A1 mini', prefix: '030' },
];

export interface SimInfo {
  port: number;
  serial: string;
}

export interface FleetBenchOptions {
  printers?: number;
  durationS?: number;
}

export async function run(opts: FleetBenchOptions = {}): Promise<BenchRow[]> {
  const printers = opts.printers ?? PRINTERS;
  const durationS = opts.durationS ?? Number(process.env['BAMBU_BENCH_SECONDS'] ?? sized(30, 2));
  const rssBefore = process.memoryUsage().rss;

  const { child, sims } = await spawnSimulators(printers);
  let events = 0;
  const logger = pino({ level: 'silent' });
  const drivers: BambuDriver[] = [];
  const configs: BambuPrinterConfig[] = bambuPrinterConfigs(sims, ACCESS_CODE);
  const fleet = new PrinterFleet(configs, {
    emit: () => {
      events++;
    },
    logger,
    createDriver: (printer, id, deps) => {
      if (printer.type !== 'bambu_lab') throw new Error('bambu printers only');
      const driver = new BambuDriver(
        {
          id,
          host: printer.host,
          port: printer.port,
          serial: printer.serial,
          accessCode: printer.access_code,
          tls: printer.tls,
          verifyCertificate: printer.verify_certificate,
        },
        deps,
      );
      drivers.push(driver);
      return driver;
    },
  });

  try {
    fleet.start();
    await sleep(WARMUP_S * 1000);

    const reports = () => drivers.reduce((n, d) => n + d.counters.reportsHandled, 0);
    const reportsAtStart = reports();
    const { cpuPercent, wallMs, rssPeak } = await measureProcess(durationS);
    const online = fleet.snapshots().filter((p) => p.online).length;
    if (online === 0) throw new Error(`none of the ${printers} simulated printers came online`);
    const malformed = drivers.reduce((n, d) => n + d.counters.malformedReports, 0);

    const reportsPerS = ((reports() - reportsAtStart) / wallMs) * 1000;
    const note =
      `${printers} printers over TLS, 1 report/s each, ${Math.round(wallMs / 1000)} s measured, ` +
      `${online} online, ${events} events, ${malformed} malformed`;
    return [
      row('bambu_fleet_cpu', round(cpuPercent, 2), '% of one core', TARGET_CPU_PERCENT, `${note}; baseline = target`),
      row(
        'bambu_fleet_rss_peak',
        mb(rssPeak),
        'MB',
        TARGET_RSS_MB,
        `baseline = target; RSS before start ${mb(rssBefore)} MB`,
      ),
      row(
        'bambu_fleet_rss_growth',
        mb(rssPeak - rssBefore),
        'MB',
        mb(rssBefore),
        'peak RSS minus RSS before the drivers started',
      ),
      row(
        'bambu_fleet_reports',
        round(reportsPerS, 1),
        'reports/s',
        printers,
        'baseline = one report per printer per second',
      ),
    ];
  } finally {
    await fleet.stop();
    child.kill('SIGTERM');
  }
}

export async function spawnSimulators(count: number): Promise<{ child: ChildProcess; sims: SimInfo[] }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve-simulators', String(count)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`simulators exited with ${code}`)));
  });
  return { child, sims: JSON.parse(first) as SimInfo[] };
}

async function serveSimulators(count: number): Promise<void> {
  // Imported here only, so the simulators' modules (aedes, selfsigned) do not weigh on the measured process.
  const { startBambuSimulator } = await import('../src/simulators/bambu.js');
  const sims: BambuSimulator[] = [];
  for (let i = 0; i < count; i++) {
    const { model, prefix } = MODELS[i % MODELS.length] as (typeof MODELS)[number];
    sims.push(
      await startBambuSimulator({
        serial: `${prefix}00A${String(100000000 + i)}`,
        accessCode: ACCESS_CODE,
        model,
        speed: 60,
        tickMs: 1000,
        autoJobs: true,
        jobSeconds: 1200,
        idleSeconds: 120,
      }),
    );
  }
  process.stdout.write(`${JSON.stringify(sims.map((s) => ({ port: s.port, serial: s.serial })))}\n`);
  const stop = async () => {
    await Promise.all(sims.map((s) => s.stop()));
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.stdin.once('end', stop); // the parent went away
  process.stdin.resume();
}

const serveIndex = process.argv.indexOf('--serve-simulators');
if (serveIndex >= 0) {
  await serveSimulators(Number(process.argv[serveIndex + 1] ?? PRINTERS));
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.table(await run());
}
