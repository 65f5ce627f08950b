// admin-common.js — what every section of the admin console shares: the page's state (the
// signed-in user, their capabilities, the lists loaded so far), the capability check, the
// formatting of numbers, and `sections`, through which one section asks another to reload
// or redraw (each section's module registers its own functions there), so no section
// imports another. Text from the API is always set as text (api.js's el()).
import { ApiError, describeError, el, showAlert } from './api.js';

/** Roles offered when the user may grant roles but not list them. */
const BUILTIN_ROLES = ['admin', 'operator', 'auditor'];
export const MEMBER = 'member';
export const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;

export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;
export const numberFormat = new Intl.NumberFormat();

export const state = {
  me: null,
  csrf: '',
  caps: new Set(),
  roles: null, // RoleInfo[] once loaded (roles.read)
  levels: null, // AccessLevelSummary[] once loaded (access_levels.read)
  defaultLevel: '',
  users: { query: {}, page: 1, total: 0, list: [], loaded: false },
  audit: { filter: {}, before: null, previous: [], next: null },
  editingRole: null,
  editingLevel: null,
};

/**
 * One section's functions that another calls: loadFleet (fleet), loadUsers, renderUsers,
 * renderLevelFilter (users), loadRoles (roles), loadLevels (access levels).
 */
export const sections = {};

export const can = (capability) => state.caps.has(capability);

/** To the sign-in page, coming back to this page of the console after. */
export function goToLogin() {
  location.replace(`/login?return_to=${encodeURIComponent(location.pathname)}`);
}

/** A lapsed session sends the user back to sign in; anything else is shown in `region`. */
export function reportError(err, region) {
  if (err instanceof ApiError && err.status === 401) {
    goToLogin();
    return;
  }
  showAlert(region, describeError(err));
}

/** Says `message` in a section's status line (a polite live region). */
export function announce(region, message) {
  region.textContent = message;
}

/** Roles that can be granted: every role but member (which everyone is). */
export function grantableRoles() {
  const names = state.roles ? state.roles.map((r) => r.name) : BUILTIN_ROLES;
  return names.filter((name) => name !== MEMBER);
}

export function levelNames() {
  return state.levels ? state.levels.map((l) => l.name) : [];
}

// ----- formatting ----------------------------------------------------------------------

export function count(n) {
  return typeof n === 'number' ? numberFormat.format(n) : '—';
}

export function cpu(millicores) {
  if (typeof millicores !== 'number') return '—';
  const cores = millicores / 1000;
  return `${cores.toLocaleString(undefined, { maximumFractionDigits: 2 })} CPU`;
}

export function mebibytes(mib) {
  if (typeof mib !== 'number') return '—';
  const units = [['TiB', 1024 * 1024], ['GiB', 1024]];
  for (const [unit, size] of units) {
    if (mib >= size) return `${(mib / size).toLocaleString(undefined, { maximumFractionDigits: 1 })} ${unit}`;
  }
  return `${numberFormat.format(mib)} MiB`;
}

export function duration(seconds) {
  if (typeof seconds !== 'number') return '—';
  const units = [['d', 86400], ['h', 3600], ['min', 60]];
  for (const [unit, size] of units) {
    if (seconds >= size) return `${(seconds / size).toLocaleString(undefined, { maximumFractionDigits: 1 })} ${unit}`;
  }
  return `${seconds} s`;
}

export function userLabel(user) {
  return user.email || user.display_name || user.id;
}

export function badge(text, kind) {
  return el('span', { class: ['badge', kind && `badge-${kind}`], text });
}

/**
 * An in-page confirmation (a modal <dialog>, never the browser's confirm()): a title, what
 * will happen, an optional checkbox (e.g. "also delete their data", unchecked so the safe
 * choice is the default), and Cancel / a confirm button. Resolves to null when cancelled,
 * else to { checked } (the checkbox's state).
 */
export function confirmInPage({ title, message, confirmLabel, danger = false, checkbox = null }) {
  return new Promise((resolve) => {
    const box = checkbox && el('input', { type: 'checkbox', id: 'confirm-dialog-check' });
    const cancel = el('button', { type: 'button', id: 'confirm-dialog-cancel', class: 'button button-secondary', text: 'Cancel' });
    const ok = el('button', { type: 'button', id: 'confirm-dialog-ok', class: danger ? 'button button-danger' : 'button button-primary', text: confirmLabel });
    const dialog = el('dialog', { id: 'confirm-dialog', class: 'confirm-dialog', 'aria-labelledby': 'confirm-dialog-title' },
      el('h2', { id: 'confirm-dialog-title', text: title }),
      [message].flat().map((text) => el('p', { text })),
      box && el('p', { class: 'confirm-dialog-choice' }, el('label', { for: box.id }, box, ` ${checkbox.label}`)),
      box && checkbox.hint && el('p', { class: 'hint', id: 'confirm-dialog-hint', text: checkbox.hint }),
      el('div', { class: 'actions' }, cancel, ok));
    const close = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancel.addEventListener('click', () => close(null));
    ok.addEventListener('click', () => close({ checked: Boolean(box?.checked) }));
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); close(null); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
