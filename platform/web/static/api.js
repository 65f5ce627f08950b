// api.js — shared helpers for the WebSplat Platform pages: same-origin JSON API calls with
// one error type, date formatting, and safe DOM construction (text only, never innerHTML).

/** An error answered by the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor({ status, code, message, retryAfter = null, requestId = null }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.requestId = requestId;
  }
}

const FALLBACK_MESSAGES = {
  400: 'The request was not accepted.',
  401: 'You are not signed in.',
  403: 'You are not allowed to do that.',
  404: 'Not found.',
  409: 'That conflicts with the current state. Reload and try again.',
  429: 'Too many requests.',
  503: 'The service is temporarily unavailable. Please try again shortly.',
};

function fallbackMessage(status) {
  return FALLBACK_MESSAGES[status]
    ?? (status >= 500 ? 'The server ran into a problem. Please try again.' : `Request failed (HTTP ${status}).`);
}

/** Retry-After is either delay-seconds or an HTTP date; returns whole seconds or null. */
function parseRetryAfter(value) {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

/**
 * Calls the JSON API on this origin.
 * Resolves to the parsed JSON body (null for an empty body such as 204),
 * or rejects with an ApiError carrying status, code, message and retryAfter.
 */
export async function apiFetch(path, { method = 'GET', body, csrf, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (csrf) headers['X-CSRF-Token'] = csrf;

  let response;
  try {
    response = await fetch(path, init);
  } catch (cause) {
    if (cause?.name === 'AbortError') throw cause;
    throw new ApiError({
      status: 0,
      code: 'network_error',
      message: 'Could not reach the server. Check your connection and try again.',
    });
  }

  const text = response.status === 204 ? '' : await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = undefined; }
  }

  if (!response.ok) {
    const error = data && typeof data === 'object' ? data.error : null;
    throw new ApiError({
      status: response.status,
      code: typeof error?.code === 'string' ? error.code : `http_${response.status}`,
      message: typeof error?.message === 'string' && error.message ? error.message : fallbackMessage(response.status),
      retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
      requestId: typeof error?.request_id === 'string' ? error.request_id : null,
    });
  }
  if (data === undefined) {
    throw new ApiError({
      status: response.status,
      code: 'invalid_response',
      message: 'The server sent a response that could not be read.',
    });
  }
  return data;
}

/** A sentence to show the user for any error thrown by apiFetch (or anything else). */
export function describeError(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
  let text = /[.!?]$/.test(err.message) ? err.message : `${err.message}.`;
  if (err.status === 429) {
    const s = err.retryAfter;
    text += s != null && s > 0
      ? ` Please retry in ${s} second${s === 1 ? '' : 's'}.`
      : ' Please wait a moment and retry.';
  }
  if (err.status >= 500 && err.requestId) text += ` (Request ID: ${err.requestId})`;
  return text;
}

/**
 * The path to go to after signing in: only a same-origin absolute path ("/x", not "//x"
 * nor "/\x"), never the login page itself; anything else becomes the fallback.
 */
export function safeReturnTo(raw, fallback = '/dashboard') {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//')) return fallback;
  // Backslashes and control characters let browsers reinterpret "/\evil" as "//evil".
  if (/[\\\u0000-\u001f\u007f]/.test(raw)) return fallback;
  let url;
  try { url = new URL(raw, location.origin); } catch { return fallback; }
  if (url.origin !== location.origin || url.pathname === '/login') return fallback;
  return url.pathname + url.search + url.hash;
}

const dateOptions = { dateStyle: 'medium', timeStyle: 'short' };

/** A localised date and time for an RFC 3339 string, or `empty` when there is none. */
export function formatDate(value, empty = '—') {
  if (!value) return empty;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString(undefined, dateOptions);
}

/** A <time> element for an RFC 3339 string, or a muted placeholder when there is none. */
export function timeEl(value, empty = '—') {
  if (!value) return el('span', { class: 'muted', text: empty });
  return el('time', { datetime: value, title: value, text: formatDate(value, empty) });
}

/**
 * Builds an element. props: class (string or array), text, dataset, on ({event: fn}),
 * hidden/disabled/checked (booleans), anything else becomes an attribute.
 * Children may be nodes, strings (added as text), arrays, or null/false (skipped).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (key === 'hidden' || key === 'disabled' || key === 'checked') node[key] = Boolean(value);
    else if (key === 'style' || key.startsWith('on')) throw new Error(`el(): "${key}" is not allowed (CSP)`);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** Appends nodes / strings (as text) / nested arrays to a parent, skipping null and false. */
export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child == null || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

/** Shows a message in an alert region (role="alert"); kind: error | info | success. */
export function showAlert(region, message, kind = 'error') {
  region.className = `alert alert-${kind}`;
  region.textContent = message;
}

export function clearAlert(region) {
  region.textContent = '';
  region.className = 'alert';
}

/** Disables a button while work is in flight, optionally with a temporary label. */
export function setBusy(button, busy, label) {
  if (busy) {
    button.dataset.label ??= button.textContent;
    if (label) button.textContent = label;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
  } else {
    if (button.dataset.label !== undefined) {
      button.textContent = button.dataset.label;
      delete button.dataset.label;
    }
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
