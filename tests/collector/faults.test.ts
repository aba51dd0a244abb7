/**
 * The PostgreSQL storage when the database misbehaves: it goes away mid-run (503 with the JSON error shape, no crash,
 * serving again once it is back, a 2xx only for what was committed), and a database that cannot be used at start-up
 * (one line on stderr, exit code 2). This file stops its own cluster, so it has one to itself.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresBackend, skipPostgres, type TestStore } from './backends.js';
import { makePayload, newSecret, startTestCollector, type TestCollector } from './helpers.js';

const CLI = ['--import', 'tsx', join(import.meta.dirname, '../../src/cli.ts')];

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `printernizer-stats collector ...`; stops it with SIGTERM once `until` matches its output. */
function runCollectorCli(args: string[], env: NodeJS.ProcessEnv = {}, until?: RegExp): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, 'collector', '--port', '0', ...args], {
      env: { ...process.env, COLLECTOR_DATABASE_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let stopping = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (!stopping && until?.test(stdout)) {
        stopping = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(skipPostgres())('PostgreSQL faults', () => {
  const backend = postgresBackend();
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function started(): Promise<TestCollector> {
    const c = await startTestCollector({ backend });
    cleanups.push(() => c.close());
    return c;
  }

  it('answers 503 with the JSON error while the database is down, and serves again when it is back', async () => {
    const c = await started();
    const cluster = await backend.cluster();
    const secret = newSecret();
    const installationId = randomUUID();
    expect((await c.submit(makePayload(), newSecret())).status).toBe(200);

    await cluster.stop('fast');
    try {
      for (const res of [
        await c.submit(makePayload({ installationId }), secret),
        await fetch(`${c.collector.url}/v1/stats`),
        await fetch(`${c.collector.url}/v1/health`),
        await fetch(`${c.collector.url}/v1/installations/${randomUUID()}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${secret}` },
        }),
      ]) {
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('10');
        expect(await res.json()).toEqual({
          error: { code: 'unavailable', message: 'The collector database is unavailable; try again later' },
        });
      }
    } finally {
      await cluster.restart();
    }
    // The same process, the same pool: new connections, and the refused submission goes through on retry.
    expect((await fetch(`${c.collector.url}/v1/health`)).status).toBe(200);
    const retried = await c.submit(makePayload({ installationId }), secret);
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ duplicate: false });
    expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(2);
    expect(c.logs.text()).toContain('database unavailable');
  }, 60_000);

  it('answers 2xx only for committed submissions when the database dies under load', async () => {
    const c = await started();
    const cluster = await backend.cluster();
    const payloads = Array.from({ length: 200 }, () => ({ payload: makePayload(), secret: newSecret() }));
    const statuses = new Map<string, number>();
    let next = 0;
    let crashed: Promise<void> | undefined;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < payloads.length) {
          const item = payloads[next++] as (typeof payloads)[number];
          if (next === 80) crashed = cluster.stop('immediate'); // a crash, mid-stream
          const res = await c.submit(item.payload, item.secret);
          await res.body?.cancel();
          statuses.set(item.payload.submission_id, res.status);
        }
      }),
    );
    await crashed;
    await cluster.restart();
    const answered = [...statuses.values()];
    expect(new Set(answered).size).toBeGreaterThan(1); // some before, some during the outage
    expect(answered.every((s) => s === 200 || s === 503)).toBe(true);
    const accepted = [...statuses].filter(([, s]) => s === 200).map(([id]) => `'${id}'`);
    expect(accepted.length).toBeGreaterThan(0);
    // Every 2xx is stored: none was answered before its commit.
    expect(await c.store.count(`SELECT count(*) FROM submissions WHERE submission_id IN (${accepted.join(',')})`)).toBe(
      accepted.length,
    );
    // The daemons retry what was refused: each is then stored once (a 503 whose commit did land is a duplicate).
    const refused = payloads.filter((p) => statuses.get(p.payload.submission_id) === 503);
    const retried = await Promise.all(refused.map(async (p) => (await c.submit(p.payload, p.secret)).status));
    expect(retried.every((s) => s === 200)).toBe(true);
    expect(await c.store.count('SELECT count(*) FROM submissions')).toBe(payloads.length);
  }, 90_000);

  describe('start-up', () => {
    let store: TestStore;
    afterEach(async () => {
      await store?.cleanup();
    });

    it('stops with one line and exit code 2 for a bad URL, a refused login or an unreachable server', async () => {
      store = await backend.createStore();
      const cluster = await backend.cluster();
      const wrongPassword = 'not-the-password-x7';
      const results = await Promise.all([
        runCollectorCli(['--database', 'not a url']),
        runCollectorCli(['--database', 'mysql://root@127.0.0.1/collector']),
        runCollectorCli(['--database', cluster.url({ password: wrongPassword })]),
        runCollectorCli([], { COLLECTOR_DATABASE_URL: cluster.url({ database: 'no_such_database' }) }),
        runCollectorCli(['--database', `postgres://postgres:secret@127.0.0.1:1/collector`]),
      ]);
      const expected = [
        /^collector: the database URL is not a valid URL/,
        /^collector: the database URL must start with postgres:\/\//,
        /^collector: cannot use the database postgres:\/\/postgres@127\.0\.0\.1:\d+\/collector: password authentication failed for user "postgres" \(28P01\)$/,
        /^collector: cannot use the database .*\/no_such_database: database "no_such_database" does not exist \(3D000\)$/,
        /^collector: cannot use the database postgres:\/\/postgres@127\.0\.0\.1:1\/collector: connect ECONNREFUSED 127\.0\.0\.1:1$/,
      ];
      results.forEach((result, i) => {
        expect(result.code, result.stderr).toBe(2);
        const lines = result.stderr.trimEnd().split('\n');
        expect(lines, result.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(expected[i] as RegExp);
        expect(result.stderr).not.toContain(wrongPassword);
        expect(result.stderr).not.toContain(cluster.password);
        expect(result.stderr).not.toContain('secret@');
      });
    }, 60_000);

    it('starts from COLLECTOR_DATABASE_URL and stops cleanly on SIGTERM', async () => {
      store = await backend.createStore();
      const result = await runCollectorCli(
        [],
        { COLLECTOR_DATABASE_URL: store.options.database as string },
        /collector is running/,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain('"storage":"postgres"');
      expect(await store.schemaVersion()).toBe(store.latestSchemaVersion);
    }, 60_000);
  });
});
