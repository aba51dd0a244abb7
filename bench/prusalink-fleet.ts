/**
 * The daemon side of 50 PrusaLink printers polled every second (issue 4, target: under 5% of one core).
 *
 * The simulators run in a child process so that only the bridge (digest auth, HTTP, zod parsing, the job state, the
 * fleet's tracker and live state) is measured here: the drivers run in a real PrinterFleet, as in the daemon. 40 Buddy printers (RFC 2069 digest, 5 s nonces: a 401 + retry every fifth poll) and 10 Raspberry Pi
 * ones (qop=auth, MD5-sess); jobs start and end by themselves at 60× speed.
 *
 *   node --import tsx bench/prusalink-fleet.ts            # 60 s
 *   PRUSALINK_BENCH_SECONDS=10 node --import tsx bench/prusalink-fleet.ts
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { PrusaPrinterConfig } from '../src/config.js';
import { PrinterFleet } from '../src/printers/fleet.js';
import { PrusaLinkDriver } from '../src/printers/prusalink/driver.js';
import { type PrusaLinkSimulator, startPrusaLinkSimulator } from '../src/simulators/prusalink.js';
import type { BenchRow } from './types.js';
import { mb, measureProcess, round, row, sized, sleep } from './util.js';

const PRINTERS = sized(50, 3);
const RPI_PRINTERS = sized(10, 1);
const TARGET_CPU_PERCENT = 5;
const WARMUP_S = sized(3, 2);
const PASSWORD = 'bench-password';

export interface FleetBenchOptions {
  printers?: number;
  durationS?: number;
}

export async function run(opts: FleetBenchOptions = {}): Promise<BenchRow[]> {
  const printers = opts.printers ?? PRINTERS;
  const durationS = opts.durationS ?? Number(process.env['PRUSALINK_BENCH_SECONDS'] ?? sized(60, 2));
  const rssBefore = process.memoryUsage().rss;

  const { child, urls } = await spawnSimulators(printers);
  let requests = 0;
  let events = 0;
  const logger = pino({ level: 'silent' });
  // The printers as the config would hold them (the config's own parsing is not what this measures).
  const configs: PrusaPrinterConfig[] = urls.map((url, i) => ({
    name: `Prusa ${i}`,
    type: 'prusa',
    host: url,
    username: 'maker',
    password: PASSWORD,
    poll_interval_s: 1,
  }));
  const fleet = new PrinterFleet(configs, {
    emit: () => {
      events++;
    },
    logger,
    createDriver: (printer, id, deps) =>
      new PrusaLinkDriver(
        {
          id,
          name: printer.name,
          host: printer.type === 'prusa' ? printer.host : '',
          username: 'maker',
          password: PASSWORD,
          apiKey: '',
          pollIntervalS: 1,
          activePollIntervalS: 1,
          onRequest: () => {
            requests++;
          },
        },
        deps,
      ),
  });

  try {
    fleet.start();
    await sleep(WARMUP_S * 1000);

    const requestsAtStart = requests;
    const { cpuPercent, wallMs, rssPeak, rssEnd } = await measureProcess(durationS);
    const online = fleet.snapshots().filter((s) => s.online).length;
    if (online === 0) throw new Error(`none of the ${printers} simulated printers came online`);

    const requestsPerS = ((requests - requestsAtStart) / wallMs) * 1000;
    const note = `${printers} printers, 1 s polls, ${Math.round(wallMs / 1000)} s measured, ${online} online, ${events} events`;
    return [
      row(
        'prusalink_fleet_cpu',
        round(cpuPercent, 2),
        '% of one core',
        TARGET_CPU_PERCENT,
        `${note}; baseline = target`,
      ),
      row('prusalink_fleet_rss_peak', mb(rssPeak), 'MB', mb(rssBefore), 'baseline = RSS before the drivers started'),
      row('prusalink_fleet_rss_end', mb(rssEnd), 'MB', mb(rssBefore), 'baseline = RSS before the drivers started'),
      row(
        'prusalink_fleet_requests',
        round(requestsPerS, 1),
        'requests/s',
        printers,
        'baseline = one status poll per printer per second; digest retries and listings add to it',
      ),
    ];
  } finally {
    await fleet.stop();
    child.kill('SIGTERM');
  }
}

async function spawnSimulators(count: number): Promise<{ child: ChildProcess; urls: string[] }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve-simulators', String(count)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const urls = await new Promise<string[]>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`simulator process exited with ${code}`)));
    lines.once('line', (line) => resolve(JSON.parse(line) as string[]));
  });
  return { child, urls };
}

/** Child side: start the simulators, print their URLs as one JSON line, run until told to stop. */
async function serveSimulators(count: number): Promise<void> {
  const sims: PrusaLinkSimulator[] = [];
  for (let i = 0; i < count; i++) {
    sims.push(
      await startPrusaLinkSimulator({
        flavour: i < count - Math.min(RPI_PRINTERS, count) ? 'buddy' : 'rpi',
        model: (['MK4', 'MINI', 'XL', 'CORE One'] as const)[i % 4],
        password: PASSWORD,
        speed: 60,
        autoJobs: true,
      }),
    );
  }
  process.stdout.write(`${JSON.stringify(sims.map((s) => s.url))}\n`);
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
  const rows = await run();
  console.table(rows);
}
