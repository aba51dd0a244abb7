import { describe, expect, it } from 'vitest';
import { assignPrinterIds, mirrorTopics } from '../../src/mqtt/topics.js';

describe('mirror topics', () => {
  it('names every topic under the base and the discovery prefix', () => {
    const topics = mirrorTopics('printernizer', 'homeassistant');
    expect(topics.bridgeState).toBe('printernizer/bridge/state');
    expect(topics.events).toBe('printernizer/events');
    expect(topics.stats).toBe('printernizer/stats');
    expect(topics.printerState('workshop_x1c')).toBe('printernizer/printers/workshop_x1c/state');
    expect(topics.haStatus).toBe('homeassistant/status');
    expect(topics.discoveryConfig('binary_sensor', 'node', 'opt_in')).toBe(
      'homeassistant/binary_sensor/node/opt_in/config',
    );
  });

  it('tolerates slashes around a nested base topic', () => {
    const topics = mirrorTopics('/home/printernizer/', 'ha/');
    expect(topics.stats).toBe('home/printernizer/stats');
    expect(topics.haStatus).toBe('ha/status');
  });
});

describe('printer ids', () => {
  it('are slugs of the configured names, stable and de-duplicated in config order', () => {
    expect(assignPrinterIds(['Workshop X1C', 'Küche MK4', 'A-1', 'A 1', 'a_1', '!!!'])).toEqual([
      'workshop_x1c',
      'kuche_mk4',
      'a_1',
      'a_1_2',
      'a_1_3',
      'printer',
    ]);
    expect(assignPrinterIds(['Workshop X1C'])).toEqual(assignPrinterIds(['Workshop X1C']));
  });

  it('never contain topic wildcards or separators', () => {
    for (const id of assignPrinterIds(['a/b', 'c+d', 'e#f', 'g h'])) expect(id).toMatch(/^[a-z0-9_]+$/);
  });
});
