/**
 * The printers of the farm benchmark (bench/farm.ts), each kind in child processes of its own so that the daemon's
 * CPU and RSS are its own. Started by farm.ts; talks JSON lines (bench/farm-ipc.ts).
 *
 *   --bambu '<BambuFarmOptions>'         Bambu Lab simulators: TLS MQTT, a report a second, jobs by themselves on a
 *                                        fast clock (10% fail, 10% are cancelled: the simulator's autoJobs)
 *   --prusalink '<PrusaFarmOptions>'     PrusaLink simulators (Buddy and Raspberry Pi flavours, digest auth) whose
 *                                        jobs this process starts, and stops or fails now and then, through the
 *                                        simulator's own controls; they finish by themselves
 *   --broker                             an aedes MQTT broker for the mirror, when mosquitto is not installed
 *
 * Commands: `jobs` {on} starts or stops new jobs (running ones go on), `counts` returns the jobs as the simulators
 * ran them and what they served, `cancel` ends every running job now (a drain that took too long).
 */
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BambuSimulator, SimulatedModel } from '../src/simulators/bambu.js';
import type { PrusaLinkSimModel, PrusaLinkSimulator } from '../src/simulators/prusalink.js';
import { serveCommands } from './farm-ipc.js';

/** Jobs as the simulators ran them, since start. */
export interface FarmJobCounts {
  started: number;
  completed: number;
  /** Ended by a fault: Bambu FAILED with an HMS entry, PrusaLink ERROR. */
  failed: number;
  /** Cancelled by the user: Bambu's cancel sequence, PrusaLink STOPPED. */
  cancelled: number;
  /** Jobs running now. */
  running: number;
}

export interface FarmCounts {
  jobs: FarmJobCounts;
  /** Bambu: reports published; PrusaLink: HTTP requests answered (401 challenges included). */
  served: number;
  /** Bambu: MQTT clients connected now, summed over the printers. */
  clients: number;
  /** Bambu calibration runs (not jobs; none with random auto jobs). */
  systemRuns: number;
  /** PrusaLink jobs that ended in a state this process did not ask for (none expected). */
  unexpectedEnds: number;
}

export interface BambuFarmOptions {
  count: number;
  /** Numbering of the serials, so that several processes give distinct ones. */
  first: number;
  accessCode: string;
  /** Simulated seconds per real second. */
  speed: number;
  /** Simulated job and pause lengths, spread evenly over [min, max] across the printers. */
  jobSeconds: [number, number];
  idleSeconds: [number, number];
}

export interface BambuPrinterInfo {
  port: number;
  serial: string;
}

export interface PrusaFarmOptions {
  count: number;
  password: string;
  /** Real seconds. */
  jobSeconds: [number, number];
  idleSeconds: [number, number];
  /** Shares of jobs stopped by the user (STOPPED) and ended by a fault (ERROR) part-way. */
  stopShare: number;
  errorShare: number;
  seed: number;
}

const BAMBU_MODELS: { model: SimulatedModel; prefix: string }[] = [
  { model: 'X1C', prefix: '00M' },
  { model: 'P1S', prefix: '01P' },
  { model: 'P1P', prefix: '01S' },
  { model: 'A1', prefix: '039' },
  { model: 'A1 mini', prefix: '030' },
];
const PRUSA_MODELS: PrusaLinkSimModel[] = ['MK4', 'MINI', 'XL', 'CORE One'];

/** The i-th of n values spread evenly over [min, max] (a fixed, varied spread: no two printers in step). */
function spread([min, max]: [number, number], i: number, n: number): number {
  return n <= 1 ? min : min + ((max - min) * ((i * 7919) % n)) / (n - 1);
}

/** A small seeded PRNG (mulberry32), so that a run's PrusaLink job plan can be repeated. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function serveBambu(opts: BambuFarmOptions): Promise<void> {
  const { startBambuSimulator, simulatorCertificate } = await import('../src/simulators/bambu.js');
  // One certificate for all: the daemon does not verify it (verify_certificate false, the default), and 300 RSA key
  // pairs would take minutes to generate on a small machine.
  const certificate = await simulatorCertificate(`FARM${opts.first}`);
  const sims: BambuSimulator[] = [];
  let jobsOn = false;
  /** When each printer may start its first job after `jobs on`: spread over one pause, so they do not start at once. */
  const firstJobAt: number[] = [];
  for (let i = 0; i < opts.count; i++) {
    const n = opts.first + i;
    const { model, prefix } = BAMBU_MODELS[n % BAMBU_MODELS.length] as (typeof BAMBU_MODELS)[number];
    const sim = await startBambuSimulator({
      serial: `${prefix}00A${String(300000000 + n)}`,
      accessCode: opts.accessCode,
      model,
      speed: opts.speed,
      tickMs: 1000,
      autoJobs: true,
      jobSeconds: Math.round(spread(opts.jobSeconds, i, opts.count)),
      idleSeconds: Math.round(spread(opts.idleSeconds, i, opts.count)),
      certificate,
    });
    // Auto jobs start only while `jobs on` (the simulator asks onIdle first; true means "no job now").
    const auto = sim.printer.onIdle;
    sim.printer.onIdle = () => !jobsOn || Date.now() < (firstJobAt[i] ?? 0) || (auto?.() ?? false);
    sims.push(sim);
  }
  const counts = (): FarmCounts => {
    const jobs: FarmJobCounts = { started: 0, completed: 0, failed: 0, cancelled: 0, running: 0 };
    let served = 0;
    let clients = 0;
    let systemRuns = 0;
    for (const sim of sims) {
      jobs.started += sim.counts.started;
      jobs.completed += sim.counts.finished;
      jobs.failed += sim.counts.failed;
      jobs.cancelled += sim.counts.cancelled;
      if (sim.printer.busy) jobs.running++;
      systemRuns += sim.counts.systemRuns;
      served += sim.stats.reportsPublished;
      clients += sim.connectedClients();
    }
    return { jobs, served, clients, systemRuns, unexpectedEnds: 0 };
  };
  serveCommands(
    sims.map((sim): BambuPrinterInfo => ({ port: sim.port, serial: sim.serial })),
    {
      jobs: (command) => {
        jobsOn = command.on === true;
        if (jobsOn) {
          const pauseMs = (opts.idleSeconds[1] / opts.speed) * 1000;
          sims.forEach((_, i) => {
            firstJobAt[i] = Date.now() + (pauseMs * i) / sims.length;
          });
        }
        return counts();
      },
      counts: () => counts(),
      cancel: () => {
        for (const sim of sims) if (sim.printer.busy) sim.cancelJob();
        return counts();
      },
    },
    async () => {
      await Promise.allSettled(sims.map((sim) => sim.stop()));
    },
  );
}

/** One PrusaLink printer's job plan, run by this process through the simulator's controls. */
interface PrusaJobPlan {
  sim: PrusaLinkSimulator;
  jobId: number | null;
  /** How the running job ends: by itself, stopped by the user, or by a fault. */
  end: 'finish' | 'stop' | 'error';
  endAt: number;
  nextStartAt: number;
}

async function servePrusaLink(opts: PrusaFarmOptions): Promise<void> {
  const { startPrusaLinkSimulator } = await import('../src/simulators/prusalink.js');
  const random = seeded(opts.seed);
  const plans: PrusaJobPlan[] = [];
  for (let i = 0; i < opts.count; i++) {
    const rpi = i % 5 === 4;
    const sim = await startPrusaLinkSimulator({
      flavour: rpi ? 'rpi' : 'buddy',
      ...(rpi ? {} : { model: PRUSA_MODELS[i % PRUSA_MODELS.length] }),
      password: opts.password,
      speed: 1,
    });
    plans.push({ sim, jobId: null, end: 'finish', endAt: 0, nextStartAt: 0 });
  }
  const jobs: FarmJobCounts = { started: 0, completed: 0, failed: 0, cancelled: 0, running: 0 };
  let unexpectedEnds = 0;
  let jobsOn = false;
  const between = ([min, max]: [number, number]) => (min + (max - min) * random()) * 1000;

  const step = () => {
    const now = Date.now();
    for (const plan of plans) {
      if (plan.jobId !== null) {
        // Reading jobId moves the simulator's clock on, as the daemon's polls do.
        if (plan.sim.jobId !== plan.jobId) {
          if (plan.sim.state === 'FINISHED') jobs.completed++;
          else unexpectedEnds++;
          plan.jobId = null;
          plan.nextStartAt = now + between(opts.idleSeconds);
        } else if (plan.end !== 'finish' && now >= plan.endAt) {
          if (plan.end === 'stop') {
            plan.sim.stopJob();
            jobs.cancelled++;
          } else {
            plan.sim.error();
            jobs.failed++;
          }
          plan.jobId = null;
          plan.nextStartAt = now + between(opts.idleSeconds);
        }
      } else if (jobsOn && now >= plan.nextStartAt) {
        const seconds = between(opts.jobSeconds) / 1000;
        const roll = random();
        plan.end = roll < opts.stopShare ? 'stop' : roll < opts.stopShare + opts.errorShare ? 'error' : 'finish';
        // A stopped or failed job ends between a third and two thirds of the way through.
        plan.endAt = now + seconds * (1 / 3 + random() / 3) * 1000;
        plan.jobId = plan.sim.startJob({ durationS: seconds });
        jobs.started++;
      }
    }
  };
  const timer = setInterval(step, 250);

  const counts = (): FarmCounts => ({
    jobs: { ...jobs, running: plans.filter((p) => p.jobId !== null).length },
    served: plans.reduce((n, p) => n + p.sim.stats().requests, 0),
    clients: 0,
    systemRuns: 0,
    unexpectedEnds,
  });
  serveCommands(
    plans.map((plan) => ({ url: plan.sim.url })),
    {
      jobs: (command) => {
        jobsOn = command.on === true;
        if (jobsOn) {
          // The first starts spread over one pause.
          const now = Date.now();
          for (const plan of plans) if (plan.jobId === null) plan.nextStartAt = now + between(opts.idleSeconds);
        }
        return counts();
      },
      counts: () => counts(),
      cancel: () => {
        for (const plan of plans) {
          if (plan.jobId === null) continue;
          plan.sim.stopJob();
          jobs.cancelled++;
          plan.jobId = null;
        }
        return counts();
      },
    },
    async () => {
      clearInterval(timer);
      await Promise.allSettled(plans.map((plan) => plan.sim.stop()));
    },
  );
}

/** The mirror's broker when mosquitto is not installed: aedes on loopback, in a process of its own. */
async function serveBroker(): Promise<void> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  serveCommands({ port: typeof address === 'object' && address ? address.port : 0 }, {}, async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [mode, json] = process.argv.slice(2);
  if (mode === '--bambu') await serveBambu(JSON.parse(json as string) as BambuFarmOptions);
  else if (mode === '--prusalink') await servePrusaLink(JSON.parse(json as string) as PrusaFarmOptions);
  else if (mode === '--broker') await serveBroker();
  else {
    process.stderr.write('usage: farm-simulators.ts --bambu JSON | --prusalink JSON | --broker\n');
    process.exit(2);
  }
}
