/**
 * How the add-on starts the daemon, read from its s6 `run` script so that every benchmark of the built daemon
 * (farm, soak, bambu-fleet-daemon) follows a change there: the node flags of the `exec node` line and the variables
 * the script exports unconditionally (`export NAME=value` at the start of a line, outside any `if`).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RUN_SCRIPT = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'rootfs',
  'etc',
  's6-overlay',
  's6-rc.d',
  'printernizer-stats',
  'run',
);

/** The node flags before `dist/src/cli.js` on the script's `exec node` line. */
export function addonNodeFlags(script = readFileSync(RUN_SCRIPT, 'utf8')): string[] {
  const exec = /^\s*exec\s+node\s+(.*?)\s*\S*dist\/src\/cli\.js\b/m.exec(script);
  if (!exec) throw new Error(`no "exec node ... dist/src/cli.js" line in ${RUN_SCRIPT}`);
  return (exec[1] ?? '').split(/\s+/).filter(Boolean);
}

/** The add-on's node flags, or `override` (space-separated) when a benchmark is asked to try others. */
export function daemonNodeFlags(override: string | undefined): string[] {
  return override === undefined ? addonNodeFlags() : override.split(' ').filter(Boolean);
}

/** The environment to start the daemon in: what the script exports, under what the caller set (trying another value). */
export function addonLaunchEnvironment(): NodeJS.ProcessEnv {
  return { ...addonEnvironment(), ...process.env };
}

/** `export NAME=value` lines at the top level of the script (not indented: the conditional ones are Supervisor-only). */
export function addonEnvironment(script = readFileSync(RUN_SCRIPT, 'utf8')): Record<string, string> {
  const env: Record<string, string> = {};
  for (const match of script.matchAll(/^export\s+([A-Z_][A-Z0-9_]*)=([^\s"'$`]+)\s*$/gm)) {
    env[match[1] as string] = match[2] as string;
  }
  return env;
}
