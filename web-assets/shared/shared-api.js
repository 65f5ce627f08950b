// shared-api.js — the helpers both WebSplat web UIs share (the platform's pages and the
// workspace): the API's error type and the reading of its JSON error shape, safe DOM
// construction, a validation error shown beside the field it is about, and sizes and dates
// written one way on both origins. Server data only ever becomes text nodes or attribute values (never
// innerHTML). Each UI's api.js re-exports these beside its own API calls and messages.

/** An error answered by the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor({ status, code, message, field = null, retryAfter = null, requestId = null, current = null, etag = null }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    /** The input the message is about (validation errors), e.g. `name` or `settings.title`. */
    this.field = field;
    /** Whole seconds to wait before retrying (429), or null. */
    this.retryAfter = retryAfter;
    this.requestId = requestId;
    /** For 409 stale edits: what the edit would have overwritten (`{path, etag, content}`). */
    this.current = current;
    /** The current ETag, from the 409's header. */
    this.etag = etag;
  }
}

/**
 * The fields of an ApiError read from a failed answer's body (`{"error": {code, message,
 * field, request_id}}`), each only when it has the right type; `fallback` is the message
 * when the body has none.
 */
export function errorFields(status, body, fallback) {
  const error = body && typeof body === 'object' ? body.error : null;
  return {
    status,
    code: typeof error?.code === 'string' ? error.code : `http_${status}`,
    message: typeof error?.message === 'string' && error.message ? error.message : fallback,
    field: typeof error?.field === 'string' ? error.field : null,
    requestId: typeof error?.request_id === 'string' ? error.request_id : null,
  };
}

/**
 * fetch(), with a network failure turned into an ApiError (status 0) saying `unreachable`;
 * an abort is passed on as it is.
 */
export async function send(path, init, unreachable) {
  try {
    return await fetch(path, init);
  } catch (cause) {
    if (cause?.name === 'AbortError') throw cause;
    throw new ApiError({ status: 0, code: 'network_error', message: unreachable });
  }
}

/** An ApiError's message as a sentence, with the request id when the server failed. */
export function describeApiError(err) {
  let text = /[.!?]$/.test(err.message) ? err.message : `${err.message}.`;
  if (err.status >= 500 && err.requestId) text += ` (Request ID: ${err.requestId})`;
  return text;
}

// ----- DOM -------------------------------------------------------------------------------

/**
 * Builds an element. props: class (string or array), text, dataset, on ({event: fn}),
 * hidden/disabled/checked/selected/required/multiple (booleans), value, anything else an
 * attribute. Children: nodes, strings (as text), arrays, null/false (skipped).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (['hidden', 'disabled', 'checked', 'selected', 'required', 'multiple'].includes(key)) node[key] = Boolean(value);
    else if (key === 'value') node.value = String(value);
    else if (key === 'style' || key.startsWith('on') || key === 'srcdoc') throw new Error(`el(): "${key}" is not allowed (CSP)`);
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

/** Shows a message in an alert region; kind: error | info | success | warning. */
export function showAlert(region, message, kind = 'error', ...extra) {
  region.className = `alert alert-${kind}`;
  region.replaceChildren(String(message));
  append(region, extra);
}

export function clearAlert(region) {
  region.replaceChildren();
  region.className = 'alert';
}

/** Disables a button while work is in flight, optionally with a temporary label. */
export function setBusy(button, busy, label) {
  if (!button) return;
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

/**
 * A size in bytes the one way both UIs write it: binary units, one decimal below 10
 * (1536 → "1.5 KiB", 5242880 → "5.0 MiB", 73400320 → "70 MiB").
 */
export function formatBytes(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** Removes the messages fieldErrors() put in `form`. */
export function clearFieldErrors(form) {
  for (const node of form.querySelectorAll('.field-error')) node.remove();
  for (const node of form.querySelectorAll('[aria-invalid="true"]')) {
    node.removeAttribute('aria-invalid');
    const describedBy = (node.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id && !id.endsWith('-error'));
    if (describedBy.length) node.setAttribute('aria-describedby', describedBy.join(' '));
    else node.removeAttribute('aria-describedby');
  }
}

/**
 * Puts a validation message beside the input it is about (`err.field` of an ApiError, or
 * of a plain {field, message}; mapped through `names`, e.g. {'settings.title': 'title'})
 * and focuses it. Returns whether it found the input.
 */
export function fieldErrors(form, err, names = {}) {
  clearFieldErrors(form);
  if (!err?.field) return false;
  const name = names[err.field] ?? err.field;
  const control = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (!control) return false;
  const target = control.type === 'checkbox' ? (control.closest('fieldset') ?? control) : control;
  const id = `${form.id || 'form'}-${name.replace(/[^a-z0-9_-]/gi, '-')}-error`;
  const message = el('p', { class: 'field-error', id, text: err.message });
  target.setAttribute('aria-invalid', 'true');
  target.setAttribute('aria-describedby', [target.getAttribute('aria-describedby'), id].filter(Boolean).join(' '));
  (target.closest('.field') ?? target).append(message);
  (target.matches('fieldset') ? target.querySelector('input') : target)?.focus();
  return true;
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
