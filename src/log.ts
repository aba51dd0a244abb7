/**
 * pino JSON logs to stdout (pretty on a terminal). Secrets are redacted by path wherever they could appear, and the
 * config's own log_level names ("warning", "notice" from Home Assistant) are mapped onto pino's levels.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'access_code',
  'password',
  'api_key',
  'api_token',
  'token',
  'secret',
  'authorization',
  'serial',
  '*.access_code',
  '*.password',
  '*.api_key',
  '*.api_token',
  '*.token',
  '*.secret',
  '*.authorization',
  '*.serial',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'config.printers[*].access_code',
  'config.printers[*].password',
  'config.printers[*].api_key',
  'config.printers[*].serial',
  'config.mqtt.password',
  // User names and printer addresses are personal too (a name, a home network); the broker URL can carry credentials.
  'username',
  '*.username',
  'config.printers[*].username',
  'config.printers[*].host',
  'config.mqtt.username',
  'config.mqtt.url',
];

const LEVEL_MAP: Record<string, pino.Level> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  notice: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
};

export interface LoggerOptions {
  level?: string;
  /** Pretty-print for people; defaults to whether stdout is a terminal. */
  pretty?: boolean;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = LEVEL_MAP[options.level ?? 'info'] ?? 'info';
  const base: pino.LoggerOptions = {
    level,
    base: { name: 'printernizer-stats' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } },
    });
  }
  return pino(base);
}

/** A logger that writes nowhere, for tests and one-shot CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
