/**
 * The s6-overlay v3 service in rootfs/: a longrun registered in the user bundle, `run` and `finish` executable with
 * the with-contenv bashio shebang, and clean under shellcheck (skipped where it is not installed, required under CI:
 * `apt-get install shellcheck`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireTool, runsCleanly } from '../requirements.js';

const root = join(import.meta.dirname, '..', '..');
const s6 = join(root, 'rootfs', 'etc', 's6-overlay', 's6-rc.d');
const service = join(s6, 'printernizer-stats');
const scripts = ['run', 'finish'].map((name) => join(service, name));

const hasShellcheck = requireTool(
  'shellcheck',
  () => runsCleanly('shellcheck', ['--version']),
  'apt-get install -y shellcheck',
);

describe('rootfs s6-overlay service', () => {
  it('is a longrun in the user bundle', () => {
    expect(readFileSync(join(service, 'type'), 'utf8').trim()).toBe('longrun');
    expect(existsSync(join(s6, 'user', 'contents.d', 'printernizer-stats'))).toBe(true);
  });

  it('starts after the base bundle (dependencies.d/base, an empty file, as s6-overlay recommends)', () => {
    // just-containers/s6-overlay README: "This tells s6-rc to only start myapp when all the base services are
    // ready: it prevents race conditions."
    const base = join(service, 'dependencies.d', 'base');
    expect(statSync(base).isFile()).toBe(true);
    expect(statSync(base).size).toBe(0);
  });

  it.each(scripts)('%s is executable and runs under with-contenv bashio', (script) => {
    expect(statSync(script).mode & 0o111, 'executable bits').toBe(0o111);
    const text = readFileSync(script, 'utf8');
    expect(text.split('\n')[0]).toBe('#!/command/with-contenv bashio');
    expect(text).not.toContain('\r');
  });

  it('run ends by exec-ing the built daemon on /data', () => {
    const lines = readFileSync(join(service, 'run'), 'utf8').trim().split('\n');
    expect(lines.at(-1)).toBe(
      'exec node --max-semi-space-size=2 --heap-growing-percent=50 --single-threaded-gc /opt/printernizer-stats/dist/src/cli.js run --data-dir /data',
    );
  });

  it('the Dockerfile puts the application where run expects it', () => {
    expect(readFileSync(join(root, 'Dockerfile'), 'utf8')).toMatch(/^WORKDIR \/opt\/printernizer-stats$/m);
  });

  it.skipIf(!hasShellcheck)('passes shellcheck', () => {
    const result = spawnSync('shellcheck', ['--shell=bash', '--severity=style', ...scripts], { encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('bash can parse both scripts', () => {
    for (const script of scripts) expect(() => execFileSync('bash', ['-n', script])).not.toThrow();
  });
});
