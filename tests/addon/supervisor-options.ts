/**
 * The Supervisor's option validation, re-implemented for the tests from its source (home-assistant/supervisor
 * 2026.08, supervisor/apps/options.py AppOptions and _single_validate; the merge of defaults and user options is
 * supervisor/apps/app.py `options`, a deepmerge with dicts merged and everything else replaced):
 *
 * - a key the schema does not know is dropped (with a warning); a missing key is an error unless its element ends
 *   in `?` (a missing nested dict or list is always an error); `null` is refused for every leaf;
 * - str/password: a Python str whose length (code points) is within (min,max);
 * - int/port: vol.Coerce(int) then a range; bool: vol.Boolean(); list(a|b): str(value) in the list;
 * - match(p): Python's `re.match(p, str(value))`, anchored at the start only.
 *
 * Python regular expressions are translated to JavaScript by pythonPattern; tests/addon/schema-options.test.ts
 * checks the translation against python3's own `re` where python3 is installed.
 */
import fc from 'fast-check';

export type HaSchema = string | HaSchema[] | { [key: string]: HaSchema };
export type HaDict = { [key: string]: HaSchema };

// supervisor/apps/options.py RE_SCHEMA_ELEMENT, as a JavaScript pattern.
const SCHEMA_ELEMENT =
  /^(?:|bool|email|url|port|device(?:\((?<filter>subsystem=[a-z]+)\))?|str(?:\((?<s_min>\d+)?,(?<s_max>\d+)?\))?|password(?:\((?<p_min>\d+)?,(?<p_max>\d+)?\))?|int(?:\((?<i_min>-?\d+)?,(?<i_max>-?\d+)?\))?|float(?:\((?<f_min>-?\d*\.?\d+)?,(?<f_max>-?\d*\.?\d+)?\))?|match\((?<match>.*)\)|list\((?<list>.+)\))\??$/;

export interface Leaf {
  kind: 'str' | 'password' | 'int' | 'float' | 'bool' | 'email' | 'url' | 'port' | 'match' | 'list' | 'device';
  optional: boolean;
  min?: number;
  max?: number;
  /** match(): the Python pattern and its JavaScript translation. */
  pattern?: string;
  regex?: RegExp;
  values?: string[];
}

export function parseLeaf(element: string): Leaf {
  const match = SCHEMA_ELEMENT.exec(element);
  if (!match?.groups) throw new Error(`not a Supervisor schema element: ${element}`);
  const g = match.groups;
  const kind = /^[a-z]+/.exec(element)?.[0] as Leaf['kind'];
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  return {
    kind,
    optional: element.endsWith('?'),
    min: num(g.s_min ?? g.p_min ?? g.i_min ?? g.f_min),
    max: num(g.s_max ?? g.p_max ?? g.i_max ?? g.f_max),
    ...(g.match !== undefined ? { pattern: g.match, regex: pythonPattern(g.match) } : {}),
    ...(g.list !== undefined ? { values: g.list.split('|') } : {}),
  };
}

/** Python's str.isspace() characters: what `\s` matches in a Python 3 str pattern. */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/**
 * `re.match(pattern, text)` as a JavaScript RegExp (u flag: code points, as Python counts them). Covers what the
 * add-on's patterns use; anything else throws rather than being translated wrongly.
 */
export function pythonPattern(pattern: string): RegExp {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[++i];
      if (next === undefined) throw new Error('trailing backslash');
      if (next === 'Z' && !inClass)
        out += '$'; // end of the string only (JavaScript's $ without the m flag)
      else if (next === 's') out += inClass ? PY_SPACE : `[${PY_SPACE}]`;
      else if (next === 'S' && !inClass) out += `[^${PY_SPACE}]`;
      else if ('.+*?()[]{}|^$/\\-'.includes(next)) out += `\\${next}`;
      else throw new Error(`\\${next} is not translated (Unicode-aware in Python)`);
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
      if (pattern[i + 1] === '^') out += pattern[++i];
      // A leading ] is a literal in Python.
      if (pattern[i + 1] === ']') out += `\\${pattern[++i]}`;
    } else if (c === '.') out += '[^\\n]';
    else if (c === '$')
      out += '(?=\\n?$)'; // Python's $: the end, or before a final newline
    else out += c;
  }
  if (inClass) throw new Error('unterminated character class');
  return new RegExp(`^(?:${out})`, 'u');
}

/** Python's str() of what options.json can hold: strings, numbers, booleans. */
function pyStr(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  return undefined; // floats, lists and dicts are not generated here
}

/** vol.Coerce(int): Python int() of a number or a string. */
function pyInt(value: unknown): number | undefined {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value === 'string') {
    const text = value.trim();
    return /^[+-]?(?:[0-9](?:_?[0-9])*)$/.test(text) ? Number(text.replaceAll('_', '')) : undefined;
  }
  return undefined;
}

/** vol.Boolean(). */
function pyBool(value: unknown): boolean | undefined {
  if (typeof value === 'string') {
    const text = value.toLowerCase().trim();
    if (['1', 'true', 'yes', 'on', 'enable'].includes(text)) return true;
    if (['0', 'false', 'no', 'off', 'disable'].includes(text)) return false;
    return undefined;
  }
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  return undefined;
}

export type Verdict = { ok: true; value: unknown } | { ok: false; error: string };

const refuse = (path: string, why: string): Verdict => ({ ok: false, error: `${path}: ${why}` });

export function validateLeaf(element: string, value: unknown, path = 'value'): Verdict {
  if (value === null || value === undefined) return refuse(path, 'missing required option');
  const leaf = parseLeaf(element);
  const inRange = (n: number) => (leaf.min === undefined || n >= leaf.min) && (leaf.max === undefined || n <= leaf.max);
  switch (leaf.kind) {
    case 'str':
    case 'password':
      if (typeof value !== 'string') return refuse(path, 'expected str');
      return inRange([...value].length) ? { ok: true, value } : refuse(path, 'length out of range');
    case 'int': {
      const n = pyInt(value);
      return n !== undefined && inRange(n) ? { ok: true, value: n } : refuse(path, 'not an int in range');
    }
    case 'port': {
      const n = pyInt(value);
      return n !== undefined && n >= 1 && n <= 65535 ? { ok: true, value: n } : refuse(path, 'not a port');
    }
    case 'bool': {
      const b = pyBool(value);
      return b === undefined ? refuse(path, 'not a boolean') : { ok: true, value: b };
    }
    case 'match': {
      const text = pyStr(value);
      return text !== undefined && leaf.regex!.test(text)
        ? { ok: true, value: text }
        : refuse(path, 'does not match regular expression');
    }
    case 'list': {
      const text = pyStr(value);
      return text !== undefined && leaf.values!.includes(text)
        ? { ok: true, value: text }
        : refuse(path, 'not in list');
    }
    default:
      throw new Error(`${leaf.kind} is not used by this add-on`);
  }
}

function validateNode(schema: HaSchema, value: unknown, path: string): Verdict {
  if (typeof schema === 'string') return validateLeaf(schema, value, path);
  if (Array.isArray(schema)) {
    if (!Array.isArray(value)) return refuse(path, 'invalid list');
    const items: unknown[] = [];
    for (const [index, item] of value.entries()) {
      const verdict = validateNode(schema[0]!, item, `${path}[${index}]`);
      if (!verdict.ok) return verdict;
      items.push(verdict.value);
    }
    return { ok: true, value: items };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return refuse(path, 'invalid dict');
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!(key in schema)) continue; // unknown options are dropped with a warning
    const verdict = validateNode(schema[key]!, item, path ? `${path}.${key}` : key);
    if (!verdict.ok) return verdict;
    out[key] = verdict.value;
  }
  for (const [key, element] of Object.entries(schema)) {
    if (key in out) continue;
    const inner = Array.isArray(element) ? element[0] : element;
    if (typeof inner === 'string' && inner.endsWith('?')) continue;
    return refuse(path ? `${path}.${key}` : key, 'missing option');
  }
  return { ok: true, value: out };
}

/** What saving the form does (POST /addons/<slug>/options validates the options as sent). */
export function validateOptions(schema: HaDict, options: unknown): Verdict {
  return validateNode(schema, options, '');
}

/** deepmerge as the Supervisor configures it: dicts merged key by key, anything else replaced. */
export function mergeOptions(defaults: unknown, user: unknown): unknown {
  const isDict = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isDict(defaults) || !isDict(user)) return structuredClone(user);
  const out: Record<string, unknown> = structuredClone(defaults);
  for (const [key, value] of Object.entries(user)) out[key] = key in out ? mergeOptions(out[key], value) : value;
  return out;
}

/** What the add-on finds in /data/options.json at start: defaults merged with the user's options, validated. */
export function writeOptions(schema: HaDict, defaults: unknown, user: unknown): Verdict {
  return validateOptions(schema, mergeOptions(defaults, user));
}

// --- generating what the form accepts ----------------------------------------------------------------------------

/** Lookarounds removed (fast-check cannot generate them); candidates are then filtered by the full pattern. */
function generatorPattern(leaf: Leaf): RegExp {
  let source = leaf.regex!.source;
  // Only (?=...) and (?!...) groups without nested groups are used by the add-on's patterns.
  source = source.replace(/\(\?[=!](?:\\.|\[(?:\\.|[^\]])*\]|[^()])*\)/g, '');
  return new RegExp(`${source}$`, 'u');
}

/** Raw values a person could save for one leaf: valid ones of every shape, some in the loose forms Python coerces. */
export function leafArbitrary(element: string, examples: readonly string[] = []): fc.Arbitrary<unknown> {
  const leaf = parseLeaf(element);
  const accepted = (value: unknown) => validateLeaf(element, value).ok;
  switch (leaf.kind) {
    case 'list':
      return fc.constantFrom(...leaf.values!);
    case 'bool':
      return fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom('on', 'no') });
    case 'int':
    case 'port': {
      const min = leaf.kind === 'port' ? 1 : (leaf.min ?? -1e6);
      const max = leaf.kind === 'port' ? 65535 : (leaf.max ?? 1e6);
      const n = fc.integer({ min, max });
      return fc.oneof({ weight: 6, arbitrary: n }, { weight: 1, arbitrary: n.map(String) });
    }
    case 'str':
    case 'password': {
      const text = fc.oneof(
        fc.string({ minLength: leaf.min ?? 0, maxLength: Math.min(leaf.max ?? 40, 80) }),
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.string({ unit: 'binary', maxLength: 20 }),
      );
      return text.filter(accepted);
    }
    case 'match': {
      // "" is offered separately (optionsArbitrary), so the shaped values are the non-empty ones.
      const shaped = fc.stringMatching(generatorPattern(leaf)).filter((value) => value !== '' && accepted(value));
      // Some non-ASCII text inside a shaped value, kept where the pattern still accepts it (names do).
      const unicode = fc
        .tuple(shaped, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }))
        .map(([value, extra]) => {
          const candidate = value.slice(0, 1) + extra + value.slice(1);
          return accepted(candidate) ? candidate : value;
        });
      const known = examples.filter(accepted);
      return fc.oneof(
        { weight: 5, arbitrary: shaped },
        { weight: 2, arbitrary: unicode },
        ...(known.length ? [{ weight: 3, arbitrary: fc.constantFrom(...known) }] : []),
      );
    }
    default:
      throw new Error(`${leaf.kind} is not used by this add-on`);
  }
}

/**
 * Whole option sets the form would save: every required key, each optional one left out, set, or (for text that
 * accepts it) written as "", as Home Assistant does either.
 */
export function optionsArbitrary(
  schema: HaDict,
  examples: Record<string, readonly string[]> = {},
  path = '',
): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(schema).map(([key, element]) => {
    const at = path ? `${path}.${key}` : key;
    let value: fc.Arbitrary<unknown>;
    if (typeof element === 'string') value = leafArbitrary(element, examples[at]);
    else if (Array.isArray(element)) {
      const item = element[0]!;
      value = fc.array(
        typeof item === 'string'
          ? leafArbitrary(item, examples[`${at}[]`])
          : optionsArbitrary(item as HaDict, examples, `${at}[]`),
        { maxLength: 4 },
      );
    } else value = optionsArbitrary(element, examples, at);
    const optional = typeof element === 'string' && element.endsWith('?');
    const blankOk = typeof element === 'string' && validateLeaf(element, '').ok;
    const choice: fc.Arbitrary<unknown> = optional
      ? fc.oneof(
          { weight: 2, arbitrary: fc.constant(OMIT) },
          { weight: 4, arbitrary: value },
          ...(blankOk ? [{ weight: 1, arbitrary: fc.constant('') }] : []),
        )
      : value;
    return [key, choice] as const;
  });
  return fc
    .tuple(...entries.map(([, arbitrary]) => arbitrary))
    .map((values) =>
      Object.fromEntries(entries.map(([key], index) => [key, values[index]]).filter(([, value]) => value !== OMIT)),
    );
}

const OMIT = Symbol('omitted');
