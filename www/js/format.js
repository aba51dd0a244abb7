/** Numbers, dates and labels as people read them, in the browser's locale. */

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 0 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const time = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export const formatInteger = (n) => integer.format(n ?? 0);

export const formatHours = (h) => `${h >= 10 ? integer.format(h) : oneDecimal.format(h ?? 0)} h`;

/** Completed out of finished jobs; a dash when none finished. */
export function formatSuccessRate(completed, failed) {
  const finished = (completed ?? 0) + (failed ?? 0);
  return finished === 0 ? '–' : percent.format((completed ?? 0) / finished);
}

/** "Nov 28, 2026, 3:00 PM (in 2 days)"; `fallback` for null. */
export function formatWhen(iso, fallback = 'Never') {
  if (!iso) return fallback;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return fallback;
  return `${dateTime.format(date)} (${relativeTo(date)})`;
}

function relativeTo(date) {
  const seconds = (date.getTime() - Date.now()) / 1000;
  const steps = [
    [60, 'second'],
    [3600, 'minute', 60],
    [86400, 'hour', 3600],
    [Number.POSITIVE_INFINITY, 'day', 86400],
  ];
  for (const [limit, unit, size = 1] of steps) {
    if (Math.abs(seconds) < limit) return relative.format(Math.round(seconds / size), unit);
  }
  return '';
}

/** A UTC day "2026-11-28" as "Nov 28". */
export const formatDay = (date) => shortDate.format(new Date(`${date}T00:00:00Z`));

export const formatTime = (date = new Date()) => time.format(date);

const EVENT_LABELS = {
  app_start: 'App started',
  app_shutdown: 'App stopped',
  job_created: 'Job started',
  job_completed: 'Job completed',
  job_failed: 'Job failed or cancelled',
  file_downloaded: 'File downloaded',
  file_uploaded: 'File uploaded',
  printer_connected: 'Printer connected',
  printer_disconnected: 'Printer disconnected',
  error_occurred: 'Error',
  feature_enabled: 'Feature switched on',
  feature_disabled: 'Feature switched off',
};

export const eventLabel = (type) => EVENT_LABELS[type] ?? type.replaceAll('_', ' ');

const PRINTER_TYPES = { bambu_lab: 'Bambu Lab', prusa: 'Prusa' };
export const printerTypeLabel = (type) => PRINTER_TYPES[type] ?? type;

/** The printer's own state word (RUNNING, PRINTING, FINISH, ...) in plain words; unknown words as they are. */
const STATES = {
  IDLE: 'Idle',
  READY: 'Ready',
  PREPARE: 'Preparing',
  SLICING: 'Preparing',
  RUNNING: 'Printing',
  PRINTING: 'Printing',
  PAUSE: 'Paused',
  PAUSED: 'Paused',
  FINISH: 'Finished',
  FINISHED: 'Finished',
  FAILED: 'Failed',
  STOPPED: 'Stopped',
  ERROR: 'Error',
  ATTENTION: 'Needs attention',
  BUSY: 'Busy',
};

export function stateLabel(state) {
  if (!state) return 'No report yet';
  return STATES[String(state).toUpperCase()] ?? String(state).charAt(0) + String(state).slice(1).toLowerCase();
}

/** A CSS hook for a state: printing, paused, done, failed or idle. */
export function stateKind(state) {
  const s = String(state ?? '').toUpperCase();
  if (['RUNNING', 'PRINTING', 'PREPARE', 'SLICING', 'BUSY'].includes(s)) return 'printing';
  if (['PAUSE', 'PAUSED', 'ATTENTION'].includes(s)) return 'paused';
  if (['FINISH', 'FINISHED'].includes(s)) return 'done';
  if (['FAILED', 'STOPPED', 'ERROR'].includes(s)) return 'failed';
  return 'idle';
}
