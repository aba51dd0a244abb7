/**
 * Facts about the printer that a capture header names, read from raw traffic before it is redacted: the firmware
 * version (Bambu Lab `get_version`'s `ota` module, PrusaLink `/api/version`). Only values shaped like a version leave.
 */
import type { RawTraffic } from '../printers/types.js';
import { FIRMWARE_SHAPE } from './format.js';

function asVersion(value: unknown): string | null {
  return typeof value === 'string' && FIRMWARE_SHAPE.test(value) ? value : null;
}

/** A JSON object from text, or null for anything else (never throws). */
export function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** The firmware version this traffic entry tells, or null. Cheap for everything else (no parse). */
export function firmwareFromTraffic(entry: RawTraffic): string | null {
  if (entry.kind === 'mqtt') {
    if (!entry.payload.includes('get_version')) return null;
    const info = parseObject(entry.payload)?.info as { module?: unknown } | undefined;
    if (!info || !Array.isArray(info.module)) return null;
    const ota = info.module.find((m): m is Record<string, unknown> => (m as { name?: unknown })?.name === 'ota');
    return asVersion(ota?.sw_ver);
  }
  if (entry.kind === 'http' && entry.status === 200 && entry.body && /^\/api\/version\/?$/.test(entry.path)) {
    const version = parseObject(entry.body);
    // Buddy: `firmware` from 6.5 on; Prusa-Link on a Raspberry Pi: its own `server` version.
    return asVersion(version?.firmware) ?? asVersion(version?.server);
  }
  return null;
}
