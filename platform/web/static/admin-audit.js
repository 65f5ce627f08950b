// admin-audit.js — the admin console's audit log: the filter form, the records, and paging
// to older records and back to the newest.
import { apiFetch, clearAlert, el, setBusy, showAlert, timeEl } from './api.js';
import { $, state, reportError, count, badge } from './admin-common.js';

const AUDIT_PAGE = 50;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function outcomeBadge(outcome) {
  const kind = { success: 'success', failure: 'warning', denied: 'danger' }[outcome] ?? 'muted';
  return badge(outcome ?? 'unknown', kind);
}

/** A button that filters the log by one value (an actor's id, a target). */
function filterLink(text, field, value, label) {
  const button = el('button', { type: 'button', class: 'link-button', text, title: label, 'aria-label': label });
  button.addEventListener('click', () => {
    $(`audit-${field}`).value = value;
    submitAudit();
  });
  return button;
}

/** `sessions_ended` → "Sessions ended". */
function fieldLabel(key) {
  const words = String(key).replace(/[_.-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function fieldValue(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return count(value);
  if (Array.isArray(value)) return value.length ? value.map(fieldValue).join(', ') : 'none';
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${fieldLabel(k)}: ${fieldValue(v)}`).join('; ');
  return String(value);
}

/** A record's detail as readable fields ("Reason: …", "Sessions ended: 2"), never raw JSON. */
function detailFields(detail) {
  if (!detail || typeof detail !== 'object' || !Object.keys(detail).length) return null;
  return el('dl', { class: 'detail-fields' },
    Object.entries(detail).map(([key, value]) => el('div', {},
      el('dt', { text: fieldLabel(key) }),
      el('dd', { text: fieldValue(value) }))));
}

function auditRow(record) {
  const detail = detailFields(record.detail);
  const meta = [
    record.ip && `IP ${record.ip}`,
    record.request_id && `request ${record.request_id}`,
  ].filter(Boolean).join(' · ');
  return el('tr', { dataset: { auditId: String(record.id) } },
    el('td', { class: 'nowrap' }, timeEl(record.at)),
    el('td', {}, record.actor_id
      ? filterLink(record.actor ?? record.actor_id, 'actor', record.actor_id, `Show only what ${record.actor ?? record.actor_id} did`)
      : el('span', { text: record.actor ?? '' })),
    el('td', {}, el('code', { text: record.action ?? '' })),
    el('td', {}, record.target
      ? filterLink(record.target, 'target', record.target, `Show only records about ${record.target}`)
      : el('span', { class: 'muted', text: '—' })),
    el('td', {}, outcomeBadge(record.outcome)),
    el('td', {}, detail, meta && el('span', { class: 'cell-sub', text: meta })),
  );
}

/** The filter form as query parameters, or null after saying what is wrong. */
function readAuditForm(alert) {
  const filter = {};
  const action = $('audit-action').value.trim();
  if (action) filter.action = action;
  const actor = $('audit-actor').value.trim();
  if (actor) {
    if (!UUID_RE.test(actor)) {
      showAlert(alert, 'The actor is a user id, e.g. 0b7c…-…; copy it from the users table or click an actor below.');
      $('audit-actor').focus();
      return null;
    }
    filter.actor = actor;
  }
  const target = $('audit-target').value.trim();
  if (target) filter.target = target;
  const outcome = $('audit-outcome').value;
  if (outcome) filter.outcome = outcome;
  for (const field of ['since', 'until']) {
    const input = $(`audit-${field}`);
    if (!input.value) continue;
    const when = new Date(input.value); // datetime-local: the browser's time zone
    if (Number.isNaN(when.getTime())) {
      showAlert(alert, 'Enter a valid date and time.');
      input.focus();
      return null;
    }
    filter[field] = when.toISOString();
  }
  return filter;
}

export async function loadAudit() {
  const status = $('audit-status');
  const alert = $('audit-alert');
  clearAlert(alert);
  status.textContent = 'Loading the audit log…';
  const params = new URLSearchParams(state.audit.filter);
  params.set('limit', String(AUDIT_PAGE));
  if (state.audit.before != null) params.set('before', String(state.audit.before));
  const older = $('audit-older');
  setBusy(older, true);
  try {
    const data = await apiFetch(`/api/v1/admin/audit?${params}`);
    const records = Array.isArray(data?.records) ? data.records : [];
    state.audit.next = data?.next_before ?? null;
    $('audit-body').replaceChildren(...records.map(auditRow));
    $('audit-wrap').hidden = records.length === 0;
    $('audit-empty').hidden = records.length !== 0;
    const page = state.audit.previous.length + 1;
    status.textContent = records.length
      ? `${count(records.length)} record${records.length === 1 ? '' : 's'}${page > 1 ? `, page ${page} (older)` : ''}.`
      : '';
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
  } finally {
    setBusy(older, false);
    older.hidden = state.audit.next == null;
    $('audit-newest').hidden = state.audit.before == null;
  }
}

export function submitAudit(event) {
  event?.preventDefault();
  const filter = readAuditForm($('audit-alert'));
  if (!filter) return;
  state.audit = { filter, before: null, previous: [], next: null };
  loadAudit();
}

export function olderAudit() {
  if (state.audit.next == null) return;
  state.audit.previous.push(state.audit.before);
  state.audit.before = state.audit.next;
  loadAudit().then(() => $('audit-heading').focus());
}

export function newestAudit() {
  state.audit.previous = [];
  state.audit.before = null;
  loadAudit();
}
