/**
 * Live printers: one list item per printer, updated in place (no flicker, focus kept); state changes are announced
 * through a polite live region, progress ticks are not (they would talk every few seconds).
 */
import { printerTypeLabel, stateKind, stateLabel } from './format.js';

export class PrinterList {
  /**
   * @param {HTMLUListElement} list
   * @param {HTMLElement} announcer
   * @param {(item: HTMLLIElement, printer: object) => void} [decorate] adds to each card after it is filled (captures)
   */
  constructor(list, announcer, decorate) {
    this.list = list;
    this.announcer = announcer;
    this.decorate = decorate;
    /** @type {Map<string, {item: HTMLLIElement, said: string}>} */
    this.items = new Map();
    this.rendered = false;
  }

  /** @param {{id: string, name: string, type: string, model: string, online: boolean, state: string|null, progress: number|null, remaining_minutes: number|null, problem: string|null, rejected?: boolean}[]} printers */
  update(printers) {
    if (printers.length === 0) {
      this.items.clear();
      const empty = document.createElement('li');
      empty.className = 'empty';
      empty.textContent = 'No printers configured. Add them in the add-on configuration.';
      this.list.replaceChildren(empty);
      this.rendered = true;
      return;
    }
    const seen = new Set();
    const changes = [];
    for (const printer of printers) {
      seen.add(printer.id);
      let entry = this.items.get(printer.id);
      if (!entry) {
        entry = { item: this.create(printer.id), said: '' };
        this.items.set(printer.id, entry);
      }
      const said = this.fill(entry.item, printer);
      this.decorate?.(entry.item, printer);
      if (this.rendered && entry.said && said !== entry.said) changes.push(`${printer.name}: ${said}`);
      entry.said = said;
    }
    for (const [id, entry] of this.items) {
      if (!seen.has(id)) {
        entry.item.remove();
        this.items.delete(id);
      }
    }
    // Keep the API's order; re-append only when it differs (appending moves nodes, which would lose focus).
    const wanted = printers.map((p) => this.items.get(p.id).item);
    if (
      wanted.some((item, index) => this.list.children[index] !== item) ||
      this.list.children.length !== wanted.length
    ) {
      this.list.replaceChildren(...wanted);
    }
    if (changes.length) this.announcer.textContent = changes.join('. ');
    this.rendered = true;
  }

  create(id) {
    const item = document.createElement('li');
    item.className = 'printer';
    item.dataset.printerId = id;
    item.innerHTML = `
      <div class="printer-head">
        <h3 class="printer-name"></h3>
        <span class="badge printer-online"></span>
      </div>
      <p class="printer-model muted small"></p>
      <p class="printer-state"><span class="state-dot" aria-hidden="true"></span><span class="state-text"></span></p>
      <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100">
        <div class="progress-bar"></div>
      </div>
      <p class="printer-progress small"></p>
      <p class="printer-problem small" hidden></p>`;
    return item;
  }

  /** Fills one item; returns what a screen reader should hear when it changes (online and state). */
  fill(item, printer) {
    if (printer.rejected) return this.fillRejected(item, printer);
    const q = (selector) => item.querySelector(selector);
    delete item.dataset.rejected;
    q('.printer-name').textContent = printer.name;
    q('.printer-model').textContent = `${printerTypeLabel(printer.type)} ${printer.model}`;
    const online = q('.printer-online');
    online.textContent = printer.online ? 'Online' : 'Offline';
    online.dataset.online = String(printer.online);
    const state = printer.online ? stateLabel(printer.state) : 'Not connected';
    q('.state-text').textContent = state;
    item.dataset.state = printer.online ? stateKind(printer.state) : 'offline';

    const progress = typeof printer.progress === 'number' ? Math.max(0, Math.min(100, printer.progress)) : null;
    const active = progress !== null && printer.online && stateKind(printer.state) !== 'idle';
    const bar = q('.progress');
    bar.hidden = !active;
    bar.setAttribute('aria-label', `Progress of ${printer.name}`);
    bar.setAttribute('aria-valuenow', String(progress ?? 0));
    q('.progress-bar').style.width = `${progress ?? 0}%`;
    const remaining =
      typeof printer.remaining_minutes === 'number' && printer.remaining_minutes > 0
        ? ` · ${formatRemaining(printer.remaining_minutes)} left`
        : '';
    const text = q('.printer-progress');
    text.hidden = !active;
    text.textContent = active ? `${Math.round(progress)}%${remaining}` : '';

    const problem = q('.printer-problem');
    problem.hidden = !printer.problem;
    problem.textContent = printer.problem ?? '';
    return `${printer.online ? 'online' : 'offline'}, ${state}`;
  }

  /**
   * A printer the daemon left out because of its configuration (issue 13): the reason and where to fix it, instead
   * of a printer that looks merely offline.
   */
  fillRejected(item, printer) {
    const q = (selector) => item.querySelector(selector);
    item.dataset.rejected = 'true';
    item.dataset.state = 'rejected';
    q('.printer-name').textContent = printer.name;
    q('.printer-model').textContent = printer.type ? printerTypeLabel(printer.type) : 'Unknown type';
    const badge = q('.printer-online');
    badge.textContent = 'Not started';
    badge.dataset.online = 'false';
    q('.state-text').textContent = 'Configuration problem';
    q('.progress').hidden = true;
    const text = q('.printer-progress');
    text.hidden = false;
    text.textContent = "Fix it on the add-on's Configuration tab (or in options.json), then restart.";
    const problem = q('.printer-problem');
    problem.hidden = false;
    // The badge already says it.
    problem.textContent = (printer.problem ?? '').replace(/^Not started: /, '');
    return 'not started, configuration problem';
  }
}

function formatRemaining(minutes) {
  if (minutes < 60) return `${Math.round(minutes)} min`;
  const h = Math.floor(minutes / 60);
  const m = Math.round(minutes % 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}
