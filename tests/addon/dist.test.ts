/**
 * What the image's run stage holds, without Docker: the compiled dist/ beside package.json, www/ and certs/, with
 * production dependencies only, started as the s6 `run` script starts it (`node dist/src/cli.js run`). It catches a
 * runtime import of a dev dependency, files that only resolve from src/, and a build that does not compile.
 *
 * The production node_modules is the project's own, hard-linked into a temp dir and pruned with
 * `npm prune --omit=dev --offline` (a fresh `npm ci` would have to compile better-sqlite3, which needs the network
 * for Node's headers). Takes about 10 s.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
// Not tests/helpers' tempDir: that one is removed after each test, and this build serves the whole file.
const work = mkdtempSync(join(tmpdir(), 'pstats-dist-'));
const app = join(work, 'app');
let daemon: ChildProcess | null = null;

beforeAll(async () => {
  await run(
    process.execPath,
    [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      join(app, 'dist'),
    ],
    {
      cwd: root,
    },
  );
  for (const entry of ['package.json', 'package-lock.json', 'www', 'certs', 'LICENSE']) {
    cpSync(join(root, entry), join(app, entry), { recursive: true });
  }
  // Hard links: fast and no extra disk; taken under the npm lock so no install is half-way through.
  const link = ['cp', '-al', join(root, 'node_modules'), join(app, 'node_modules')];
  const hasFlock = spawnSync('flock', ['--version']).status === 0;
  await run(hasFlock ? 'flock' : link[0]!, hasFlock ? ['/tmp/npm.lock', ...link] : link.slice(1));
  // npm rewrites this file in place; a private copy keeps the project's own untouched.
  rmSync(join(app, 'node_modules', '.package-lock.json'), { force: true });
  await run('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app });
}, 120_000);

afterAll(() => {
  daemon?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('built dist/ with production dependencies only', () => {
  it('has no dev dependency left', () => {
    for (const dev of ['typescript', 'vitest', '@biomejs/biome', 'yaml']) {
      expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    }
    expect(existsSync(join(app, 'node_modules', 'better-sqlite3'))).toBe(true);
    expect(existsSync(join(app, 'dist', 'src', 'cli.js'))).toBe(true);
  });

  it('starts with `node dist/src/cli.js run`, answers /api/v1/health and stops cleanly on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['dist/src/cli.js', 'run', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(app, 'data')],
      {
        cwd: app,
        env: { PATH: process.env.PATH, PRINTERNIZER_DEPLOYMENT: 'docker' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    daemon = child;
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start-up line in 15 s:\n${output}`)), 15_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const line = output.split('\n').find((l) => l.includes('printernizer-stats is running'));
        if (line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
    });
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      version: expect.any(String),
      uptime_seconds: expect.any(Number),
    });
    // The UI is served from www/ beside dist/.
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    daemon = null;
  }, 30_000);
});
