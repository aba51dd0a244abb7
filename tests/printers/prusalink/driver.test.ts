import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { JobTracker } from '../../../src/printers/prusalink/driver.js';
import { PrusaLinkDriver } from '../../../src/printers/prusalink/driver.js';
import type { JobObservation } from '../../../src/printers/types.js';
import type { DisconnectReason, EventType } from '../../../src/stats/events.js';
import { testService } from '../../helpers.js';
import { driverFor, eventSink, memoryLogger, simulator, sleep, waitFor, waitForListing } from './helpers.js';

const types = (events: { type: EventType }[]) => events.map((e) => e.type);

describe.each([
  ['buddy', 'MK4'],
  ['rpi', 'MK3S'],
] as const)('driver ↔ %s simulator, events recorded in SQLite', (flavour, model) => {
  it('records connection, jobs and uploads once each', async () => {
    const sim = await simulator({ flavour, speed: 50 });
    const { service, repository } = testService();
    const driver = driverFor(sim, { emit: (type, metadata) => service.recordEvent(type, metadata) });
    const stored = () => repository.getEvents({}, { limit: 1000 });
    const count = (type: EventType) => stored().filter((e) => e.event_type === type).length;

    driver.start();
    await waitFor('connected', () => count('printer_connected') === 1);
    expect(driver.snapshot()).toMatchObject({ online: true, model, state: 'IDLE', problem: null });
    await waitForListing(sim);

    // A job with a file the printer never listed: uploaded, then printed.
    sim.startJob({ fileName: 'Bracket.bgcode', sizeBytes: 4321, durationS: 100_000 });
    await waitFor('job_created', () => count('job_created') === 1 && count('file_uploaded') === 1).catch((err) => {
      throw new Error(`${err}: ${JSON.stringify(stored())}`);
    });
    await sleep(150);
    sim.finishJob();
    await waitFor('job_completed', () => count('job_completed') === 1);

    // The same file again: a job, no upload. Cancelled at the printer.
    sim.startJob({ fileName: 'Bracket.bgcode', durationS: 100_000 });
    await waitFor('second job', () => count('job_created') === 2);
    sim.stopJob();
    await waitFor('job_failed', () => count('job_failed') === 1);

    // Another job that ends in an error.
    sim.startJob({ durationS: 100_000 });
    await waitFor('third job', () => count('job_created') === 3);
    sim.error();
    await waitFor('error', () => count('job_failed') === 2);

    // A file that appears in the storage listing.
    sim.addFile({ name: 'Clip.gcode', sizeBytes: 99 });
    await waitFor('listing upload', () => count('file_uploaded') === 2);
    await sleep(200); // nothing more may arrive

    const events = stored();
    // Where file_uploaded lands depends on whether the listing or the job saw the file first.
    const jobs = events.filter((e) => e.event_type !== 'file_uploaded');
    expect(jobs.map((e) => e.event_type)).toEqual([
      'printer_connected',
      'job_created',
      'job_completed',
      'job_created',
      'job_failed',
      'job_created',
      'job_failed',
    ]);
    const meta = jobs.map((e) => e.metadata);
    expect(meta[0]).toEqual({ printer_type: 'prusa', printer_model: model, connection: 'http' });
    expect(meta[1]).toEqual({ printer_type: 'prusa', printer_model: model });
    expect(meta[2]).toMatchObject({ printer_type: 'prusa', printer_model: model });
    // Duration comes from the printer's own time_printing (speed 50 → several simulated seconds), not the wall clock.
    expect(meta[2]!['duration_seconds']).toBeGreaterThan(3);
    expect(meta[4]).toMatchObject({ failure_type: 'cancelled' });
    expect(meta[6]).toMatchObject({ failure_type: 'error' });
    expect(events.filter((e) => e.event_type === 'file_uploaded').map((e) => e.metadata)).toEqual([
      { printer_type: 'prusa', file_type: 'bgcode', size_bytes: 4321 },
      { printer_type: 'prusa', file_type: 'gcode', size_bytes: 99 },
    ]);
    expect(JSON.stringify(events)).not.toMatch(/Bracket|Clip|127\.0\.0\.1|maker|secret/);

    // One request in flight, always.
    expect(sim.stats().maxConcurrent).toBe(1);
  });
});

describe('driver basics', () => {
  it('treats the first poll as a baseline: a running job is not created, but counted when it ends', async () => {
    const sim = await simulator({ speed: 20 });
    sim.startJob({ fileName: 'Running.bgcode', durationS: 100_000 });
    const sink = eventSink();
    const driver = driverFor(sim, sink);
    driver.start();
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    await sleep(100);
    expect(driver.snapshot()).toMatchObject({ state: 'PRINTING', progress: 0 });
    expect(driver.snapshot().remaining_minutes).toBeGreaterThan(1600);
    sim.finishJob();
    await waitFor('completed', () => sink.of('job_completed').length === 1);
    expect(types(sink.events)).toEqual(['printer_connected', 'job_completed']);
  });

  it('uses X-Api-Key when configured', async () => {
    const sim = await simulator({ apiKey: 'key-1' });
    const sink = eventSink();
    driverFor(sim, sink, { apiKey: 'key-1', password: '' }).start();
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    expect(sim.stats().challenges).toBe(0);
  });

  it('calls connected() before the first observe and disconnected() once per outage', async () => {
    const sim = await simulator();
    const calls: string[] = [];
    const tracker: JobTracker = {
      connected: () => calls.push('connected'),
      observe: (o: JobObservation) => calls.push(`observe:${o.state}`),
      disconnected: (r: DisconnectReason) => calls.push(`disconnected:${r}`),
    };
    const driver = driverFor(sim, { emit: () => {}, tracker });
    driver.start();
    await waitFor('two polls', () => calls.length >= 3);
    expect(calls.slice(0, 3)).toEqual(['connected', 'observe:idle', 'observe:idle']);
    sim.setFault('500');
    await waitFor('disconnected', () => calls.includes('disconnected:error'));
    await sleep(300);
    expect(calls.filter((c) => c.startsWith('disconnected'))).toHaveLength(1);
    sim.setFault(null);
    await waitFor('reconnected', () => calls.filter((c) => c === 'connected').length === 2);
    const i = calls.lastIndexOf('connected');
    expect(calls[i + 1]).toBe('observe:idle');
  });

  it('never puts the host, user or password in the snapshot or logs', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const { logger, raw } = memoryLogger();
    const driver = driverFor(sim, { ...sink, logger });
    driver.start();
    await waitFor('connected', () => driver.snapshot().online);
    sim.setFault('500');
    await waitFor('offline', () => !driver.snapshot().online);
    const snapshot = driver.snapshot();
    expect(snapshot).toMatchObject({ id: 'workshop_mk4', name: 'Workshop MK4', type: 'prusa', problem: 'HTTP 500' });
    expect(typeof snapshot.last_seen).toBe('string');
    const text = JSON.stringify(snapshot) + raw.join('');
    expect(text).not.toMatch(/127\.0\.0\.1|secret-pw|maker|localhost/);
    expect(text).toContain('"component":"prusalink"');
  });

  it('stops quickly with a request hanging, and polls no more', async () => {
    const sim = await simulator();
    const driver = driverFor(sim, eventSink(), { timeoutMs: 5000 });
    driver.start();
    await waitFor('first poll', () => driver.snapshot().online);
    sim.setFault('hang');
    await sleep(100);
    const started = Date.now();
    await driver.stop();
    expect(Date.now() - started).toBeLessThan(200);
    const requests = sim.stats().requests;
    await sleep(200);
    expect(sim.stats().requests).toBe(requests);
  });

  it('reports an invalid host in the snapshot instead of throwing', () => {
    const driver = new PrusaLinkDriver(
      { id: 'x', name: 'X', host: 'ftp://nope', username: '', password: 'p', apiKey: '', pollIntervalS: 30 },
      { emit: () => {}, logger: pino({ level: 'silent' }) },
    );
    driver.start();
    expect(driver.snapshot()).toMatchObject({ online: false, problem: 'invalid host', model: 'other', state: null });
  });
});

describe('files', () => {
  it('takes the first listing as a baseline and lists at most every filesIntervalS', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const driver = driverFor(sim, sink, { filesIntervalS: 60 });
    driver.start();
    await waitFor('connected', () => driver.snapshot().online);
    await sleep(100);
    expect(sim.stats().byPath['/api/v1/files/usb/']).toBe(1);
    sim.addFile({ name: 'Later.gcode', sizeBytes: 10 });
    await sleep(200);
    expect(sink.of('file_uploaded')).toHaveLength(0);
    // Printing it reveals it through the job: counted once.
    sim.startJob({ fileName: 'Later.gcode' });
    await waitFor('upload via job', () => sink.of('file_uploaded').length === 1);
    expect(sink.of('file_uploaded')[0]!.metadata).toEqual({
      printer_type: 'prusa',
      file_type: 'gcode',
      size_bytes: 10,
    });
    expect(sim.stats().byPath['/api/v1/files/usb/']).toBe(1);
  });

  it('counts a PUT upload with print-after-upload once, through job and listing alike', async () => {
    const sim = await simulator({ flavour: 'rpi', apiKey: 'k' });
    const sink = eventSink();
    driverFor(sim, sink).start();
    await waitForListing(sim);
    const res = await fetch(`${sim.url}/api/v1/files/local/Upload.gcode`, {
      method: 'PUT',
      headers: { 'X-Api-Key': 'k', 'Print-After-Upload': '?1', 'Content-Type': 'application/octet-stream' },
      body: 'G28\nG1 X10\n',
    });
    expect(res.status).toBe(201);
    await waitFor('job', () => sink.of('job_created').length === 1);
    await sleep(200);
    expect(sink.of('file_uploaded').map((e) => e.metadata)).toEqual([
      { printer_type: 'prusa', file_type: 'gcode', size_bytes: 11 },
    ]);
  });
});

describe('bad input', () => {
  it.each(['buddy', 'rpi'] as const)(
    'wrong password (%s): auth problem, one event, one log line, slow rechecks',
    async (flavour) => {
      const sim = await simulator({ flavour });
      const sink = eventSink();
      const { logger, lines } = memoryLogger();
      const driver = driverFor(sim, { ...sink, logger }, { password: 'wrong', pollIntervalS: 0.02, authRecheckS: 0.3 });
      driver.start();
      await sleep(1000);
      expect(sink.events).toEqual([
        {
          type: 'error_occurred',
          metadata: { error_type: 'auth_failed', component: 'prusalink', printer_type: 'prusa' },
        },
      ]);
      expect(driver.snapshot()).toMatchObject({ online: false, state: null });
      expect(driver.snapshot().problem).toMatch(/^auth refused \(HTTP 401\)/);
      expect(lines.filter((l) => l.level === 40 && /credentials/.test(l.msg))).toHaveLength(1);
      // 3 polls at 20 ms, then one every 300 ms: about 6 polls of two requests, not 50.
      expect(sim.stats().requests).toBeLessThan(20);
    },
  );

  it('a stale nonce on every request: no loop, http_error once, disconnected and back', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const driver = driverFor(sim, sink);
    driver.start();
    await waitFor('connected', () => driver.snapshot().online);
    sim.staleEveryRequest(true);
    await waitFor('disconnected', () => sink.of('printer_disconnected').length === 1);
    await sleep(300);
    expect(driver.snapshot().problem).toMatch(/stale/);
    sim.staleEveryRequest(false);
    await waitFor('reconnected', () => sink.of('printer_connected').length === 2);
    expect(types(sink.events)).toEqual([
      'printer_connected',
      'error_occurred',
      'printer_disconnected',
      'printer_connected',
    ]);
    expect(sink.of('error_occurred')[0]!.metadata['error_type']).toBe('http_error');
    expect(sink.of('printer_disconnected')[0]!.metadata).toMatchObject({ reason: 'error', printer_model: 'MK4' });
  });

  it.each([
    ['html', 'response_unparseable', 'error', /unparseable/],
    ['truncated', 'response_unparseable', 'error', /unparseable/],
    ['500', 'http_error', 'error', /HTTP 500/],
    ['503', null, 'error', /busy/],
    ['hang', null, 'timeout', /timeout/],
  ] as const)(
    'fault %s mid-job: counted once, job kept, no lost or doubled event',
    async (fault, errorType, reason, problem) => {
      const sim = await simulator({ speed: 10 });
      const sink = eventSink();
      const driver = driverFor(sim, sink, { timeoutMs: 150 });
      driver.start();
      await waitFor('connected', () => driver.snapshot().online);
      await waitForListing(sim);
      sim.startJob({ fileName: 'Part.bgcode', durationS: 100_000 });
      await waitFor('job', () => sink.of('job_created').length === 1);
      sim.setFault(fault);
      await waitFor('disconnected', () => sink.of('printer_disconnected').length === 1, 8000);
      await sleep(400); // several more failed polls
      expect(driver.snapshot().online).toBe(false);
      expect(driver.snapshot().problem).toMatch(problem);
      // The job finished while the printer was unreachable; it is counted when it answers again.
      sim.finishJob();
      sim.setFault(null);
      await waitFor('completed', () => sink.of('job_completed').length === 1, 8000);
      await sleep(150);
      const expected: EventType[] = ['printer_connected', 'job_created'];
      if (errorType) expected.push('error_occurred');
      expected.push('printer_disconnected', 'printer_connected', 'job_completed');
      // The new file may be seen by the listing just before the job: its place is not fixed.
      expect(types(sink.events).filter((t) => t !== 'file_uploaded')).toEqual(expected);
      expect(sink.of('file_uploaded')).toHaveLength(1);
      if (errorType) expect(sink.of('error_occurred')[0]!.metadata['error_type']).toBe(errorType);
      expect(sink.of('printer_disconnected')[0]!.metadata['reason']).toBe(reason);
      expect(driver.snapshot().problem).toBeNull();
    },
  );

  it('backs off while offline', async () => {
    const sim = await simulator();
    const driver = driverFor(sim, eventSink(), { pollIntervalS: 0.02, maxBackoffS: 0.25 });
    driver.start();
    await waitFor('connected', () => driver.snapshot().online);
    sim.setFault('500');
    await waitFor('offline', () => !driver.snapshot().online);
    const before = sim.stats().requests;
    await sleep(1000);
    // Without backoff: ~50 polls; with 40, 80, 160, 250, 250 … ms: about 6.
    const polls = sim.stats().requests - before;
    expect(polls).toBeGreaterThan(2);
    expect(polls).toBeLessThan(12);
  });

  it('an unreachable printer at start: network problem, no events at all', async () => {
    const sim = await simulator();
    const url = sim.url;
    await sim.stop();
    const sink = eventSink();
    const driver = new PrusaLinkDriver(
      {
        id: 'gone',
        name: 'Gone',
        host: url,
        username: 'maker',
        password: 'x',
        apiKey: '',
        pollIntervalS: 0.02,
        maxBackoffS: 0.1,
      },
      { emit: sink.emit, logger: pino({ level: 'silent' }) },
    );
    driver.start();
    await sleep(300);
    await driver.stop();
    expect(sink.events).toEqual([]);
    expect(driver.snapshot()).toMatchObject({ online: false, problem: 'cannot connect (ECONNREFUSED)' });
  });

  it('a reboot mid-job (back to IDLE, ids reset): the job fails once, the next one is new', async () => {
    const sim = await simulator({ speed: 10 });
    const sink = eventSink();
    // Listings only once: a new file can only be noticed through the job.
    driverFor(sim, sink, { filesIntervalS: 60 }).start();
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    sim.startJob({ durationS: 100_000 });
    await waitFor('job', () => sink.of('job_created').length === 1);
    await sim.reboot({ downMs: 300 });
    await waitFor('failed', () => sink.of('job_failed').length === 1);
    // The same id as before the reboot, with a file the printer never had: still a new job and a new file.
    expect(sim.startJob({ fileName: 'AfterReboot.gcode', sizeBytes: 7, durationS: 100_000 })).toBe(1);
    await waitFor('new job', () => sink.of('job_created').length === 2);
    await waitFor('its file', () => sink.of('file_uploaded').length === 1);
    await sleep(150);
    expect(types(sink.events)).toEqual([
      'printer_connected',
      'job_created',
      'printer_disconnected',
      'printer_connected',
      'job_failed',
      'job_created',
      'file_uploaded',
    ]);
    expect(sink.of('printer_disconnected')[0]!.metadata['reason']).toBe('network');
  });

  it('a reboot that comes back printing a new job with the same id: old failed, new created', async () => {
    const sim = await simulator({ speed: 200 });
    const sink = eventSink();
    driverFor(sim, sink).start();
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    sim.startJob({ durationS: 1_000_000 });
    await waitFor('job', () => sink.of('job_created').length === 1);
    await sleep(400); // ~80 simulated seconds printed
    await sim.reboot({ downMs: 250 });
    // Started before the driver can poll again: it never sees IDLE, only job 1 with less printing time.
    expect(sim.startJob({ durationS: 1_000_000 })).toBe(1);
    await waitFor('second job', () => sink.of('job_created').length === 2);
    await sleep(150);
    expect(types(sink.events).filter((t) => t.startsWith('job_'))).toEqual([
      'job_created',
      'job_failed',
      'job_created',
    ]);
    expect(sink.of('job_failed')[0]!.metadata['failure_type']).toBe('failed');
  });

  it('states not in the list change nothing and show in the snapshot', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const driver = driverFor(sim, sink);
    driver.start();
    await waitFor('connected', () => driver.snapshot().online);
    sim.forceState('BUSY');
    await waitFor('busy', () => driver.snapshot().state === 'BUSY');
    sim.forceState(null);
    sim.startJob({ durationS: 100_000 });
    await waitFor('job', () => sink.of('job_created').length === 1);
    for (const word of ['CALIBRATING', 'UNKNOWN', 'x<y>', 'PRINTING']) {
      sim.forceState(word);
      await sleep(100);
    }
    expect(driver.snapshot().state).toBe('PRINTING');
    sim.forceState('CALIBRATING');
    sim.finishJob();
    await sleep(150);
    expect(driver.snapshot().state).toBe('CALIBRATING');
    sim.forceState(null);
    await waitFor('completed', () => sink.of('job_completed').length === 1);
    await sleep(100);
    expect(types(sink.events)).toEqual(['printer_connected', 'job_created', 'job_completed']);
  });

  it('an unparseable /api/version at start: never connected, one response_unparseable', async () => {
    const sim = await simulator();
    sim.setFault('html');
    const sink = eventSink();
    const driver = driverFor(sim, sink);
    driver.start();
    await sleep(400);
    expect(sink.events).toEqual([
      {
        type: 'error_occurred',
        metadata: { error_type: 'response_unparseable', component: 'prusalink', printer_type: 'prusa' },
      },
    ]);
    expect(driver.snapshot()).toMatchObject({ online: false, problem: 'unparseable response (not PrusaLink JSON)' });
  });
});
