/**
 * Where the daemon keeps its data and finds its config, and where it listens: flags > environment > defaults.
 * The add-on's /data is used when it exists and is writable; elsewhere ./data.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface RuntimeFlags {
  config?: string;
  'data-dir'?: string;
  port?: string;
  host?: string;
}

export interface Runtime {
  dataDir: string;
  configPath: string | undefined;
  port: number;
  host: string;
}

export const DEFAULT_PORT = 8099;
export const DEFAULT_HOST = '0.0.0.0';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function isWritableDir(dir: string): boolean {
  try {
    if (!statSync(dir).isDirectory()) return false;
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function defaultDataDir(addonDir = '/data'): string {
  return isWritableDir(addonDir) ? addonDir : resolve('data');
}

function parsePort(value: string, source: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${source}: port must be a number from 0 to 65535, got "${value}"`);
  const port = Number(value);
  if (port > 65535) throw new UsageError(`${source}: port must be a number from 0 to 65535, got "${value}"`);
  return port;
}

export function resolveRuntime(flags: RuntimeFlags, env: NodeJS.ProcessEnv = process.env): Runtime {
  const dataDir = resolve(flags['data-dir'] ?? (env.PRINTERNIZER_DATA_DIR || undefined) ?? defaultDataDir());
  const explicitConfig = flags.config ?? (env.PRINTERNIZER_CONFIG || undefined);
  const defaultConfig = join(dataDir, 'options.json');
  const configPath = explicitConfig ? resolve(explicitConfig) : existsSync(defaultConfig) ? defaultConfig : undefined;
  const port =
    flags.port !== undefined ? parsePort(flags.port, '--port') : env.PORT ? parsePort(env.PORT, 'PORT') : DEFAULT_PORT;
  const host = flags.host ?? (env.HOST || undefined) ?? DEFAULT_HOST;
  return { dataDir, configPath, port, host };
}
