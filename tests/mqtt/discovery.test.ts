import { describe, expect, it } from 'vitest';
import {
  bridgeDiscovery,
  bridgeDiscoveryRemoval,
  type DiscoveryContext,
  printerDiscovery,
  printerDiscoveryRemoval,
} from '../../src/mqtt/discovery.js';
import { mirrorTopics } from '../../src/mqtt/topics.js';
import { discoveryTopicParts, validateDiscovery } from './ha-schema.js';

const context: DiscoveryContext = {
  topics: mirrorTopics('printernizer', 'homeassistant'),
  nodeId: 'printernizer_stats_abc123',
  version: '0.1.0',
};
const x1c = { id: 'workshop_x1c', name: 'Workshop X1C', type: 'bambu_lab', model: 'X1C' } as const;

function all() {
  return [...bridgeDiscovery(context), ...printerDiscovery(context, x1c)];
}

describe('Home Assistant discovery configs', () => {
  it('load as Home Assistant requires: unique_id, state_topic, value_template, device identifiers, availability', () => {
    const messages = all();
    expect(messages.map((m) => m.topic).sort()).toEqual(
      [
        'homeassistant/binary_sensor/printernizer_stats_abc123/opt_in/config',
        'homeassistant/sensor/printernizer_stats_abc123/jobs_completed/config',
        'homeassistant/sensor/printernizer_stats_abc123/jobs_failed/config',
        'homeassistant/sensor/printernizer_stats_abc123/print_hours/config',
        'homeassistant/sensor/printernizer_stats_abc123/printer_workshop_x1c_progress/config',
        'homeassistant/sensor/printernizer_stats_abc123/printer_workshop_x1c_state/config',
        'homeassistant/sensor/printernizer_stats_abc123/success_rate/config',
        'homeassistant/sensor/printernizer_stats_abc123/total_events/config',
      ].sort(),
    );
    const uniqueIds = new Set<string>();
    for (const message of messages) {
      const config = validateDiscovery('homeassistant', message.topic, message.payload);
      uniqueIds.add(config.unique_id);
      expect(config.availability).toEqual([
        { topic: 'printernizer/bridge/state', payload_available: 'online', payload_not_available: 'offline' },
      ]);
      expect(config.origin).toMatchObject({ name: 'printernizer-stats', sw: '0.1.0' });
    }
    expect(uniqueIds.size).toBe(messages.length);
  });

  it('points the statistics at <base>/stats and each printer at its state topic, with units', () => {
    const byObject = new Map(
      all().map((m) => [discoveryTopicParts('homeassistant', m.topic)!.objectId, JSON.parse(m.payload)] as const),
    );
    expect(byObject.get('jobs_completed')).toMatchObject({
      state_topic: 'printernizer/stats',
      value_template: '{{ value_json.jobs_completed }}',
      state_class: 'total_increasing',
    });
    expect(byObject.get('success_rate')).toMatchObject({ unit_of_measurement: '%' });
    expect(byObject.get('print_hours')).toMatchObject({ unit_of_measurement: 'h', device_class: 'duration' });
    expect(byObject.get('opt_in')).toMatchObject({
      value_template: '{{ value_json.opt_in_status }}',
      payload_on: 'enabled',
      payload_off: 'disabled',
    });
    expect(byObject.get('printer_workshop_x1c_progress')).toMatchObject({
      state_topic: 'printernizer/printers/workshop_x1c/state',
      unit_of_measurement: '%',
    });
    expect(byObject.get('printer_workshop_x1c_state').device).toEqual({
      identifiers: ['printernizer_stats_abc123_printer_workshop_x1c'],
      name: 'Workshop X1C',
      manufacturer: 'Bambu Lab',
      model: 'X1C',
      via_device: 'printernizer_stats_abc123',
    });
    expect(byObject.get('jobs_failed').device).toMatchObject({
      identifiers: ['printernizer_stats_abc123'],
      sw_version: '0.1.0',
    });
  });

  it('removal clears exactly the topics that were published, with empty payloads', () => {
    const removal = [...bridgeDiscoveryRemoval(context), ...printerDiscoveryRemoval(context, 'workshop_x1c')];
    expect(removal.map((m) => m.topic).sort()).toEqual(
      all()
        .map((m) => m.topic)
        .sort(),
    );
    expect(removal.every((m) => m.payload === '')).toBe(true);
  });
});
