/**
 * Which broker the mirror talks to, and with which login.
 *
 * - `mqtt.url` set: that broker, with the config's `mqtt.username`/`mqtt.password` (or none). The Supervisor's
 *   login (MQTT_USERNAME/MQTT_PASSWORD) is never sent to a broker the user chose.
 * - `mqtt.url` empty (the add-on default): the broker address comes from MQTT_URL, which the add-on's s6 `run`
 *   script fills from the Supervisor's MQTT service. The login is the config's `mqtt.username`/`mqtt.password`
 *   when the user set a user name (the `run` script then keeps the Supervisor's login out of the environment), else
 *   MQTT_USERNAME/MQTT_PASSWORD (the Supervisor's login for add-ons). Issue 13: before, the user's own login was
 *   dropped here and a broker requiring it refused the anonymous connection.
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
  /** Whose login is used, for the log line: the user's (config), the Supervisor's (environment) or none. */
  login?: 'config' | 'environment' | 'none';
}

export type MqttResolution = { ok: true; settings: MqttSettings } | { ok: false; reason: string };

export function resolveMqttSettings(mqtt: MqttConfig, env: NodeJS.ProcessEnv = process.env): MqttResolution {
  const common = {
    baseTopic: mqtt.base_topic,
    discovery: mqtt.discovery,
    discoveryPrefix: mqtt.discovery_prefix,
  };
  const configLogin = {
    username: mqtt.username,
    password: mqtt.password,
    login: mqtt.username !== undefined ? ('config' as const) : ('none' as const),
  };
  if (mqtt.url) {
    return { ok: true, settings: { ...common, url: mqtt.url, ...configLogin, source: 'config' } };
  }
  const url = env[MQTT_ENV.url]?.trim();
  if (!url) {
    return { ok: false, reason: `mqtt.enabled is true but no broker is set (mqtt.url or ${MQTT_ENV.url})` };
  }
  if (!BROKER_URL.test(url)) {
    return { ok: false, reason: `${MQTT_ENV.url} must be a broker URL like mqtt://host:1883` };
  }
  // The user's login wins over the Supervisor's; a password alone (no user name) is not a login.
  const supervisorUser = env[MQTT_ENV.username] || undefined;
  const login =
    mqtt.username !== undefined
      ? configLogin
      : {
          username: supervisorUser,
          password: supervisorUser ? env[MQTT_ENV.password] || undefined : undefined,
          login: supervisorUser ? ('environment' as const) : ('none' as const),
        };
  return { ok: true, settings: { ...common, url, ...login, source: 'environment' } };
}
