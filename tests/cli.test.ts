import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const CLI = ['--import', 'tsx', join(import.meta.dirname, '../src/cli.ts')];
const env = { ...process.env, DO_NOT_TRACK: '', PORT: '', HOST: '' };

function cli(args: string[]) {
  return spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', env, timeout: 20_000 });
}

async function startDaemon(dataDir: string): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawn(process.execPath, [...CLI, 'run', '--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1'], {
    env,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${out}`)), 15_000);
    child.stdout.on('data', () => {
      const match = /"port":(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  return { child, port, output: () => out };
}

describe('CLI', () => {
  it('runs the daemon, refuses a second one on the same data dir, and stops cleanly on SIGTERM', async () => {
    const dataDir = tempDir();
    const { child, port, output } = await startDaemon(dataDir);
    const health = (await (await fetch(`http://127.0.0.1:${port}/api/v1/health`)).json()) as { status: string };
    expect(health.status).toBe('ok');

    // The one-shot commands work beside the running daemon (WAL).
    expect(JSON.parse(cli(['opt-in', '--data-dir', dataDir]).stdout).success).toBe(true);
    const local = (await (await fetch(`http://127.0.0.1:${port}/api/v1/usage-stats/local`)).json()) as {
      opt_in_status: string;
    };
    expect(local.opt_in_status).toBe('enabled');

    const second = cli(['run', '--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1']);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/already running/);

    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(output()).toContain('"msg":"stopped"');
    const exported = JSON.parse(cli(['export', '--data-dir', dataDir]).stdout) as {
      events: { event_type: string; metadata: Record<string, unknown> }[];
    };
    const types = exported.events.map((e) => e.event_type);
    expect(types).toEqual(['app_start', 'feature_enabled', 'app_shutdown']);
    expect(exported.events[2]?.metadata.uptime_seconds).toEqual(expect.any(Number));
  });

  it('status, preview and delete work on a data dir', () => {
    const dataDir = tempDir();
    expect(JSON.parse(cli(['status', '--data-dir', dataDir]).stdout)).toMatchObject({
      opted_in: false,
      total_events: 0,
    });
    cli(['opt-in', '--data-dir', dataDir]);
    expect(JSON.parse(cli(['preview', '--data-dir', dataDir]).stdout).schema_version).toBe(1);
    const refused = cli(['delete', '--data-dir', dataDir]);
    expect(refused.status).toBe(2);
    expect(JSON.parse(cli(['delete', '--yes', '--data-dir', dataDir]).stdout)).toMatchObject({
      success: true,
      deleted_events: 1,
    });
  });

  it('an invalid config stops start-up with one line per problem and exit code 2, no stack', () => {
    const dataDir = tempDir();
    const config = join(dataDir, 'bad.json');
    writeFileSync(
      config,
      JSON.stringify({ log_level: 'loud', printers: [{ name: 'X', type: 'bambu_lab' }], extra: 1 }),
    );
    const result = cli(['run', '--config', config, '--data-dir', dataDir]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('extra: unknown key');
    expect(result.stderr).toContain('printers[0].access_code');
    expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('--help everywhere and unknown commands', () => {
    expect(cli(['--help']).stdout).toContain('Commands:');
    expect(cli(['export', '--help']).stdout).toContain('--output');
    expect(cli(['collector', '--help']).stdout).toContain('--k N');
    expect(cli(['frobnicate']).status).toBe(2);
    expect(cli(['run', '--bogus']).status).toBe(2);
  });
});
