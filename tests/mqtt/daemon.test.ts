/**
 * The mirror wired into the daemon: everything recorded from app_start to app_shutdown is mirrored, printer changes
 * reach their retained topics, no secret from the config is ever published, and a killed daemon leaves `offline`
 * (its last will) on the bridge state.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app.js';
import { type PrinterConfig, parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import type { DriverFactory } from '../../src/printers/fleet.js';
import type { DriverDeps, LiveStatus, PrinterDriver, PrinterUpdate } from '../../src/printers/types.js';
import { tempDir } from '../helpers.js';
import { requireTool } from '../requirements.js';
import {
  freePort,
  MOSQUITTO_HINT,
  mosquittoBinary,
  observe,
  onCleanup,
  retainedSnapshot,
  sleep,
  startBroker,
} from './helpers.js';

const haveMosquitto = requireTool('mosquitto', () => mosquittoBinary !== null, MOSQUITTO_HINT);

const SECRETS = ['01S00C123456789', 'AC0DE123', '192.168.77.20', 'printer-host.lan', 'prusa-secret'];

function printersConfig() {
  return [
    {
      name: 'Workshop X1C',
      type: 'bambu_lab',
      host: '192.168.77.20',
      serial: '01S00C123456789',
      access_code: 'AC0DE123',
    },
    { name: 'Küche MK4', type: 'prusa', host: 'http://printer-host.lan', password: 'prusa-secret' },
  ];
}

/** A driver the test scripts: it tells the fleet what a printer would, through the same updates. */
class FakeDriver implements PrinterDriver {
  constructor(
    readonly id: string,
    private readonly type: PrinterConfig['type'],
    private readonly deps: DriverDeps,
  ) {}
  start(): void {
    this.send({ kind: 'model', model: this.type === 'bambu_lab' ? 'X1C' : 'MK4' });
    this.send({ kind: 'connected' });
    this.report({ state: 'IDLE', progress: null, remaining_minutes: null });
  }
  async stop(): Promise<void> {}
  send(update: PrinterUpdate): void {
    this.deps.update(update);
  }
  report(status: LiveStatus): void {
    this.send({
      kind: 'observation',
      observation: { state: status.state === 'RUNNING' ? 'printing' : 'idle' },
      status,
    });
  }
}

describe.skipIf(!haveMosquitto)('the daemon with the MQTT mirror', () => {
  it('mirrors app_start to app_shutdown, printer changes and discovery, and publishes no secret', async () => {
    const broker = await startBroker();
    const observer = await observe(broker.url);
    const drivers = new Map<string, FakeDriver>();
    const createDriver: DriverFactory = (printer, id, deps) => {
      const driver = new FakeDriver(id, printer.type, deps);
      drivers.set(id, driver);
      return driver;
    };
    const daemon = new Daemon({
      config: parseConfig({ printers: printersConfig(), mqtt: { enabled: true, url: broker.url } }),
      dataDir: tempDir(),
      port: 0,
      host: '127.0.0.1',
      logger: silentLogger(),
      env: {},
      createDriver,
      mqtt: { reconnectPeriodMs: 200, statsDebounceMs: 100 },
    });
    onCleanup(() => daemon.stop('test cleanup'));
    await daemon.start();

    const eventTypes = () => observer.on('printernizer/events').map((m) => JSON.parse(m.payload).event_type as string);
    await observer.waitFor(() => eventTypes().length >= 5, 'the start-up events');
    expect(eventTypes()).toEqual([
      'app_start',
      'feature_enabled',
      'feature_enabled',
      'printer_connected',
      'printer_connected',
    ]);
    await observer.waitFor(
      () =>
        observer.last('printernizer/printers/workshop_x1c/state') !== undefined &&
        observer.last('printernizer/printers/kuche_mk4/state') !== undefined,
      'printer states',
    );

    // A change in a bridge reaches its retained topic as it happens; being seen again alone does not.
    const x1c = drivers.get('workshop_x1c')!;
    x1c.report({ state: 'RUNNING', progress: 12, remaining_minutes: 80 });
    await observer.waitFor(
      () => JSON.parse(observer.last('printernizer/printers/workshop_x1c/state')!.payload).state === 'RUNNING',
      'changed state',
      2000,
    );
    const published = observer.on('printernizer/printers/workshop_x1c/state').length;
    x1c.send({ kind: 'seen' });
    x1c.report({ state: 'RUNNING', progress: 12, remaining_minutes: 80 });
    await sleep(500);
    expect(observer.on('printernizer/printers/workshop_x1c/state')).toHaveLength(published);

    const retained = await retainedSnapshot(broker.url);
    const configs = [...retained.keys()].filter((t) => t.startsWith('homeassistant/'));
    expect(configs.filter((t) => t.includes('printer_kuche_mk4_'))).toHaveLength(2);
    expect(configs).toHaveLength(10);

    await daemon.stop('test');
    await observer.waitFor(() => observer.last('printernizer/bridge/state')?.payload === 'offline', 'offline');
    const order = observer.messages
      .filter((m) => m.topic === 'printernizer/events' || m.topic === 'printernizer/bridge/state')
      .map((m) => (m.topic === 'printernizer/events' ? JSON.parse(m.payload).event_type : m.payload));
    expect(order.slice(-2)).toEqual(['app_shutdown', 'offline']);

    const everything = observer.messages.map((m) => `${m.topic} ${m.payload}`).join('\n');
    for (const secret of SECRETS) expect(everything).not.toContain(secret);
  });

  it('leaves its last will, a retained offline, when the daemon process is killed', async () => {
    const broker = await startBroker();
    const observer = await observe(broker.url, ['printernizer/bridge/state']);
    const dir = tempDir();
    const configPath = join(dir, 'options.json');
    const closedPort = await freePort();
    writeFileSync(
      configPath,
      JSON.stringify({
        log_level: 'warning',
        printers: [{ name: 'MK4', type: 'prusa', host: `http://127.0.0.1:${closedPort}`, password: 'prusa-secret' }],
        mqtt: { enabled: true, url: broker.url },
      }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, DO_NOT_TRACK: '', PORT: '', HOST: '' };
    for (const key of ['MQTT_URL', 'MQTT_USERNAME', 'MQTT_PASSWORD', 'SUPERVISOR_TOKEN']) delete env[key];
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, '../../src/cli.ts'),
        'run',
        '--config',
        configPath,
        '--data-dir',
        join(dir, 'data'),
        '--port',
        '0',
        '--host',
        '127.0.0.1',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    onCleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    await observer
      .waitFor(() => observer.last('printernizer/bridge/state')?.payload === 'online', 'online', 15_000)
      .catch((error: Error) => {
        throw new Error(`${error.message}\n${output}`);
      });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await observer.waitFor(() => observer.last('printernizer/bridge/state')?.payload === 'offline', 'last will', 5000);
    const retained = await retainedSnapshot(broker.url, ['printernizer/#']);
    expect(retained.get('printernizer/bridge/state')).toBe('offline');
  });
});
