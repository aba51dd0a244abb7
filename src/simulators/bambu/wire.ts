/**
 * What a simulated Bambu Lab printer puts on the wire (PROTOCOLS.md A3): full `push_status` reports shaped like the
 * model's real one (ha-bambulab MOCK-*.json fixtures), `msg: 1` deltas of the keys that changed, the `get_version`
 * reply and command acks. Pure functions over the printer's fields; no sockets.
 */
import type { Json, JsonObject, SimulatedModel } from './printer.js';

export interface WireProfile {
  /** `ota.product_name`; A1-class firmware sends only project_name codes. */
  productName: string | null;
  projectCode: string;
  firmware: string;
  /** The newer field set (job_id, fun, stat, device, job, fail_reason, mc_print_error_code ...): X1, P2, H2, X2, A2. */
  x1Fields: boolean;
}

export const WIRE_PROFILES: Readonly<Record<SimulatedModel, WireProfile>> = {
  X1C: { productName: 'Bambu Lab X1-Carbon', projectCode: 'BL-P001', firmware: '01.09.00.01', x1Fields: true },
  X1E: { productName: 'Bambu Lab X1E', projectCode: 'C13', firmware: '01.01.02.00', x1Fields: true },
  P1P: { productName: 'Bambu Lab P1P', projectCode: 'C11', firmware: '01.08.02.00', x1Fields: false },
  P1S: { productName: 'Bambu Lab P1S', projectCode: 'C12', firmware: '01.08.02.00', x1Fields: false },
  // The A1 fixture's get_version carries only project_name codes, no product_name.
  A1: { productName: null, projectCode: 'N2S', firmware: '01.05.00.00', x1Fields: false },
  'A1 mini': { productName: null, projectCode: 'N1', firmware: '01.05.00.00', x1Fields: false },
  // Product names and firmware as in ha-bambulab's MOCK-P2S/H2S/H2D/H2C/X2D/A2L get_version replies, which carry no
  // project_name (the codes are from the device CA names and firmware paths, or empty where none is known).
  P2S: { productName: 'Bambu Lab P2S', projectCode: 'N7', firmware: '01.01.00.00', x1Fields: true },
  H2S: { productName: 'Bambu Lab H2S', projectCode: 'O1S', firmware: '01.01.00.00', x1Fields: true },
  H2D: { productName: 'Bambu Lab H2D', projectCode: '', firmware: '01.01.01.00', x1Fields: true },
  H2C: { productName: 'Bambu Lab H2C', projectCode: 'O1C', firmware: '01.01.00.00', x1Fields: true },
  X2D: { productName: 'Bambu Lab X2D', projectCode: 'N6', firmware: '01.01.00.00', x1Fields: true },
  A2L: { productName: 'Bambu Lab A2L', projectCode: '', firmware: '01.01.00.00', x1Fields: true },
};

/** The static part of a full report, after the P1P/A1 fixtures (ha-bambulab MOCK-P1PNOAMS.json, MOCK-A1.json). */
export function staticFields(profile: WireProfile): JsonObject {
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

/** X1 repeats progress under its newer names (percent, remain_time, prepare_per, t_utc). */
export function mirrorX1Fields(fields: JsonObject, profile: WireProfile): void {
  if (!profile.x1Fields) return;
  fields.percent = fields.mc_percent as number;
  fields.remain_time = fields.mc_remaining_time as number;
  fields.prepare_per = Number(fields.gcode_file_prepare_percent);
  fields.t_utc = Date.now();
}

/** A full report (`msg: 0`), as the printer answers pushall. */
export function fullReport(fixed: JsonObject, fields: JsonObject, sequence: number): JsonObject {
  return { print: { ...fixed, ...fields, command: 'push_status', msg: 0, sequence_id: String(sequence) } };
}

/** A P1-style delta (`msg: 1`) with only the keys that changed. */
export function deltaReport(changed: JsonObject, sequence: number): JsonObject {
  return { print: { ...changed, command: 'push_status', msg: 1, sequence_id: String(sequence) } };
}

/** The keys of `fields` whose value differs from what was published last. */
export function changedKeys(fields: JsonObject, published: JsonObject): JsonObject {
  const delta: JsonObject = {};
  for (const [key, value] of Object.entries(fields)) {
    const before = published[key];
    if (typeof value === 'object' && value !== null) {
      if (JSON.stringify(value) !== JSON.stringify(before)) delta[key] = value;
    } else if (value !== before) delta[key] = value;
  }
  return delta;
}

/** The get_version reply, module list after the real ones (ota first, then the board, mc and th). */
export function versionReply(profile: WireProfile, serial: string, sequenceId: Json): JsonObject {
  const ota: JsonObject = {
    name: 'ota',
    sw_ver: profile.firmware,
    hw_ver: 'OTA',
    loader_ver: '00.00.00.00',
    sn: serial,
    flag: 3,
  };
  if (profile.productName) Object.assign(ota, { product_name: profile.productName, visible: true });
  else ota.project_name = profile.projectCode;
  const board: JsonObject = profile.x1Fields
    ? { name: 'rv1126', sw_ver: '00.00.32.14', hw_ver: 'AP05', sn: '**REDACTED**', flag: 0 }
    : {
        name: 'esp32',
        project_name: profile.projectCode,
        sw_ver: '01.11.35.64',
        hw_ver: 'AP04',
        sn: '**REDACTED**',
        flag: 0,
      };
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

/**
 * Bambu Studio's `project_file` for a print, as the real one (bambuddy, X2D fw 01.01.00.00 and H2S): sequence_id
 * "20001" every time, ids "0", the file named in `file` and `url`.
 */
export function studioProjectFile(fileType: '3mf' | 'gcode', name = 'Simulated_part'): JsonObject {
  const file = fileType === '3mf' ? `${name}.gcode.3mf` : `${name}.gcode`;
  return {
    ams_mapping: [0],
    bed_leveling: true,
    bed_type: 'textured_plate',
    cfg: '0',
    command: 'project_file',
    file,
    flow_cali: true,
    layer_inspect: true,
    md5: 'BCF8FEA788082C764F3C8CD977481C0B',
    param: fileType === '3mf' ? 'Metadata/plate_1.gcode' : file,
    profile_id: '0',
    project_id: '0',
    sequence_id: '20001',
    subtask_id: '0',
    subtask_name: name,
    task_id: '0',
    timelapse: false,
    url: `file:///sdcard/${file}`,
    use_ams: false,
    vibration_cali: false,
  };
}
