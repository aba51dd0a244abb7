/**
 * Which broker the mirror talks to. The config's `mqtt.url` wins; when it is empty (the add-on default) the broker
 * comes from the environment, which the add-on's s6 `run` script fills from the Supervisor's MQTT service:
 * MQTT_URL (mqtt://host:port or mqtts://...), MQTT_USERNAME, MQTT_PASSWORD. Credentials are only taken from the same
 * source as the URL, so the Supervisor's login is never sent to a broker the user configured.
 */
import type { MqttConfig } from '../config.js';

export const MQTT_ENV = { url: 'MQTT_URL', username: 'MQTT_USERNAME', password: 'MQTT_PASSWORD' } as const;

const BROKER_URL = /^(mqtts?|wss?|tcp|ssl):\/\/.+/;

export interface MqttSettings {
  url: string;
  username: string | undefined;
  password: string | undefined;
  baseTopic: string;
  discovery: boolean;
  discoveryPrefix: string;
  /** Where the URL came from, for the log line (never the URL's credentials). */
  source: 'config' | 'environment';
}

export type MqttResolution = { ok: true; settings: MqttSettings } | { ok: false; reason: string };

export function resolveMqttSettings(mqtt: MqttConfig, env: NodeJS.ProcessEnv = process.env): MqttResolution {
  const common = {
    baseTopic: mqtt.base_topic,
    discovery: mqtt.discovery,
    discoveryPrefix: mqtt.discovery_prefix,
  };
  if (mqtt.url) {
    return {
      ok: true,
      settings: { ...common, url: mqtt.url, username: mqtt.username, password: mqtt.password, source: 'config' },
    };
  }
  const url = env[MQTT_ENV.url]?.trim();
  if (!url) {
    return { ok: false, reason: `mqtt.enabled is true but no broker is set (mqtt.url or ${MQTT_ENV.url})` };
  }
  if (!BROKER_URL.test(url)) {
    return { ok: false, reason: `${MQTT_ENV.url} must be a broker URL like mqtt://host:1883` };
  }
  return {
    ok: true,
    settings: {
      ...common,
      url,
      username: env[MQTT_ENV.username] || undefined,
      password: env[MQTT_ENV.password] || undefined,
      source: 'environment',
    },
  };
}
