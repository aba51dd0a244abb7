/**
 * The ingress page: privacy choice, local statistics, live printers, the submission preview and status, export and
 * delete. Everything talks to the daemon by relative URL (see js/api.js); every failure becomes a readable message.
 */
import { api } from './js/api.js';
import { CaptureControls } from './js/captures.js';
import { JobsChart } from './js/charts.js';
import { eventLabel, formatHours, formatInteger, formatSuccessRate, formatTime, formatWhen } from './js/format.js';
import { clearProblem, showError, showMessage, showProblem } from './js/messages.js';
import { PrinterList } from './js/printers.js';

const PRINTERS_EVERY_MS = 3000;
const STATUS_EVERY_MS = 10_000;
const STATS_EVERY_MS = 20_000;

const $ = (id) => document.getElementById(id);

/** Loading placeholders of a section that has never loaded say so instead of spinning forever. */
function unavailable(sectionId) {
  for (const placeholder of $(sectionId).querySelectorAll('.placeholder')) {
    placeholder.textContent = 'Not available right now.';
  }
}

const view = {
  local: null,
  status: null,
  history: null,
};

const chart = new JobsChart($('jobs-chart'), $('history-table').tBodies[0], $('chart-summary'));
const captures = new CaptureControls();
const printers = new PrinterList($('printer-list'), $('printer-announcer'), (item, printer) =>
  captures.render(item, printer),
);

// --- service status ------------------------------------------------------------------------------------------------

async function loadHealth() {
  const indicator = $('service-status');
  try {
    const health = await api.health();
    indicator.dataset.state = 'ok';
    indicator.querySelector('.label').textContent = `Service running · v${health.version}`;
    $('footer-version').textContent = `printernizer-stats ${health.version}`;
    clearProblem('health');
  } catch (error) {
    indicator.dataset.state = 'down';
    indicator.querySelector('.label').textContent = 'Service unreachable';
    showProblem('health', 'the service health', error);
  }
}

// --- privacy choice and submission status -------------------------------------------------------------------------

async function loadStatus() {
  try {
    view.status = await api.status();
    renderStatus();
    clearProblem('status');
  } catch (error) {
    showProblem('status', 'the submission status', error);
    if (!view.status) $('optin-effect').textContent = 'Your current choice could not be loaded.';
  }
}

function renderStatus() {
  const status = view.status;
  const optedIn = status.opted_in;
  const toggle = $('optin-switch');
  toggle.disabled = false;
  toggle.setAttribute('aria-checked', String(optedIn));
  toggle.querySelector('.switch-text').textContent = optedIn ? 'On' : 'Off';
  $('optin-effect').textContent = optedIn
    ? 'On: an anonymous weekly summary (exactly what “What would be sent” shows) is submitted. Switching off stops ' +
      'submission at once; your local statistics stay until you delete them.'
    : 'Off: nothing leaves this device. Switching on creates a random installation id and allows one anonymous ' +
      'summary per week to be submitted; you can switch off at any time.';
  $('dnt-note').hidden = !status.do_not_track;

  $('sub-sharing').textContent = optedIn
    ? status.do_not_track
      ? 'On, but DO_NOT_TRACK blocks submission'
      : 'On'
    : 'Off';
  $('sub-last').textContent = formatWhen(status.last_submission);
  $('sub-next').textContent = optedIn
    ? formatWhen(status.next_submission, status.collection_active ? 'Not scheduled' : 'None while DO_NOT_TRACK is set')
    : 'None while sharing is off';
  $('sub-pending').textContent = formatInteger(status.pending_events);
  const lastError = $('sub-error');
  lastError.textContent = status.last_error ?? 'None';
  lastError.classList.toggle('error-text', Boolean(status.last_error));
  $('submit-now').hidden = !optedIn;
  $('submit-hint').hidden = optedIn;
}

function renderInstallation() {
  const local = view.local;
  const show = Boolean(local && local.opt_in_status === 'enabled' && local.installation_id);
  $('installation').hidden = !show;
  $('installation-id').textContent = show ? local.installation_id : '';
}

async function toggleOptIn() {
  const toggle = $('optin-switch');
  if (toggle.getAttribute('aria-checked') === 'true') {
    $('delete-remote').checked = false;
    openDialog($('optout-dialog'));
    return;
  }
  toggle.disabled = true;
  try {
    const result = await api.optIn();
    showMessage(result.message, { kind: 'success' });
  } catch (error) {
    showError('Could not switch sharing on', error);
  } finally {
    toggle.disabled = false;
    await refreshAll();
  }
}

async function optOut() {
  const toggle = $('optin-switch');
  toggle.disabled = true;
  try {
    const result = await api.optOut($('delete-remote').checked);
    showMessage(result.message, { kind: 'success' });
  } catch (error) {
    showError('Could not switch sharing off completely', error);
  } finally {
    toggle.disabled = false;
    // Even a failed remote deletion has already stopped sharing: show what is true now.
    await refreshAll();
  }
}

// --- local statistics ------------------------------------------------------------------------------------------------

async function loadStats() {
  try {
    const [local, history] = await Promise.all([api.local(), api.history(12)]);
    view.local = local;
    view.history = history;
    renderStats();
    renderInstallation();
    chart.update(history.days);
    $('stats-updated').textContent = `${formatInteger(local.total_events)} events stored · updated ${formatTime()}`;
    clearProblem('stats');
  } catch (error) {
    showProblem('stats', 'the statistics', error);
    if (!view.local) {
      unavailable('stats');
      $('chart-summary').textContent = 'Not available right now.';
    }
  }
}

function renderStats() {
  const { local, history } = view;
  const week = local.this_week;
  const all = local.events_by_type;
  const n = (type) => all[type] ?? 0;
  const tiles = [
    ['jobs_created', 'Jobs started', formatInteger(week.job_count), formatInteger(n('job_created'))],
    ['jobs_completed', 'Completed', formatInteger(week.job_completed_count), formatInteger(n('job_completed'))],
    ['jobs_failed', 'Failed or cancelled', formatInteger(week.job_failed_count), formatInteger(n('job_failed'))],
    [
      'success_rate',
      'Success rate',
      formatSuccessRate(week.job_completed_count, week.job_failed_count),
      formatSuccessRate(n('job_completed'), n('job_failed')),
    ],
    ['print_hours', 'Print hours', formatHours(history.print_hours.this_week), formatHours(history.print_hours.total)],
    ['files', 'Files', formatInteger(week.file_count), formatInteger(n('file_uploaded') + n('file_downloaded'))],
    ['errors', 'Errors', formatInteger(week.error_count), formatInteger(n('error_occurred'))],
  ];
  $('tiles').replaceChildren(
    ...tiles.map(([metric, label, weekValue, total]) => {
      const tile = document.createElement('div');
      tile.className = 'tile';
      tile.dataset.metric = metric;
      const name = document.createElement('span');
      name.className = 'tile-label';
      name.textContent = label;
      const value = document.createElement('span');
      value.className = 'tile-value';
      value.textContent = weekValue;
      value.setAttribute('aria-label', `${weekValue} in the last 7 days`);
      const sum = document.createElement('span');
      sum.className = 'tile-total';
      // A rate with nothing finished has no value to name.
      sum.textContent = total === '–' ? 'no finished jobs' : `${total} in total`;
      tile.append(name, value, sum);
      return tile;
    }),
  );
  renderEventsByType(all);
}

function renderEventsByType(byType) {
  const entries = Object.entries(byType)
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1]);
  const list = $('events-by-type');
  if (entries.length === 0) {
    const empty = document.createElement('li');
    empty.className = 'empty';
    empty.textContent = 'No events stored.';
    list.replaceChildren(empty);
    return;
  }
  const max = entries[0][1];
  list.replaceChildren(
    ...entries.map(([type, count]) => {
      const item = document.createElement('li');
      item.dataset.eventType = type;
      const label = document.createElement('span');
      label.className = 'bar-label';
      label.textContent = eventLabel(type);
      const track = document.createElement('span');
      track.className = 'bar-track';
      track.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.className = 'bar-fill';
      fill.style.width = `${Math.max(2, (count / max) * 100)}%`;
      track.append(fill);
      const value = document.createElement('span');
      value.className = 'bar-value';
      value.textContent = formatInteger(count);
      item.append(label, track, value);
      return item;
    }),
  );
}

// --- printers --------------------------------------------------------------------------------------------------------

async function loadPrinters() {
  try {
    const { printers: list } = await api.printers();
    printers.update(list);
    $('printers-updated').textContent = `Updated ${formatTime()}`;
    clearProblem('printers');
  } catch (error) {
    showProblem('printers', 'the printers', error);
    unavailable('printers');
  }
}

// --- preview ---------------------------------------------------------------------------------------------------------

async function loadPreview() {
  const pre = $('preview-json');
  try {
    const payload = await api.preview();
    pre.textContent = JSON.stringify(payload, null, 2);
    clearProblem('preview');
  } catch (error) {
    if (pre.textContent === 'Loading…') pre.textContent = 'The preview could not be loaded.';
    showProblem('preview', 'the preview', error);
  }
}

// --- actions -----------------------------------------------------------------------------------------------------------

async function submitNow() {
  const button = $('submit-now');
  button.disabled = true;
  button.textContent = 'Submitting…';
  try {
    const result = await api.submit();
    showMessage(result.message || 'Submitted.', { kind: 'success' });
  } catch (error) {
    showError('The submission did not go through', error);
  } finally {
    button.disabled = false;
    button.textContent = 'Submit now';
    await Promise.all([loadStatus(), loadPreview()]);
  }
}

async function exportData() {
  const button = $('export');
  button.disabled = true;
  try {
    const { blob, filename } = await api.exportFile();
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    showMessage(`Export saved as ${filename}.`, { kind: 'success' });
  } catch (error) {
    showError('Could not export the data', error);
  } finally {
    button.disabled = false;
  }
}

async function askDelete() {
  try {
    const status = await api.status();
    const count = status.total_events;
    $('delete-text').textContent =
      `This permanently deletes all ${formatInteger(count)} usage event${count === 1 ? '' : 's'} stored on this ` +
      'device. Your sharing choice and installation id are kept.';
    $('delete-confirm').textContent = `Delete ${formatInteger(count)} event${count === 1 ? '' : 's'}`;
    openDialog($('delete-dialog'));
  } catch (error) {
    showError('Could not prepare the deletion', error);
  }
}

async function deleteData() {
  try {
    const result = await api.deleteAll();
    showMessage(result.message, { kind: 'success' });
  } catch (error) {
    showError('Could not delete the data', error);
  } finally {
    await refreshAll();
  }
}

/** Escape closes a dialog without touching returnValue, so clear what the last close left. */
function openDialog(dialog) {
  dialog.returnValue = '';
  dialog.showModal();
}

// --- wiring ----------------------------------------------------------------------------------------------------------

function refreshAll() {
  return Promise.all([loadHealth(), loadStatus(), loadStats(), loadPreview(), loadPrinters()]);
}

/**
 * Runs `task` every `ms` after the previous run finished, so a slow answer never piles up requests; skipped while the
 * page is not visible (Home Assistant keeps panels loaded in the background).
 */
function every(ms, task) {
  const run = async () => {
    if (!document.hidden) await task();
    setTimeout(run, ms);
  };
  setTimeout(run, ms);
}

$('optin-switch').addEventListener('click', toggleOptIn);
$('optout-dialog').addEventListener('close', () => {
  if ($('optout-dialog').returnValue === 'confirm') optOut();
});
$('delete').addEventListener('click', askDelete);
$('delete-dialog').addEventListener('close', () => {
  if ($('delete-dialog').returnValue === 'confirm') deleteData();
});
$('submit-now').addEventListener('click', submitNow);
$('export').addEventListener('click', exportData);
$('preview-refresh').addEventListener('click', loadPreview);
$('problems-retry').addEventListener('click', async () => {
  const retry = $('problems-retry');
  retry.disabled = true;
  await refreshAll();
  retry.disabled = false;
});

// Anything unexpected still ends up as a message, never as a silently broken page.
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  showError('Something went wrong', event.reason);
});

document.documentElement.dataset.ready = 'loading';
await refreshAll();
document.documentElement.dataset.ready = 'true';
every(PRINTERS_EVERY_MS, loadPrinters);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) loadPrinters();
});
every(STATUS_EVERY_MS, () => Promise.all([loadHealth(), loadStatus()]));
every(STATS_EVERY_MS, loadStats);
