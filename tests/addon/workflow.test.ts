/**
 * Issue 13, point 7: the workflow that publishes pre-built images on a version tag, with Home Assistant's builder
 * actions, for the architectures config.yaml names, under the image name DOCS.md tells maintainers to put into
 * `image:` once the images exist. Its tag check is run for real (bash, as GitHub runs a `run:` step).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { tempDir } from '../helpers.js';

const root = join(import.meta.dirname, '..', '..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const addon = parse(read('config.yaml')) as { version: string; arch: string[]; url: string; image?: string };

interface Step {
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string>;
}
interface Workflow {
  on: { push: { tags: string[] } };
  env: { ARCHITECTURES: string; IMAGE_NAME: string };
  jobs: Record<string, { needs?: string | string[]; steps: Step[]; permissions?: Record<string, string> }>;
}
const workflow = parse(read('.github/workflows/builder.yaml')) as Workflow;
const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);

/** GitHub's filter patterns: `[0-9]` a class, `+` one or more of what precedes, `*` anything but `/`. */
function tagFilter(pattern: string): RegExp {
  const source = pattern.replace(/\./g, '\\.').replace(/\*/g, '[^/]*');
  return new RegExp(`^${source}$`);
}
const triggers = (tag: string) => workflow.on.push.tags.some((pattern) => tagFilter(pattern).test(tag));

describe('.github/workflows/builder.yaml', () => {
  it('runs on version tags only', () => {
    expect(Object.keys(workflow.on)).toEqual(['push']);
    for (const tag of ['0.1.0', 'v0.1.0', '1.12.3']) expect(triggers(tag), tag).toBe(true);
    for (const tag of ['latest', 'v1', '0.1', 'release-0.1.0']) expect(triggers(tag), tag).toBe(false);
  });

  it("builds config.yaml's architectures with Home Assistant's builder actions, pinned to a commit", () => {
    expect((JSON.parse(workflow.env.ARCHITECTURES) as string[]).sort()).toEqual([...addon.arch].sort());
    const builder = steps.filter((step) => step.uses?.startsWith('home-assistant/builder/'));
    expect(builder.map((step) => step.uses!.split('@')[0])).toEqual([
      'home-assistant/builder/actions/prepare-multi-arch-matrix',
      'home-assistant/builder/actions/build-image',
      'home-assistant/builder/actions/publish-multi-arch-manifest',
    ]);
    for (const step of builder) expect(step.uses).toMatch(/@[0-9a-f]{40}$/);
    const build = builder[1]!.with!;
    // The GitHub expression as written in the workflow (built here so no linter takes it for a template).
    const version = ['$', '{{ needs.init.outputs.version }}'].join('');
    expect(build.push).toBe('true');
    expect(build.version).toBe(version);
    expect(build['image-tags']).toContain(version);
    expect(build.labels).toContain('io.hass.type=app');
    expect(workflow.jobs.build!.permissions).toMatchObject({ packages: 'write' });
    expect(workflow.jobs.manifest!.needs).toEqual(['init', 'build']);
  });

  it('publishes under the name DOCS.md gives for `image:`, which config.yaml does not set yet', () => {
    // prepare-multi-arch-matrix names images ghcr.io/<owner>/<arch>-<image-name>.
    const owner = new URL(addon.url).pathname.split('/')[1];
    const image = `ghcr.io/${owner}/{arch}-${workflow.env.IMAGE_NAME}`;
    expect(read('DOCS.md')).toContain(`image: ${image}`);
    expect(read('README.md')).toContain('image:');
    expect(addon.image).toBeUndefined();
  });

  it("refuses a tag that is not config.yaml's version (the step's script, run by bash)", () => {
    const script = steps.find((step) => step.id === 'version')!.run!;
    const runStep = (tag: string) => {
      const output = join(tempDir('pstats-gh-'), 'output');
      const result = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
        cwd: root,
        env: { PATH: process.env.PATH, TAG: tag, GITHUB_OUTPUT: output },
        encoding: 'utf8',
      });
      let written = '';
      try {
        written = readFileSync(output, 'utf8');
      } catch {
        // nothing written
      }
      return { status: result.status, stdout: result.stdout, written };
    };
    expect(runStep(addon.version)).toMatchObject({ status: 0, written: `version=${addon.version}\n` });
    expect(runStep(`v${addon.version}`)).toMatchObject({ status: 0, written: `version=${addon.version}\n` });
    const wrong = runStep('9.9.9');
    expect(wrong.status).toBe(1);
    expect(wrong.stdout).toContain(`::error::tag 9.9.9 does not match config.yaml's version ${addon.version}`);
  });
});
