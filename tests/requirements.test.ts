/**
 * The requirements helper outside CI (the CI branch adds a failing test to the calling file, which a test cannot show
 * from inside a test; `CI=1 npx vitest run` on a file asking for a missing tool shows it: "requires <tool>" fails).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { findExecutable, inCI, requireTool, requireToolAsync, runsCleanly } from './requirements.js';

describe('inCI', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['0', false],
    ['false', false],
    ['FALSE', false],
    ['1', true],
    ['true', true],
  ])('CI=%s is %s', (value, expected) => {
    expect(inCI(value === undefined ? {} : { CI: value })).toBe(expected);
  });
});

describe('probes', () => {
  it('finds executables on PATH and not made-up ones', () => {
    expect(findExecutable('sh')).toMatch(/\/sh$/);
    expect(findExecutable('no-such-tool-printernizer')).toBeNull();
  });

  it('runsCleanly is true only for a command that exits 0', () => {
    expect(runsCleanly('true', [])).toBe(true);
    expect(runsCleanly('false', [])).toBe(false);
    expect(runsCleanly('no-such-tool-printernizer', [])).toBe(false);
  });
});

describe('requireTool outside CI', () => {
  const saved = process.env.CI;
  afterEach(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
    vi.restoreAllMocks();
  });

  it('runs the tests when the probe finds the tool, silently', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    delete process.env.CI;
    expect(requireTool('sh', () => true)).toBe(true);
    expect(write).not.toHaveBeenCalled();
  });

  it('skips with a printed reason and hint when it is missing, or when the probe throws', async () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    delete process.env.CI;
    expect(requireTool('gizmo', () => false, 'apt-get install -y gizmo')).toBe(false);
    expect(requireTool('widget', () => ({ ok: false, reason: 'too old' }))).toBe(false);
    expect(
      requireTool('gadget', () => {
        throw new Error('boom');
      }),
    ).toBe(false);
    expect(await requireToolAsync('server', async () => false, 'start it')).toBe(false);
    expect(await requireToolAsync('server', async () => true)).toBe(true);
    const lines = write.mock.calls.map((call) => String(call[0]));
    expect(lines).toEqual([
      '[skip] tests that need gizmo are skipped: not found (apt-get install -y gizmo)\n',
      '[skip] tests that need widget are skipped: too old\n',
      '[skip] tests that need gadget are skipped: probe failed: boom\n',
      '[skip] tests that need server are skipped: not found (start it)\n',
    ]);
  });
});
