import { describe, expect, it } from 'vitest';
import { createHttpApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { testService } from '../helpers.js';

interface Day {
  date: string;
  job_created: number;
  job_completed: number;
  job_failed: number;
  print_hours: number;
}
interface HistoryBody {
  weeks: number;
  days: Day[];
  print_hours: { total: number; this_week: number };
  error?: { code: string; message: string };
}

function setup() {
  const { service, clock } = testService();
  const app = createHttpApp({ service, logger: silentLogger(), version: '0.0.0-test' });
  const get = async (path: string) => {
    const response = await app.request(path);
    return { status: response.status, body: (await response.json()) as HistoryBody };
  };
  return { service, clock, get };
}

describe('GET /api/v1/usage-stats/history', () => {
  it('lists every UTC day of the last 12 weeks by default, oldest first, today last, zeros when empty', async () => {
    const { get } = setup(); // clock: 2026-11-02T10:00Z
    const { status, body } = await get('/api/v1/usage-stats/history');
    expect(status).toBe(200);
    expect(body.weeks).toBe(12);
    expect(body.days).toHaveLength(84);
    expect(body.days[0]).toEqual({
      date: '2026-08-11',
      job_created: 0,
      job_completed: 0,
      job_failed: 0,
      print_hours: 0,
    });
    expect(body.days.at(-1)?.date).toBe('2026-11-02');
    expect(body.print_hours).toEqual({ total: 0, this_week: 0 });
  });

  it('counts jobs per day and printing hours; older events only in the total; other events ignored', async () => {
    const { service, clock, get } = setup();
    clock.set('2026-07-01T12:00:00.000Z'); // before the 12-week window
    service.recordEvent('job_completed', { printer_type: 'prusa', printer_model: 'MK4', duration_seconds: 7200 });
    clock.set('2026-10-20T23:59:59.000Z');
    service.recordEvent('job_created', { printer_type: 'prusa', printer_model: 'MK4' });
    service.recordEvent('job_failed', {
      printer_type: 'prusa',
      printer_model: 'MK4',
      duration_seconds: 1800,
      failure_type: 'cancelled',
    });
    clock.set('2026-11-01T08:00:00.000Z');
    service.recordEvent('job_created', { printer_type: 'bambu_lab', printer_model: 'X1C' });
    service.recordEvent('job_created', { printer_type: 'bambu_lab', printer_model: 'X1C' });
    service.recordEvent('job_completed', { printer_type: 'bambu_lab', printer_model: 'X1C', duration_seconds: 5400 });
    service.recordEvent('file_uploaded', { printer_type: 'prusa', file_type: 'bgcode', size_bytes: 10 });
    clock.set('2026-11-02T10:00:00.000Z');

    const { body } = await get('/api/v1/usage-stats/history?weeks=4');
    expect(body.weeks).toBe(4);
    expect(body.days).toHaveLength(28);
    const byDate = Object.fromEntries(body.days.map((d) => [d.date, d]));
    expect(byDate['2026-10-20']).toEqual({
      date: '2026-10-20',
      job_created: 1,
      job_completed: 0,
      job_failed: 1,
      print_hours: 0.5,
    });
    expect(byDate['2026-11-01']).toEqual({
      date: '2026-11-01',
      job_created: 2,
      job_completed: 1,
      job_failed: 0,
      print_hours: 1.5,
    });
    const sum = body.days.reduce((n, d) => n + d.job_created, 0);
    expect(sum).toBe(3);
    expect(body.print_hours).toEqual({ total: 4, this_week: 1.5 });
  });

  it.each(['0', '53', 'abc', '1.5', ''])('refuses weeks=%s with a readable 400', async (weeks) => {
    const { get } = setup();
    const { status, body } = await get(`/api/v1/usage-stats/history?weeks=${weeks}`);
    expect(status).toBe(400);
    expect(body).toEqual({ error: { code: 'invalid_query', message: 'weeks must be a whole number from 1 to 52' } });
  });
});
