/**
 * sanitizeMetadata, the allow-list every event passes before it is written: whatever comes in, it never throws, keeps
 * only the keys DESIGN.md allows for the type, and keeps only values from the allowed sets: enums, bounded integers,
 * booleans, error slugs and version strings. Checked against a table written from DESIGN.md, not against the
 * implementation's own schemas.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMPONENTS,
  CONNECTION_KINDS,
  DEPLOYMENT_MODES,
  DISCONNECT_REASONS,
  ERROR_CODE_SLUG,
  ERROR_TYPES,
  EVENT_TYPES,
  type EventType,
  FAILURE_TYPES,
  FEATURES,
  FILE_TYPES,
  PRINTER_MODELS,
  PRINTER_TYPES,
  sanitizeMetadata,
} from '../../src/stats/events.js';
import { anyValue, jsonValue, RUNS } from './arbitraries.js';

const ALLOWED_KEYS: Record<EventType, string[]> = {
  app_start: ['app_version', 'deployment_mode', 'platform', 'arch', 'runtime_version'],
  app_shutdown: ['uptime_seconds'],
  job_created: ['printer_type', 'printer_model'],
  job_completed: ['printer_type', 'printer_model', 'duration_seconds'],
  job_failed: ['printer_type', 'printer_model', 'duration_seconds', 'failure_type'],
  file_uploaded: ['printer_type', 'file_type', 'size_bytes'],
  file_downloaded: ['printer_type', 'file_type', 'size_bytes'],
  printer_connected: ['printer_type', 'printer_model', 'connection'],
  printer_disconnected: ['printer_type', 'printer_model', 'reason', 'connected_seconds'],
  error_occurred: ['error_type', 'component', 'printer_type'],
  feature_enabled: ['feature'],
  feature_disabled: ['feature'],
};

const oneOf = (values: readonly string[]) => (v: unknown) => typeof v === 'string' && values.includes(v);
const nonNegativeInteger = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const VERSION = /^v?\d{1,4}(\.\d{1,6}){0,3}([-+][0-9A-Za-z.]{1,20})?$/;

const VALUE_OK: Record<string, (v: unknown) => boolean> = {
  app_version: (v) => typeof v === 'string' && VERSION.test(v),
  runtime_version: (v) => typeof v === 'string' && VERSION.test(v),
  deployment_mode: oneOf(DEPLOYMENT_MODES),
  platform: oneOf(['linux', 'darwin', 'win32', 'freebsd', 'openbsd', 'other']),
  arch: oneOf(['x64', 'arm64', 'arm', 'ia32', 'other']),
  uptime_seconds: nonNegativeInteger,
  duration_seconds: nonNegativeInteger,
  connected_seconds: nonNegativeInteger,
  size_bytes: nonNegativeInteger,
  printer_type: oneOf(PRINTER_TYPES),
  printer_model: oneOf(PRINTER_MODELS),
  failure_type: oneOf(FAILURE_TYPES),
  file_type: oneOf(FILE_TYPES),
  connection: oneOf(CONNECTION_KINDS),
  reason: oneOf(DISCONNECT_REASONS),
  component: oneOf(COMPONENTS),
  feature: oneOf(FEATURES),
  error_type: (v) =>
    typeof v === 'string' && ((ERROR_TYPES as readonly string[]).includes(v) || ERROR_CODE_SLUG.test(v)),
};

const ALL_KEYS = Object.keys(VALUE_OK);
const ENUM_VALUES = [
  ...PRINTER_TYPES,
  ...PRINTER_MODELS,
  ...DEPLOYMENT_MODES,
  ...FAILURE_TYPES,
  ...FILE_TYPES,
  ...CONNECTION_KINDS,
  ...DISCONNECT_REASONS,
  ...COMPONENTS,
  ...FEATURES,
  ...ERROR_TYPES,
  'linux',
  'x64',
  '0.1.0',
  'v20.11.1',
];

/** Values that look almost right: an allowed word with something personal attached, slugs with junk, odd numbers. */
const nearMiss = fc.oneof(
  fc
    .tuple(fc.constantFrom(...ENUM_VALUES), fc.constantFrom(' ', '\n', '/home/alice', '@example.com', '.local', 'X'))
    .map(([v, s]) => v + s),
  fc.constantFrom(
    'hms_0300_0100\n',
    'HMS_0300_0100',
    'hms_0300_01000',
    'print_error_0300_400c ',
    'print_error_zz00_0000',
  ),
  fc.constantFrom(-1, 0.5, 1e13, 10 * 365 * 24 * 3600 + 1, Number.NaN, Number.POSITIVE_INFINITY, -0),
  fc.constantFrom('0.1.0 alice', '0.1.0-alice@x', '1.0/../../etc', 'bambu_lab ', 'Prusa'),
);
const value = fc.oneof(
  fc.constantFrom(...ENUM_VALUES),
  nearMiss,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.string(),
  anyValue,
);
const key = fc.oneof(
  fc.constantFrom(...ALL_KEYS),
  fc.constantFrom('name', 'serial', 'host', '__proto__', 'constructor'),
  fc.string(),
);

/** Printable by fast-check without reading the object (which would throw in the report itself). */
const described = <T extends object>(o: T, text: string): T =>
  Object.defineProperty(o, fc.toStringMethod, { value: () => text, enumerable: false });

/** An object whose reading throws: a getter on a random key or a Proxy whose traps throw. */
const hostile = fc.oneof(
  fc.tuple(fc.dictionary(key, value), key).map(([base, bad]) => {
    const o = described({ ...base }, `object with a throwing getter ${JSON.stringify(bad)}`);
    Object.defineProperty(o, bad, {
      enumerable: true,
      get() {
        throw new Error('getter throws');
      },
    });
    return o;
  }),
  fc.constantFrom('ownKeys', 'get', 'getOwnPropertyDescriptor').map(
    (trap) =>
      new Proxy(described({ printer_type: 'prusa' }, `Proxy whose ${trap} throws`), {
        [trap](target: object, prop: PropertyKey) {
          if (typeof prop === 'symbol') return Reflect.get(target, prop);
          throw new Error(`${trap} throws`);
        },
      }),
  ),
);

function check(eventType: EventType, input: unknown): void {
  const { metadata, dropped } = sanitizeMetadata(eventType, input);
  expect(Array.isArray(dropped)).toBe(true);
  expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
  for (const [k, v] of Object.entries(metadata)) {
    expect(ALLOWED_KEYS[eventType], `${eventType} key ${k}`).toContain(k);
    expect(VALUE_OK[k]!(v), `${eventType}.${k} = ${JSON.stringify(v)}`).toBe(true);
  }
}

describe('sanitizeMetadata (fuzz)', () => {
  it('keeps only allow-listed keys with allowed values, whatever the input', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...EVENT_TYPES),
        fc.oneof(fc.dictionary(key, value, { maxKeys: 12 }), anyValue, jsonValue),
        (type, input) => {
          check(type, input);
        },
      ),
      { numRuns: RUNS * 3 },
    );
  });

  it('keeps every allowed value it is given (the allow-list does not over-drop)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...EVENT_TYPES), fc.nat(), (type, seed) => {
        const input: Record<string, unknown> = {};
        for (const k of ALLOWED_KEYS[type]) {
          const candidates = ENUM_VALUES.filter((v) => VALUE_OK[k]!(v));
          input[k] = candidates.length > 0 ? candidates[seed % candidates.length] : seed % 1_000_000;
        }
        expect(sanitizeMetadata(type, input)).toEqual({ metadata: input, dropped: [] });
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws on objects that throw when read', () => {
    fc.assert(
      fc.property(fc.constantFrom(...EVENT_TYPES), hostile, (type, input) => {
        check(type, input);
      }),
      { numRuns: RUNS },
    );
  });

  // Found by the property above: Object.entries read a throwing getter and sanitizeMetadata threw.
  it('regression: an object with a throwing getter yields empty metadata', () => {
    const input = {
      printer_type: 'prusa',
      get name(): string {
        throw new Error('getter throws');
      },
    };
    expect(sanitizeMetadata('job_created', input)).toEqual({ metadata: {}, dropped: ['<unreadable>'] });
  });
});
