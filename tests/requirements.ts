/**
 * Tests that need a tool from outside npm (mosquitto, Chromium, PostgreSQL, shellcheck, apparmor_parser, mount
 * namespaces) ask for it here, at the top of their file:
 *
 *   const haveMosquitto = requireTool('mosquitto', () => mosquittoBinary !== null, 'apt-get install -y mosquitto');
 *   describe.skipIf(!haveMosquitto)('against mosquitto', () => { ... });
 *
 * When the tool is there the answer is true and the tests run. When it is missing:
 * - under CI (`CI` set, as `.ci/run` does) a test named "requires <tool>" is added to the calling file and fails with
 *   the reason and the install hint, so a machine without the tool fails the run instead of quietly skipping; the
 *   answer is false, so the dependent tests skip rather than repeat the same failure;
 * - elsewhere the answer is false and one line on stderr says what is skipped and how to get the tool.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';
import { inCI } from './ci.js';

export { inCI };

/** An executable named `name` on PATH or in the sbin directories (where Debian puts mosquitto), or null. */
export function findExecutable(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

/** Whether `command args` runs and exits 0 (within 10 s). */
export function runsCleanly(command: string, args: readonly string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** What `probe` may answer: available or not, or not with the reason why. */
export type ProbeResult = boolean | { ok: false; reason: string };

function settle(name: string, result: ProbeResult | Error, hint: string | undefined): boolean {
  if (result === true) return true;
  const why =
    result === false ? 'not found' : result instanceof Error ? `probe failed: ${result.message}` : result.reason;
  const how = hint ? ` (${hint})` : '';
  if (inCI()) {
    it(`requires ${name}`, () => {
      throw new Error(`${name} is required under CI but is unavailable: ${why}${how}`);
    });
  } else {
    process.stderr.write(`[skip] tests that need ${name} are skipped: ${why}${how}\n`);
  }
  return false;
}

/**
 * Whether the tests that need `name` should run (see the top of this file). `probe` says whether it is available;
 * a probe that throws counts as unavailable. `hint` says how to install it, e.g. 'apt-get install -y shellcheck'.
 * Call it at the top level of a test file (it may add a test there).
 */
export function requireTool(name: string, probe: () => ProbeResult, hint?: string): boolean {
  let result: ProbeResult | Error;
  try {
    result = probe();
  } catch (error) {
    result = error as Error;
  }
  return settle(name, result, hint);
}

/** The same with a probe that has to wait (start a server, connect): `const ok = await requireToolAsync(...)`. */
export async function requireToolAsync(
  name: string,
  probe: () => Promise<ProbeResult>,
  hint?: string,
): Promise<boolean> {
  let result: ProbeResult | Error;
  try {
    result = await probe();
  } catch (error) {
    result = error as Error;
  }
  return settle(name, result, hint);
}
