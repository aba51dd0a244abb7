/**
 * fast-check building blocks shared by the fuzz tests: JSON-ish values, fixtures from tests/fixtures mutated
 * at random paths, and text-level damage (truncation, inserted bytes). fast-check prints the seed and the shrunk
 * counterexample of any failure, so a failure can be replayed with `{ seed, path }`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

/** The protocol fixtures, copied verbatim from the shared reference (../shared/fixtures) so a clean clone has them. */
export const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));

/** Any JSON value, strings with unicode, keys that look like prototypes included. */
export const jsonValue: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 4 });

const oddKey = fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '', ' ', '0');
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  jsonValue,
  fc.anything({ maxDepth: 3, withNullPrototype: true, withBigInt: true, withDate: true, withMap: true }),
  fc.dictionary(oddKey, jsonValue),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 1e308, -1e308, 2 ** 53, ''),
);

type Path = (string | number)[];

function paths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value))
      paths(child, [...prefix, Array.isArray(value) ? Number(key) : key], out);
  }
  return out;
}

function setAt(root: unknown, path: Path, value: unknown, remove: boolean): unknown {
  if (path.length === 0) return value;
  let node = root as Record<string | number, unknown>;
  for (const part of path.slice(0, -1)) node = node[part] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (remove && !Array.isArray(node)) delete node[last];
  else node[last] = value;
  return root;
}

/** The fixture with some of its paths replaced by arbitrary values (or deleted). */
export function mutated(fixture: unknown, values: fc.Arbitrary<unknown> = jsonValue): fc.Arbitrary<unknown> {
  const all = paths(fixture);
  return fc
    .array(fc.tuple(fc.nat(all.length - 1), values, fc.boolean()), { minLength: 1, maxLength: 4 })
    .map((edits) => {
      let copy: unknown = structuredClone(fixture);
      for (const [index, value, remove] of edits) {
        const path = all[index]!;
        // The path may be gone after an earlier edit replaced a parent.
        try {
          copy = setAt(copy, path, value, remove);
        } catch {
          // skip
        }
      }
      return copy;
    });
}

/** Text damage: cut, a byte inserted or replaced, or the text repeated. */
export function damaged(text: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.nat(text.length).map((n) => text.slice(0, n)),
    fc
      .tuple(fc.nat(text.length), fc.string({ minLength: 1, maxLength: 3, unit: 'binary' }))
      .map(([at, s]) => text.slice(0, at) + s + text.slice(at)),
    fc
      .tuple(fc.nat(Math.max(0, text.length - 1)), fc.constantFrom('{', '}', '"', ',', ':', '\\', '\u0000', '9'))
      .map(([at, c]) => text.slice(0, at) + c + text.slice(at + 1)),
  );
}

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Runs per property: enough for shallow bugs while the fuzz directory stays under 30 s; FUZZ_RUNS=5000 digs deeper. */
export const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
