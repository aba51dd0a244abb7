/**
 * Which Bambu Lab model a printer is, from the `get_version` reply or, before that arrives (or when the firmware never
 * answers it, ha-bambulab #530), from the serial prefix. Only allow-listed model names leave this file.
 */
import type { PrinterModel } from '../../stats/events.js';

/**
 * Serial prefixes (first three characters), as Bambu Studio's printer profiles and several clients list them
 * (ha-bambulab scripts/update_error_text.py `_DEVICE_TYPES`); X2D `20P` and A2L `26A` as issue 12 names them. A
 * printer that never answers get_version (cloud-mode P1 firmware, ha-bambulab #530, Bambu Studio #4154) is known by
 * this alone.
 */
const SERIAL_PREFIXES: Readonly<Record<string, PrinterModel>> = {
  '00W': 'X1',
  '00M': 'X1C',
  '03W': 'X1E',
  '01S': 'P1P',
  '01P': 'P1S',
  '22E': 'P2S',
  '030': 'A1 mini',
  '039': 'A1',
  '093': 'H2S',
  '094': 'H2D',
  '239': 'H2D',
  '31B': 'H2C',
  '20P': 'X2D',
  '26A': 'A2L',
};

/** Internal project codes (`project_name` of the ota/esp32 modules on P1 and A1, which have no product_name). */
const PROJECT_CODES: Readonly<Record<string, PrinterModel>> = {
  'BL-P001': 'X1C',
  'BL-P002': 'X1',
  C11: 'P1P',
  C12: 'P1S',
  C13: 'X1E',
  N1: 'A1 mini',
  N2S: 'A1',
  N7: 'P2S',
};

/**
 * `product_name` of module `ota`, lower-cased without the "Bambu Lab " prefix: the names in the real get_version
 * replies of ha-bambulab's MOCK-*.json fixtures (X1-Carbon, P1P, P2S, H2C, H2D, H2S, X2D, A2L) and ha-bambulab
 * pybambu/utils.py `get_printer_type` (A1, A1 mini, P1S, H2D Pro). The H2D Pro is an H2D variant the model list does
 * not tell apart.
 */
const PRODUCT_NAMES: Readonly<Record<string, PrinterModel>> = {
  'x1-carbon': 'X1C',
  'x1 carbon': 'X1C',
  x1c: 'X1C',
  x1: 'X1',
  x1e: 'X1E',
  p1p: 'P1P',
  p1s: 'P1S',
  p2s: 'P2S',
  a1: 'A1',
  'a1 mini': 'A1 mini',
  a1mini: 'A1 mini',
  h2d: 'H2D',
  'h2d pro': 'H2D',
  h2s: 'H2S',
  h2c: 'H2C',
  x2d: 'X2D',
  a2l: 'A2L',
};

export function modelFromSerial(serial: string): PrinterModel {
  return SERIAL_PREFIXES[serial.slice(0, 3).toUpperCase()] ?? 'other';
}

export function modelFromProductName(productName: string): PrinterModel | null {
  const key = productName
    .trim()
    .toLowerCase()
    .replace(/^bambu\s*lab\s+/, '');
  return PRODUCT_NAMES[key] ?? null;
}

interface VersionModule {
  name?: unknown;
  product_name?: unknown;
  project_name?: unknown;
}

/**
 * The model named by a `get_version` module list: `ota.product_name` first (X1, newer P1 firmware), then the
 * `project_name` code of the ota or esp32 module (A1 and older P1 firmware send only that). Null when neither is known.
 */
export function modelFromVersionModules(modules: readonly VersionModule[]): PrinterModel | null {
  const ota = modules.find((m) => m.name === 'ota');
  if (ota && typeof ota.product_name === 'string') {
    const model = modelFromProductName(ota.product_name);
    if (model) return model;
  }
  for (const name of ['ota', 'esp32']) {
    const mod = modules.find((m) => m.name === name);
    if (mod && typeof mod.project_name === 'string') {
      const model = PROJECT_CODES[mod.project_name.trim().toUpperCase()];
      if (model) return model;
    }
  }
  return null;
}
