/**
 * Topic names of the MQTT mirror and Home Assistant discovery. Printer ids are slugs of the configured names (with
 * `_2`, `_3` for slugs that collide, in config order), the same ids as /api/v1/printers: stable across restarts and
 * never derived from a serial or a host, which are private.
 */
import { assignPrinterIds } from '../printers/fleet.js';

export { assignPrinterIds };

export interface MirrorTopics {
  /** Retained `online`/`offline`; also the last will and the availability topic of every discovered entity. */
  bridgeState: string;
  /** Each recorded event as stored, QoS 1, not retained. */
  events: string;
  /** Retained summary: totals, this week, opt-in status. */
  stats: string;
  /** Retained live state of one printer. */
  printerState(printerId: string): string;
  /** Home Assistant's birth and last-will topic. */
  haStatus: string;
  /** Retained discovery config of one entity. */
  discoveryConfig(component: 'sensor' | 'binary_sensor', nodeId: string, objectId: string): string;
}

/** Base and prefix are validated by the config schema (letters, digits, `_ - /`); a trailing slash is tolerated. */
export function mirrorTopics(baseTopic: string, discoveryPrefix: string): MirrorTopics {
  const base = trimSlashes(baseTopic);
  const prefix = trimSlashes(discoveryPrefix);
  return {
    bridgeState: `${base}/bridge/state`,
    events: `${base}/events`,
    stats: `${base}/stats`,
    printerState: (printerId) => `${base}/printers/${printerId}/state`,
    haStatus: `${prefix}/status`,
    discoveryConfig: (component, nodeId, objectId) => `${prefix}/${component}/${nodeId}/${objectId}/config`,
  };
}

function trimSlashes(topic: string): string {
  return topic.replace(/^\/+|\/+$/g, '');
}
