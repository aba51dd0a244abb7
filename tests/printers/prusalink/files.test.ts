/** PrusaLinkFiles from response bodies alone (tests/fixtures/prusalink). */
import { describe, expect, it } from 'vitest';
import { PrusaLinkFiles } from '../../../src/printers/prusalink/files.js';
import {
  filesListingSchema,
  jobSchema,
  parseBody,
  statusSchema,
  transferSchema,
} from '../../../src/printers/prusalink/status.js';
import { edit, fixture } from './replay.js';

type Server = 'buddy' | 'prusa-link';
function parse<T>(schema: Parameters<typeof parseBody<T>>[0], body: string): T {
  const r = parseBody(schema, body);
  if (!r.ok) throw new Error('did not parse');
  return r.value;
}
const status = (s: Server, name: string) => parse(statusSchema, fixture(s, name));
const listing = (s: Server, name: string) => parse(filesListingSchema, fixture(s, name));
const job = (s: Server, name: string, values: Record<string, string | number> = {}) =>
  parse(jobSchema, edit(fixture(s, name), values));

function buddyFiles(): PrusaLinkFiles {
  const files = new PrusaLinkFiles();
  files.storages(status('buddy', 'status-idle'));
  expect(files.listing('/usb', listing('buddy', 'listing-usb'), true)).toEqual([]);
  return files;
}

describe('locating a job’s file', () => {
  it('Buddy: the folder in `path`, the short name in `name`', () => {
    const files = buddyFiles();
    expect(files.locate(job('buddy', 'job-printing-subfolder'))).toEqual({
      folder: '/usb/parts',
      entry: 'gear~1.bgc',
      folderPath: '/usb/PARTS',
      displayName: 'Gear.bgcode',
      size: 98765,
    });
  });

  it('Prusa-Link: the whole path under the storages’ display names, mapped back to the storage', () => {
    const files = new PrusaLinkFiles();
    files.storages(status('prusa-link', 'status-idle'));
    expect(files.locate(job('prusa-link', 'job-local'))).toMatchObject({
      folder: '/local',
      entry: 'benchy.gcode',
      folderPath: '/local',
    });
    expect(files.locate(job('prusa-link', 'job-sdcard'))).toMatchObject({ folder: '/sdcard', entry: 'benchy~1.gco' });
  });
});

describe('uploads', () => {
  it('a job’s file that was in the listing is no upload; one in a folder never listed is none either', () => {
    const files = buddyFiles();
    expect(files.jobFile(job('buddy', 'job-printing'))).toEqual({ arrivals: [], listFolder: null, hint: null });
    expect(files.jobFile(job('buddy', 'job-printing-subfolder'))).toEqual({
      arrivals: [],
      listFolder: null,
      hint: null,
    });
  });

  it('an unknown job file in a listed folder asks for a fresh listing, which decides with the job’s size', () => {
    const files = buddyFiles();
    const result = files.jobFile(job('buddy', 'job-printing-upload'));
    expect(result).toEqual({
      arrivals: [],
      listFolder: '/usb',
      hint: { folder: '/usb', entry: 'slicer~1.bgc', size: 2345678 },
    });
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploaded'), true, result.hint)).toEqual([
      { fileType: 'bgcode', sizeBytes: 2345678 },
    ]);
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploaded'), true)).toEqual([]);
  });

  it('a transfer counts once its file is complete, with the transfer’s size; while partial it waits', () => {
    const files = buddyFiles();
    expect(files.statusTransfer(status('buddy', 'status-idle-transfer').transfer)).toBe('3');
    expect(files.statusTransfer(status('buddy', 'status-idle-transfer').transfer)).toBeNull(); // seen already
    files.transferDetails('3', parse(transferSchema, fixture('buddy', 'transfer')));
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploading'), true)).toEqual([]);
    files.statusTransfer(undefined);
    expect(files.takeWanted()).toEqual(['/usb']);
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploaded'), true)).toEqual([
      { fileType: 'bgcode', sizeBytes: 2345678 },
    ]);
  });

  it('an aborted transfer (its partial file gone) is never counted', () => {
    const files = buddyFiles();
    files.statusTransfer(status('buddy', 'status-idle-transfer').transfer);
    files.transferDetails('3', parse(transferSchema, fixture('buddy', 'transfer')));
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploading'), true)).toEqual([]);
    files.statusTransfer(undefined);
    expect(files.listing('/usb', listing('buddy', 'listing-usb'), true)).toEqual([]);
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploaded'), true)).toEqual([
      // Later the same name shows up complete without a transfer seen: a new upload, of unknown size.
      { fileType: 'bgcode', sizeBytes: null },
    ]);
  });

  it('the job printed right after its transfer is the transfer’s one upload', () => {
    const files = buddyFiles();
    files.statusTransfer(status('buddy', 'status-idle-transfer').transfer);
    files.transferDetails('3', parse(transferSchema, fixture('buddy', 'transfer')));
    files.statusTransfer(undefined);
    expect(files.jobFile(job('buddy', 'job-printing-upload')).arrivals).toEqual([
      { fileType: 'bgcode', sizeBytes: 2345678 },
    ]);
    files.takeWanted();
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploaded'), true)).toEqual([]);
  });

  it('Prusa-Link: a transfer into /local matched by name; the job that prints it adds nothing', () => {
    const files = new PrusaLinkFiles();
    files.storages(status('prusa-link', 'status-idle'));
    expect(files.listing('/local', listing('prusa-link', 'listing-local'), true)).toEqual([]);
    files.statusTransfer(status('prusa-link', 'status-idle-transfer').transfer);
    files.transferDetails('5', parse(transferSchema, fixture('prusa-link', 'transfer')));
    files.statusTransfer(undefined);
    expect(files.listing('/local', listing('prusa-link', 'listing-local-uploaded'), true)).toEqual([
      { fileType: 'gcode', sizeBytes: 12000 },
    ]);
    expect(files.jobFile(job('prusa-link', 'job-local-upload')).arrivals).toEqual([]);
  });
});

describe('storage changes that are not uploads', () => {
  it('a medium put in after an empty listing (no stick) is a new baseline', () => {
    const files = new PrusaLinkFiles();
    files.storages(status('buddy', 'status-idle'));
    expect(files.listing('/usb', listing('buddy', 'listing-usb-missing'), false)).toEqual([]);
    expect(files.listing('/usb', listing('buddy', 'listing-usb-other-stick'), true)).toEqual([]);
    // And when /api/v1/storage could not say: an empty listing is read as no stick too.
    const unsure = new PrusaLinkFiles();
    unsure.storages(status('buddy', 'status-idle'));
    expect(unsure.listing('/usb', listing('buddy', 'listing-usb-missing'), null)).toEqual([]);
    expect(unsure.listing('/usb', listing('buddy', 'listing-usb-other-stick'), null)).toEqual([]);
  });

  it('a stick swapped between two listings (no file in common) is a new baseline', () => {
    const files = buddyFiles();
    expect(files.listing('/usb', listing('buddy', 'listing-usb-other-stick'), true)).toEqual([]);
  });

  it('a file added to a present, listed stick is an upload', () => {
    const files = buddyFiles();
    expect(files.listing('/usb', listing('buddy', 'listing-usb-uploaded'), true)).toEqual([
      { fileType: 'bgcode', sizeBytes: null },
    ]);
  });

  it('a stick pulled forgets what was on it and its subfolders', () => {
    const files = buddyFiles();
    expect(files.listing('/usb/PARTS', listing('buddy', 'listing-parts'))).toEqual([]);
    files.listing('/usb', listing('buddy', 'listing-usb-missing'), false);
    // Put back: a baseline again, not uploads.
    expect(files.listing('/usb', listing('buddy', 'listing-usb'), true)).toEqual([]);
    expect(files.jobFile(job('buddy', 'job-printing-subfolder')).listFolder).toBeNull();
  });

  it('entries that do not parse are skipped one by one; folders are not files', () => {
    const files = new PrusaLinkFiles();
    files.storages(status('buddy', 'status-idle'));
    files.listing('/usb', { children: [] }, true);
    const odd = {
      children: [
        { name: 'A.GCO', type: 'PRINT_FILE', ro: false, refs: { download: '/usb/A.GCO' } },
        { name: 'DIR', type: 'FOLDER' },
        { display_name: 'no name' },
        'junk',
        42,
      ],
    };
    expect(files.listing('/usb', odd, true)).toEqual([{ fileType: 'gcode', sizeBytes: null }]);
  });
});
