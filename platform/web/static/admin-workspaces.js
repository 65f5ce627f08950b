// admin-workspaces.js — the console's Workspaces page: every user's workspace with its
// owner, state, uptime, memory and storage (GET /api/v1/admin/workspaces), a Stop button
// for live ones (after an in-page question saying what stops and that the data stays), and
// the container's last lines in a dialog (GET …/logs; the server masks anything secret).
// Text from the API is always set as text (api.js's el()).
import { apiFetch, clearAlert, el, formatBytes, setBusy, timeEl } from './api.js';
import { $, enc, state, can, reportError, announce, count, duration, badge, confirmInPage } from './admin-common.js';

const STATE_BADGES = {
  ready: 'success',
  starting: 'info',
  creating: 'info',
  requested: 'info',
  queued: 'info',
  stopping: 'warning',
  failed: 'danger',
};

function ownerCell(w) {
  return el('td', {},
    el('div', { class: 'cell-main', text: w.owner || w.email || w.user_id }),
    w.email && w.email !== w.owner && el('div', { class: 'muted small', text: w.email }),
    el('div', { class: 'muted small mono', text: w.slug }));
}

function stateCell(w) {
  return el('td', { 'data-label': 'State' },
    badge(w.state, STATE_BADGES[w.state] ?? null),
    w.reason && el('div', { class: 'muted small', text: w.reason }));
}

function memoryText(w) {
  const limit = typeof w.memory_limit_mib === 'number' ? formatBytes(w.memory_limit_mib * 1024 * 1024) : null;
  if (typeof w.memory_used_bytes === 'number') return limit ? `${formatBytes(w.memory_used_bytes)} of ${limit}` : formatBytes(w.memory_used_bytes);
  return limit ? `limit ${limit}` : '—';
}

function storageText(w) {
  if (typeof w.storage_used_bytes !== 'number') return 'not reported yet';
  return typeof w.storage_quota_bytes === 'number'
    ? `${formatBytes(w.storage_used_bytes)} of ${formatBytes(w.storage_quota_bytes)}`
    : formatBytes(w.storage_used_bytes);
}

function row(w) {
  const writable = can('workspaces.write');
  const actions = el('td', { class: 'actions-cell' },
    el('div', { class: 'row-actions' },
      w.live && el('button', {
        type: 'button', class: 'button button-secondary button-small open-logs', text: 'Open logs',
        'aria-label': `Open the logs of ${w.owner}'s workspace`,
        on: { click: (event) => openLogs(w, event.currentTarget) },
      }),
      writable && w.live && el('button', {
        type: 'button', class: 'button button-danger button-small stop-workspace', text: 'Stop',
        'aria-label': `Stop ${w.owner}'s workspace`,
        on: { click: (event) => stopWorkspace(w, event.currentTarget) },
      })));
  return el('tr', { dataset: { user: w.user_id, state: w.state } },
    ownerCell(w),
    stateCell(w),
    el('td', { 'data-label': 'Uptime', text: typeof w.uptime_seconds === 'number' ? duration(w.uptime_seconds) : '—' }),
    el('td', { 'data-label': 'Memory', class: 'memory', text: memoryText(w) }),
    el('td', { 'data-label': 'Storage', class: 'storage' }, el('span', { text: storageText(w) }),
      w.storage_reported_at && el('div', { class: 'muted small' }, 'as of ', timeEl(w.storage_reported_at))),
    el('td', { 'data-label': 'Level', text: `${w.access_level}${w.pool ? ` · pool ${w.pool}` : ''}` }),
    actions);
}

export async function loadWorkspaces() {
  const alert = $('workspaces-alert');
  const status = $('workspaces-status');
  clearAlert(alert);
  status.textContent = 'Loading workspaces…';
  const params = new URLSearchParams();
  const q = $('workspaces-search').value.trim();
  if (q) params.set('q', q);
  if ($('workspaces-live').checked) params.set('live', 'true');
  let page;
  try {
    page = await apiFetch(`/api/v1/admin/workspaces${params.size ? `?${params}` : ''}`);
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
    return;
  }
  const list = Array.isArray(page?.workspaces) ? page.workspaces : [];
  $('workspaces-body').replaceChildren(...list.map(row));
  $('workspaces-wrap').hidden = list.length === 0;
  $('workspaces-empty').hidden = list.length > 0;
  const live = list.filter((w) => w.live).length;
  status.textContent = !list.length ? '' : list.length < (page?.total ?? 0)
    ? `Showing ${count(list.length)} of ${count(page.total)} workspaces (${count(live)} live); search to narrow.`
    : `${count(list.length)} workspace(s), ${count(live)} live.`;
}

async function stopWorkspace(w, button) {
  const answer = await confirmInPage({
    title: `Stop ${w.owner}'s workspace?`,
    message: [
      'Its container stops now: anything running in it (an AI job, an unsaved edit in an open tab) is lost, and the user sees their workspace stopped.',
      'Their data (projects, documents, uploads, published sites) stays; they get a fresh workspace when they next open it.',
    ],
    confirmLabel: 'Stop workspace',
    danger: true,
  });
  if (!answer) return;
  const alert = $('workspaces-alert');
  clearAlert(alert);
  setBusy(button, true, 'Stopping…');
  try {
    await apiFetch(`/api/v1/admin/workspaces/${enc(w.user_id)}/stop`, { method: 'POST', csrf: state.csrf });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  await loadWorkspaces();
  announce($('workspaces-status'), `Stopped ${w.owner}'s workspace. Their data is kept.`);
}

async function openLogs(w, button) {
  setBusy(button, true, 'Loading…');
  let logs;
  try {
    logs = await apiFetch(`/api/v1/admin/workspaces/${enc(w.user_id)}/logs?lines=200`);
  } catch (err) {
    setBusy(button, false);
    reportError(err, $('workspaces-alert'));
    return;
  }
  setBusy(button, false);
  const lines = Array.isArray(logs?.lines) ? logs.lines : [];
  const close = el('button', { type: 'button', class: 'button button-secondary', text: 'Close' });
  const dialog = el('dialog', { id: 'logs-dialog', class: 'confirm-dialog logs-dialog', 'aria-labelledby': 'logs-dialog-title' },
    el('h2', { id: 'logs-dialog-title', text: `Logs of ${w.owner}'s workspace` }),
    el('p', { class: 'muted small', text: `The last ${count(lines.length)} line(s) of container ${String(logs?.container ?? '').slice(0, 12)}, oldest first. Secrets are masked.` }),
    el('pre', { class: 'log-lines', tabindex: '0', text: lines.length ? lines.join('\n') : 'The container has written nothing yet.' }),
    el('div', { class: 'actions' }, close));
  const done = () => { dialog.close(); dialog.remove(); button.focus(); };
  close.addEventListener('click', done);
  dialog.addEventListener('cancel', (event) => { event.preventDefault(); done(); });
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}

export function wireWorkspaces() {
  $('workspaces-form').addEventListener('submit', (event) => { event.preventDefault(); loadWorkspaces(); });
  $('workspaces-live').addEventListener('change', loadWorkspaces);
}
