/**
 * Readable messages at the top of the page. Errors stay until dismissed or until the same source works again (a
 * `key` per source, so a refresh loop that keeps failing shows one message, not a pile); confirmations fade.
 */

const container = () => document.getElementById('messages');
const byKey = new Map();

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
