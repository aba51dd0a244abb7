/**
 * The daemon's JSON API, by relative URL only: under Home Assistant ingress the page lives at
 * /api/hassio_ingress/<token>/, and `api/v1/...` resolves below it (the server adds a <base> for that prefix).
 * Every failure becomes an ApiError with a sentence a person can read.
 */

export class ApiError extends Error {
  /**
   * @param {string} message readable, without the HTTP jargon where possible
   * @param {number} status HTTP status, 0 when the service could not be reached
   * @param {string} code the API's error code, or a local one (network, bad_response)
   */
  constructor(message, status, code) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const BASE = 'api/v1/';

function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return trimmed;
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

async function send(method, path, body) {
  /** @type {RequestInit} */
  const init = { method, cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch {
    throw new ApiError('The statistics service cannot be reached. Is the add-on running?', 0, 'network');
  }
  return response;
}

async function errorFrom(response) {
  let code = 'http_error';
  let message = '';
  try {
    const data = await response.json();
    if (data?.error?.message) {
      message = data.error.message;
      code = data.error.code ?? code;
    }
  } catch {
    // Not our JSON (a proxy's HTML error page): fall back to the status line.
  }
  if (!message) {
    message =
      response.status >= 500
        ? `the service answered with an error (HTTP ${response.status})`
        : `the request was refused (HTTP ${response.status})`;
  }
  return new ApiError(sentence(message), response.status, code);
}

async function request(method, path, body) {
  const response = await send(method, path, body);
  if (!response.ok) throw await errorFrom(response);
  try {
    return await response.json();
  } catch {
    throw new ApiError('The service sent an answer that could not be read.', response.status, 'bad_response');
  }
}

function filenameFrom(disposition, fallback) {
  const match = /filename="?([^";]+)"?/i.exec(disposition ?? '');
  return match ? match[1] : fallback;
}

export const api = {
  health: () => request('GET', 'health'),
  local: () => request('GET', 'usage-stats/local'),
  status: () => request('GET', 'usage-stats/status'),
  preview: () => request('GET', 'usage-stats/preview'),
  history: (weeks = 12) => request('GET', `usage-stats/history?weeks=${weeks}`),
  printers: () => request('GET', 'printers'),
  optIn: () => request('POST', 'usage-stats/opt-in'),
  optOut: (deleteRemote) => request('POST', 'usage-stats/opt-out', deleteRemote ? { delete_remote: true } : undefined),
  submit: () => request('POST', 'usage-stats/submit'),
  deleteAll: () => request('DELETE', 'usage-stats'),

  /** The export attachment as a Blob and its file name (fetched, so a failure shows a message instead of a bad file). */
  async exportFile() {
    const response = await send('GET', 'usage-stats/export');
    if (!response.ok) throw await errorFrom(response);
    const blob = await response.blob();
    return {
      blob,
      filename: filenameFrom(response.headers.get('Content-Disposition'), 'usage-statistics-export.json'),
    };
  },
};
