/**
 * PrusaLink responses and the Digest challenge under arbitrary input: the real example responses mutated at random
 * paths or damaged as text, and arbitrary WWW-Authenticate values. Parsing never throws; whatever parses maps to
 * well-formed observations, models from the fixed list and storage names that are plain words.
 */
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DigestAuth, parseAuthenticate, parseDigestChallenge } from '../../src/printers/prusalink/digest.js';
import { PrusaLinkFiles } from '../../src/printers/prusalink/files.js';
import { PrusaLinkJobState } from '../../src/printers/prusalink/job-state.js';
import { modelFromVersion } from '../../src/printers/prusalink/model.js';
import {
  filesListingSchema,
  jobSchema,
  mapPrinterState,
  parseBody,
  stateWord,
  statusSchema,
  storageListSchema,
  transferSchema,
  versionSchema,
  writableStorages,
} from '../../src/printers/prusalink/status.js';
import { JOB_STATES as STATE_LIST } from '../../src/printers/types.js';
import { FILE_TYPES, PRINTER_MODELS } from '../../src/stats/events.js';
import { anyValue, damaged, FIXTURES, jsonValue, mutated, RUNS, readJson } from './arbitraries.js';

const EXAMPLES = readJson(`${FIXTURES}/prusalink/examples.json`) as Record<string, unknown>;
/** The Home Assistant examples and every body of tests/fixtures/prusalink/{buddy,prusa-link}. */
const SAMPLES = [
  ...Object.entries(EXAMPLES)
    .filter(([key]) => key !== '_sources')
    .map(([, value]) => value),
  ...['buddy', 'prusa-link'].flatMap((server) =>
    readdirSync(`${FIXTURES}/prusalink/${server}`).map((file) => readJson(`${FIXTURES}/prusalink/${server}/${file}`)),
  ),
];
const FILES_LISTING = {
  type: 'FOLDER',
  name: 'usb',
  children: [
    {
      name: 'TABLET~1.BGC',
      display_name: 'tablet stand.bgcode',
      type: 'PRINT_FILE',
      size: 1234,
      m_timestamp: 1700000000,
    },
    { name: 'PARTS', type: 'FOLDER' },
  ],
};
const JOB_STATES: ReadonlySet<string> = new Set(STATE_LIST);

/**
 * Every parser on one body, and every state object on what parses: the job state and the file ledger never throw,
 * and what leaves them is well-formed (states from the list, whole seconds, file types and sizes only).
 */
function parseEverything(body: string): void {
  const version = parseBody(versionSchema, body);
  if (version.ok) expect(PRINTER_MODELS).toContain(modelFromVersion(version.value).model);
  const files = new PrusaLinkFiles();
  const status = parseBody(statusSchema, body);
  if (status.ok) {
    const jobState = new PrusaLinkJobState();
    for (let i = 0; i < 2; i++) {
      const { observation, status: live } = jobState.apply(status.value);
      expect(JOB_STATES.has(observation.state)).toBe(true);
      if (observation.printingSeconds != null) expect(Number.isInteger(observation.printingSeconds)).toBe(true);
      expect(live.state).toMatch(/^[A-Z_]{1,24}$/);
      jobState.noAnswer();
    }
    for (const name of writableStorages(status.value)) expect(name).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
    expect(stateWord(status.value.printer.state)).toMatch(/^[A-Z_]{1,24}$/);
    files.storages(status.value);
    const id = files.statusTransfer(status.value.transfer);
    const details = parseBody(transferSchema, body);
    if (id !== null && details.ok) files.transferDetails(id, details.value);
    files.statusTransfer(undefined);
  }
  parseBody(storageListSchema, body);
  const job = parseBody(jobSchema, body);
  if (job.ok) wellFormed(files.jobFile(job.value).arrivals);
  const listing = parseBody(filesListingSchema, body);
  if (listing.ok) {
    for (const available of [true, false, null] as const) wellFormed(files.listing('/usb', listing.value, available));
    wellFormed(files.listing('/usb/PARTS', listing.value));
  }
}

function wellFormed(arrivals: readonly { fileType: string; sizeBytes: number | null }[]): void {
  for (const a of arrivals) {
    expect(FILE_TYPES).toContain(a.fileType);
    if (a.sizeBytes !== null) expect(a.sizeBytes).toBeGreaterThanOrEqual(0);
  }
}

const text = (value: unknown): string | null => {
  try {
    return JSON.stringify(value) ?? null;
  } catch {
    return null;
  }
};

describe('PrusaLink response parsing (fuzz)', () => {
  it('never throws on arbitrary bodies', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          jsonValue.map((v) => JSON.stringify(v)),
        ),
        (body) => {
          parseEverything(body);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('never throws on the example responses mutated at random paths', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SAMPLES, FILES_LISTING).chain((s) => mutated(s, anyValue)),
        (value) => {
          const body = text(value);
          if (body !== null) parseEverything(body);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('never throws on damaged example text', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SAMPLES, FILES_LISTING).chain((s) => damaged(JSON.stringify(s))),
        (body) => {
          parseEverything(body);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('maps any printer state word', () => {
    fc.assert(
      fc.property(fc.string(), (word) => {
        expect(JOB_STATES.has(mapPrinterState(word, false))).toBe(true);
        expect(JOB_STATES.has(mapPrinterState(word, true))).toBe(true);
        expect(stateWord(word)).toMatch(/^[A-Z_]{1,24}$/);
      }),
      { numRuns: RUNS },
    );
  });
});

const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;
/** Header-safe text (no CR/LF: fetch refuses those in headers anyway). */
const headerText = (minLength = 0) => fc.string({ minLength, maxLength: 40 }).filter((s) => !/[\r\n]/.test(s));

describe('Digest challenge parsing (fuzz)', () => {
  it('never throws on arbitrary WWW-Authenticate values', () => {
    fc.assert(
      fc.property(fc.option(fc.string({ unit: 'binary' }), { nil: undefined }), (header) => {
        const challenges = parseAuthenticate(header);
        for (const c of challenges) expect(c.scheme).toBe(c.scheme.toLowerCase());
        const digest = parseDigestChallenge(header);
        if (digest) {
          expect(typeof digest.realm).toBe('string');
          expect(digest.nonce.length).toBeGreaterThan(0);
          expect([null, 'auth']).toContain(digest.qop);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('reads back quoted realm, nonce and opaque exactly, beside other challenges', () => {
    fc.assert(
      fc.property(
        headerText(),
        headerText(1),
        headerText(1),
        fc.constantFrom(null, 'MD5', 'MD5-sess', 'md5'),
        fc.boolean(),
        fc.boolean(),
        (realm, nonce, opaque, algorithm, qop, otherFirst) => {
          const params = [`realm=${quote(realm)}`, `nonce=${quote(nonce)}`, `opaque=${quote(opaque)}`];
          if (algorithm) params.push(`algorithm=${algorithm}`);
          if (qop) params.push('qop="auth,auth-int"');
          const digest = `Digest ${params.join(', ')}`;
          const header = otherFirst ? `Basic realm="x", ${digest}` : `${digest}, ApiKey realm="y"`;
          const parsed = parseDigestChallenge(header);
          expect(parsed).toEqual({ realm, nonce, opaque, algorithm, qop: qop ? 'auth' : null, stale: false });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('answers any challenge with an Authorization that parses back to the same values', () => {
    fc.assert(
      fc.property(
        headerText(1),
        headerText(),
        headerText(),
        headerText(1),
        fc.boolean(),
        (username, password, realm, nonce, qop) => {
          const auth = new DigestAuth(username, password, () => 'c0ffee');
          auth.accept({ realm, nonce, qop: qop ? 'auth' : null, algorithm: null, opaque: null, stale: false });
          const value = auth.authorization('GET', '/api/v1/status');
          expect(value).not.toBeNull();
          const [echo] = parseAuthenticate(value);
          expect(echo?.scheme).toBe('digest');
          expect(echo?.params).toMatchObject({ username, realm, nonce, uri: '/api/v1/status' });
          expect(echo?.params.response).toMatch(/^[0-9a-f]{32}$/);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
