/**
 * Issue 12, PrusaLink: each sequence replayed to the real driver with response bodies shaped as Buddy firmware and
 * Prusa-Link send them (tests/fixtures/prusalink/README.md names the source of each shape), on a manual clock,
 * through a real fleet and tracker; the exact events recorded are asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LEGACY_FIRMWARE_PROBLEM } from '../../../src/printers/prusalink/driver.js';
import type { EventMetadata } from '../../../src/stats/events.js';
import { edit, fixture, type Replay, replay } from './replay.js';

const B = (name: string) => fixture('buddy', name);
const P = (name: string) => fixture('prusa-link', name);

const replays: Replay[] = [];
afterEach(async () => {
  for (const r of replays.splice(0)) await r.stop();
});

/** A Buddy printer (an MK3.9S on 6.5.3 unless told), idle, a USB stick with two files and a Parts folder. */
function buddy(version = 'version-6.5.3-mk39s'): Replay {
  const r = replay();
  replays.push(r);
  r.printer
    .set('/api/version', B(version))
    .set('/api/v1/status', B('status-idle'))
    .set('/api/v1/job', null)
    .set('/api/v1/transfer', null)
    .set('/api/v1/storage', B('storage'))
    .set('/api/v1/files/usb/', B('listing-usb'))
    .set('/api/v1/files/usb/PARTS', B('listing-parts'));
  return r;
}

/** Prusa-Link on a Raspberry Pi with an MK3S, idle, two files in its local storage. */
function prusaLink(version = 'version'): Replay {
  const r = replay();
  replays.push(r);
  r.printer
    .set('/api/version', P(version))
    .set('/api/v1/status', P('status-idle'))
    .set('/api/v1/job', null)
    .set('/api/v1/transfer', null)
    .set('/api/v1/storage', P('storage'))
    .set('/api/v1/files/local/', P('listing-local'));
  return r;
}

const MK39S = { printer_type: 'prusa', printer_model: 'MK3.9S' } as const;
const MK3S = { printer_type: 'prusa', printer_model: 'MK3S' } as const;
const connected = (fields: EventMetadata) => ({
  type: 'printer_connected',
  metadata: { ...fields, connection: 'http' },
});
const created = (fields: EventMetadata) => ({ type: 'job_created', metadata: fields });
const completed = (fields: EventMetadata, duration: number) => ({
  type: 'job_completed',
  metadata: { ...fields, duration_seconds: duration },
});
const failed = (fields: EventMetadata, failure: string, duration: number) => ({
  type: 'job_failed',
  metadata: { ...fields, duration_seconds: duration, failure_type: failure },
});
const uploaded = (fileType: string, size?: number) => ({
  type: 'file_uploaded',
  metadata:
    size === undefined
      ? { printer_type: 'prusa', file_type: fileType }
      : { printer_type: 'prusa', file_type: fileType, size_bytes: size },
});

describe('1. ATTENTION without a job', () => {
  it('Buddy: a warning dialog on an idle printer is no job', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-attention-idle'));
    await r.polls(3);
    expect(r.snapshot().state).toBe('ATTENTION');
    r.printer.set('/api/v1/status', B('status-idle'));
    await r.poll();
    expect(r.events).toEqual([connected(MK39S)]);
    expect(r.printer.count('/api/v1/job')).toBe(0);
  });

  it('Prusa-Link: a fan error on an idle printer is no job', async () => {
    const r = prusaLink();
    await r.poll();
    r.printer.set('/api/v1/status', P('status-attention-idle'));
    await r.polls(3);
    r.printer.set('/api/v1/status', P('status-idle'));
    await r.poll();
    expect(r.events).toEqual([connected(MK3S)]);
  });

  it('ATTENTION during a job holds it like a pause: one job, printing time as the printer counts it', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-attention-job'));
    await r.polls(4);
    r.printer.set('/api/v1/status', edit(B('status-printing'), { time_printing: 1500 }));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-finished')).set('/api/v1/job', null);
    await r.poll();
    // The job's file (TABLET~1.BGC) was in the first listing: no upload.
    expect(r.events).toEqual([connected(MK39S), created(MK39S), completed(MK39S, 1500)]);
  });
});

describe('2. Prusa-Link job paths', () => {
  it('printing a file that was already in the storage is not an upload (job path under the display name)', async () => {
    const r = prusaLink();
    await r.poll();
    r.printer.set('/api/v1/status', P('status-printing')).set('/api/v1/job', P('job-local'));
    await r.poll();
    r.printer.set('/api/v1/status', P('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([connected(MK3S), created(MK3S), completed(MK3S, 600)]);
    expect(r.printer.count('/api/v1/job')).toBe(1);
  });

  it('a print from the SD card is not an upload', async () => {
    const r = prusaLink();
    await r.poll();
    r.printer.set('/api/v1/status', P('status-printing')).set('/api/v1/job', P('job-sdcard'));
    await r.poll();
    r.printer.set('/api/v1/status', P('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([connected(MK3S), created(MK3S), completed(MK3S, 600)]);
  });

  it('an upload (PUT with Print-After-Upload) that is then printed is one upload', async () => {
    const r = prusaLink();
    await r.poll();
    r.printer.set('/api/v1/status', P('status-idle-transfer')).set('/api/v1/transfer', P('transfer'));
    await r.poll();
    r.printer
      .set('/api/v1/status', edit(P('status-printing'), { time_printing: 0 }))
      .set('/api/v1/transfer', null)
      .set('/api/v1/job', P('job-local-upload'))
      .set('/api/v1/files/local/', P('listing-local-uploaded'));
    await r.poll();
    r.printer.set('/api/v1/status', edit(P('status-printing'), { time_printing: 1800 }));
    await r.poll();
    r.printer.set('/api/v1/status', P('status-finished')).set('/api/v1/job', null);
    await r.poll();
    await r.wait(11 * 60_000); // two more regular listings that show the file
    expect(r.events).toEqual([connected(MK3S), uploaded('gcode', 12000), created(MK3S), completed(MK3S, 1800)]);
  });

  it('an upload printed later is one upload, counted when it completed', async () => {
    const r = prusaLink();
    await r.poll();
    r.printer.set('/api/v1/status', P('status-idle-transfer')).set('/api/v1/transfer', P('transfer'));
    await r.poll();
    r.printer
      .set('/api/v1/status', P('status-idle'))
      .set('/api/v1/transfer', null)
      .set('/api/v1/files/local/', P('listing-local-uploaded'));
    await r.poll();
    expect(r.events).toEqual([connected(MK3S), uploaded('gcode', 12000)]);
    await r.wait(20 * 60_000);
    r.printer.set('/api/v1/status', P('status-printing')).set('/api/v1/job', P('job-local-upload'));
    await r.poll();
    r.printer.set('/api/v1/status', P('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([connected(MK3S), uploaded('gcode', 12000), created(MK3S), completed(MK3S, 600)]);
  });
});

describe('3. A print lost to an outage', () => {
  it('PRINTING, no answer (disconnected), IDLE: job_failed error with the last printing time', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.set('/api/v1/status', edit(B('status-printing'), { time_printing: 900 }));
    await r.poll();
    r.printer.down = true;
    await r.polls(6);
    await r.wait(10 * 60_000); // the printer is off for a while: wall-clock time that must not count
    r.printer.down = false;
    r.printer.set('/api/v1/status', B('status-idle')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([
      connected(MK39S),
      created(MK39S),
      // Polls at 0 s (idle), 30 s (printing), 35 s, then 5 s apart while the job runs: the third failure at 50 s.
      { type: 'printer_disconnected', metadata: { ...MK39S, reason: 'network', connected_seconds: 50 } },
      connected(MK39S),
      failed(MK39S, 'error', 900),
    ]);
  });

  it('a reboot too quick to count as a disconnection is still a lost job, not a cancel', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.down = true;
    await r.poll();
    r.printer.down = false;
    r.printer.set('/api/v1/status', B('status-idle')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([connected(MK39S), created(MK39S), failed(MK39S, 'error', 600)]);
  });

  it('without a gap, PRINTING then IDLE is the user’s cancel (STOPPED cleared at once), STOPPED too', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-idle')).set('/api/v1/job', null);
    await r.poll();
    r.printer
      .set('/api/v1/status', edit(B('status-printing'), { id: 8 }))
      .set('/api/v1/job', edit(B('job-printing'), { id: 8 }));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-stopped')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([
      connected(MK39S),
      created(MK39S),
      failed(MK39S, 'cancelled', 600),
      created(MK39S),
      failed(MK39S, 'cancelled', 600),
    ]);
  });

  it('power-panic recovery (BUSY, ATTENTION with the same job id, printing again) stays one job', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.down = true;
    await r.polls(4);
    r.printer.down = false;
    r.printer.set('/api/v1/status', B('status-busy')).set('/api/v1/job', null);
    await r.poll();
    r.printer
      .set('/api/v1/status', edit(B('status-attention-job'), { time_printing: 610 }))
      .set('/api/v1/job', B('job-printing'));
    await r.polls(2);
    r.printer.set('/api/v1/status', edit(B('status-printing'), { time_printing: 700 }));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.types()).toEqual([
      'printer_connected',
      'job_created',
      'printer_disconnected',
      'printer_connected',
      'job_completed',
    ]);
    expect(r.events[4]).toEqual(completed(MK39S, 700));
  });

  it('job ids survive reboots: the next job after a lost one has a new id and is counted', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.down = true;
    await r.polls(4);
    r.printer.down = false;
    r.printer.set('/api/v1/status', B('status-idle')).set('/api/v1/job', null);
    await r.poll();
    r.printer
      .set('/api/v1/status', edit(B('status-printing'), { id: 8, time_printing: 5 }))
      .set('/api/v1/job', edit(B('job-printing'), { id: 8 }));
    await r.poll();
    r.printer.set('/api/v1/status', edit(B('status-printing'), { id: 8, time_printing: 300 }));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events.filter((e) => e.type.startsWith('job_'))).toEqual([
      created(MK39S),
      failed(MK39S, 'error', 600),
      created(MK39S),
      completed(MK39S, 300),
    ]);
  });

  it('reset between two jobs: another id after no answer ends the first as lost (error), the second is new', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.down = true;
    await r.poll();
    r.printer.down = false;
    r.printer
      .set('/api/v1/status', edit(B('status-printing'), { id: 8, time_printing: 20 }))
      .set('/api/v1/job', edit(B('job-printing'), { id: 8 }));
    await r.poll();
    expect(r.events).toEqual([connected(MK39S), created(MK39S), failed(MK39S, 'error', 600), created(MK39S)]);
  });

  it('a print that finished while the printer did not answer is completed, with its last printing time', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing'));
    await r.poll();
    r.printer.down = true;
    await r.polls(5);
    r.printer.down = false;
    r.printer.set('/api/v1/status', B('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events.filter((e) => e.type.startsWith('job_'))).toEqual([created(MK39S), completed(MK39S, 600)]);
  });
});

describe('4. Storage changes that are not uploads', () => {
  it('a USB stick put in (listed empty while out) is no upload, nor is printing from it at once', async () => {
    const r = buddy();
    r.printer.set('/api/v1/storage', B('storage-no-usb')).set('/api/v1/files/usb/', B('listing-usb-missing'));
    await r.poll();
    r.printer.set('/api/v1/storage', B('storage')).set('/api/v1/files/usb/', B('listing-usb-other-stick'));
    // Printed from the stick before the next listing.
    r.printer
      .set('/api/v1/status', B('status-printing'))
      .set(
        '/api/v1/job',
        edit(B('job-printing'), { name: 'STICKC~1.BGC', display_name: 'Stick clip.bgcode', size: 45678 }),
      );
    await r.poll();
    r.printer.set('/api/v1/status', edit(B('status-printing'), { time_printing: 900 }));
    await r.wait(6 * 60_000); // a regular listing: the stick's files are its baseline
    r.printer.set('/api/v1/status', B('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([connected(MK39S), created(MK39S), completed(MK39S, 900)]);
  });

  it('a listing that shares no file with the last one is another stick, not uploads', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/files/usb/', B('listing-usb-other-stick'));
    await r.wait(6 * 60_000);
    expect(r.printer.count('/api/v1/files/usb/')).toBe(2);
    expect(r.events).toEqual([connected(MK39S)]);
  });

  it('printing a file that was in a subfolder all along is no upload', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-printing')).set('/api/v1/job', B('job-printing-subfolder'));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-finished')).set('/api/v1/job', null);
    await r.poll();
    expect(r.events).toEqual([connected(MK39S), created(MK39S), completed(MK39S, 600)]);
  });

  it('a file still being uploaded (read-only, no download ref) counts once complete, with the transfer’s size', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-idle-transfer')).set('/api/v1/transfer', B('transfer'));
    r.printer.set('/api/v1/files/usb/', B('listing-usb-uploading'));
    await r.wait(6 * 60_000); // a regular listing while it uploads
    expect(r.events).toEqual([connected(MK39S)]);
    r.printer
      .set('/api/v1/status', B('status-idle'))
      .set('/api/v1/transfer', null)
      .set('/api/v1/files/usb/', B('listing-usb-uploaded'));
    await r.poll();
    await r.wait(11 * 60_000);
    expect(r.events).toEqual([connected(MK39S), uploaded('bgcode', 2345678)]);
  });

  it('an aborted upload is not counted at all', async () => {
    const r = buddy();
    await r.poll();
    r.printer
      .set('/api/v1/status', B('status-idle-transfer'))
      .set('/api/v1/transfer', B('transfer'))
      .set('/api/v1/files/usb/', B('listing-usb-uploading'));
    await r.wait(6 * 60_000);
    r.printer
      .set('/api/v1/status', B('status-idle'))
      .set('/api/v1/transfer', null)
      .set('/api/v1/files/usb/', B('listing-usb'));
    await r.poll();
    await r.wait(11 * 60_000);
    expect(r.events).toEqual([connected(MK39S)]);
  });

  it('the slicer’s upload and print is one upload, sized from the job’s file', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', B('status-idle-transfer')).set('/api/v1/transfer', B('transfer'));
    await r.poll();
    r.printer
      .set('/api/v1/status', edit(B('status-printing'), { time_printing: 0 }))
      .set('/api/v1/transfer', null)
      .set('/api/v1/job', B('job-printing-upload'))
      .set('/api/v1/files/usb/', B('listing-usb-uploaded'));
    await r.poll();
    r.printer.set('/api/v1/status', B('status-finished')).set('/api/v1/job', null);
    await r.poll();
    await r.wait(11 * 60_000);
    expect(r.events).toEqual([connected(MK39S), uploaded('bgcode', 2345678), created(MK39S), completed(MK39S, 0)]);
  });

  it('an upload too quick to see as a transfer, then printed: one upload, from a fresh listing, job’s size', async () => {
    const r = buddy();
    await r.poll();
    r.printer
      .set('/api/v1/status', edit(B('status-printing'), { time_printing: 0 }))
      .set('/api/v1/job', B('job-printing-upload'))
      .set('/api/v1/files/usb/', B('listing-usb-uploaded'));
    await r.poll();
    await r.wait(11 * 60_000);
    expect(r.events).toEqual([connected(MK39S), uploaded('bgcode', 2345678), created(MK39S)]);
  });

  it('a new file in a listing without a transfer seen counts without a size (Buddy lists none)', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/files/usb/', B('listing-usb-uploaded'));
    await r.wait(6 * 60_000);
    expect(r.events).toEqual([connected(MK39S), uploaded('bgcode')]);
  });
});

describe('5. Models, from /api/version only', () => {
  it.each([
    ['version-6.5.3-mk39s', 'MK3.9S'],
    ['version-6.5.3-mk35s', 'MK3.5S'],
    ['version-6.5.3-core-one', 'CORE One'],
    ['version-6.5.1-core-one-l', 'CORE One L'],
    ['version-6.4.0-xl', 'XL'],
    // The MK4 build calls MK4, MK4S, MK3.9 and MK3.9S all `prusa-mk4`: not guessed.
    ['version-6.4.0-mk4', 'other'],
    ['version-4.6.4-mk4', 'other'],
  ])('Buddy %s → %s', async (version, model) => {
    const r = buddy(version);
    await r.poll();
    expect(r.events[0]).toEqual(connected({ printer_type: 'prusa', printer_model: model }));
    expect(r.snapshot().model).toBe(model);
  });

  it('says once why an MK4-family printer known by its factory host name is "other"', async () => {
    const r = buddy('version-6.4.0-mk4');
    await r.polls(3);
    r.printer.down = true;
    await r.polls(4);
    r.printer.down = false;
    await r.poll(); // the version is read again after the outage
    const lines = r.logs.filter((l) => /factory host name/.test(String(l['msg'])));
    expect(lines).toHaveLength(1);
    expect(String(lines[0]!['msg'])).toContain('MK4, MK4S, MK3.9 or MK3.9S');
    expect(r.rawLogs.join('')).not.toContain('prusa-mk4');
  });

  it('Prusa-Link: "PrusaLink I3MK3S" is an MK3S', async () => {
    const r = prusaLink();
    await r.poll();
    expect(r.events).toEqual([connected(MK3S)]);
  });

  it('Prusa-Link: "Unknown printer type" is read again until it knows; later events name the model', async () => {
    const r = prusaLink('version-unknown-type');
    await r.poll();
    expect(r.events).toEqual([connected({ printer_type: 'prusa', printer_model: 'other' })]);
    await r.wait(30_000);
    expect(r.printer.count('/api/version')).toBe(1);
    r.printer.set('/api/version', P('version'));
    await r.wait(60_000);
    expect(r.printer.count('/api/version')).toBe(2);
    expect(r.snapshot().model).toBe('MK3S');
    r.printer.set('/api/v1/status', P('status-printing')).set('/api/v1/job', P('job-local'));
    await r.poll();
    expect(r.events.at(-1)).toEqual(created(MK3S));
    await r.wait(10 * 60_000);
    expect(r.printer.count('/api/version')).toBe(2); // known now: not read again
  });
});

describe('6. Old firmware without API v1', () => {
  it('a clear problem, logged once, no error_occurred, asked again every few minutes, cleared after an update', async () => {
    const r = buddy('version-4.6.4-mk4');
    r.printer.set('/api/v1/status', { status: 404, body: B('not-found') });
    await r.poll();
    await r.wait(30 * 60_000);
    expect(r.events).toEqual([connected({ printer_type: 'prusa', printer_model: 'other' })]);
    expect(r.snapshot()).toMatchObject({ online: true, problem: LEGACY_FIRMWARE_PROBLEM });
    expect(r.logs.filter((l) => l['level'] === 40)).toHaveLength(1);
    // Every 5 minutes, not every 30 s.
    expect(r.printer.count('/api/v1/status')).toBe(7);
    // Updated to 6.5.3: tracked from then on, the problem gone.
    r.printer.set('/api/version', B('version-6.5.3-mk39s')).set('/api/v1/status', B('status-idle'));
    await r.wait(5 * 60_000);
    expect(r.snapshot()).toMatchObject({ online: true, problem: null, model: 'MK3.9S' });
  });
});

describe('the driver on the new contract', () => {
  it('logs with component and printer once each, and reports raw traffic and link changes', async () => {
    const r = buddy();
    await r.poll();
    r.printer.down = true;
    await r.polls(3);
    r.printer.down = false;
    await r.poll();
    const line = r.rawLogs.find((l) => l.includes('PrusaLink printer connected'))!;
    expect(line.match(/"component"/g)).toHaveLength(1);
    expect(line.match(/"printer"/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ component: 'prusalink', printer: 'desk_mk4' });
    expect(r.traffic[0]).toEqual({ kind: 'http', path: '/api/version', status: 200, body: B('version-6.5.3-mk39s') });
    expect(r.traffic).toContainEqual({ kind: 'link', up: true });
    expect(r.traffic).toContainEqual({ kind: 'link', up: false, reason: 'network' });
    expect(r.traffic).toContainEqual({
      kind: 'http',
      path: '/api/v1/status',
      status: null,
      body: null,
      failure: 'network ECONNREFUSED',
    });
    expect(r.traffic.filter((t) => t.kind === 'link')).toHaveLength(3);
  });

  it('an unparseable status counts once per outage and shows as the problem until the next good poll', async () => {
    const r = buddy();
    await r.poll();
    r.printer.set('/api/v1/status', '<!DOCTYPE html><html><body>Log in</body></html>');
    await r.polls(5);
    expect(r.snapshot().problem).toBe('unparseable response (not PrusaLink JSON)');
    r.printer.set('/api/v1/status', B('status-idle'));
    await r.poll();
    expect(r.snapshot().problem).toBeNull();
    expect(r.types()).toEqual(['printer_connected', 'error_occurred', 'printer_disconnected', 'printer_connected']);
    expect(r.events[1]!.metadata).toEqual({
      error_type: 'response_unparseable',
      component: 'prusalink',
      printer_type: 'prusa',
    });
  });
});
