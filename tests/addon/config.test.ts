/**
 * The add-on's config.yaml against the daemon: same version as package.json, and a schema that accepts the same keys
 * as the zod config in src/config.ts (STYLE.md: keep a test that holds them together). Also repository.yaml and
 * translations/en.yaml, which the Supervisor reads beside config.yaml (and no build.yaml, which it deprecates).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { z } from 'zod';
import {
  bambuPrinterSchema,
  configSchema,
  LOG_LEVELS,
  mqttSchema,
  parseConfig,
  prusaPrinterSchema,
  usageStatisticsSchema,
} from '../../src/config.js';

const root = join(import.meta.dirname, '..', '..');
const readYaml = (file: string) => parse(readFileSync(join(root, file), 'utf8')) as Record<string, unknown>;
const addon = readYaml('config.yaml');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

type HaSchema = string | HaSchema[] | { [key: string]: HaSchema };
type HaDict = { [key: string]: HaSchema };

/** One element of the Supervisor's option schema language (supervisor/addons/options.py, RE_SCHEMA_ELEMENT). */
interface HaLeaf {
  kind: 'str' | 'password' | 'int' | 'float' | 'bool' | 'email' | 'url' | 'port' | 'match' | 'list';
  optional: boolean;
  values?: string[];
}

function parseLeaf(element: string): HaLeaf {
  const match = /^(str|password|int|float|bool|email|url|port|match|list)(?:\((.*)\))?(\?)?$/.exec(element);
  if (!match) throw new Error(`not a Supervisor schema element: ${element}`);
  const kind = match[1] as HaLeaf['kind'];
  return {
    kind,
    optional: match[3] === '?',
    ...(kind === 'list' ? { values: match[2]!.split('|') } : {}),
  };
}

const schema = addon.schema as HaDict;
const printerDict = (schema.printers as HaDict[])[0]!;

interface ZodInternals {
  _zod: {
    def: { type: string; innerType?: ZodLike; in?: ZodLike; out?: ZodLike; values?: unknown[]; entries?: object };
  };
}
type ZodLike = z.ZodType & ZodInternals;

/** The schema under defaults, optionals and preprocess pipes: what a present value must satisfy. */
function unwrap(schema: z.ZodType): ZodLike {
  let current = schema as ZodLike;
  for (;;) {
    const def = current._zod.def;
    if (def.innerType && ['default', 'optional', 'nullable', 'prefault', 'readonly'].includes(def.type)) {
      current = def.innerType;
    } else if (def.type === 'pipe' && def.in && def.out) {
      current = def.in._zod.def.type === 'transform' ? def.out : def.in;
    } else return current;
  }
}

function shapeOf(schema: z.ZodType): Record<string, z.ZodType> {
  const inner = unwrap(schema) as unknown as { shape?: Record<string, z.ZodType> };
  if (!inner.shape) throw new Error('not an object schema');
  return inner.shape;
}

/** The values a zod leaf takes, for enums and literals. */
function zodValues(schema: z.ZodType): string[] | undefined {
  const def = unwrap(schema)._zod.def;
  if (def.type === 'enum') return Object.values(def.entries ?? {}) as string[];
  if (def.type === 'literal') return def.values as string[];
  return undefined;
}

const isRequiredInZod = (field: z.ZodType) => !field.safeParse(undefined).success;

/** Checks one HA dict against one or more zod object variants (the printer union has two). */
function expectSameKeys(path: string, ha: HaDict, variants: z.ZodType[]): void {
  const shapes = variants.map(shapeOf);
  const zodKeys = new Set(shapes.flatMap((shape) => Object.keys(shape)));
  expect([...Object.keys(ha)].sort(), `${path}: config.yaml schema keys`).toEqual([...zodKeys].sort());

  for (const [key, element] of Object.entries(ha)) {
    const fields = shapes.map((shape) => shape[key]).filter((f): f is z.ZodType => f !== undefined);
    if (typeof element !== 'string') continue; // nested dicts and lists are walked by their own tests
    const leaf = parseLeaf(element);
    const requiredEverywhere = shapes.every((shape) => shape[key] !== undefined && isRequiredInZod(shape[key]));
    // Required in every variant of the daemon ⇔ required in the add-on; otherwise HA would accept a config the
    // daemon refuses (or the other way round).
    expect(leaf.optional, `${path}.${key}: optional in config.yaml`).toBe(!requiredEverywhere);
    for (const field of fields) {
      const zodType = unwrap(field)._zod.def.type;
      const expected: Record<HaLeaf['kind'], string[]> = {
        str: ['string'],
        password: ['string'],
        url: ['string'],
        email: ['string'],
        match: ['string'],
        list: ['enum', 'literal', 'string'],
        int: ['number'],
        port: ['number'],
        float: ['number'],
        bool: ['boolean'],
      };
      expect(expected[leaf.kind], `${path}.${key}: ${leaf.kind} vs zod ${zodType}`).toContain(zodType);
    }
    if (leaf.values) {
      const allowed = new Set(fields.flatMap((f) => zodValues(f) ?? []));
      for (const value of leaf.values) expect(allowed, `${path}.${key}: list value ${value}`).toContain(value);
    }
  }
}

describe('config.yaml', () => {
  it('has the version of package.json', () => {
    expect(addon.version).toBe(pkg.version);
  });

  it('declares the add-on as issue 6 asks', () => {
    expect(addon).toMatchObject({
      slug: 'printernizer_stats',
      arch: ['aarch64', 'amd64'],
      init: false,
      startup: 'application',
      ingress: true,
      ingress_port: 8099,
      panel_icon: 'mdi:printer-3d',
      services: ['mqtt:want'],
      watchdog: 'http://[HOST]:[PORT:8099]/api/v1/health',
      backup: 'hot',
    });
    for (const key of ['name', 'description', 'url']) expect(addon[key], key).toEqual(expect.any(String));
    // Ingress only: no host port, and no Supervisor API beyond what every add-on may call (/info, /services).
    expect(addon.ports).toBeUndefined();
    expect(addon.hassio_api).toBeUndefined();
    expect(addon.host_network).toBeUndefined();
  });

  it('uses only keys and formats the Supervisor accepts (supervisor/addons/validate.py)', () => {
    const known = new Set(
      `name version slug description arch machine url startup boot init advanced stage ports ports_description
      watchdog webui ingress ingress_port ingress_entry ingress_stream panel_icon panel_title panel_admin homeassistant
      host_network host_pid host_ipc host_uts host_dbus devices udev tmpfs map environment privileged apparmor
      full_access audio video gpio usb uart devicetree kernel_modules realtime hassio_api hassio_role homeassistant_api
      stdin legacy docker_api auth_api services discovery backup_exclude backup_pre backup_post restore_pre
      restore_post backup options schema image ulimits timeout journald breaking_versions`.split(/\s+/),
    );
    for (const key of Object.keys(addon)) expect(known, `config.yaml key ${key}`).toContain(key);
    expect(addon.slug).toMatch(/^[-_.A-Za-z0-9]+$/);
    expect(addon.watchdog).toMatch(/^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$/);
    for (const service of addon.services as string[]) expect(service).toMatch(/^(mqtt|mysql):(provide|want|need)$/);
    for (const arch of addon.arch as string[]) expect(['armhf', 'armv7', 'aarch64', 'amd64', 'i386']).toContain(arch);
    expect(['initialize', 'system', 'services', 'application', 'once']).toContain(addon.startup);
    expect(['hot', 'cold']).toContain(addon.backup);
  });

  it('every schema element is one the Supervisor understands', () => {
    const walk = (node: HaSchema): void => {
      if (typeof node === 'string') parseLeaf(node);
      else if (Array.isArray(node)) {
        expect(node).toHaveLength(1);
        walk(node[0]!);
      } else for (const child of Object.values(node)) walk(child);
    };
    walk(schema);
  });

  it('top level: the same keys as the zod config', () => {
    expectSameKeys('(root)', schema, [configSchema]);
    expect(LOG_LEVELS).toEqual(expect.arrayContaining(parseLeaf(schema.log_level as string).values!));
  });

  it('printers: one dict holding the fields of both printer types', () => {
    expect(Array.isArray(schema.printers)).toBe(true);
    expectSameKeys('printers[]', printerDict, [bambuPrinterSchema, prusaPrinterSchema]);
    expect(parseLeaf(printerDict.type as string).values!.sort()).toEqual(['bambu_lab', 'prusa']);
    // Secrets are masked in the add-on UI.
    for (const secret of ['access_code', 'password', 'api_key']) {
      expect(parseLeaf(printerDict[secret] as string).kind, secret).toBe('password');
    }
  });

  it('usage_statistics and mqtt: the same keys as the zod config', () => {
    expectSameKeys('usage_statistics', schema.usage_statistics as HaDict, [usageStatisticsSchema]);
    expectSameKeys('mqtt', schema.mqtt as HaDict, [mqttSchema]);
    expect(parseLeaf((schema.mqtt as HaDict).password as string).kind).toBe('password');
    expect(parseLeaf(schema.api_token as string).kind).toBe('password');
  });

  it('the add-on defaults are the daemon defaults', () => {
    expect(parseConfig(addon.options, 'config.yaml options')).toEqual(parseConfig({}));
  });

  it('a fully filled options.json, as the Supervisor writes it, is accepted by the daemon', () => {
    const options = {
      log_level: 'warning',
      timezone: 'Europe/Berlin',
      printers: [
        {
          name: 'X1C',
          type: 'bambu_lab',
          host: '192.0.2.10',
          port: 8883,
          serial: '01S00C000000001',
          access_code: '12345678',
          tls: true,
          verify_certificate: false,
        },
        {
          name: 'MK4',
          type: 'prusa',
          host: 'http://192.0.2.11',
          username: 'maker',
          password: 'secret',
          api_key: 'key',
          poll_interval_s: 10,
        },
      ],
      usage_statistics: { endpoint: 'https://collector.example/v1/submit', schedule: '0 3 * * 1', retention_days: 30 },
      mqtt: {
        enabled: true,
        url: 'mqtt://192.0.2.2:1883',
        username: 'u',
        password: 'p',
        base_topic: 'printernizer',
        discovery: true,
        discovery_prefix: 'homeassistant',
      },
      api_token: 'token',
    };
    // Every key of the add-on schema is exercised by this sample.
    const used = new Set([...Object.keys(options), ...options.printers.flatMap((p) => Object.keys(p))]);
    for (const key of [...Object.keys(schema), ...Object.keys(printerDict)]) expect(used, key).toContain(key);
    expect(() => parseConfig(options)).not.toThrow();
  });
});

describe('files the Supervisor reads beside config.yaml', () => {
  it('no build.yaml (deprecated since Supervisor 2026.04): the Dockerfile names one multi-arch base', () => {
    for (const file of ['build.yaml', 'build.yml', 'build.json'])
      expect(existsSync(join(root, file)), file).toBe(false);
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(/^ARG BUILD_FROM=(\S+)$/m.exec(dockerfile)?.[1]).toMatch(/^ghcr\.io\/home-assistant\/base:\d+\.\d+$/);
  });

  it('no image: yet, so the Supervisor builds locally until the published images exist', () => {
    expect(addon.image).toBeUndefined();
  });

  it('repository.yaml names the repository', () => {
    const repository = readYaml('repository.yaml');
    expect(repository).toMatchObject({ name: expect.any(String), url: expect.stringMatching(/^https:\/\//) });
  });

  it('translations/en.yaml names and describes every option, nested fields included', () => {
    const translations = readYaml('translations/en.yaml') as {
      configuration: Record<string, { name: string; description: string; fields?: Record<string, unknown> }>;
    };
    const check = (ha: HaDict, entries: Record<string, unknown> | undefined, path: string) => {
      expect(Object.keys(entries ?? {}).sort(), `${path}: translated keys`).toEqual(Object.keys(ha).sort());
      for (const [key, element] of Object.entries(ha)) {
        const entry = entries?.[key] as { name?: string; description?: string; fields?: Record<string, unknown> };
        expect(entry?.name, `${path}.${key}.name`).toEqual(expect.any(String));
        expect(entry?.description, `${path}.${key}.description`).toEqual(expect.any(String));
        const nested = Array.isArray(element) ? element[0] : element;
        if (typeof nested === 'object' && nested !== null && !Array.isArray(nested)) {
          check(nested as HaDict, entry.fields, `${path}.${key}`);
        }
      }
    };
    check(schema, translations.configuration, 'configuration');
  });

  it('icon.png (128×128) and logo.png (about 250×100) are PNGs rendered from SVG sources in docs/brand', () => {
    const size = (file: string) => {
      const png = readFileSync(join(root, file));
      expect(png.subarray(1, 4).toString('latin1'), `${file} is a PNG`).toBe('PNG');
      return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
    };
    expect(size('icon.png')).toEqual({ width: 128, height: 128 });
    expect(size('logo.png')).toEqual({ width: 250, height: 100 });
    for (const svg of ['docs/brand/icon.svg', 'docs/brand/logo.svg']) {
      expect(readFileSync(join(root, svg), 'utf8'), svg).toMatch(/^<svg [^>]*viewBox=/);
    }
  });

  it('README.md reads as the store page first: what it does, privacy, installation; the two commands stay', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const store = readme.slice(0, readme.indexOf('## For developers'));
    expect(store.length).toBeGreaterThan(500);
    expect(store.split('\n')[0]).toBe('# Printernizer Stats');
    for (const needed of [/Bambu Lab/, /Prusa/, /Private by default/, /## Installation/, /Show in\s+sidebar/]) {
      expect(store).toMatch(needed);
    }
    // Nothing for developers before their section.
    expect(store).not.toMatch(/\bnpm\b|vitest|tsx/);
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
    expect(readme).toContain('docs/DEVELOPING.md');
    expect(readFileSync(join(root, 'docs', 'DEVELOPING.md'), 'utf8')).toMatch(/^## API$/m);
  });

  it("CHANGELOG.md has version headings as the store shows them, the newest being config.yaml's version", () => {
    const headings = [...readFileSync(join(root, 'CHANGELOG.md'), 'utf8').matchAll(/^## (.*)$/gm)].map((m) => m[1]);
    expect(headings.length).toBeGreaterThan(0);
    for (const heading of headings) expect(heading).toMatch(/^\d+\.\d+\.\d+$/);
    expect(headings[0]).toBe(addon.version);
  });

  it('DOCS.md says that "Show in sidebar" is off by default and how to switch it on', () => {
    const docs = readFileSync(join(root, 'DOCS.md'), 'utf8');
    expect(docs).toMatch(/\*\*Show in sidebar\*\* on the add-on's \*\*Info\*\* tab is \*\*off\*\*/);
    expect(docs).toMatch(/Switch \*\*Show in sidebar\*\* on/);
  });

  it('config.yaml is the only add-on config in the repository (the Supervisor globs **/config.{json,yaml,yml})', () => {
    const found: string[] = [];
    const walk = (dir: string, rel: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        // Hidden folders and rootfs are skipped by the Supervisor; node_modules, dist and data are never committed.
        if (
          entry.name.startsWith('.') ||
          ['rootfs', 'node_modules', 'dist', 'data', 'test-artifacts'].includes(entry.name)
        )
          continue;
        const path = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) walk(join(dir, entry.name), path);
        else if (/^config\.(json|ya?ml)$/.test(entry.name)) found.push(path);
      }
    };
    walk(root, '');
    expect(found).toEqual(['config.yaml']);
  });
});
