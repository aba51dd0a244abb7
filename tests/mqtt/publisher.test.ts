/**
 * The MQTT mirror against a real mosquitto on loopback: topics, retained flags, payloads, Home Assistant discovery,
 * broker restarts, the bounded queue, the birth message and removal of printers taken out of the config.
 */
import type { Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { type MirrorPrinter, type MirrorTuning, MqttMirror } from '../../src/mqtt/publisher.js';
import type { MqttSettings } from '../../src/mqtt/settings.js';
import type { PrinterSnapshot } from '../../src/printers/types.js';
import type { UsageStatsService } from '../../src/stats/service.js';
import { SETTINGS } from '../../src/stats/settings-keys.js';
import { testService } from '../helpers.js';
import { requireTool } from '../requirements.js';
import { validateDiscovery } from './ha-schema.js';
import {
  captureLogger,
  freePort,
  MOSQUITTO_HINT,
  mosquittoBinary,
  mosquittoPasswdBinary,
  observe,
  onCleanup,
  retainedSnapshot,
  sleep,
  startBroker,
  waitFor,
} from './helpers.js';

const haveMosquitto = requireTool('mosquitto', () => mosquittoBinary !== null, MOSQUITTO_HINT);
const haveMosquittoPasswd = requireTool('mosquitto_passwd', () => mosquittoPasswdBinary !== null, MOSQUITTO_HINT);

const X1C: MirrorPrinter = { id: 'workshop_x1c', name: 'Workshop X1C', type: 'bambu_lab' };
const MK4: MirrorPrinter = { id: 'mk4', name: 'MK4', type: 'prusa' };

function snapshotOf(printer: MirrorPrinter, overrides: Partial<PrinterSnapshot> = {}): PrinterSnapshot {
  return {
    id: printer.id,
    name: printer.name,
    type: printer.type,
    model: printer.type === 'bambu_lab' ? 'X1C' : 'MK4',
    online: true,
    state: 'RUNNING',
    progress: 42,
    remaining_minutes: 17,
    last_seen: '2026-11-02T10:00:00.000Z',
    problem: null,
    ...overrides,
  };
}

interface MirrorSetup {
  url: string;
  service?: UsageStatsService;
  printers?: MirrorPrinter[];
  snapshots?: PrinterSnapshot[];
  settings?: Partial<MqttSettings>;
  tuning?: MirrorTuning;
  logger?: Logger;
}

function startMirror(setup: MirrorSetup) {
  const service = setup.service ?? testService().service;
  const snapshots = setup.snapshots ?? [];
  const mirror = new MqttMirror({
    settings: {
      url: setup.url,
      username: undefined,
      password: undefined,
      baseTopic: 'printernizer',
      discovery: true,
      discoveryPrefix: 'homeassistant',
      source: 'config',
      ...setup.settings,
    },
    source: service,
    printers: setup.printers ?? [],
    snapshots: () => snapshots,
    logger: setup.logger ?? silentLogger(),
    version: '0.1.0',
    reconnectPeriodMs: 200,
    connectTimeoutMs: 2000,
    statsDebounceMs: 100,
    stopTimeoutMs: 1000,
    ...setup.tuning,
  });
  const unsubscribe = service.onRecorded((event) => mirror.publishEvent(event));
  onCleanup(async () => {
    unsubscribe();
    await mirror.stop();
  });
  mirror.start();
  return { mirror, service, snapshots };
}

const discoveryCount = (messages: { topic: string }[]) =>
  messages.filter((m) => m.topic.startsWith('homeassistant/') && m.topic.endsWith('/config')).length;

describe.skipIf(!haveMosquitto)('MQTT mirror against mosquitto', () => {
  it('publishes bridge state, events, the stats summary and printer state with the right flags and payloads', async () => {
    const broker = await startBroker();
    const observer = await observe(broker.url);
    const { mirror, service, snapshots } = startMirror({
      url: broker.url,
      printers: [X1C],
      snapshots: [snapshotOf(X1C)],
    });
    await waitFor(() => mirror.connected, 5000, 'connect');
    await observer.waitFor(() => observer.last('printernizer/stats') !== undefined, 'initial stats');

    const recorded = [
      service.recordEvent('job_created', { printer_type: 'bambu_lab', printer_model: 'X1C' }),
      service.recordEvent('job_completed', { printer_type: 'bambu_lab', printer_model: 'X1C', duration_seconds: 5400 }),
      service.recordEvent('job_failed', {
        printer_type: 'bambu_lab',
        printer_model: 'X1C',
        duration_seconds: 1800,
        failure_type: 'cancelled',
      }),
    ];
    service.optIn();
    await observer.waitFor((m) => m.filter((x) => x.topic === 'printernizer/events').length >= 4, 'events');
    const events = observer.on('printernizer/events');
    expect(events.every((e) => e.qos === 1)).toBe(true);
    expect(JSON.parse(events[0]!.payload)).toEqual({
      id: recorded[0]!.id,
      event_type: 'job_created',
      timestamp: recorded[0]!.timestamp,
      metadata: { printer_type: 'bambu_lab', printer_model: 'X1C' },
      submitted: false,
    });
    expect(events.map((e) => JSON.parse(e.payload).event_type)).toEqual([
      'job_created',
      'job_completed',
      'job_failed',
      'feature_enabled',
    ]);

    // The burst gives one summary after the debounce, not one per event.
    await observer.waitFor((m) => m.filter((x) => x.topic === 'printernizer/stats').length >= 2, 'debounced stats');
    await sleep(300);
    expect(observer.on('printernizer/stats')).toHaveLength(2);
    const stats = JSON.parse(observer.last('printernizer/stats')!.payload);
    expect(stats).toMatchObject({
      total_events: 4,
      jobs_created: 1,
      jobs_completed: 1,
      jobs_failed: 1,
      success_rate: 50,
      print_hours: 2,
      opt_in_status: 'enabled',
      this_week: { job_count: 1, job_completed_count: 1, job_failed_count: 1 },
    });
    expect(stats).not.toHaveProperty('installation_id');

    snapshots[0] = snapshotOf(X1C, { state: 'FINISH', progress: 100, remaining_minutes: 0 });
    mirror.printersChanged([snapshots[0]]);
    await observer.waitFor(
      () => JSON.parse(observer.last('printernizer/printers/workshop_x1c/state')?.payload ?? '{}').state === 'FINISH',
      'printer state',
    );
    // Live state goes out at QoS 0 (superseded within seconds, re-published on every connect); events at QoS 1.
    const stateQos = observer.on('printernizer/printers/workshop_x1c/state').map((m) => m.qos);
    expect(new Set(stateQos)).toEqual(new Set([0]));

    // What a client connecting now sees: retained state, discovery, never the events.
    const retained = await retainedSnapshot(broker.url);
    expect(retained.get('printernizer/bridge/state')).toBe('online');
    expect(JSON.parse(retained.get('printernizer/stats')!)).toMatchObject({ jobs_completed: 1 });
    expect(JSON.parse(retained.get('printernizer/printers/workshop_x1c/state')!)).toEqual(snapshots[0]);
    expect(retained.has('printernizer/events')).toBe(false);
    const configs = [...retained].filter(([topic]) => topic.startsWith('homeassistant/'));
    expect(configs).toHaveLength(8);
    for (const [topic, payload] of configs) validateDiscovery('homeassistant', topic, payload);

    await mirror.stop();
    const after = await retainedSnapshot(broker.url, ['printernizer/#']);
    expect(after.get('printernizer/bridge/state')).toBe('offline');
  });

  it('sends the printer states changed within the flush window together, the latest of each, and the rest at stop', async () => {
    const broker = await startBroker();
    const observer = await observe(broker.url);
    const { mirror } = startMirror({
      url: broker.url,
      printers: [X1C, MK4],
      snapshots: [snapshotOf(X1C), snapshotOf(MK4)],
      tuning: { stateFlushMs: 300 },
    });
    await waitFor(() => mirror.connected, 5000, 'connect');
    const x1cTopic = 'printernizer/printers/workshop_x1c/state';
    const mk4Topic = 'printernizer/printers/mk4/state';
    await observer.waitFor(
      () => observer.on(x1cTopic).length === 1 && observer.on(mk4Topic).length === 1,
      'on connect',
    );

    for (const progress of [43, 44, 45]) mirror.printersChanged([snapshotOf(X1C, { progress })]);
    mirror.printersChanged([snapshotOf(MK4, { state: 'FINISHED', progress: 100 })]);
    await sleep(100);
    expect(observer.on(x1cTopic)).toHaveLength(1); // still within the window
    await observer.waitFor(() => observer.on(x1cTopic).length === 2 && observer.on(mk4Topic).length === 2, 'flush');
    expect(JSON.parse(observer.last(x1cTopic)!.payload).progress).toBe(45);
    expect(JSON.parse(observer.last(mk4Topic)!.payload).state).toBe('FINISHED');
    await sleep(400);
    expect(observer.on(x1cTopic)).toHaveLength(2);

    // A change still waiting when the mirror stops is sent before `offline`.
    mirror.printersChanged([snapshotOf(X1C, { state: 'FINISH', progress: 100 })]);
    await mirror.stop();
    const retained = await retainedSnapshot(broker.url, ['printernizer/#']);
    expect(JSON.parse(retained.get(x1cTopic)!).state).toBe('FINISH');
    expect(retained.get('printernizer/bridge/state')).toBe('offline');
  });

  it('updates a printer device in discovery once its model is known', async () => {
    const broker = await startBroker();
    const { mirror, snapshots } = startMirror({
      url: broker.url,
      printers: [X1C],
      snapshots: [snapshotOf(X1C, { model: 'other', online: false, state: null })],
    });
    await waitFor(() => mirror.connected, 5000, 'connect');
    const topic = `homeassistant/sensor/${mirror.discoveryNodeId()}/printer_workshop_x1c_state/config`;
    const deviceModel = async () => JSON.parse((await retainedSnapshot(broker.url)).get(topic) ?? '{}').device?.model;
    expect(await deviceModel()).toBe('unknown model');
    snapshots[0] = snapshotOf(X1C, { model: 'X1C' });
    mirror.printersChanged([snapshots[0]]);
    expect(await deviceModel()).toBe('X1C');
  });

  it('keeps the discovery node id across restarts and uses a configured base topic and prefix', async () => {
    const broker = await startBroker();
    const { service } = testService();
    const first = startMirror({
      url: broker.url,
      service,
      settings: { baseTopic: 'lab/pstats', discoveryPrefix: 'ha' },
    });
    await waitFor(() => first.mirror.connected, 5000, 'connect');
    const nodeId = first.mirror.discoveryNodeId();
    expect(nodeId).toMatch(/^printernizer_stats_[0-9a-f]{6}$/);
    await first.mirror.stop();
    const second = startMirror({
      url: broker.url,
      service,
      settings: { baseTopic: 'lab/pstats', discoveryPrefix: 'ha' },
    });
    await waitFor(() => second.mirror.connected, 5000, 'reconnect');
    expect(second.mirror.discoveryNodeId()).toBe(nodeId);
    const retained = await retainedSnapshot(broker.url);
    expect(retained.get('lab/pstats/bridge/state')).toBe('online');
    expect(retained.get(`ha/sensor/${nodeId}/jobs_completed/config`)).toContain('"state_topic":"lab/pstats/stats"');
  });

  it('survives a broker restart: queues events, reports the outage once, re-publishes retained state', async () => {
    const broker = await startBroker({ persist: true });
    const observer = await observe(broker.url, ['printernizer/#'], { session: 'observer-restart' });
    const { mirror, service } = startMirror({ url: broker.url, printers: [X1C], snapshots: [snapshotOf(X1C)] });
    await waitFor(() => mirror.connected, 5000, 'connect');
    service.recordEvent('job_created', { printer_type: 'bambu_lab', printer_model: 'X1C' });
    await observer.waitFor((m) => m.some((x) => x.topic === 'printernizer/events'), 'first event');

    await broker.stop();
    await waitFor(() => !mirror.connected, 5000, 'disconnect');
    // Recording never waits for the broker.
    const started = Date.now();
    for (let i = 0; i < 3; i++) {
      service.recordEvent('job_completed', { printer_type: 'bambu_lab', printer_model: 'X1C', duration_seconds: 60 });
    }
    expect(Date.now() - started).toBeLessThan(200);
    await sleep(800); // several failed reconnect attempts: still one outage
    expect(mirror.queuedEvents()).toBe(4); // three jobs and the one error_occurred
    await broker.start();
    await waitFor(() => mirror.connected, 5000, 'reconnect');
    await observer.waitFor(
      (m) => m.filter((x) => x.topic === 'printernizer/events' && !x.dup).length >= 5,
      'queued events after the restart',
    );
    // The restarted broker may redeliver to the observer what it had in flight (dup set): QoS 1 is at least once.
    const types = observer
      .on('printernizer/events')
      .filter((e) => !e.dup)
      .map((e) => JSON.parse(e.payload) as { event_type: string; metadata: object });
    expect(types.map((t) => t.event_type)).toEqual([
      'job_created',
      'error_occurred',
      'job_completed',
      'job_completed',
      'job_completed',
    ]);
    expect(types[1]!.metadata).toEqual({ error_type: 'broker_unavailable', component: 'mqtt_publish' });
    expect(service.getLocalStats().events_by_type.error_occurred).toBe(1);
    expect(mirror.queuedEvents()).toBe(0);
    expect(mirror.connections).toBe(2);
    const retained = await retainedSnapshot(broker.url, ['printernizer/#']);
    expect(retained.get('printernizer/bridge/state')).toBe('online');
    expect(JSON.parse(retained.get('printernizer/stats')!)).toMatchObject({ jobs_completed: 3 });
  });

  it('bounds the queue while the broker is away: the oldest events are dropped, counted and logged once', async () => {
    const broker = await startBroker({ persist: true });
    const observer = await observe(broker.url, ['printernizer/events'], { session: 'observer-queue' });
    await broker.stop();
    const log = captureLogger();
    const { mirror, service } = startMirror({ url: broker.url, tuning: { queueLimit: 5 }, logger: log.logger });
    await waitFor(() => service.getLocalStats().events_by_type.error_occurred === 1, 5000, 'the outage');
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      ids.push(service.recordEvent('job_created', { printer_type: 'prusa', printer_model: 'MK4' })!.id);
    }
    expect(mirror.queuedEvents()).toBe(5);
    expect(mirror.droppedEvents).toBe(8); // 13 queued (the error_occurred first), 5 kept
    expect(log.lines.filter((l) => l.msg.includes('dropping the oldest'))).toHaveLength(1);
    await broker.start();
    await observer.waitFor((m) => m.length >= 5, 'the kept events');
    await sleep(200);
    expect(observer.messages.map((m) => JSON.parse(m.payload).id)).toEqual(ids.slice(-5));
    expect(log.lines.some((l) => l.msg.includes('reachable again') && l.dropped === 8)).toBe(true);
  });

  it('re-publishes discovery and state when Home Assistant announces itself, not on a retained status', async () => {
    const broker = await startBroker();
    const observer = await observe(broker.url);
    // A retained "online" left on the broker arrives with the subscription: old news, no re-publish.
    await observer.publish('homeassistant/status', 'online', true);
    const { mirror } = startMirror({ url: broker.url, printers: [X1C], snapshots: [snapshotOf(X1C)] });
    await waitFor(() => mirror.connected, 5000, 'connect');
    await observer.waitFor((m) => discoveryCount(m) >= 8, 'discovery');
    await sleep(400);
    expect(discoveryCount(observer.messages)).toBe(8);
    const statsBefore = observer.on('printernizer/stats').length;

    await observer.publish('homeassistant/status', 'offline');
    await sleep(200);
    expect(discoveryCount(observer.messages)).toBe(8);
    await observer.publish('homeassistant/status', 'online');
    await observer.waitFor((m) => discoveryCount(m) >= 16, 'discovery again');
    await observer.waitFor(() => observer.on('printernizer/stats').length > statsBefore, 'stats again');
    expect(observer.on('printernizer/printers/workshop_x1c/state').length).toBeGreaterThanOrEqual(2);
  });

  it('removes the discovery and state of a printer taken out of the config, also after a restart', async () => {
    const broker = await startBroker();
    const { service } = testService();
    const first = startMirror({
      url: broker.url,
      service,
      printers: [X1C, MK4],
      snapshots: [snapshotOf(X1C), snapshotOf(MK4)],
    });
    await waitFor(() => first.mirror.connected, 5000, 'connect');
    await waitFor(() => service.getSetting(SETTINGS.mqttPublished) !== null, 5000, 'published record');
    const nodeId = first.mirror.discoveryNodeId();
    let retained = await retainedSnapshot(broker.url);
    expect(retained.has(`homeassistant/sensor/${nodeId}/printer_mk4_state/config`)).toBe(true);
    expect(retained.has('printernizer/printers/mk4/state')).toBe(true);
    await first.mirror.stop();

    // The next run only has the X1C: it learns from the settings table what to remove.
    const second = startMirror({ url: broker.url, service, printers: [X1C], snapshots: [snapshotOf(X1C)] });
    await waitFor(() => second.mirror.connected, 5000, 'reconnect');
    await waitFor(
      () => JSON.parse(service.getSetting(SETTINGS.mqttPublished) ?? '{}').printers?.length === 1,
      5000,
      'record updated',
    );
    retained = await retainedSnapshot(broker.url);
    expect([...retained.keys()].filter((t) => t.includes('mk4'))).toEqual([]);
    expect(retained.has(`homeassistant/sensor/${nodeId}/printer_workshop_x1c_state/config`)).toBe(true);
    expect(retained.has('printernizer/printers/workshop_x1c/state')).toBe(true);
    await second.mirror.stop();

    // Discovery switched off: every config goes, the state topics stay.
    const third = startMirror({
      url: broker.url,
      service,
      printers: [X1C],
      snapshots: [snapshotOf(X1C)],
      settings: { discovery: false },
    });
    await waitFor(() => third.mirror.connected, 5000, 'third connect');
    await waitFor(
      () => JSON.parse(service.getSetting(SETTINGS.mqttPublished) ?? '{}').discovery === false,
      5000,
      'record updated',
    );
    retained = await retainedSnapshot(broker.url);
    expect([...retained.keys()].filter((t) => t.startsWith('homeassistant/'))).toEqual([]);
    expect(retained.has('printernizer/printers/workshop_x1c/state')).toBe(true);
  });

  it.skipIf(!haveMosquittoPasswd)(
    'logs in with a username and password; a refused login is one auth_failed',
    async () => {
      const broker = await startBroker({ users: { printernizer: 's3cret-pass' } });
      const good = startMirror({ url: broker.url, settings: { username: 'printernizer', password: 's3cret-pass' } });
      await waitFor(() => good.mirror.connected, 5000, 'login');
      const retained = await retainedSnapshot(`mqtt://printernizer:s3cret-pass@127.0.0.1:${broker.port}`, [
        'printernizer/#',
      ]);
      expect(retained.get('printernizer/bridge/state')).toBe('online');

      const bad = startMirror({ url: broker.url, settings: { username: 'printernizer', password: 'wrong' } });
      await waitFor(() => bad.service.getLocalStats().events_by_type.error_occurred === 1, 5000, 'auth error');
      await sleep(800); // several refused attempts
      expect(bad.mirror.connected).toBe(false);
      const errors = bad.service.exportStats().events.filter((e) => e.event_type === 'error_occurred');
      expect(errors.map((e) => e.metadata)).toEqual([{ error_type: 'auth_failed', component: 'mqtt_publish' }]);
    },
  );

  it('never blocks or throws when no broker listens at all', async () => {
    const port = await freePort();
    const { mirror, service } = startMirror({ url: `mqtt://127.0.0.1:${port}` });
    const event = service.recordEvent('app_start', service.appStartMetadata());
    expect(event).not.toBeNull();
    await sleep(300);
    expect(mirror.connected).toBe(false);
    const started = Date.now();
    await mirror.stop();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
