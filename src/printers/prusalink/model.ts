/**
 * The printer model, from GET /api/version only (issue 12, PrusaLink item 5). In order:
 * 1. `printer`, the Prusa Connect printer type code, sent by Buddy 6.5.1 (CORE One L) and 6.5.3 (MK4 family, MK3.5,
 *    CORE One) and newer; the codes are Buddy's include/common/printer_model_data.hpp `version`.
 * 2. `original`, Prusa-Link on a Raspberry Pi: "PrusaLink " + the printer type's name (prusa/link/web/main.py
 *    api_version, types from prusa/link/const.py PRINTER_TYPES), or "Unknown printer type" until Prusa-Link has talked
 *    to the printer: the model is read again then (`recheck`).
 * 3. The host name, only while it is still the firmware's factory default (src/common/config.h LAN_HOSTNAME_DEF), and
 *    only where that default names one model. It does not for the MK4 build: MK4, MK4S, MK3.9 and MK3.9S all call
 *    themselves `prusa-mk4` (and `PrusaMK4` up to 6.0, which the MK3.5 build used too), MK3.5 and MK3.5S `prusa-mk3-5`.
 *    Such a printer counts as `other` (DESIGN.md: a model the printer does not tell apart is never guessed) until its
 *    firmware sends `printer`. A name the user chose is never read as a model: upgrade kits (MK4 → MK4S, MK3.9 →
 *    MK3.9S) keep the old name, and it is the user's text.
 */
import type { PrinterModel } from '../../stats/events.js';
import type { PrusaLinkVersion } from './status.js';

/** printer_model_data.hpp; XL dev kit (5.1.0) works like an XL. iX (4.1.0) is not a model we list. */
const PRINTER_TYPE_CODES: Readonly<Record<string, PrinterModel>> = {
  '1.2.5': 'MK2.5',
  '1.2.6': 'MK2.5S',
  '1.3.0': 'MK3',
  '1.3.1': 'MK3S',
  '1.3.5': 'MK3.5',
  '1.3.6': 'MK3.5S',
  '1.3.9': 'MK3.9',
  '1.3.10': 'MK3.9S',
  '1.4.0': 'MK4',
  '1.4.1': 'MK4S',
  '2.1.0': 'MINI',
  '3.1.0': 'XL',
  '5.1.0': 'XL',
  '7.1.0': 'CORE One',
  '8.1.0': 'CORE One L',
};

/** prusa/link/const.py PRINTER_TYPES → PrinterType names, as `original` carries them. */
const PRUSA_LINK_TYPES: Readonly<Record<string, PrinterModel>> = {
  I3MK25: 'MK2.5',
  I3MK25S: 'MK2.5S',
  I3MK3: 'MK3',
  I3MK3S: 'MK3S',
};

/**
 * Factory default host names (config.h LAN_HOSTNAME_DEF: "prusa-…" from 6.1, "Prusa…" before) that name exactly one
 * model. `prusa-core-one`: the CORE One L arrived with 6.5.1, which always sends `printer`, so a CORE One build that
 * does not is a CORE One.
 */
const SINGLE_MODEL_HOSTNAMES: Readonly<Record<string, PrinterModel>> = {
  'prusa-mini': 'MINI',
  prusamini: 'MINI',
  'prusa-xl': 'XL',
  prusaxl: 'XL',
  'prusa-core-one': 'CORE One',
};

/** Factory default host names shared by several models: known to be a Prusa of that family, not which one. */
const FAMILY_HOSTNAMES: Readonly<Record<string, ModelFamily>> = {
  'prusa-mk4': 'MK4',
  prusamk4: 'MK4',
  'prusa-mk3-5': 'MK3.5',
};

export type ModelFamily = 'MK4' | 'MK3.5';

/** The members of each family, for the log line that says why the model is `other`. */
export const FAMILY_MEMBERS: Readonly<Record<ModelFamily, string>> = {
  MK4: 'MK4, MK4S, MK3.9 or MK3.9S',
  'MK3.5': 'MK3.5 or MK3.5S',
};

export interface ModelReading {
  model: PrinterModel;
  /** Where it came from; `family` and `none` mean `other` for a reason worth saying once. */
  source: 'printer_code' | 'prusa_link_type' | 'factory_hostname' | 'family' | 'none';
  /** The factory host name named a family, not a model. */
  family?: ModelFamily;
  /** Prusa-Link did not know its printer yet ("Unknown printer type"): read /api/version again later. */
  recheck: boolean;
}

export function modelFromVersion(version: PrusaLinkVersion): ModelReading {
  const code = version.printer?.trim();
  if (code && PRINTER_TYPE_CODES[code])
    return { model: PRINTER_TYPE_CODES[code], source: 'printer_code', recheck: false };

  const original = version.original?.trim();
  if (original) {
    const type = /^PrusaLink\s+(\w+)$/.exec(original)?.[1];
    if (type && PRUSA_LINK_TYPES[type]) {
      return { model: PRUSA_LINK_TYPES[type], source: 'prusa_link_type', recheck: false };
    }
    if (/unknown printer type/i.test(original)) return { model: 'other', source: 'none', recheck: true };
  }

  const hostname = version.hostname?.trim().toLowerCase() ?? '';
  const single = SINGLE_MODEL_HOSTNAMES[hostname];
  if (single) return { model: single, source: 'factory_hostname', recheck: false };
  const family = FAMILY_HOSTNAMES[hostname];
  if (family) return { model: 'other', source: 'family', family, recheck: false };
  return { model: 'other', source: 'none', recheck: false };
}
