// api.js — shared by every view: calls to the workspace API on this origin with one error
// type, and safe DOM construction. Server data only ever becomes text nodes or attribute
// values (never innerHTML), so nothing a project, document or agent contains can run. The
// helpers both web UIs share (shared-api.js: the error type, el(), alerts, busy buttons,
// dates and sizes, written one way on both origins) are re-exported here beside the workspace's own.
import { ApiError, describeApiError, el, errorFields, formatBytes, send } from './shared-api.js';

export {
  ApiError, append, clearAlert, clearFieldErrors, el, fieldErrors, formatBytes, formatDate, setBusy,
  showAlert, timeEl,
} from './shared-api.js';

const FALLBACK_MESSAGES = {
  400: 'The request was not accepted.',
  404: 'Not found.',
  409: 'That conflicts with the current state. Reload and try again.',
  413: 'That is too large, or your storage is full.',
  415: 'That kind of file is not accepted.',
  428: 'The page changed elsewhere: reload it first.',
  503: 'The workspace is temporarily unavailable. Please try again shortly.',
};

function fallbackMessage(status) {
  return FALLBACK_MESSAGES[status]
    ?? (status >= 500 ? 'The workspace ran into a problem. Please try again.' : `Request failed (HTTP ${status}).`);
}

/** `path/to/page.html` → `path/to/page.html` with every segment URL-encoded. */
export function encodePath(path) {
  return String(path).split('/').map(encodeURIComponent).join('/');
}

/** Builds an ApiError from a failed response's status, headers and body text. */
export function errorFrom(status, headers, text) {
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  return new ApiError({
    ...errorFields(status, body, fallbackMessage(status)),
    current: body && typeof body === 'object' && body.current && typeof body.current === 'object' ? body.current : null,
    etag: headers?.get?.('ETag') ?? null,
  });
}

/**
 * Calls the API. Options: method, json (sent as JSON), body (sent as is, e.g. text or
 * FormData), headers, ifMatch, signal. Resolves to `{status, data, etag}` where data is
 * the parsed JSON, the text for other types, or null for an empty body; rejects with an
 * ApiError for any non-2xx answer.
 */
export async function request(path, { method = 'GET', json, body, headers = {}, ifMatch, signal } = {}) {
  const init = {
    method,
    headers: { Accept: 'application/json, text/*;q=0.9', ...headers },
    credentials: 'same-origin',
    cache: 'no-store',
    signal,
  };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  if (ifMatch) init.headers['If-Match'] = ifMatch;

  const response = await send(path, init, 'Could not reach the workspace. Check your connection and try again.');
  const text = response.status === 204 ? '' : await response.text();
  if (!response.ok) throw errorFrom(response.status, response.headers, text);
  const type = response.headers.get('Content-Type') ?? '';
  let data = text;
  if (!text) data = null;
  else if (type.includes('json')) {
    try { data = JSON.parse(text); } catch {
      throw new ApiError({ status: response.status, code: 'invalid_response', message: 'The workspace sent an answer that could not be read.' });
    }
  }
  return { status: response.status, data, etag: response.headers.get('ETag') };
}

/** Like request(), resolving to the data only. */
export async function api(path, options) {
  return (await request(path, options)).data;
}

/** A sentence to show for any error (ApiError or not). */
export function describeError(err) {
  if (!(err instanceof ApiError)) {
    return err?.message ? `Something went wrong: ${err.message}` : 'Something went wrong. Please try again.';
  }
  return describeApiError(err);
}

// ----- DOM -------------------------------------------------------------------------------

/** Removes every child of `node`. */
export function clear(node) {
  node.replaceChildren();
  return node;
}

/** An alert region: errors are announced (role=alert), infos politely (role=status). */
export function alertRegion(id) {
  return el('div', { id, class: 'alert', role: 'alert' });
}

/** A labelled field: `<div class=field><label/>control<p class=hint/></div>`. */
export function field(labelText, control, hintText) {
  const parts = [el('label', { for: control.id, text: labelText }), control];
  if (hintText) {
    const hint = el('p', { class: 'hint', id: `${control.id}-hint`, text: hintText });
    control.setAttribute('aria-describedby', hint.id);
    parts.push(hint);
  }
  return el('div', { class: 'field' }, parts);
}

/** "a, b ,, c" → ["a", "b", "c"] */
export function splitList(text) {
  return String(text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** Shows a short message in the corner for a few seconds (announced politely). */
let toastTimer = null;
export function toast(message) {
  const node = document.getElementById('toast');
  if (!node) return;
  node.textContent = message;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 4000);
}

/**
 * Asks for confirmation in a modal <dialog>; resolves to true when confirmed. The dialog
 * traps focus itself (showModal) and Escape cancels.
 */
export function confirmDialog(message, { confirmLabel = 'Confirm', danger = false, title = 'Are you sure?' } = {}) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
    const cancel = el('button', { type: 'button', text: 'Cancel', value: 'cancel', class: 'dialog-cancel' });
    const confirm = el('button', {
      type: 'submit', text: confirmLabel, value: 'confirm',
      class: danger ? 'danger solid dialog-confirm' : 'primary dialog-confirm',
    });
    const dialog = el('dialog', { 'aria-labelledby': titleId, class: 'confirm-dialog' },
      el('form', { method: 'dialog' },
        el('h2', { id: titleId, text: title }),
        el('p', { text: message }),
        el('div', { class: 'actions' }, cancel, confirm)));
    cancel.addEventListener('click', () => dialog.close('cancel'));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// ----- storage use (the header) -----------------------------------------------------------

/** Refreshes the header's storage meter from GET /api/v1/usage. */
export async function refreshUsage() {
  const text = document.getElementById('usage-text');
  const meter = document.getElementById('usage-meter');
  if (!text || !meter) return;
  try {
    const usage = await api('/api/v1/usage');
    const used = Number(usage.used_bytes) || 0;
    const quota = Number(usage.quota_bytes) || 0;
    text.textContent = quota
      ? `Storage: ${formatBytes(used)} of ${formatBytes(quota)}`
      : `Storage: ${formatBytes(used)}`;
    meter.max = quota || 1;
    meter.low = (quota || 1) * 0.75;
    meter.high = (quota || 1) * 0.9;
    meter.value = Math.min(used, quota || used);
  } catch {
    text.textContent = 'Storage: unknown';
  }
}
