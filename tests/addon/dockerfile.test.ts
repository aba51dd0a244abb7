/**
 * Lint-style checks of the Dockerfile, since there is no Docker engine (nor hadolint) on the development machines:
 * one pinned multi-arch base (no build.yaml), multi-stage with production dependencies only in the image that runs,
 * better-sqlite3 installed in one stage only, Node.js from Alpine's packages, HEALTHCHECK, labels, and sources that
 * exist and are not excluded by .dockerignore.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Instruction, readInstructions } from './dockerfile-stages.js';

const root = join(import.meta.dirname, '..', '..');
const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

const all = readInstructions(join(root, 'Dockerfile'));
const stages: Instruction[][] = [];
for (const instruction of all) {
  if (instruction.keyword === 'FROM') stages.push([]);
  stages.at(-1)?.push(instruction);
}
const runStage = stages.at(-1)!;
/** The literal `${BUILD_FROM}` as written in FROM lines. */
const BUILD_FROM_REF = ['$', '{BUILD_FROM}'].join('');
const stageArgs = (stage: Instruction[], keyword: string) =>
  stage.filter((i) => i.keyword === keyword).map((i) => i.args);

describe('Dockerfile', () => {
  it('pins one multi-arch Home Assistant base through BUILD_FROM, never `latest`, and has no build.yaml', () => {
    const buildFrom = /^ARG BUILD_FROM=(\S+)$/m.exec(text)?.[1];
    // Without build.yaml the Supervisor passes no BUILD_FROM: this default is the base on every architecture.
    expect(buildFrom).toMatch(/^ghcr\.io\/home-assistant\/base:\d+\.\d+(\.\d+)?$/);
    for (const file of ['build.yaml', 'build.yml', 'build.json'])
      expect(existsSync(join(root, file)), file).toBe(false);
    expect(text).not.toMatch(/:latest\b/);
    // The global ARG comes before the first FROM, so every stage can use it.
    expect(all[0]).toEqual({ keyword: 'ARG', args: `BUILD_FROM=${buildFrom}` });
    // Every stage starts from the pinned base or from an earlier stage built on it.
    const names = new Set<string>();
    for (const from of all.filter((i) => i.keyword === 'FROM')) {
      const [image, as, name] = from.args.split(' ');
      expect(image === BUILD_FROM_REF || names.has(image!), `FROM ${from.args}`).toBe(true);
      if (as) names.add(name!);
    }
  });

  it('is multi-stage: dev dependencies and the build in one stage, production dependencies in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    const runs = all.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /npm ci --omit=dev/.test(r))).toBe(true);
    expect(runs.some((r) => /npm ci(?! --omit)/.test(r) && !/--omit=dev/.test(r))).toBe(true);
    expect(runs.some((r) => /npm run build/.test(r))).toBe(true);
    // The image that runs installs nothing with npm and has no compiler.
    for (const run of stageArgs(runStage, 'RUN')) {
      expect(run).not.toMatch(/\bnpm\b|g\+\+|python3|\bmake\b/);
    }
    const copies = stageArgs(runStage, 'COPY');
    expect(copies).toContain('--from=deps /src/node_modules ./node_modules');
    expect(copies).toContain('--from=build /src/dist ./dist');
    expect(copies.some((c) => c.includes('--from=build /src/node_modules'))).toBe(false);
  });

  it("takes Node.js from Alpine's packages, with build tools only where better-sqlite3 is compiled", () => {
    const apkIn = (stage: Instruction[]) =>
      stageArgs(stage, 'RUN')
        .filter((r) => r.includes('apk add'))
        .join(' && ');
    const [node, deps, build] = stages;
    expect(apkIn(node!)).toBe('apk add --no-cache nodejs npm');
    expect(apkIn(deps!)).toBe('apk add --no-cache python3 make g++');
    expect(apkIn(build!)).toBe('');
    expect(stageArgs(runStage, 'RUN')).toContain('apk add --no-cache nodejs');
  });

  it('installs better-sqlite3 once: install scripts run only in the production dependencies stage', () => {
    const installs = stages.map((stage) => stageArgs(stage, 'RUN').filter((r) => /\bnpm (ci|install)\b/.test(r)));
    const withScripts = installs.flat().filter((r) => !/--ignore-scripts/.test(r));
    expect(withScripts).toEqual(['npm ci --omit=dev --no-audit --no-fund && npm cache clean --force']);
    expect(installs[1]).toEqual(withScripts); // the deps stage
    expect(installs[2]).toEqual(['npm ci --ignore-scripts --no-audit --no-fund']); // the build stage
    // What the build stage runs needs no install script: tsc only.
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toMatch(/^tsc -p tsconfig\.build\.json$/);
  });

  it('has a HEALTHCHECK on /api/v1/health and exposes the ingress port', () => {
    const healthcheck = stageArgs(runStage, 'HEALTHCHECK')[0];
    expect(healthcheck).toMatch(/CMD .*\/api\/v1\/health/);
    expect(healthcheck).toMatch(/--interval=\d+s/);
    expect(stageArgs(runStage, 'EXPOSE')).toContain('8099');
  });

  it('carries io.hass.* and org.opencontainers.image.* labels', () => {
    const labels = stageArgs(runStage, 'LABEL').join(' ');
    for (const label of [
      'io.hass.name',
      'io.hass.description',
      'io.hass.type="app"',
      'io.hass.arch',
      'io.hass.version',
      'org.opencontainers.image.title',
      'org.opencontainers.image.version',
      'org.opencontainers.image.licenses',
      'org.opencontainers.image.source',
    ]) {
      expect(labels).toContain(label);
    }
  });

  it('defaults BUILD_VERSION to the package version', () => {
    expect(/^ARG BUILD_VERSION=(\S+)$/m.exec(text)?.[1]).toBe(pkg.version);
  });

  it('copies only sources that exist and that .dockerignore lets through', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const sources = all
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(join(root, source)), `${source} exists`).toBe(true);
      expect(ignored, `${source} is not in .dockerignore`).not.toContain(source);
    }
    for (const never of ['node_modules', 'dist', 'data', '.git']) expect(ignored).toContain(never);
  });

  it('starts through s6-overlay (the base image entrypoint), not a CMD of its own', () => {
    expect(stageArgs(runStage, 'ENTRYPOINT')).toEqual([]);
    expect(stageArgs(runStage, 'CMD')).toEqual([]);
    expect(stageArgs(runStage, 'COPY')).toContain('rootfs /');
  });
});
