import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { redactUrl } from '../../src/mqtt/publisher.js';
import { resolveMqttSettings } from '../../src/mqtt/settings.js';

const mqttConfig = (mqtt: Record<string, unknown>) => parseConfig({ mqtt: { enabled: true, ...mqtt } }).mqtt;

describe('resolveMqttSettings', () => {
  it('uses the configured broker and its credentials', () => {
    const result = resolveMqttSettings(mqttConfig({ url: 'mqtt://broker:1883', username: 'u', password: 'p' }), {
      MQTT_URL: 'mqtt://core-mosquitto:1883',
      MQTT_USERNAME: 'addons',
      MQTT_PASSWORD: 'secret',
    });
    expect(result).toEqual({
      ok: true,
      settings: {
        url: 'mqtt://broker:1883',
        username: 'u',
        password: 'p',
        baseTopic: 'printernizer',
        discovery: true,
        discoveryPrefix: 'homeassistant',
        source: 'config',
      },
    });
  });

  it('falls back to the Supervisor broker from MQTT_URL / MQTT_USERNAME / MQTT_PASSWORD when url is empty', () => {
    const result = resolveMqttSettings(mqttConfig({ url: '', username: '', password: '' }), {
      MQTT_URL: 'mqtt://core-mosquitto:1883',
      MQTT_USERNAME: 'addons',
      MQTT_PASSWORD: 'secret',
    });
    expect(result.ok && result.settings).toMatchObject({
      url: 'mqtt://core-mosquitto:1883',
      username: 'addons',
      password: 'secret',
      source: 'environment',
    });
  });

  it('says why when no broker is known or MQTT_URL is not a broker URL', () => {
    expect(resolveMqttSettings(mqttConfig({}), {})).toEqual({
      ok: false,
      reason: 'mqtt.enabled is true but no broker is set (mqtt.url or MQTT_URL)',
    });
    const bad = resolveMqttSettings(mqttConfig({}), { MQTT_URL: 'core-mosquitto:1883' });
    expect(bad.ok).toBe(false);
  });

  it('keeps credentials out of the logged URL', () => {
    expect(redactUrl('mqtt://user:pw@broker:1883')).toBe('mqtt://broker:1883');
  });
});
