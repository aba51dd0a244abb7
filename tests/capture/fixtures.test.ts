/**
 * Every capture under tests/fixtures/captures/ replays with --expect semantics (issue 16, item 5): the real captures
 * converted from ../shared/fixtures/bambu (convert.ts) and the ones recorded from the simulators. A change that alters
 * what a known session records fails here, naming the capture and the events that differ.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capturedEvents, readCaptureFile } from '../../src/capture/format.js';
import { compareEvents, replayCapture } from '../../src/capture/replay.js';

const DIR = join(import.meta.dirname, '../fixtures/captures');
const FILES = readdirSync(DIR)
  .filter((name) => name.endsWith('.jsonl'))
  .sort();

describe('captures under tests/fixtures/captures replay to the events they hold', () => {
  it('has the converted real captures and the simulator captures', () => {
    expect(FILES).toEqual(
      expect.arrayContaining(['snapcon-p2s-cancel.jsonl', 'bambuddy-h2s-calibration-cancel.jsonl']),
    );
    expect(FILES.some((name) => name.startsWith('simulator-prusalink-'))).toBe(true);
    expect(FILES.some((name) => name.startsWith('simulator-bambu-'))).toBe(true);
  });

  it.each(FILES)('%s', async (name) => {
    const capture = readCaptureFile(join(DIR, name));
    expect(capture.complete).toBe(true);
    const expected = capturedEvents(capture);
    expect(expected.length).toBeGreaterThan(0);
    const result = await replayCapture(capture, { instant: true });
    const comparison = compareEvents(expected, result.events, capture.header.session);
    expect(comparison.differences).toEqual([]);
    expect(result.divergences).toEqual([]);
  });
});
