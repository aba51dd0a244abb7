/**
 * End to end on loopback: the real daemon (HTTP API, scheduler, submitter, real SQLite) submitting to the real
 * collector (its own SQLite file), or to a scripted stub in front of it that fails on demand.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Daemon, type DaemonOptions } from '../../src/app.js';
import { type RunningCollector, startCollector } from '../../src/collector/server.js';
import { main } from '../../src/commands.js';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createDriver } from '../../src/printers/drivers.js';
import { type PrusaLinkSimulator, startPrusaLinkSimulator } from '../../src/simulators/prusalink.js';
import { tempDir } from '../helpers.js';
import { closedPortUrl, type RecordedRequest, recordingSleep, startStub } from '../stats/http-stub.js';

interface Payload {
  submission_id: string;
  installation: { installation_id: string };
  period: { start: string; end: string };
  usage_stats: { job_count: number; job_completed_count: number };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

async function collectorAt(): Promise<{ collector: RunningCollector; dir: string; stored: () => Payload[] }> {
  const dir = tempDir('e2e-collector-');
  // Two submissions within minutes must both be accepted here, so the 6-hour spacing is off.
  const collector = await startCollector({
    port: 0,
    host: '127.0.0.1',
    dataDir: dir,
    logger: silentLogger(),
    submissionIntervalMs: 0,
  });
  cleanups.push(() => collector.stop());
  const stored = () => {
    const db = new Database(join(dir, 'collector.sqlite'), { readonly: true });
    try {
      const rows = db.prepare('SELECT payload FROM submissions ORDER BY received_at, rowid').pluck().all() as string[];
      return rows.map((row) => JSON.parse(row) as Payload);
    } finally {
      db.close();
    }
  };
  return { collector, dir, stored };
}

async function startDaemon(
  endpoint: string | undefined,
  extra: Partial<DaemonOptions> & { printers?: unknown[] } = {},
): Promise<{ daemon: Daemon; api: (path: string, init?: RequestInit) => Promise<Response>; dataDir: string }> {
  const dataDir = tempDir('e2e-daemon-');
  const config = parseConfig({ usage_statistics: { endpoint }, printers: extra.printers ?? [] });
  const daemon = new Daemon({
    config,
    dataDir,
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger(),
    env: {},
    ...extra,
  });
  const { port } = await daemon.start();
  cleanups.push(() => daemon.stop());
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${port}/api/v1/usage-stats/${path}`, init);
  return { daemon, api, dataDir };
}

const post = (body?: unknown): RequestInit => ({
  method: 'POST',
  ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
});

async function status(api: (path: string) => Promise<Response>) {
  return (await (await api('status')).json()) as {
    last_submission: string | null;
    next_submission: string | null;
    last_error: string | null;
    pending_events: number;
    total_events: number;
  };
}

const submittedFlags = async (api: (path: string) => Promise<Response>) =>
  (
    (await (await api('export')).json()) as {
      events: { event_type: string; submitted: boolean; metadata: Record<string, unknown> }[];
    }
  ).events;

describe('e2e: daemon → collector', () => {
  it('submits real printer events to the real collector, twice, without counting anything twice', async () => {
    const { collector, stored } = await collectorAt();
    const prusa: PrusaLinkSimulator = await startPrusaLinkSimulator({ password: 'pw', port: 0, speed: 200 });
    cleanups.push(() => prusa.stop());
    const { daemon, api } = await startDaemon(`${collector.url}/v1/submit`, {
      createDriver,
      printers: [
        { name: 'MK4', type: 'prusa', host: `http://127.0.0.1:${prusa.port}`, password: 'pw', poll_interval_s: 1 },
      ],
    });
    const counts = () => daemon.service!.getLocalStats().events_by_type;

    expect((await api('opt-in', post())).status).toBe(200);
    await expect.poll(() => counts().printer_connected ?? 0, { timeout: 15_000 }).toBe(1);
    prusa.startJob({ durationS: 3600 });
    await expect.poll(() => counts().job_created ?? 0, { timeout: 15_000 }).toBe(1);
    prusa.finishJob();
    await expect.poll(() => counts().job_completed ?? 0, { timeout: 15_000 }).toBe(1);

    const first = await api('submit', post());
    expect(first.status, await first.clone().text()).toBe(200);
    let payloads = stored();
    expect(payloads).toHaveLength(1);
    expect(payloads[0]!.installation.installation_id).toBe(daemon.service!.installationId());
    expect(payloads[0]!.usage_stats).toMatchObject({ job_count: 1, job_completed_count: 1 });
    const afterFirst = await status(api);
    expect(afterFirst.last_submission).toBe(payloads[0]!.period.end);
    expect(afterFirst.last_error).toBeNull();
    expect(afterFirst.next_submission).not.toBeNull(); // the scheduler's next weekly slot

    // A second job, then a second submission: only the new job is in it.
    prusa.startJob({ durationS: 3600 });
    await expect.poll(() => counts().job_created ?? 0, { timeout: 15_000 }).toBe(2);
    prusa.finishJob();
    await expect.poll(() => counts().job_completed ?? 0, { timeout: 15_000 }).toBe(2);
    expect((await api('submit', post())).status).toBe(200);
    payloads = stored();
    expect(payloads).toHaveLength(2);
    expect(payloads[1]!.usage_stats).toMatchObject({ job_count: 1, job_completed_count: 1 });
    expect(payloads[1]!.submission_id).not.toBe(payloads[0]!.submission_id);
    // (minutes apart, so the second period starts a little earlier to be long enough for the collector; its counts
    // still cover only events not yet submitted)
    expect(Date.parse(payloads[1]!.period.end)).toBeGreaterThan(Date.parse(payloads[0]!.period.end));
    const jobs = payloads.reduce((sum, p) => sum + p.usage_stats.job_count, 0);
    expect(jobs).toBe(counts().job_created);
    const jobEvents = (await submittedFlags(api)).filter((e) => e.event_type.startsWith('job_'));
    expect(jobEvents.every((e) => e.submitted)).toBe(true);
  }, 60_000);

  it('retries a collector that fails the first tries (500, then 429 Retry-After) with one submission_id', async () => {
    const { collector, stored } = await collectorAt();
    const forward = async (request: RecordedRequest) => {
      const response = await fetch(`${collector.url}/v1/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: request.headers.authorization! },
        body: request.body,
      });
      return { status: response.status, body: await response.json() };
    };
    const stub = await startStub((request, index) =>
      index === 0
        ? { status: 500 }
        : index === 1
          ? { status: 429, headers: { 'retry-after': '300' } }
          : forward(request),
    );
    const { waits, sleep } = recordingSleep();
    const { daemon, api } = await startDaemon(stub.url, { submitter: { sleep, random: () => 0.5 } });
    await api('opt-in', post());
    daemon.service!.recordEvent('job_created', { printer_type: 'prusa', printer_model: 'MK4' });

    const answer = await api('submit', post());
    expect(answer.status).toBe(502); // the first try failed; the retries go on in the background
    expect(((await answer.json()) as { error: { message: string } }).error.message).toMatch(/retrying/);
    await expect.poll(async () => (await status(api)).last_submission).not.toBeNull();

    expect(stub.requests).toHaveLength(3);
    const ids = stub.requests.map((r) => (JSON.parse(r.body) as Payload).submission_id);
    expect(new Set(ids).size).toBe(1);
    expect(waits).toEqual([60_000, 300_000]); // 1 min backoff, then the collector's 5 min Retry-After
    expect(stored().map((p) => p.submission_id)).toEqual([ids[0]]);
    expect((await status(api)).last_error).toBeNull();
  });

  it('opt-out during a retry wait cancels it at once; nothing is marked', async () => {
    const stub = await startStub([{ status: 500 }]);
    const { daemon, api } = await startDaemon(stub.url); // the real backoff: a one-minute wait
    await api('opt-in', post());
    expect((await api('submit', post())).status).toBe(502);
    const next = (await status(api)).next_submission;
    expect(Date.parse(next!) - Date.now()).toBeLessThan(2 * 60_000); // the retry, not next week's slot
    expect(daemon.submitter!.busy()).toBe(true);

    expect((await api('opt-out', post())).status).toBe(200);
    await expect.poll(() => daemon.submitter!.busy(), { timeout: 1000 }).toBe(false);
    expect(stub.requests).toHaveLength(1);
    const events = await submittedFlags(api);
    expect(events.some((e) => e.submitted)).toBe(false);
    expect(events.filter((e) => e.event_type === 'error_occurred')).toEqual([]);
    expect((await status(api)).next_submission).toBeNull();
  });

  it('opt-out with delete_remote removes the installation’s data at the collector', async () => {
    const { collector, dir, stored } = await collectorAt();
    const { daemon, api } = await startDaemon(`${collector.url}/v1/submit`);
    await api('opt-in', post());
    expect((await api('submit', post())).status).toBe(200);
    expect(stored()).toHaveLength(1);

    const answer = await api('opt-out', post({ delete_remote: true }));
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { message: string }).message).toMatch(/collector deleted/);
    expect(stored()).toEqual([]);
    const db = new Database(join(dir, 'collector.sqlite'), { readonly: true });
    const left = db.prepare('SELECT COUNT(*) FROM installations').pluck().get();
    db.close();
    expect(left).toBe(0);
    // Asking again finds nothing stored (404), which still counts as done.
    expect(await daemon.submitter!.deleteRemote()).toMatchObject({ success: true });
  });

  it('a collector that is down: five tries, then a clear status; no event marked submitted', async () => {
    const { waits, sleep } = recordingSleep();
    const { daemon, api } = await startDaemon(await closedPortUrl(), { submitter: { sleep, random: () => 0.5 } });
    await api('opt-in', post());
    daemon.service!.recordEvent('job_created', { printer_type: 'prusa', printer_model: 'MK4' });
    expect((await api('submit', post())).status).toBe(502);
    await expect.poll(() => daemon.submitter!.busy()).toBe(false);

    expect(waits).toHaveLength(4);
    const after = await status(api);
    expect(after.last_error).toMatch(/after 5 tries: network error ECONNREFUSED/);
    expect(after.last_submission).toBeNull();
    expect(after.pending_events).toBe(after.total_events);
    const errors = (await submittedFlags(api)).filter((e) => e.event_type === 'error_occurred');
    expect(errors.map((e) => e.metadata)).toEqual([{ error_type: 'submission_failed', component: 'submission' }]);
  });

  it('a 4xx is not retried and is counted as error_occurred (submission)', async () => {
    const stub = await startStub([{ status: 403, body: { error: { code: 'forbidden', message: 'no' } } }]);
    const { sleep, waits } = recordingSleep();
    const { api } = await startDaemon(stub.url, { submitter: { sleep } });
    await api('opt-in', post());
    expect((await api('submit', post())).status).toBe(502);
    expect(stub.requests).toHaveLength(1);
    expect(waits).toEqual([]);
    expect((await status(api)).last_error).toMatch(/HTTP 403 forbidden/);
    const errors = (await submittedFlags(api)).filter((e) => e.event_type === 'error_occurred');
    expect(errors.map((e) => e.metadata)).toEqual([{ error_type: 'submission_rejected', component: 'submission' }]);
  });

  it('without an endpoint, submission is off with a clear message', async () => {
    const { api } = await startDaemon(undefined);
    await api('opt-in', post());
    const answer = await api('submit', post());
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: { message: string } }).error.message).toMatch(/No collector endpoint/);
    expect((await status(api)).next_submission).toBeNull();
  });
});

describe('e2e: printernizer-stats submit', () => {
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      stdout += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
    try {
      const code = await main(args);
      return { code, stdout, stderr };
    } finally {
      vi.restoreAllMocks();
    }
  }

  it('submits once to the collector; exit 1 with a clear message when not opted in or the collector is down', async () => {
    const { collector, stored } = await collectorAt();
    const dataDir = tempDir('e2e-cli-');
    const configure = (endpoint: string) =>
      writeFileSync(join(dataDir, 'options.json'), JSON.stringify({ usage_statistics: { endpoint } }));
    configure(`${collector.url}/v1/submit`);

    const refused = await cli(['submit', '--data-dir', dataDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Opt in before submitting.*printernizer-stats opt-in/);

    expect((await cli(['opt-in', '--data-dir', dataDir])).code).toBe(0);
    const done = await cli(['submit', '--data-dir', dataDir]);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ success: true });
    expect(stored()).toHaveLength(1);

    configure(await closedPortUrl());
    const down = await cli(['submit', '--data-dir', dataDir]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/after 1 try: network error ECONNREFUSED/);
  });
});
