/**
 * The PrusaLink driver against the simulator over real HTTP with digest auth, through a real fleet (tracker and live
 * state), events into SQLite or an array. The sequences of issue 12 with exact bodies are in replay.test.ts; this
 * file checks what only the network shows: auth, timeouts, faults, backoff, one request in flight, stopping.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { INVALID_HOST_PROBLEM } from '../../../src/printers/prusalink/driver.js';
import type { EventType } from '../../../src/stats/events.js';
import { testService } from '../../helpers.js';
import { bridgeFor, driverFor, eventSink, memoryLogger, simulator, sleep, waitFor, waitForListing } from './helpers.js';

const types = (events: { type: EventType }[]) => events.map((e) => e.type);

describe.each([
  ['buddy', 'MK4'],
  ['rpi', 'MK3S'],
] as const)('driver ↔ %s simulator, events recorded in SQLite', (flavour, model) => {
  it('records connection, jobs and uploads once each', async () => {
    const sim = await simulator({ flavour, speed: 50 });
    const { service, repository } = testService();
    // Regular listings only every minute, so the new job's file is found through the job (and its size with it).
    const bridge = driverFor(
      sim,
      { emit: (type, metadata) => service.recordEvent(type, metadata) },
      { filesIntervalS: 60 },
    );
    const stored = () => repository.getEvents({}, { limit: 1000 });
    const count = (type: EventType) => stored().filter((e) => e.event_type === type).length;

    await waitFor('connected', () => count('printer_connected') === 1);
    expect(bridge.snapshot()).toMatchObject({ online: true, model, state: 'IDLE', problem: null });
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

    // An upload, seen as a transfer: counted when complete, with the transfer's size.
    sim.upload({ name: 'Clip.gcode', sizeBytes: 99, durationS: 20 });
    await waitFor('transfer upload', () => count('file_uploaded') === 2);
    await sleep(200); // nothing more may arrive

    const events = stored();
    expect(events.map((e) => e.event_type)).toEqual([
      'printer_connected',
      'file_uploaded',
      'job_created',
      'job_completed',
      'job_created',
      'job_failed',
      'job_created',
      'job_failed',
      'file_uploaded',
    ]);
    const meta = events.filter((e) => e.event_type !== 'file_uploaded').map((e) => e.metadata);
    expect(meta[0]).toEqual({ printer_type: 'prusa', printer_model: model, connection: 'http' });
    expect(meta[1]).toEqual({ printer_type: 'prusa', printer_model: model });
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

  it('counts an upload seen as a transfer once complete, with its size, and not one that was aborted', async () => {
    const sim = await simulator({ flavour, speed: 20 });
    const sink = eventSink();
    driverFor(sim, sink);
    await waitForListing(sim);
    sim.upload({ name: 'Aborted.bgcode', sizeBytes: 3_000_000, durationS: 10, abortAt: 0.5 });
    await waitFor('transfer seen', () => (sim.stats().byPath['/api/v1/transfer'] ?? 0) >= 1);
    await sleep(800);
    sim.upload({ name: 'Complete.bgcode', sizeBytes: 1_234_567, durationS: 10 });
    await waitFor('upload', () => sink.of('file_uploaded').length === 1);
    await sleep(300);
    expect(sink.events.map((e) => e.metadata)).toEqual([
      { printer_type: 'prusa', printer_model: model, connection: 'http' },
      { printer_type: 'prusa', file_type: 'bgcode', size_bytes: 1_234_567 },
    ]);
  });
});

describe('driver basics', () => {
  it('treats the first poll as a baseline: a running job is not created, but counted when it ends', async () => {
    const sim = await simulator({ speed: 20 });
    sim.startJob({ fileName: 'Running.bgcode', durationS: 100_000 });
    const sink = eventSink();
    const bridge = driverFor(sim, sink);
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    await sleep(100);
    expect(bridge.snapshot()).toMatchObject({ state: 'PRINTING', progress: 0 });
    expect(bridge.snapshot().remaining_minutes).toBeGreaterThan(1600);
    sim.finishJob();
    await waitFor('completed', () => sink.of('job_completed').length === 1);
    expect(types(sink.events)).toEqual(['printer_connected', 'job_completed']);
  });

  it('uses X-Api-Key when configured', async () => {
    const sim = await simulator({ apiKey: 'key-1' });
    const sink = eventSink();
    driverFor(sim, sink, { apiKey: 'key-1', password: '' });
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    expect(sim.stats().challenges).toBe(0);
  });

  it('sends connected before the first observation and disconnected once per outage', async () => {
    const sim = await simulator();
    const bridge = driverFor(sim, eventSink());
    const kinds = () =>
      bridge.updates.map((u) => u.kind).filter((k) => k === 'connected' || k === 'disconnected' || k === 'observation');
    await waitFor('two polls', () => kinds().length >= 3);
    expect(kinds().slice(0, 3)).toEqual(['connected', 'observation', 'observation']);
    sim.setFault('500');
    await waitFor('disconnected', () => kinds().includes('disconnected'));
    await sleep(300);
    expect(kinds().filter((k) => k === 'disconnected')).toHaveLength(1);
    sim.setFault(null);
    await waitFor('reconnected', () => kinds().filter((k) => k === 'connected').length === 2);
    const all = kinds();
    expect(all[all.lastIndexOf('connected') + 1]).toBe('observation');
  });

  it('never puts the host, user or password in the live state or logs; component and printer once per line', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const { logger, raw } = memoryLogger();
    const bridge = driverFor(sim, { ...sink, logger });
    await waitFor('connected', () => bridge.snapshot().online);
    sim.setFault('500');
    await waitFor('offline', () => !bridge.snapshot().online);
    const snapshot = bridge.snapshot();
    expect(snapshot).toMatchObject({ id: 'workshop_mk4', name: 'Workshop MK4', type: 'prusa', problem: 'HTTP 500' });
    expect(typeof snapshot.last_seen).toBe('string');
    const text = JSON.stringify(snapshot) + raw.join('');
    expect(text).not.toMatch(/127\.0\.0\.1|secret-pw|maker|localhost/);
    const driverLines = raw.filter((l) => l.includes('"component":"prusalink"'));
    expect(driverLines.length).toBeGreaterThan(1);
    for (const line of driverLines) {
      expect(line.match(/"component"/g)).toHaveLength(1);
      expect(line.match(/"printer"/g)).toHaveLength(1);
    }
  });

  it('stops quickly with a request hanging, and polls no more', async () => {
    const sim = await simulator();
    const bridge = driverFor(sim, eventSink(), { timeoutMs: 5000 });
    await waitFor('first poll', () => bridge.snapshot().online);
    sim.setFault('hang');
    await sleep(100);
    const started = Date.now();
    await bridge.stop();
    expect(Date.now() - started).toBeLessThan(200);
    const requests = sim.stats().requests;
    await sleep(200);
    expect(sim.stats().requests).toBe(requests);
  });

  it('shows an invalid host as the problem instead of throwing', () => {
    const bridge = bridgeFor('ftp://nope', { emit: () => {} }, { pollIntervalS: 30 });
    expect(bridge.snapshot()).toMatchObject({
      online: false,
      problem: INVALID_HOST_PROBLEM,
      model: 'other',
      state: null,
    });
  });
});

describe('files', () => {
  it('takes the first listing as a baseline, lists every filesIntervalS, and at once for an unknown job file', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const bridge = driverFor(sim, sink, { filesIntervalS: 60 });
    await waitFor('connected', () => bridge.snapshot().online);
    await sleep(100);
    expect(sim.stats().byPath['/api/v1/files/usb/']).toBe(1);
    sim.addFile({ name: 'Later.gcode', sizeBytes: 10 });
    await sleep(200);
    expect(sink.of('file_uploaded')).toHaveLength(0);
    // Printing it: the job's file is unknown, a fresh listing shows it new: one upload, the job's size.
    sim.startJob({ fileName: 'Later.gcode' });
    await waitFor('upload via job', () => sink.of('file_uploaded').length === 1);
    expect(sink.of('file_uploaded')[0]!.metadata).toEqual({
      printer_type: 'prusa',
      file_type: 'gcode',
      size_bytes: 10,
    });
    expect(sim.stats().byPath['/api/v1/files/usb/']).toBe(2);
  });

  it('counts a PUT upload with print-after-upload once, through job and listing alike', async () => {
    const sim = await simulator({ flavour: 'rpi', apiKey: 'k' });
    const sink = eventSink();
    driverFor(sim, sink);
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
      const bridge = driverFor(sim, { ...sink, logger }, { password: 'wrong', pollIntervalS: 0.02, authRecheckS: 0.3 });
      await sleep(1000);
      expect(sink.events).toEqual([
        {
          type: 'error_occurred',
          metadata: { error_type: 'auth_failed', component: 'prusalink', printer_type: 'prusa' },
        },
      ]);
      expect(bridge.snapshot()).toMatchObject({ online: false, state: null });
      expect(bridge.snapshot().problem).toMatch(/^auth refused \(HTTP 401\)/);
      expect(lines.filter((l) => l.level === 40 && /credentials/.test(l.msg))).toHaveLength(1);
      // 3 polls at 20 ms, then one every 300 ms: about 6 polls of two requests, not 50.
      expect(sim.stats().requests).toBeLessThan(20);
    },
  );

  it('a stale nonce on every request: no loop, http_error once, disconnected and back', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const bridge = driverFor(sim, sink);
    await waitFor('connected', () => bridge.snapshot().online);
    sim.staleEveryRequest(true);
    await waitFor('disconnected', () => sink.of('printer_disconnected').length === 1);
    await sleep(300);
    expect(bridge.snapshot().problem).toMatch(/stale/);
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
      const bridge = driverFor(sim, sink, { timeoutMs: 150 });
      await waitFor('connected', () => bridge.snapshot().online);
      await waitForListing(sim);
      sim.startJob({ fileName: 'Part.bgcode', durationS: 100_000 });
      await waitFor('job', () => sink.of('job_created').length === 1);
      sim.setFault(fault);
      await waitFor('disconnected', () => sink.of('printer_disconnected').length === 1, 8000);
      await sleep(400); // several more failed polls
      expect(bridge.snapshot().online).toBe(false);
      expect(bridge.snapshot().problem).toMatch(problem);
      // The job finished while the printer was unreachable; it is counted when it answers again.
      sim.finishJob();
      sim.setFault(null);
      await waitFor('completed', () => sink.of('job_completed').length === 1, 8000);
      await sleep(150);
      const expected: EventType[] = ['printer_connected', 'file_uploaded', 'job_created'];
      if (errorType) expected.push('error_occurred');
      expected.push('printer_disconnected', 'printer_connected', 'job_completed');
      expect(types(sink.events)).toEqual(expected);
      if (errorType) expect(sink.of('error_occurred')[0]!.metadata['error_type']).toBe(errorType);
      expect(sink.of('printer_disconnected')[0]!.metadata['reason']).toBe(reason);
      expect(bridge.snapshot().problem).toBeNull();
    },
  );

  it('backs off while offline', async () => {
    const sim = await simulator();
    const bridge = driverFor(sim, eventSink(), { pollIntervalS: 0.02, maxBackoffS: 0.25 });
    await waitFor('connected', () => bridge.snapshot().online);
    sim.setFault('500');
    await waitFor('offline', () => !bridge.snapshot().online);
    const before = sim.stats().requests;
    await sleep(1000);
    // Without backoff: ~50 polls; with 40-80, 80-160, 125-250 … ms (jittered): about 6.
    const polls = sim.stats().requests - before;
    expect(polls).toBeGreaterThan(2);
    expect(polls).toBeLessThan(14);
  });

  it('an unreachable printer at start: network problem, no events at all', async () => {
    const sim = await simulator();
    const url = sim.url;
    await sim.stop();
    const sink = eventSink();
    const bridge = bridgeFor(url, sink, { pollIntervalS: 0.02, maxBackoffS: 0.1 });
    await sleep(300);
    expect(bridge.snapshot()).toMatchObject({ online: false, problem: 'cannot connect (ECONNREFUSED)' });
    await bridge.stop();
    expect(sink.events).toEqual([]);
  });

  it('a reboot mid-job (IDLE after no answer, job ids kept): the job is lost (error), the next one is new', async () => {
    const sim = await simulator({ speed: 10 });
    const sink = eventSink();
    // Listings only once: a new file can only be noticed through the job.
    driverFor(sim, sink, { filesIntervalS: 60 });
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    expect(sim.startJob({ durationS: 100_000 })).toBe(1);
    await waitFor('job', () => sink.of('job_created').length === 1);
    await sim.reboot({ downMs: 300 });
    await waitFor('failed', () => sink.of('job_failed').length === 1);
    // The firmware keeps its job ids across the reboot: the next job is 2.
    expect(sim.startJob({ fileName: 'AfterReboot.gcode', sizeBytes: 7, durationS: 100_000 })).toBe(2);
    await waitFor('new job', () => sink.of('job_created').length === 2);
    await waitFor('its file', () => sink.of('file_uploaded').length === 1);
    await sleep(150);
    expect(types(sink.events)).toEqual([
      'printer_connected',
      'job_created',
      'printer_disconnected',
      'printer_connected',
      'job_failed',
      'file_uploaded',
      'job_created',
    ]);
    expect(sink.of('printer_disconnected')[0]!.metadata['reason']).toBe('network');
    expect(sink.of('job_failed')[0]!.metadata['failure_type']).toBe('error');
  });

  it('a power cut with power-panic recovery keeps the job: one job, completed', async () => {
    const sim = await simulator({ speed: 20 });
    const sink = eventSink();
    driverFor(sim, sink);
    await waitFor('connected', () => sink.of('printer_connected').length === 1);
    sim.startJob({ durationS: 100_000 });
    await waitFor('job', () => sink.of('job_created').length === 1);
    await sim.powerPanic({ downMs: 300, busyS: 4 });
    await waitFor('back', () => sink.of('printer_connected').length === 2);
    await waitFor('attention', () => sim.state === 'ATTENTION');
    await sleep(150);
    sim.resumeJob();
    await sleep(150);
    sim.finishJob();
    await waitFor('completed', () => sink.of('job_completed').length === 1);
    await sleep(100);
    expect(types(sink.events).filter((t) => t.startsWith('job_'))).toEqual(['job_created', 'job_completed']);
  });

  it('states not in the list change nothing and show in the live state', async () => {
    const sim = await simulator();
    const sink = eventSink();
    const bridge = driverFor(sim, sink);
    await waitFor('connected', () => bridge.snapshot().online);
    sim.forceState('BUSY');
    await waitFor('busy', () => bridge.snapshot().state === 'BUSY');
    sim.forceState(null);
    sim.startJob({ durationS: 100_000 });
    await waitFor('job', () => sink.of('job_created').length === 1);
    for (const word of ['CALIBRATING', 'UNKNOWN', 'x<y>', 'PRINTING']) {
      sim.forceState(word);
      await sleep(100);
    }
    expect(bridge.snapshot().state).toBe('PRINTING');
    sim.forceState('CALIBRATING');
    sim.finishJob();
    await sleep(150);
    expect(bridge.snapshot().state).toBe('CALIBRATING');
    sim.forceState(null);
    await waitFor('completed', () => sink.of('job_completed').length === 1);
    await sleep(100);
    expect(types(sink.events)).toEqual(['printer_connected', 'job_created', 'job_completed']);
  });

  it('an unparseable /api/version at start: never connected, one response_unparseable', async () => {
    const sim = await simulator();
    sim.setFault('html');
    const sink = eventSink();
    const bridge = driverFor(sim, sink);
    await sleep(400);
    expect(sink.events).toEqual([
      {
        type: 'error_occurred',
        metadata: { error_type: 'response_unparseable', component: 'prusalink', printer_type: 'prusa' },
      },
    ]);
    expect(bridge.snapshot()).toMatchObject({ online: false, problem: 'unparseable response (not PrusaLink JSON)' });
  });

  it('old Buddy firmware (4.6.4, no API v1): the problem shown, online, no events but the connection', async () => {
    const sim = await simulator({ firmware: '4.6.4' });
    const sink = eventSink();
    const { logger, lines } = memoryLogger();
    const bridge = driverFor(sim, { ...sink, logger });
    await waitFor('connected', () => bridge.snapshot().online);
    await sleep(800);
    expect(sink.events).toEqual([
      { type: 'printer_connected', metadata: { printer_type: 'prusa', printer_model: 'other', connection: 'http' } },
    ]);
    expect(bridge.snapshot().problem).toMatch(/^PrusaLink API v1 needed/);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
  });

  it('reads with pino silent logger too (no crash without a traffic tap)', async () => {
    const sim = await simulator();
    const bridge = bridgeFor(sim.url, { emit: () => {}, logger: pino({ level: 'silent' }) });
    await waitFor('connected', () => bridge.snapshot().online);
  });
});
