/**
 * Bambu Lab report parse + merge under arbitrary input: arbitrary JSON, damaged text and the real fixtures mutated
 * at random paths. Nothing may throw, every observation must be well-formed, and error slugs must be ones the
 * event allow-list accepts (or the tracker's error_occurred would lose its type).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { BambuDriver } from '../../src/printers/bambu/driver.js';
import {
  BambuReportState,
  jobStateOf,
  type ParsedReport,
  parseReport,
  snapshotProgress,
  snapshotRemainingMinutes,
  snapshotState,
} from '../../src/printers/bambu/report.js';
import { ManualClock } from '../../src/printers/clock.js';
import { PrinterTracker } from '../../src/printers/tracker.js';
import type { PrinterUpdate } from '../../src/printers/types.js';
import { JOB_STATES as STATE_LIST } from '../../src/printers/types.js';
import { ERROR_CODE_SLUG, ERROR_TYPES, FILE_TYPES, PRINTER_MODELS } from '../../src/stats/events.js';
import { anyValue, damaged, FIXTURES, jsonValue, mutated, RUNS, readJson } from './arbitraries.js';

const DIR = `${FIXTURES}/bambu`;
const FULL_REPORTS = [
  'ha-bambulab__MOCK-A1.json',
  'ha-bambulab__MOCK-P1PNOAMS.json',
  'ha-bambulab__MOCK-P2S.json',
  'ha-bambulab__MOCK-H2S.json',
  'ha-bambulab__MOCK-H2D.json',
  'ha-bambulab__MOCK-H2C.json',
  'ha-bambulab__MOCK-X2D.json',
  'ha-bambulab__MOCK-A2L.json',
].map((f) => {
  const doc = readJson(`${DIR}/${f}`) as { pushall: unknown; get_version: unknown };
  return [doc.pushall, doc.get_version];
});
const PRINT_OBJECTS = ['ha-bambulab__2AMS1-1AMS2-1AMSHT.json', 'ha-bambulab__P1P.json'].map((f) => {
  const doc = readJson(`${DIR}/${f}`) as { push_all: unknown; get_version: unknown };
  return [{ print: doc.push_all }, { info: doc.get_version }];
});
const DELTAS = readFileSync(`${DIR}/real-captures__deltas.jsonl`, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as unknown);
/** The real ordered P2S print (snapcon), each message under the envelope key it came in. */
const CAPTURE = (
  readJson(`${DIR}/snapcon__p2s-capture.json`) as { PRINT_EVENTS: Record<string, unknown>[] }
).PRINT_EVENTS.map(({ ms: _ms, phase: _phase, section, ...message }) => ({ [section as string]: message }));
const H2S = readJson(`${DIR}/bambuddy__h2s-capture.json`) as Record<string, unknown>;
const STUDIO = [
  { print: { ...(H2S.STUDIO_PROJECT_FILE as object), result: 'success' } },
  H2S.RUNNING,
  H2S.FAILED_NO_CODE,
  H2S.FAILED_CANCEL_CODE,
];
const SAMPLES: unknown[] = [...FULL_REPORTS.flat(), ...PRINT_OBJECTS.flat(), ...DELTAS, ...CAPTURE, ...STUDIO];

const KINDS = new Set(['status', 'ack', 'version', 'other', 'malformed']);
const JOB_STATES: ReadonlySet<string> = new Set(STATE_LIST);

/** Parse, and for a status merge it into the given state; checks everything the driver relies on. */
function parseAndMerge(state: BambuReportState, payload: string | Buffer): ParsedReport {
  const parsed = parseReport(payload);
  expect(KINDS.has(parsed.kind)).toBe(true);
  if (parsed.kind === 'version') expect(parsed.model === null || PRINTER_MODELS.includes(parsed.model)).toBe(true);
  if (parsed.kind === 'ack') expect(parsed.command.length).toBeLessThanOrEqual(64);
  if (parsed.kind === 'status') {
    const observation = state.apply(parsed.fields);
    expect(JOB_STATES.has(observation.state)).toBe(true);
    for (const slug of observation.errorSlugs ?? []) expect(slug).toMatch(ERROR_CODE_SLUG);
    expect(typeof observation.cancelSeen).toBe('boolean');
    expect(typeof observation.systemJob).toBe('boolean');
    const word = snapshotState(state.fields);
    if (word !== null) expect(word).toMatch(/^[A-Z_]{1,20}$/);
    const progress = snapshotProgress(state.fields);
    if (progress !== null) expect(progress >= 0 && progress <= 100).toBe(true);
    const remaining = snapshotRemainingMinutes(state.fields);
    if (remaining !== null) expect(Number.isFinite(remaining) && remaining >= 0).toBe(true);
  }
  return parsed;
}

const payloadOf = (value: unknown): string => JSON.stringify(value) ?? 'null';

describe('Bambu report parse and merge (fuzz)', () => {
  it('never throws on arbitrary text or bytes', () => {
    const state = new BambuReportState();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.uint8Array().map((b) => Buffer.from(b)),
        ),
        (payload) => {
          parseAndMerge(state, payload);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('never throws on arbitrary JSON under print / info', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            jsonValue,
            fc.record({ print: fc.oneof(jsonValue, fc.dictionary(fc.string(), jsonValue)) }),
            fc.record({ info: fc.record({ command: fc.constant('get_version'), module: jsonValue }) }),
            fc.record({
              print: fc.record(
                {
                  command: fc.constant('push_status'),
                  gcode_state: jsonValue,
                  hms: jsonValue,
                  print_error: jsonValue,
                  mc_percent: jsonValue,
                  task_id: jsonValue,
                },
                { requiredKeys: ['command'] },
              ),
            }),
          ),
          { maxLength: 8 },
        ),
        (reports) => {
          const state = new BambuReportState();
          for (const report of reports) parseAndMerge(state, payloadOf(report));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('never throws on real reports mutated at random paths, merged in sequence', () => {
    const anySample = fc.constantFrom(...SAMPLES).chain((sample) => mutated(sample, anyValue));
    fc.assert(
      fc.property(fc.array(anySample, { minLength: 1, maxLength: 6 }), (reports) => {
        const state = new BambuReportState();
        for (const report of reports) {
          let text: string;
          try {
            text = payloadOf(report);
          } catch {
            continue; // BigInt and the like cannot be sent as JSON at all.
          }
          parseAndMerge(state, text);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws on damaged report text', () => {
    const texts = SAMPLES.map(payloadOf);
    fc.assert(
      fc.property(fc.constantFrom(...texts).chain(damaged), (text) => {
        parseAndMerge(new BambuReportState(), text);
      }),
      { numRuns: RUNS },
    );
  });

  it('the driver, its tracker and its updates survive any sequence of real reports mutated at random', () => {
    const ERRORS: ReadonlySet<string> = new Set(ERROR_TYPES);
    const anySample = fc.constantFrom(...SAMPLES).chain((sample) => mutated(sample, anyValue));
    fc.assert(
      fc.property(fc.array(fc.tuple(anySample, fc.nat(120_000)), { minLength: 1, maxLength: 8 }), (reports) => {
        const clock = new ManualClock();
        const updates: PrinterUpdate[] = [];
        const tracker = new PrinterTracker({
          printerType: 'bambu_lab',
          model: () => 'P1P',
          connection: 'mqtt',
          cancelGraceMs: 15_000,
          emit: () => {},
          clock,
        });
        const driver = new BambuDriver(
          {
            id: 'fuzz',
            host: '127.0.0.1',
            port: 1,
            serial: '01S00C000000001',
            accessCode: 'x',
            tls: true,
            verifyCertificate: false,
          },
          {
            update: (update) => {
              updates.push(update);
              tracker.handle(update);
            },
            logger: silentLogger(),
            clock,
            traffic: () => {},
          },
        );
        driver.sessionUp();
        for (const [report, waitMs] of reports) {
          let text: string;
          try {
            text = payloadOf(report);
          } catch {
            continue;
          }
          driver.handleMessage('device/01S00C000000001/report', text);
          clock.advance(waitMs);
        }
        driver.sessionDown('closed');
        for (const update of updates) {
          if (update.kind === 'file_uploaded') expect(FILE_TYPES).toContain(update.fileType);
          if (update.kind === 'fault') expect(ERRORS.has(update.errorType)).toBe(true);
          if (update.kind === 'model') expect(PRINTER_MODELS).toContain(update.model);
          if (update.kind === 'observation') {
            for (const slug of update.observation.errorSlugs ?? []) expect(slug).toMatch(ERROR_CODE_SLUG);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('maps any gcode_state word without throwing', () => {
    fc.assert(
      fc.property(fc.option(fc.string(), { nil: undefined }), (word) => {
        expect(JOB_STATES.has(jobStateOf(word))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});
