// api.js — helpers for the WebSplat Platform pages: same-origin JSON API calls with one
// error type, and the helpers both web UIs share (shared-api.js: the error type, date
// formatting, safe DOM construction — text only, never innerHTML), re-exported here.
import { ApiError, describeApiError, errorFields, send } from './shared-api.js';

export {
  ApiError, append, clearAlert, clearFieldErrors, el, fieldErrors, formatBytes, formatDate, setBusy,
  showAlert, timeEl,
} from './shared-api.js';

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

  const response = await send(path, init, 'Could not reach the server. Check your connection and try again.');

  const text = response.status === 204 ? '' : await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = undefined; }
  }

  if (!response.ok) {
    throw new ApiError({
      ...errorFields(response.status, data, fallbackMessage(response.status)),
      retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
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
  let text = describeApiError(err);
  if (err.status === 429) {
    const s = err.retryAfter;
    text += s != null && s > 0
      ? ` Please retry in ${s} second${s === 1 ? '' : 's'}.`
      : ' Please wait a moment and retry.';
  }
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
