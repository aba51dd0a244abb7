/**
 * Home Assistant MQTT discovery, one retained config per entity (the layout zigbee2mqtt uses:
 * `<prefix>/<component>/<node_id>/<object_id>/config`). The daemon is one device with the statistics sensors and the
 * opt-in binary sensor; each configured printer is its own device (via the daemon) with a state and a progress
 * sensor. Every entity is available while `<base>/bridge/state` says `online`. An empty retained payload removes a
 * config (https://www.home-assistant.io/integrations/mqtt/#discovery-messages).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { PrinterModel, PrinterType } from '../stats/events.js';
import type { MirrorTopics } from './topics.js';

export interface DiscoveryPrinter {
  id: string;
  name: string;
  type: PrinterType;
  model: PrinterModel;
}

export interface DiscoveryContext {
  topics: MirrorTopics;
  /** This installation's discovery node id; prefixes every unique_id so two daemons on one broker never clash. */
  nodeId: string;
  version: string;
}

/** A retained message; an empty payload removes the entity. */
export interface DiscoveryMessage {
  topic: string;
  payload: string;
}

export interface DiscoveryDevice {
  identifiers: string[];
  name: string;
  manufacturer: string;
  model: string;
  sw_version?: string;
  via_device?: string;
}

export interface DiscoveryConfig {
  name: string | null;
  unique_id: string;
  state_topic: string;
  value_template: string;
  availability: { topic: string; payload_available: string; payload_not_available: string }[];
  device: DiscoveryDevice;
  origin: { name: string; sw: string; url?: string };
  has_entity_name: true;
  icon?: string;
  unit_of_measurement?: string;
  device_class?: string;
  state_class?: string;
  entity_category?: 'diagnostic';
  suggested_display_precision?: number;
  json_attributes_topic?: string;
  payload_on?: string;
  payload_off?: string;
}

type EntitySpec = Omit<DiscoveryConfig, 'unique_id' | 'availability' | 'device' | 'origin' | 'has_entity_name'> & {
  component: 'sensor' | 'binary_sensor';
  objectId: string;
};

const MANUFACTURERS: Record<PrinterType, string> = { bambu_lab: 'Bambu Lab', prusa: 'Prusa Research' };

function bridgeEntities(topics: MirrorTopics): EntitySpec[] {
  const stats = topics.stats;
  const counter = { component: 'sensor' as const, state_topic: stats, state_class: 'total_increasing' };
  return [
    {
      ...counter,
      objectId: 'jobs_completed',
      name: 'Jobs completed',
      value_template: '{{ value_json.jobs_completed }}',
      icon: 'mdi:check-circle-outline',
    },
    {
      ...counter,
      objectId: 'jobs_failed',
      name: 'Jobs failed',
      value_template: '{{ value_json.jobs_failed }}',
      icon: 'mdi:close-circle-outline',
    },
    {
      component: 'sensor',
      objectId: 'success_rate',
      name: 'Success rate',
      state_topic: stats,
      // null before the first finished job renders "None", which Home Assistant shows as unknown.
      value_template: '{{ value_json.success_rate }}',
      unit_of_measurement: '%',
      state_class: 'measurement',
      suggested_display_precision: 1,
      icon: 'mdi:percent-circle-outline',
    },
    {
      ...counter,
      objectId: 'print_hours',
      name: 'Print hours',
      value_template: '{{ value_json.print_hours }}',
      unit_of_measurement: 'h',
      device_class: 'duration',
      suggested_display_precision: 1,
    },
    {
      ...counter,
      objectId: 'total_events',
      name: 'Total events',
      value_template: '{{ value_json.total_events }}',
      icon: 'mdi:counter',
      entity_category: 'diagnostic',
    },
    {
      component: 'binary_sensor',
      objectId: 'opt_in',
      name: 'Usage statistics opt-in',
      state_topic: stats,
      value_template: '{{ value_json.opt_in_status }}',
      payload_on: 'enabled',
      payload_off: 'disabled',
      icon: 'mdi:chart-box-outline',
      entity_category: 'diagnostic',
    },
  ];
}

function printerEntities(topics: MirrorTopics, printer: DiscoveryPrinter): EntitySpec[] {
  const stateTopic = topics.printerState(printer.id);
  return [
    {
      component: 'sensor',
      objectId: `printer_${printer.id}_state`,
      name: 'State',
      state_topic: stateTopic,
      value_template: "{{ value_json.state if value_json.online else 'offline' }}",
      json_attributes_topic: stateTopic,
      icon: 'mdi:printer-3d',
    },
    {
      component: 'sensor',
      objectId: `printer_${printer.id}_progress`,
      name: 'Progress',
      state_topic: stateTopic,
      value_template: '{{ value_json.progress }}',
      unit_of_measurement: '%',
      state_class: 'measurement',
      icon: 'mdi:printer-3d-nozzle',
    },
  ];
}

export function bridgeDevice(context: DiscoveryContext): DiscoveryDevice {
  return {
    identifiers: [context.nodeId],
    name: 'Printernizer Stats',
    manufacturer: 'Printernizer',
    model: 'printernizer-stats',
    sw_version: context.version,
  };
}

function printerDevice(context: DiscoveryContext, printer: DiscoveryPrinter): DiscoveryDevice {
  return {
    identifiers: [`${context.nodeId}_printer_${printer.id}`],
    name: printer.name,
    manufacturer: MANUFACTURERS[printer.type],
    model: printer.model === 'other' ? 'unknown model' : printer.model,
    via_device: context.nodeId,
  };
}

function toMessages(context: DiscoveryContext, device: DiscoveryDevice, specs: EntitySpec[]): DiscoveryMessage[] {
  const origin = { name: 'printernizer-stats', sw: context.version, ...originUrl() };
  const availability = [
    { topic: context.topics.bridgeState, payload_available: 'online', payload_not_available: 'offline' },
  ];
  return specs.map(({ component, objectId, ...entity }) => {
    const config: DiscoveryConfig = {
      ...entity,
      unique_id: `${context.nodeId}_${objectId}`,
      has_entity_name: true,
      availability,
      device,
      origin,
    };
    return {
      topic: context.topics.discoveryConfig(component, context.nodeId, objectId),
      payload: JSON.stringify(config),
    };
  });
}

export function bridgeDiscovery(context: DiscoveryContext): DiscoveryMessage[] {
  return toMessages(context, bridgeDevice(context), bridgeEntities(context.topics));
}

export function printerDiscovery(context: DiscoveryContext, printer: DiscoveryPrinter): DiscoveryMessage[] {
  return toMessages(context, printerDevice(context, printer), printerEntities(context.topics, printer));
}

/** Empty retained payloads for every entity of the daemon device. */
export function bridgeDiscoveryRemoval(context: DiscoveryContext): DiscoveryMessage[] {
  return bridgeEntities(context.topics).map(({ component, objectId }) => ({
    topic: context.topics.discoveryConfig(component, context.nodeId, objectId),
    payload: '',
  }));
}

/** Empty retained payloads for a printer's entities; only its id is needed, so it works after it left the config. */
export function printerDiscoveryRemoval(context: DiscoveryContext, printerId: string): DiscoveryMessage[] {
  const placeholder: DiscoveryPrinter = { id: printerId, name: printerId, type: 'prusa', model: 'other' };
  return printerEntities(context.topics, placeholder).map(({ component, objectId }) => ({
    topic: context.topics.discoveryConfig(component, context.nodeId, objectId),
    payload: '',
  }));
}

let cachedOriginUrl: { url?: string } | null = null;

/** origin.url from package.json's `homepage`, when the package declares one. */
function originUrl(): { url?: string } {
  if (cachedOriginUrl) return cachedOriginUrl;
  cachedOriginUrl = {};
  for (const relative of ['../../package.json', '../../../package.json']) {
    const url = new URL(relative, import.meta.url);
    if (!existsSync(url)) continue;
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; homepage?: string };
      if (pkg.name === 'printernizer-stats') {
        if (typeof pkg.homepage === 'string' && /^https?:\/\//.test(pkg.homepage))
          cachedOriginUrl = { url: pkg.homepage };
        break;
      }
    } catch {
      // An unreadable package.json only costs the origin its URL.
    }
  }
  return cachedOriginUrl;
}
