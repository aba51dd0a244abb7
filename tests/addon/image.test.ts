/**
 * The image's stages replayed without Docker, from the Dockerfile's own COPY lists: the `build` stage compiles with
 * only the files it copies (so src/ cannot reach outside what the image has), and the run stage's files (dist/,
 * package.json, www/, certs/ ...) start with production dependencies only, as the s6 `run` script starts them
 * (`node dist/src/cli.js run`). It catches a runtime import of a dev dependency, files that only resolve from the
 * source tree, and a build that does not compile.
 *
 * The production node_modules is the project's own, hard-linked into a temp dir and pruned with
 * `npm prune --omit=dev --offline` (a fresh `npm ci` would have to compile better-sqlite3, which needs the network
 * for Node's headers). Takes about 10 s.
 *
 * Then the add-on as a container would run it, minus Docker and s6: a private mount namespace with an overlay of the
 * host's / (so /data, /opt/printernizer-stats, /command and the rootfs/ files can exist without touching the host),
 * chrooted, and the service's `run` executed through its own shebang: a stand-in `/command/with-contenv` (exec its
 * arguments) and the bashio stand-in of tests/addon/fixtures at /usr/bin/bashio, with a fake Supervisor on loopback.
 * Skipped where `unshare` or overlayfs is refused (not root); required under CI, which runs as root.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../requirements.js';
import { contextCopies, readStages, type Stage } from './dockerfile-stages.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
// Not tests/helpers' tempDir: that one is removed after each test, and this build serves the whole file.
const work = mkdtempSync(join(tmpdir(), 'pstats-dist-'));
const app = join(work, 'app');
let daemon: ChildProcess | null = null;

/** Copies a stage's build-context sources (COPY without --from) into `dir`, as the Dockerfile places them. */
function copyContext(stage: Stage, dir: string): void {
  for (const { sources, dest } of contextCopies(stage)) {
    if (dest === '/') continue; // rootfs: the s6 service, tested on its own
    for (const source of sources) {
      const target = sources.length > 1 || dest.endsWith('/') || dest === './' ? join(dest, source) : dest;
      cpSync(join(root, source), join(dir, target), { recursive: true });
    }
  }
}

beforeAll(async () => {
  const stages = readStages(join(root, 'Dockerfile'));
  const buildStage = stages.find((stage) => stage.name === 'build')!;
  const runStage = stages.at(-1)!;

  // The build stage: only what it copies, with the project's full node_modules standing in for its `npm ci`.
  const build = join(work, 'build');
  copyContext(buildStage, build);
  symlinkSync(join(root, 'node_modules'), join(build, 'node_modules'));
  await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: build,
  });

  // The run stage: its own files, dist/ from the build stage, and production dependencies (the deps stage).
  copyContext(runStage, app);
  cpSync(join(build, 'dist'), join(app, 'dist'), { recursive: true });
  cpSync(join(root, 'package-lock.json'), join(app, 'package-lock.json'));
  // Hard links: fast and no extra disk; taken under the npm lock so no install is half-way through.
  const link = ['cp', '-al', join(root, 'node_modules'), join(app, 'node_modules')];
  const hasFlock = spawnSync('flock', ['--version']).status === 0;
  await run(hasFlock ? 'flock' : link[0]!, hasFlock ? ['/tmp/npm.lock', ...link] : link.slice(1));
  // npm rewrites this file in place; a private copy keeps the project's own untouched.
  rmSync(join(app, 'node_modules', '.package-lock.json'), { force: true });
  await run('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app });
  rmSync(join(app, 'package-lock.json'));
}, 120_000);

afterAll(() => {
  daemon?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** Spawns a daemon and resolves with the port from its start-up log line. */
function startDaemon(command: string, args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv }) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  daemon = child;
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up line in 20 s:\n${output}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((l) => l.includes('printernizer-stats is running'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${output}`));
    });
  });
  const stop = async (): Promise<number | null> => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await exited;
    daemon = null;
    return code;
  };
  return { port, stop, output: () => output };
}

/** GET from a chosen local address, so the daemon sees that peer. */
function get(port: number, path: string, from = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, localAddress: from, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('built dist/ with production dependencies only', () => {
  it('has no dev dependency left', () => {
    for (const dev of ['typescript', 'vitest', '@biomejs/biome', 'yaml', 'tsx', 'esbuild']) {
      expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    }
    expect(existsSync(join(app, 'node_modules', 'better-sqlite3'))).toBe(true);
    expect(existsSync(join(app, 'dist', 'src', 'cli.js'))).toBe(true);
  });

  it('starts with `node dist/src/cli.js run`, answers /api/v1/health and stops cleanly on SIGTERM', async () => {
    const started = startDaemon(
      process.execPath,
      ['dist/src/cli.js', 'run', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(app, 'data')],
      { cwd: app, env: { PATH: process.env.PATH, PRINTERNIZER_DEPLOYMENT: 'docker' } },
    );
    const port = await started.port;
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      version: expect.any(String),
      uptime_seconds: expect.any(Number),
    });
    // The UI is served from www/ beside dist/.
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);

    // The Dockerfile's HEALTHCHECK command itself, run by a shell as Docker runs it.
    const healthcheck = readStages(join(root, 'Dockerfile'))
      .at(-1)!
      .instructions.find((i) => i.keyword === 'HEALTHCHECK')!
      .args.replace(/^.*?\bCMD\s+/, '');
    const healthy = await run('sh', ['-c', healthcheck], { env: { PATH: process.env.PATH, PORT: String(port) } });
    expect(healthy.stderr).toBe('');
    await expect(run('sh', ['-c', healthcheck], { env: { PATH: process.env.PATH, PORT: '1' } })).rejects.toThrow();

    expect(await started.stop()).toBe(0);
  }, 30_000);
});

const canOverlay = requireTool(
  'an overlayfs mount in a private mount namespace (unshare -m)',
  () => {
    const probe = mkdtempSync(join(tmpdir(), 'pstats-ovl-probe-'));
    try {
      const script = `mount -t tmpfs tmpfs "$1" && mkdir "$1/u" "$1/w" "$1/m" && mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$1/m"`;
      return spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'probe', probe]).status === 0;
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  },
  'run as root, with util-linux',
);

describe.skipIf(!canOverlay)('the add-on container, emulated', () => {
  const TOKEN = 'supervisor-test-token';
  let supervisor: Server;
  let api: string;

  beforeAll(async () => {
    // The two Supervisor endpoints `run` asks: /info (time zone) and /services/mqtt (none: MQTT is off here).
    supervisor = createServer((request, response) => {
      const authorized = request.headers.authorization === `Bearer ${TOKEN}`;
      const [status, body] = !authorized
        ? [401, { result: 'error', message: 'Unauthorized' }]
        : request.url === '/info'
          ? [200, { result: 'ok', data: { timezone: 'Europe/Berlin' } }]
          : [400, { result: 'error', message: 'Service not enabled' }];
      response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => supervisor.listen(0, '127.0.0.1', resolve));
    api = `http://127.0.0.1:${(supervisor.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => supervisor.close(() => resolve()));
  });

  it('`run` starts the built daemon on /data in add-on mode: options.json, time zone, ingress guard', async () => {
    const container = join(work, 'container');
    mkdirSync(container);
    const options = join(work, 'options.json');
    writeFileSync(
      options,
      JSON.stringify({
        log_level: 'info',
        printers: [{ name: 'Shop MK4', type: 'prusa', host: 'http://127.0.0.1:9', password: 'not-a-real-one' }],
        usage_statistics: { retention_days: 365 },
        mqtt: { enabled: false, base_topic: 'printernizer', discovery: true, discovery_prefix: 'homeassistant' },
      }),
    );
    const script = `
      set -e
      mount -t tmpfs tmpfs "$CONTAINER"
      mkdir "$CONTAINER/upper" "$CONTAINER/work" "$CONTAINER/root"
      root="$CONTAINER/root"
      mount -t overlay overlay -o "lowerdir=/,upperdir=$CONTAINER/upper,workdir=$CONTAINER/work" "$root"
      mount --rbind /dev "$root/dev"
      mount -t proc proc "$root/proc"
      # COPY rootfs / and the application where the Dockerfile puts it.
      cp -a "$REPO/rootfs/." "$root/"
      mkdir -p "$root/opt/printernizer-stats" "$root/data" "$root/command"
      mount --bind "$APP" "$root/opt/printernizer-stats"
      cp "$OPTIONS" "$root/data/options.json"
      printf '#!/bin/sh\nexec "$@"\n' > "$root/command/with-contenv"
      chmod +x "$root/command/with-contenv"
      cp "$REPO/tests/addon/fixtures/bashio" "$root/usr/bin/bashio"
      exec chroot "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin SUPERVISOR_TOKEN="$TOKEN" \
        BASHIO_TEST_SUPERVISOR_API="$API" HOST=127.0.0.1 PORT=0 TZ=UTC \
        /etc/s6-overlay/s6-rc.d/printernizer-stats/run
    `;
    const started = startDaemon('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], {
      env: {
        PATH: process.env.PATH,
        CONTAINER: container,
        REPO: root,
        APP: app,
        OPTIONS: options,
        TOKEN,
        API: api,
      },
    });
    const port = await started.port;

    // Loopback (HEALTHCHECK) is let in; any other peer is not: SUPERVISOR_TOKEN reached the daemon.
    expect((await get(port, '/api/v1/health')).status).toBe(200);
    expect((await get(port, '/api/v1/usage-stats/status', '127.0.0.2')).status).toBe(403);
    // /data/options.json was read.
    const printers = JSON.parse((await get(port, '/api/v1/printers')).body) as { printers: { name: string }[] };
    expect(printers.printers.map((p) => p.name)).toEqual(['Shop MK4']);
    // The Supervisor's time zone (TZ) and the add-on mode are what a submission would say.
    const preview = JSON.parse((await get(port, '/api/v1/usage-stats/preview')).body) as {
      installation: { deployment_mode: string; country_code: string | null };
    };
    expect(preview.installation).toMatchObject({ deployment_mode: 'homeassistant', country_code: 'DE' });
    expect(started.output()).toContain('Starting printernizer-stats');

    expect(await started.stop()).toBe(0);
  }, 40_000);
});
