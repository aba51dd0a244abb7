/**
 * Readable messages. Two kinds:
 * - problems: a part of the page could not load (the service is down, an endpoint failed). They are grouped in one
 *   banner at the top ("Could not load the statistics and the printers: <reason>") and leave by themselves as soon as
 *   that part loads again, so a refresh loop that keeps failing never piles up messages.
 * - toasts: the outcome of something the user did (opt in, submit, export, delete); confirmations fade, errors stay
 *   until dismissed.
 */

const container = () => document.getElementById('messages');
const byKey = new Map();

/** @type {Map<string, {what: string, reason: string}>} in the order they appeared */
const problems = new Map();

/** A part of the page (`key`, described as `what`, e.g. "the printers") failed to load. */
export function showProblem(key, what, error) {
  const reason = error instanceof Error ? error.message : String(error);
  const previous = problems.get(key);
  if (previous && previous.reason === reason) return;
  problems.set(key, { what, reason });
  renderProblems();
}

/** That part loaded again. */
export function clearProblem(key) {
  if (problems.delete(key)) renderProblems();
}

function listOf(items) {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

function renderProblems() {
  const banner = document.getElementById('problems');
  const text = document.getElementById('problems-text');
  if (problems.size === 0) {
    banner.hidden = true;
    text.replaceChildren();
    return;
  }
  const byReason = new Map();
  for (const { what, reason } of problems.values()) {
    if (!byReason.has(reason)) byReason.set(reason, []);
    byReason.get(reason).push(what);
  }
  text.replaceChildren(
    ...[...byReason].map(([reason, whats]) => {
      const line = document.createElement('p');
      // When (nearly) everything fails, the list says less than the fact.
      line.textContent =
        whats.length >= 4
          ? `The page could not load its data: ${reason}`
          : `Could not load ${listOf(whats)}: ${reason}`;
      return line;
    }),
  );
  banner.hidden = false;
}

/**
 * @param {string} text
 * @param {{kind?: 'error' | 'success' | 'info', key?: string}} [options]
 */
export function showMessage(text, { kind = 'info', key } = {}) {
  if (key && byKey.has(key)) {
    const existing = byKey.get(key);
    if (existing.querySelector('.message-text').textContent === text) return existing;
    existing.remove();
    byKey.delete(key);
  }
  const item = document.createElement('div');
  item.className = `message message-${kind}`;
  // Errors interrupt (alert); confirmations are announced politely by the live container.
  if (kind === 'error') item.setAttribute('role', 'alert');
  const icon = document.createElement('span');
  icon.className = 'message-icon';
  icon.setAttribute('aria-hidden', 'true');
  icon.textContent = kind === 'error' ? '!' : kind === 'success' ? '✓' : 'i';
  const body = document.createElement('p');
  body.className = 'message-text';
  body.textContent = text;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'message-close';
  close.setAttribute('aria-label', 'Dismiss message');
  close.textContent = '×';
  close.addEventListener('click', () => dismiss(item, key));
  item.append(icon, body, close);
  container().append(item);
  if (key) byKey.set(key, item);
  if (kind !== 'error') setTimeout(() => dismiss(item, key), 6000);
  return item;
}

/** Removes the message a source left, once that source works again. */
export function clearMessage(key) {
  const item = byKey.get(key);
  if (item) dismiss(item, key);
}

function dismiss(item, key) {
  item.remove();
  if (key && byKey.get(key) === item) byKey.delete(key);
}

/** "Could not load the printers: The statistics service cannot be reached." */
export function showError(what, error, key) {
  const reason = error instanceof Error ? error.message : String(error);
  return showMessage(`${what}: ${reason}`, { kind: 'error', key });
}
