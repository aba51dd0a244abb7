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
        login: 'config',
      },
    });
  });

  it("never sends the Supervisor's login to a broker the user configured", () => {
    const result = resolveMqttSettings(mqttConfig({ url: 'mqtt://broker:1883' }), {
      MQTT_URL: 'mqtt://core-mosquitto:1883',
      MQTT_USERNAME: 'addons',
      MQTT_PASSWORD: 'secret',
    });
    expect(result.ok && result.settings).toMatchObject({ username: undefined, password: undefined, login: 'none' });
  });

  it("uses the user's own login with the Supervisor's broker address when url is empty (issue 13)", () => {
    // The add-on's run script leaves MQTT_USERNAME/MQTT_PASSWORD out when mqtt.username is set; even if they were
    // there, the user's login wins.
    for (const env of [
      { MQTT_URL: 'mqtt://core-mosquitto:1883' },
      { MQTT_URL: 'mqtt://core-mosquitto:1883', MQTT_USERNAME: 'addons', MQTT_PASSWORD: 'secret' },
    ]) {
      const result = resolveMqttSettings(mqttConfig({ url: '', username: 'me', password: 'mine' }), env);
      expect(result.ok && result.settings).toMatchObject({
        url: 'mqtt://core-mosquitto:1883',
        username: 'me',
        password: 'mine',
        source: 'environment',
        login: 'config',
      });
    }
  });

  it("a password alone is no login: the Supervisor's login is used", () => {
    const result = resolveMqttSettings(mqttConfig({ password: 'orphan' }), {
      MQTT_URL: 'mqtt://core-mosquitto:1883',
      MQTT_USERNAME: 'addons',
      MQTT_PASSWORD: 'secret',
    });
    expect(result.ok && result.settings).toMatchObject({
      username: 'addons',
      password: 'secret',
      login: 'environment',
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
      login: 'environment',
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
