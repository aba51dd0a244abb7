/**
 * What the daemon may say about where and how it runs, reduced to coarse, non-identifying values: a country from the
 * configured time zone (never an IP lookup), the deployment mode, the platform and versions.
 */
import { existsSync, readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import ct from 'countries-and-timezones';
import type { DeploymentMode } from './events.js';

/**
 * ISO 3166-1 alpha-2 country of an IANA time zone, from the maintained countries-and-timezones dataset (tzdata's
 * zone.tab order, so the zone's own country comes first). Null for UTC, Etc/* and unknown zones.
 */
export function countryFromTimezone(timezone: string | undefined | null): string | null {
  if (!timezone) return null;
  const zone = ct.getTimezone(timezone);
  return zone?.countries[0] ?? null;
}

/** The time zone the user configured, else TZ, else the system's. */
export function effectiveTimezone(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  return configured ?? (env.TZ || undefined) ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? null;
}

export function detectDeploymentMode(
  env: NodeJS.ProcessEnv = process.env,
  dockerMarker = '/.dockerenv',
): DeploymentMode {
  if (env.SUPERVISOR_TOKEN) return 'homeassistant';
  if (env.PRINTERNIZER_DEPLOYMENT === 'docker' || existsSync(dockerMarker) || isInContainerCgroup()) return 'docker';
  return 'standalone';
}

function isInContainerCgroup(): boolean {
  try {
    return /docker|containerd|kubepods|libpod/.test(readFileSync('/proc/1/cgroup', 'utf8'));
  } catch {
    return false;
  }
}

/** DO_NOT_TRACK=1 (consoledonottrack.com) forces submission off whatever the stored choice is. */
export function doNotTrack(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.DO_NOT_TRACK ?? '').trim().toLowerCase();
  return value !== '' && value !== '0' && value !== 'false';
}

const KNOWN_PLATFORMS = new Set(['linux', 'darwin', 'win32', 'freebsd', 'openbsd']);
const KNOWN_ARCHS = new Set(['x64', 'arm64', 'arm', 'ia32']);

export function platformName(): string {
  return KNOWN_PLATFORMS.has(platform()) ? platform() : 'other';
}

export function archName(): string {
  return KNOWN_ARCHS.has(arch()) ? arch() : 'other';
}

export function runtimeVersion(): string {
  return process.versions.node;
}

let cachedVersion: string | undefined;

/** The real version from package.json, found relative to this file in src/ and in dist/src/. */
export function appVersion(): string {
  if (cachedVersion) return cachedVersion;
  for (const relative of ['../../package.json', '../../../package.json']) {
    const url = new URL(relative, import.meta.url);
    if (!existsSync(url)) continue;
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'printernizer-stats' && pkg.version) {
      cachedVersion = pkg.version;
      return cachedVersion;
    }
  }
  return '0.0.0';
}
