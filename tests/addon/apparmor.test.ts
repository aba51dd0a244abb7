/**
 * The add-on's AppArmor profile compiles (apparmor_parser, skipped where it is not installed, required under CI:
 * `apt-get install apparmor`). Whether its rules let the daemon do its work can only be seen on a Home Assistant host.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireTool, runsCleanly } from '../requirements.js';

const profile = join(import.meta.dirname, '..', '..', 'apparmor.txt');
const hasParser = requireTool(
  'apparmor_parser',
  () => runsCleanly('apparmor_parser', ['--version']),
  'apt-get install -y apparmor',
);

describe('apparmor.txt', () => {
  it('names the add-on slug and gives the daemon its own profile with /data writable', () => {
    const text = readFileSync(profile, 'utf8');
    expect(text).toMatch(/^profile printernizer_stats flags=/m);
    expect(text).toContain('/usr/bin/node cx -> printernizer_stats_daemon,');
    expect(text).toMatch(/profile printernizer_stats_daemon [^{]*\{[\s\S]*\/data\/\*\* rwk,/);
  });

  it.skipIf(!hasParser)('compiles with apparmor_parser', () => {
    const result = spawnSync('apparmor_parser', ['--skip-kernel-load', '--skip-cache', '--stdout', profile], {
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
  });
});
