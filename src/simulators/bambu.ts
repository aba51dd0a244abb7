/**
 * A simulated Bambu Lab printer: an MQTT broker (aedes) over TLS with a self-signed certificate whose CN is the
 * serial, behaving like the printer's local MQTT server (PROTOCOLS.md A and the checklist in C):
 * - only `bblp` + the access code may connect (CONNACK 5 otherwise), at most `maxClients` at once (CONNACK 3);
 * - a client that subscribes to `device/<serial>/request` (directly or through a wildcard such as `#`) is dropped,
 *   as P1 firmware does;
 * - `pushall` answers with a full `msg: 0` report shaped like the model's real one, `get_version` with the module
 *   list, print commands with an ack echoing the command;
 * - about once a second (`tickMs`) a `msg: 1` delta carries only the keys that changed;
 * - jobs run IDLE → PREPARE (gcode_file_prepare_percent rising) → RUNNING → FINISH or FAILED, can pause, and a cancel
 *   sends the transient print_error 50348044 before FAILED. `speed` compresses simulated time.
 * Test hooks drop clients, go silent, become unreachable and publish raw payloads.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { generate } from 'selfsigned';

export type SimulatedModel = 'X1C' | 'X1E' | 'P1P' | 'P1S' | 'A1' | 'A1 mini';

export interface BambuSimulatorOptions {
  serial: string;
  accessCode: string;
  model: SimulatedModel;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** TLS (default) or plain MQTT, as some P1S firmware serves on 1883. */
  tls?: boolean;
  /** Simulated seconds per real second (default 1). */
  speed?: number;
  /** Start jobs by themselves after a pause, with mostly successful outcomes (default false). */
  autoJobs?: boolean;
  /** Real milliseconds between delta reports (default 1000). */
  tickMs?: number;
  /** Default simulated job length in seconds (default 1800). */
  jobSeconds?: number;
  /** Simulated seconds between auto jobs (default 300). */
  idleSeconds?: number;
  /** gcode_state at power-on (default IDLE); RUNNING starts with a job already half done. */
  initialState?: 'IDLE' | 'FINISH' | 'FAILED' | 'RUNNING';
  maxClients?: number;
  /** A certificate to present instead of the generated self-signed one (e.g. one signed by a test CA). */
  certificate?: { key: string; cert: string };
}

export interface StartJobOptions {
  /** Simulated length in seconds (default `jobSeconds`). */
  seconds?: number;
  outcome?: 'finish' | 'fail';
  /** LAN print: task/subtask ids are "0" as for prints sent without the cloud (default false). */
  lan?: boolean;
}

export interface BambuSimulatorStats {
  connections: number;
  maxConcurrentClients: number;
  authRejected: number;
  droppedForRequestTopic: number;
  pushall: number;
  getVersion: number;
  pushingStart: number;
  reportsPublished: number;
  clientIds: string[];
}

export interface BambuSimulator {
  readonly port: number;
  readonly url: string;
  readonly serial: string;
  readonly model: SimulatedModel;
  /** The PEM certificate the simulator presents. */
  readonly certificate: string;
  readonly stats: BambuSimulatorStats;
  /** Current gcode_state. */
  state(): string;
  connectedClients(): number;
  startJob(opts?: StartJobOptions): void;
  cancelJob(): void;
  failJob(): void;
  pause(): void;
  resume(): void;
  /** Close every client connection, as a printer rebooting its MQTT server does. */
  dropClients(): void;
  /** Stop sending anything (reports, replies) while on. */
  silence(on: boolean): void;
  /** Unreachable: drop clients and reset every new connection, like a printer switched off. */
  setReachable(on: boolean): void;
  /** Add HMS entries ({attr, code}) to the state. */
  setHms(entries: { attr: number; code: number }[]): void;
  /** Publish anything on the report topic (malformed-input tests). */
  publishRaw(payload: string | Buffer): Promise<void>;
  /** What the printer echoes when a slicer sends `project_file`; starts the job. */
  simulateProjectFile(opts?: { fileType?: '3mf' | 'gcode'; start?: boolean; seconds?: number }): void;
  /** Publish the full report now, as a periodic full push does. */
  publishFullReport(): void;
  stop(): Promise<void>;
}

export const CANCEL_PRINT_ERROR = 50348044;

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const certCache = new Map<string, Promise<{ key: string; cert: string }>>();

/** A self-signed certificate with CN = serial and no subjectAltName, as the printers present; cached per serial. */
export function simulatorCertificate(serial: string): Promise<{ key: string; cert: string }> {
  let pending = certCache.get(serial);
  if (!pending) {
    const notAfter = new Date();
    notAfter.setFullYear(notAfter.getFullYear() + 10);
    pending = generate([{ name: 'commonName', value: serial }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate: notAfter,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
      ],
    }).then((pems) => ({ key: pems.private, cert: pems.cert }));
    certCache.set(serial, pending);
    pending.catch(() => certCache.delete(serial));
  }
  return pending;
}

interface ModelProfile {
  productName: string | null;
  projectCode: string;
  firmware: string;
  /** X1 sends the newer field set (job_id, fun, stat, device, job, ...). */
  x1Fields: boolean;
}

const PROFILES: Record<SimulatedModel, ModelProfile> = {
  X1C: { productName: 'Bambu Lab X1-Carbon', projectCode: 'BL-P001', firmware: '01.09.00.01', x1Fields: true },
  X1E: { productName: 'Bambu Lab X1E', projectCode: 'C13', firmware: '01.01.02.00', x1Fields: true },
  P1P: { productName: 'Bambu Lab P1P', projectCode: 'C11', firmware: '01.08.02.00', x1Fields: false },
  P1S: { productName: 'Bambu Lab P1S', projectCode: 'C12', firmware: '01.08.02.00', x1Fields: false },
  // The A1 fixture's get_version carries only project_name codes, no product_name.
  A1: { productName: null, projectCode: 'N2S', firmware: '01.05.00.00', x1Fields: false },
  'A1 mini': { productName: null, projectCode: 'N1', firmware: '01.05.00.00', x1Fields: false },
};

/** The static part of a full report, after the P1P/A1 fixtures (ha-bambulab MOCK-P1PNOAMS.json, MOCK-A1.json). */
function staticFields(profile: ModelProfile): JsonObject {
  const base: JsonObject = {
    upgrade_state: {
      sequence_id: 0,
      progress: '100',
      status: 'UPGRADE_SUCCESS',
      consistency_request: false,
      dis_state: 3,
      err_code: 0,
      force_upgrade: false,
      message: '0%, 0B/s',
      module: 'ota',
      new_version_state: 2,
      cur_state_code: 0,
      idx2: 895185215,
      new_ver_list: [],
    },
    ipcam: {
      ipcam_dev: '1',
      ipcam_record: 'enable',
      timelapse: 'disable',
      resolution: '',
      tutk_server: 'disable',
      mode_bits: 3,
    },
    upload: { status: 'idle', progress: 0, message: '' },
    net: { conf: 0, info: [{ ip: 2050140352, mask: 16777215 }] },
    chamber_temper: 5,
    heatbreak_fan_speed: '0',
    cooling_fan_speed: '0',
    big_fan1_speed: '0',
    big_fan2_speed: '0',
    ams_status: 0,
    ams_rfid_status: 6,
    hw_switch_state: 1,
    spd_mag: 100,
    spd_lvl: 2,
    lifecycle: 'product',
    queue_number: 0,
    queue_total: 0,
    queue_est: 0,
    queue_sts: 0,
    stg: [],
    home_flag: 224477464,
    mc_print_line_number: '0',
    mc_print_sub_stage: 0,
    sdcard: true,
    force_upgrade: false,
    mess_production_state: 'active',
    s_obj: [],
    filam_bak: [],
    fan_gear: 0,
    nozzle_diameter: '0.4',
    nozzle_type: 'stainless_steel',
    cali_version: 0,
    k: '0.0200',
    flag3: 671,
    online: { ahb: false, rfid: false, version: 7 },
    ams: {
      ams: [],
      ams_exist_bits: '0',
      tray_exist_bits: '0',
      tray_is_bbl_bits: '0',
      tray_tar: '255',
      tray_now: '254',
      tray_pre: '254',
      tray_read_done_bits: '0',
      tray_reading_bits: '0',
      version: 1,
      insert_flag: true,
      power_on_flag: false,
    },
    vt_tray: {
      id: '254',
      tag_uid: '0000000000000000',
      tray_id_name: '',
      tray_info_idx: 'GFSNL08',
      tray_type: 'PETG',
      tray_sub_brands: '',
      tray_color: 'BCBCBCFF',
      tray_weight: '0',
      tray_diameter: '0.00',
      tray_temp: '0',
      tray_time: '0',
      bed_temp_type: '0',
      bed_temp: '0',
      nozzle_temp_max: '280',
      nozzle_temp_min: '230',
      xcam_info: '000000000000000000000000',
      tray_uuid: '00000000000000000000000000000000',
      remain: 0,
      k: 0.019999999552965164,
      n: 1,
      cali_idx: -1,
    },
    lights_report: [{ node: 'chamber_light', mode: 'on' }],
    xcam: { buildplate_marker_detector: true },
  };
  if (profile.x1Fields) {
    // Newer X1 firmware (fixture 2AMS1-1AMS2-1AMSHT.json) drops a few P1 keys and adds its own.
    for (const key of [
      'chamber_temper',
      'lifecycle',
      'mc_print_line_number',
      'mess_production_state',
      'filam_bak',
      'k',
      'flag3',
    ]) {
      delete base[key];
    }
    Object.assign(base, {
      '3D': { layer_num: 0, total_layer_num: 0 },
      ap_err: 0,
      aux_part_fan: true,
      batch_id: 0,
      canvas_id: 0,
      design_id: '',
      file: '',
      info: { temp: 0 },
      job_attr: 3,
      mc_action: 255,
      mc_err: 0,
      mc_stage: 1,
      model_id: '',
      plate_cnt: 1,
      plate_id: 1,
      plate_idx: 1,
      print_gcode_action: 255,
      print_real_action: 0,
      queue: 0,
      state: 6,
      ver: '20010',
      fun: '11A30F9CFB',
      stat: '7A58000',
      cfg: 'FB299',
      aux: '280100C',
      err: '0',
      mc_print_error_code: '0',
      xcam_status: '0',
      device: { type: 1, nozzle: { info: [{ id: 0, diameter: 0.4, type: 'HS' }] } },
      job: { cur_stage: { idx: 0, state: 2 }, stage: [] },
      care: [],
      mapping: [],
      vir_slot: [],
    });
  }
  return base;
}

interface SimJob {
  totalSec: number;
  prepareSec: number;
  elapsedSec: number;
  outcome: 'finish' | 'fail';
  totalLayers: number;
  ids: { task_id: string; subtask_id: string; project_id: string; profile_id: string; job_id: string };
  paused: boolean;
}

const REQUEST_SUFFIX = '/request';

/** Whether an MQTT subscription filter would receive messages published on `topic`. */
function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function randomId(): string {
  return String(randomInt(100_000_000, 999_999_999));
}

export async function startBambuSimulator(options: BambuSimulatorOptions): Promise<BambuSimulator> {
  const serial = options.serial;
  const profile = PROFILES[options.model];
  const speed = options.speed ?? 1;
  const tickMs = options.tickMs ?? 1000;
  const defaultJobSeconds = options.jobSeconds ?? 1800;
  const idleSeconds = options.idleSeconds ?? 300;
  const maxClients = options.maxClients ?? 4;
  const reportTopic = `device/${serial}/report`;
  const requestTopic = `device/${serial}${REQUEST_SUFFIX}`;
  const useTls = options.tls ?? true;
  const certificate = useTls ? (options.certificate ?? (await simulatorCertificate(serial))) : null;

  const stats: BambuSimulatorStats = {
    connections: 0,
    maxConcurrentClients: 0,
    authRejected: 0,
    droppedForRequestTopic: 0,
    pushall: 0,
    getVersion: 0,
    pushingStart: 0,
    reportsPublished: 0,
    clientIds: [],
  };

  // --- printer state -----------------------------------------------------------------------------------------------
  const fixed = staticFields(profile);
  const dynamic: JsonObject = {
    nozzle_temper: 25.90625,
    nozzle_target_temper: 0,
    bed_temper: 23.125,
    bed_target_temper: 0,
    wifi_signal: '-42dBm',
    mc_print_stage: '1',
    mc_percent: 0,
    mc_remaining_time: 0,
    print_error: 0,
    gcode_state: 'IDLE',
    gcode_file_prepare_percent: '0',
    project_id: '0',
    profile_id: '0',
    task_id: '0',
    subtask_id: '0',
    subtask_name: '',
    gcode_file: '',
    stg_cur: 0,
    print_type: 'idle',
    layer_num: 0,
    total_layer_num: 0,
    hms: [],
  };
  if (profile.x1Fields) Object.assign(dynamic, { job_id: '', fail_reason: '0', stg_cur: -1, print_type: '' });

  let job: SimJob | null = null;
  let idleSinceSec = 0;
  let simClockSec = 0;
  let pendingErrorResetAt: number | null = null;
  let sequence = 1;
  let silenced = false;
  let reachable = true;
  let lastPublished: JsonObject = {};
  let jobCounter = 0;
  /** Simulated job second at which an auto job gets cancelled. */
  let cancelAt: number | null = null;
  /** A cancel was sent; FAILED follows on the next tick. */
  let pendingFailed = false;

  function newJob(opts: StartJobOptions = {}): SimJob {
    jobCounter++;
    const totalSec = Math.max(1, opts.seconds ?? defaultJobSeconds);
    const lan = opts.lan ?? false;
    return {
      totalSec,
      prepareSec: Math.max(0.5, totalSec * 0.1),
      elapsedSec: 0,
      outcome: opts.outcome ?? 'finish',
      totalLayers: 50 + randomInt(0, 400),
      ids: {
        task_id: lan ? '0' : randomId(),
        subtask_id: lan ? '0' : randomId(),
        project_id: lan ? '0' : randomId(),
        profile_id: lan ? '0' : randomId(),
        job_id: randomId(),
      },
      paused: false,
    };
  }

  function beginJob(next: SimJob): void {
    job = next;
    Object.assign(dynamic, {
      ...next.ids,
      subtask_name: `Simulated part ${jobCounter}`,
      gcode_file: profile.x1Fields ? '/data/Metadata/plate_1.gcode' : `Simulated part ${jobCounter}.gcode.3mf`,
      gcode_state: 'PREPARE',
      gcode_file_prepare_percent: '0',
      mc_percent: 0,
      mc_remaining_time: Math.ceil(next.totalSec / 60),
      layer_num: 0,
      total_layer_num: next.totalLayers,
      print_error: 0,
      hms: [],
      print_type: 'cloud',
      nozzle_target_temper: 220,
      bed_target_temper: 55,
      mc_print_stage: '2',
    });
    if (profile.x1Fields) dynamic.job_id = next.ids.job_id;
  }

  function endJob(state: 'FINISH' | 'FAILED'): void {
    job = null;
    idleSinceSec = simClockSec;
    Object.assign(dynamic, {
      gcode_state: state,
      nozzle_target_temper: 0,
      bed_target_temper: 0,
      mc_print_stage: '1',
      print_type: 'idle',
    });
    if (state === 'FINISH') Object.assign(dynamic, { mc_percent: 100, mc_remaining_time: 0 });
  }

  function advance(seconds: number): void {
    simClockSec += seconds;
    if (pendingErrorResetAt !== null && simClockSec >= pendingErrorResetAt) {
      pendingErrorResetAt = null;
      dynamic.print_error = 0;
    }
    // Temperatures and signal drift so a delta goes out about every tick, as real printers do.
    const heating = job !== null;
    const nozzle = dynamic.nozzle_temper as number;
    const bed = dynamic.bed_temper as number;
    dynamic.nozzle_temper =
      Math.round((heating ? nozzle + (220 - nozzle) * 0.3 : nozzle + (25 - nozzle) * 0.1) * 32) / 32;
    dynamic.bed_temper =
      Math.round((heating ? bed + (55 - bed) * 0.3 : bed + (23 - bed) * 0.1) * 32) / 32 +
      (randomInt(0, 2) ? 0.03125 : 0);
    dynamic.wifi_signal = `-${40 + randomInt(0, 8)}dBm`;

    if (!job) {
      if (options.autoJobs && simClockSec - idleSinceSec >= idleSeconds) {
        const roll = randomInt(0, 10);
        const next = newJob({ outcome: roll === 0 ? 'fail' : 'finish' });
        beginJob(next);
        if (roll === 1) cancelAt = next.totalSec * 0.5;
      }
      return;
    }
    if (job.paused) return;
    job.elapsedSec += seconds;
    if (cancelAt !== null && job.elapsedSec >= cancelAt) {
      cancelAt = null;
      cancel();
      return;
    }
    const j = job;
    if (j.elapsedSec < j.prepareSec) {
      const pct = Math.min(100, Math.floor((j.elapsedSec / j.prepareSec) * 100));
      dynamic.gcode_file_prepare_percent = String(pct);
    } else {
      const runSec = j.totalSec - j.prepareSec;
      const fraction = Math.min(1, (j.elapsedSec - j.prepareSec) / runSec);
      if (j.outcome === 'fail' && fraction >= 0.4) {
        dynamic.hms = [{ attr: 50331904, code: 65543 }];
        endJob('FAILED');
        return;
      }
      if (fraction >= 1) {
        Object.assign(dynamic, { layer_num: j.totalLayers });
        endJob('FINISH');
        return;
      }
      Object.assign(dynamic, {
        gcode_state: 'RUNNING',
        gcode_file_prepare_percent: '100',
        mc_print_stage: '2',
        mc_percent: Math.floor(fraction * 100),
        mc_remaining_time: Math.ceil((j.totalSec - j.elapsedSec) / 60),
        layer_num: Math.max(1, Math.ceil(fraction * j.totalLayers)),
      });
    }
  }

  /** The printer's cancel: print_error 0x0300400C in its own report, then FAILED, then the code is reset. */
  function cancel(): void {
    if (!job) return;
    dynamic.print_error = CANCEL_PRINT_ERROR;
    publishDelta();
    job = null;
    idleSinceSec = simClockSec;
    // FAILED follows on the next tick; print_error goes back to 0 a couple of seconds later (ha-bambulab).
    pendingFailed = true;
    pendingErrorResetAt = simClockSec + 2 * speed * (tickMs / 1000) + 0.001;
  }

  function fullReport(): JsonObject {
    mirrorX1Fields();
    return {
      print: { ...fixed, ...dynamic, command: 'push_status', msg: 0, sequence_id: String(sequence++) },
    };
  }

  /** X1 repeats progress under its newer names (percent, remain_time, prepare_per, t_utc). */
  function mirrorX1Fields(): void {
    if (!profile.x1Fields) return;
    dynamic.percent = dynamic.mc_percent as number;
    dynamic.remain_time = dynamic.mc_remaining_time as number;
    dynamic.prepare_per = Number(dynamic.gcode_file_prepare_percent);
    dynamic.t_utc = Date.now();
  }

  function changedKeys(): JsonObject {
    mirrorX1Fields();
    const delta: JsonObject = {};
    for (const [key, value] of Object.entries(dynamic)) {
      const before = lastPublished[key];
      if (typeof value === 'object' && value !== null) {
        if (JSON.stringify(value) !== JSON.stringify(before)) delta[key] = value;
      } else if (value !== before) delta[key] = value;
    }
    return delta;
  }

  // --- broker --------------------------------------------------------------------------------------------------------
  const broker = await Aedes.createBroker({
    authenticate(client: Client, username, password, done) {
      const ok = username === 'bblp' && password !== undefined && password.toString('utf8') === options.accessCode;
      if (!ok) {
        stats.authRejected++;
        const error = new Error('not authorized') as AuthenticateError;
        error.returnCode = 5;
        done(error, false);
        return;
      }
      if (broker.connectedClients >= maxClients) {
        const error = new Error('too many clients') as AuthenticateError;
        error.returnCode = 3;
        done(error, false);
        return;
      }
      stats.clientIds.push(client.id);
      done(null, true);
    },
    authorizeSubscribe(client, subscription, done) {
      if (filterMatches(subscription.topic, requestTopic)) {
        // P1 firmware drops a client that subscribes to the request topic (OpenBambuAPI #26).
        stats.droppedForRequestTopic++;
        done(new Error('request topic is not for subscribers'));
        setImmediate(() => client.close());
        return;
      }
      done(null, subscription);
    },
    authorizePublish(client, packet, done) {
      if (client && packet.topic !== requestTopic) {
        done(new Error('clients publish only requests'));
        return;
      }
      done(null);
    },
  });

  broker.on('client', () => {
    stats.connections++;
    stats.maxConcurrentClients = Math.max(stats.maxConcurrentClients, broker.connectedClients);
  });
  broker.on('clientReady', () => {
    stats.maxConcurrentClients = Math.max(stats.maxConcurrentClients, broker.connectedClients);
  });
  broker.on('publish', (packet, client) => {
    if (client && packet.topic === requestTopic) handleRequest(Buffer.from(packet.payload));
  });

  function publish(body: JsonObject | string | Buffer): Promise<void> {
    if (silenced || broker.closed) return Promise.resolve();
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    stats.reportsPublished++;
    return new Promise((resolve) => {
      const packet: PublishPacket = { cmd: 'publish', topic: reportTopic, payload, qos: 0, retain: false, dup: false };
      broker.publish(packet, () => resolve());
    });
  }

  function publishDelta(): void {
    const delta = changedKeys();
    if (Object.keys(delta).length === 0) return;
    void publish({ print: { ...delta, command: 'push_status', msg: 1, sequence_id: String(sequence++) } });
    if (!silenced) lastPublished = structuredClone(dynamic);
  }

  function publishFull(): void {
    void publish(fullReport());
    if (!silenced) lastPublished = structuredClone(dynamic);
  }

  function versionReply(sequenceId: Json): JsonObject {
    const project = profile.projectCode;
    const ota: JsonObject = {
      name: 'ota',
      sw_ver: profile.firmware,
      hw_ver: 'OTA',
      loader_ver: '00.00.00.00',
      sn: serial,
      flag: 3,
    };
    if (profile.productName) Object.assign(ota, { product_name: profile.productName, visible: true });
    else ota.project_name = project;
    const board: JsonObject = profile.x1Fields
      ? { name: 'rv1126', sw_ver: '00.00.32.14', hw_ver: 'AP05', sn: '**REDACTED**', flag: 0 }
      : { name: 'esp32', project_name: project, sw_ver: '01.11.35.64', hw_ver: 'AP04', sn: '**REDACTED**', flag: 0 };
    return {
      info: {
        command: 'get_version',
        sequence_id: sequenceId,
        module: [
          ota,
          board,
          { name: 'mc', sw_ver: '00.01.32.85', hw_ver: 'MC07', loader_ver: '00.00.00.23', sn: '**REDACTED**', flag: 0 },
          { name: 'th', sw_ver: '00.00.09.95', hw_ver: 'TH09', loader_ver: '00.00.00.14', sn: '**REDACTED**', flag: 0 },
        ],
        result: 'success',
        reason: '',
      },
    };
  }

  function handleRequest(payload: Buffer): void {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (typeof body !== 'object' || body === null) return;
    const request = body as Record<string, Record<string, Json> | undefined>;
    const pushing = request.pushing;
    if (pushing?.command === 'pushall') {
      stats.pushall++;
      publishFull();
    } else if (pushing?.command === 'start') {
      stats.pushingStart++;
    }
    const info = request.info;
    if (info?.command === 'get_version') {
      stats.getVersion++;
      void publish(versionReply(info.sequence_id ?? '0'));
    }
    const print = request.print;
    if (print && typeof print.command === 'string') {
      handlePrintCommand(print);
    }
  }

  function handlePrintCommand(print: Record<string, Json>): void {
    switch (print.command) {
      case 'pause':
        sim.pause();
        break;
      case 'resume':
        sim.resume();
        break;
      case 'stop':
        sim.cancelJob();
        break;
      case 'project_file':
        beginJob(newJob());
        break;
      default:
        break;
    }
    void publish({ print: { ...print, result: 'success', reason: '' } });
  }

  // --- server --------------------------------------------------------------------------------------------------------
  const sockets = new Set<net.Socket>();
  const onConnection = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (!reachable) socket.destroy();
  };
  const server = certificate
    ? tls.createServer({ key: certificate.key, cert: certificate.cert }, (socket) => broker.handle(socket))
    : net.createServer((socket) => broker.handle(socket));
  server.on('connection', onConnection);
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  // --- initial state -------------------------------------------------------------------------------------------------
  switch (options.initialState ?? 'IDLE') {
    case 'FINISH':
      beginJob(newJob());
      job = null;
      Object.assign(dynamic, { layer_num: dynamic.total_layer_num, gcode_file_prepare_percent: '100' });
      endJob('FINISH');
      break;
    case 'FAILED':
      beginJob(newJob());
      job = null;
      endJob('FAILED');
      break;
    case 'RUNNING': {
      const running = newJob();
      beginJob(running);
      running.elapsedSec = running.totalSec / 2;
      advance(0);
      break;
    }
    default:
      break;
  }
  lastPublished = structuredClone(dynamic);

  const timer = setInterval(() => {
    if (pendingFailed) {
      pendingFailed = false;
      endJob('FAILED');
    }
    advance((tickMs / 1000) * speed);
    publishDelta();
  }, tickMs);
  timer.unref();

  let stopped = false;
  const sim: BambuSimulator = {
    port,
    url: `${certificate ? 'mqtts' : 'mqtt'}://${options.host ?? '127.0.0.1'}:${port}`,
    serial,
    model: options.model,
    certificate: certificate?.cert ?? '',
    stats,
    state: () => String(dynamic.gcode_state),
    connectedClients: () => broker.connectedClients,
    startJob(opts) {
      beginJob(newJob(opts));
      publishDelta();
    },
    cancelJob() {
      cancelAt = null;
      cancel();
    },
    failJob() {
      if (!job) return;
      dynamic.hms = [{ attr: 50331904, code: 65543 }];
      endJob('FAILED');
      publishDelta();
    },
    pause() {
      if (!job || job.paused || dynamic.gcode_state !== 'RUNNING') return;
      job.paused = true;
      dynamic.gcode_state = 'PAUSE';
      publishDelta();
    },
    resume() {
      if (!job?.paused) return;
      job.paused = false;
      dynamic.gcode_state = 'RUNNING';
      publishDelta();
    },
    dropClients() {
      for (const socket of sockets) socket.destroy();
    },
    silence(on) {
      silenced = on;
    },
    setReachable(on) {
      reachable = on;
      if (!on) sim.dropClients();
    },
    setHms(entries) {
      dynamic.hms = entries.map((e) => ({ attr: e.attr, code: e.code }));
      publishDelta();
    },
    publishRaw(payload) {
      return publish(payload);
    },
    simulateProjectFile(opts = {}) {
      const ext = opts.fileType ?? '3mf';
      const name = ext === '3mf' ? 'Simulated_part.3mf' : 'Simulated_part.gcode';
      void publish({
        print: {
          sequence_id: String(sequence++),
          command: 'project_file',
          param: ext === '3mf' ? 'Metadata/plate_1.gcode' : name,
          project_id: '0',
          profile_id: '0',
          task_id: '0',
          subtask_id: '0',
          subtask_name: name,
          url: `file:///sdcard/${name}`,
          md5: '',
          timelapse: false,
          bed_type: 'auto',
          bed_levelling: true,
          flow_cali: true,
          vibration_cali: true,
          layer_inspect: true,
          use_ams: false,
          result: 'success',
          reason: '',
        },
      });
      if (opts.start ?? true) {
        beginJob(newJob({ lan: true, seconds: opts.seconds }));
        publishDelta();
      }
    },
    publishFullReport() {
      publishFull();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
  return sim;
}
