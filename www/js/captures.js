/**
 * "Record a diagnostic capture" on each printer card (issue 16): starts a 10-minute capture of that printer in the
 * daemon, counts down while it records (also one started from the command line), and offers the file when it is
 * done. The daemon redacts what it writes; the card says in one sentence what is removed.
 */
import { showError, showMessage } from './messages.js';

const DEFAULT_MINUTES = 10;
/** The status is asked again this often while recording; the countdown ticks every second in between. */
const REFRESH_EVERY_MS = 5000;

export const REMOVED_SENTENCE =
  'Serials, access codes, passwords, API keys, host names, IP and MAC addresses, user names, e-mail addresses, URLs ' +
  'and file and job names are replaced before anything is saved.';

function sentence(text) {
  const trimmed = String(text).trim();
  const first = trimmed ? trimmed[0].toUpperCase() + trimmed.slice(1) : trimmed;
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

async function request(method, id, suffix = '', body) {
  const init = { method, cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`api/v1/printers/${encodeURIComponent(id)}/capture${suffix}`, init);
  } catch {
    throw new Error('The statistics service cannot be reached. Is the add-on running?');
  }
  if (!response.ok) {
    let message = `The service answered with HTTP ${response.status}.`;
    try {
      const data = await response.json();
      if (data?.error?.message) message = sentence(data.error.message);
    } catch {
      // Not our JSON: the status line is all there is.
    }
    throw new Error(message);
  }
  return response;
}

function formatCountdown(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export class CaptureControls {
  constructor() {
    /** @type {Map<string, {block: HTMLElement, name: string, capture: object|null, fetchedAt: number, timer: number|null, refreshAt: number}>} */
    this.cards = new Map();
  }

  /** Called for each printer card on every refresh of the list. */
  render(item, printer) {
    let card = this.cards.get(printer.id);
    if (printer.rejected) {
      card?.block.remove();
      this.stopTicking(card);
      this.cards.delete(printer.id);
      return;
    }
    if (!card || !item.contains(card.block)) {
      this.stopTicking(card);
      card = {
        block: this.create(printer.id),
        name: printer.name,
        capture: null,
        fetchedAt: 0,
        timer: null,
        refreshAt: 0,
      };
      item.append(card.block);
      this.cards.set(printer.id, card);
      this.refresh(printer.id);
    }
    card.name = printer.name;
    card.block
      .querySelector('.capture-start')
      .setAttribute('aria-label', `Record a diagnostic capture of ${printer.name}`);
  }

  create(id) {
    const block = document.createElement('div');
    block.className = 'capture';
    block.dataset.captureState = 'idle';
    block.innerHTML = `
      <div class="capture-actions">
        <button type="button" class="button capture-start">Record a diagnostic capture</button>
        <button type="button" class="button capture-stop" hidden>Stop recording</button>
        <button type="button" class="button primary capture-download" hidden>Download capture</button>
      </div>
      <p class="capture-status small" hidden></p>
      <p class="capture-note small"></p>`;
    block.querySelector('.capture-note').textContent =
      `For a bug report: records ${DEFAULT_MINUTES} minutes of what this printer sends. ${REMOVED_SENTENCE}`;
    block.querySelector('.capture-start').addEventListener('click', () => this.start(id));
    block.querySelector('.capture-stop').addEventListener('click', () => this.stop(id));
    block.querySelector('.capture-download').addEventListener('click', () => this.download(id));
    return block;
  }

  async refresh(id) {
    try {
      const response = await request('GET', id);
      this.apply(id, (await response.json()).capture);
    } catch {
      // The printer list shows when the service is unreachable; the card keeps what it showed.
    }
  }

  async start(id) {
    const card = this.cards.get(id);
    if (!card) return;
    const button = card.block.querySelector('.capture-start');
    button.disabled = true;
    try {
      const response = await request('POST', id, '', { minutes: DEFAULT_MINUTES });
      this.apply(id, (await response.json()).capture);
      showMessage(`Recording a diagnostic capture of ${card.name} for ${DEFAULT_MINUTES} minutes.`, {
        kind: 'success',
      });
    } catch (error) {
      showError(`Could not start a capture of ${card.name}`, error);
    } finally {
      button.disabled = false;
    }
  }

  async stop(id) {
    const card = this.cards.get(id);
    if (!card) return;
    try {
      const response = await request('DELETE', id);
      this.apply(id, (await response.json()).capture);
    } catch (error) {
      showError(`Could not stop the capture of ${card.name}`, error);
    }
  }

  async download(id) {
    const card = this.cards.get(id);
    if (!card) return;
    try {
      const response = await request('GET', id, '/download');
      const blob = await response.blob();
      const match = /filename="?([^";]+)"?/i.exec(response.headers.get('Content-Disposition') ?? '');
      const filename = match ? match[1] : 'printernizer-capture.jsonl';
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = filename;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      showMessage(`Capture saved as ${filename}.`, { kind: 'success' });
    } catch (error) {
      showError(`Could not download the capture of ${card.name}`, error);
    }
  }

  /** Shows a capture status from the API (null: none yet). */
  apply(id, capture) {
    const card = this.cards.get(id);
    if (!card) return;
    card.capture = capture;
    card.fetchedAt = Date.now();
    card.refreshAt = card.fetchedAt + REFRESH_EVERY_MS;
    const q = (selector) => card.block.querySelector(selector);
    const state = capture?.state ?? 'idle';
    card.block.dataset.captureState = state;
    const recording = state === 'recording';
    q('.capture-start').hidden = recording;
    q('.capture-stop').hidden = !recording;
    q('.capture-download').hidden = recording || !capture?.download_ready;
    const status = q('.capture-status');
    status.hidden = capture === null;
    if (recording) {
      this.tick(card);
      if (card.timer === null) card.timer = setInterval(() => this.tick(card, id), 1000);
      return;
    }
    this.stopTicking(card);
    if (state === 'done') {
      status.textContent = `Capture ready: ${capture.lines} lines, ${capture.events} events recorded meanwhile.`;
    } else if (state === 'failed') {
      status.textContent = sentence(capture.message ?? 'The capture stopped early');
    }
  }

  tick(card, id) {
    const capture = card.capture;
    if (!capture) return;
    const left = capture.remaining_seconds - (Date.now() - card.fetchedAt) / 1000;
    card.block.querySelector('.capture-status').textContent =
      `Recording: ${formatCountdown(left)} left (${capture.lines} lines so far).`;
    if (id !== undefined && (Date.now() >= card.refreshAt || left <= 0)) {
      card.refreshAt = Date.now() + REFRESH_EVERY_MS;
      this.refresh(id);
    }
  }

  stopTicking(card) {
    if (card && card.timer !== null) {
      clearInterval(card.timer);
      card.timer = null;
    }
  }
}
