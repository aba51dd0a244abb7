/**
 * 50 simulated Bambu Lab printers (1 report/s each, TLS) against the real built daemon, started as the add-on starts
 * it (the node flags and environment of rootfs/.../run, bench/addon-launch.ts): the issue 3 targets (under 5% of one core, under 100 MB)
 * read off the daemon's own /proc entries, beside an idle Node.js process measured at the same time. The simulators
 * run in a third process so neither they nor the benchmark weigh on the measured one.
 *
 *   node --import tsx bench/bambu-fleet-daemon.ts
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { addonLaunchEnvironment, addonNodeFlags } from './addon-launch.js';
import { ACCESS_CODE, spawnSimulators } from './bambu-fleet.js';
import { build, procStatus } from './idle-memory.js';
import type { BenchRow } from './types.js';
import { bambuPrinterConfigs, median, round, row, sized, sleep } from './util.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PRINTERS = sized(50, 3);
const WARMUP_S = sized(20, 3);
const MEASURE_S = Number(process.env.BAMBU_DAEMON_BENCH_SECONDS ?? sized(40, 2));
const DAEMON_FLAGS = addonNodeFlags();
const CLOCK_TICKS_PER_S = 100;

/** utime + stime of a process, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function startDaemon(configPath: string, dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const args = [...DAEMON_FLAGS, 'dist/src/cli.js', 'run', '--config', configPath, '--data-dir', dataDir];
  const child = spawn(process.execPath, [...args, '--port', '0', '--host', '127.0.0.1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: addonLaunchEnvironment(),
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  return new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'printernizer-stats is running' && entry.port) resolve({ child, port: entry.port });
    });
    child.once('exit', (code) => reject(new Error(`the daemon exited with ${code}`)));
  });
}

export async function run(): Promise<BenchRow[]> {
  const built = build();
  const dir = mkdtempSync(join(tmpdir(), 'bench-bambu-daemon-'));
  const { child: simulators, sims } = await spawnSimulators(PRINTERS);
  const idle = spawn(process.execPath, [...DAEMON_FLAGS, '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const configPath = join(dir, 'options.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      log_level: 'info',
      printers: bambuPrinterConfigs(sims, ACCESS_CODE),
    }),
  );
  const { child: daemon, port } = await startDaemon(configPath, join(dir, 'data'));
  const pid = daemon.pid as number;
  try {
    await sleep(WARMUP_S * 1000);
    const ticksAtStart = cpuTicks(pid);
    const wallAtStart = performance.now();
    const rss: number[] = [];
    const idleRss: number[] = [];
    while (performance.now() - wallAtStart < MEASURE_S * 1000) {
      rss.push(procStatus(pid).rssKb / 1024);
      idleRss.push(procStatus(idle.pid as number).rssKb / 1024);
      await sleep(1000);
    }
    const seconds = (performance.now() - wallAtStart) / 1000;
    const cpuPercent = ((cpuTicks(pid) - ticksAtStart) / CLOCK_TICKS_PER_S / seconds) * 100;
    const answer = (await (await fetch(`http://127.0.0.1:${port}/api/v1/printers`)).json()) as {
      printers: { online: boolean }[];
    };
    const online = answer.printers.filter((p) => p.online).length;
    if (online === 0) throw new Error(`none of the ${PRINTERS} simulated printers came online in the daemon`);
    const note = `${PRINTERS} printers, ${online} online, ${Math.round(seconds)} s after ${WARMUP_S} s warm-up, ${built}`;
    return [
      row('bambu_fleet_daemon_cpu', round(cpuPercent, 2), '% of one core', 5, `${note}; baseline = target`),
      row(
        'bambu_fleet_daemon_rss_peak',
        round(Math.max(...rss), 1),
        'MB',
        100,
        `peak of 1 s samples; median ${round(median(rss), 1)} MB; baseline = target`,
      ),
      row(
        'bambu_fleet_daemon_rss_vs_idle_node',
        round(median(rss), 1),
        'MB',
        round(median(idleRss), 1),
        'median RSS beside an idle node process with the same flags',
      ),
    ];
  } finally {
    daemon.kill('SIGTERM');
    idle.kill('SIGTERM');
    simulators.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) console.table(await run());
