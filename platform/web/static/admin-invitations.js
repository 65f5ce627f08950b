// admin-invitations.js — the console's Invitations page (admins): make an invitation for
// invitation-only registration (its code and link are shown once, here), the invitations
// with their state, and withdrawing an unused one after an in-page question. Text from the
// API is always set as text (api.js's el()).
import { apiFetch, clearAlert, el, setBusy, timeEl } from './api.js';
import { $, enc, state, reportError, announce, badge, confirmInPage, count } from './admin-common.js';

const STATES = { unused: 'success', used: null, expired: 'warning' };

function row(inv) {
  const withdraw = inv.state === 'unused' && el('button', {
    type: 'button', class: 'button button-danger button-small withdraw-invitation', text: 'Withdraw',
    'aria-label': `Withdraw the invitation${inv.email ? ` for ${inv.email}` : ''}`,
    on: { click: (event) => withdrawInvitation(inv, event.currentTarget) },
  });
  return el('tr', { dataset: { invitation: inv.id, state: inv.state } },
    el('td', {},
      el('div', { class: 'cell-main', text: inv.email || 'Anyone with the code' }),
      inv.note && el('div', { class: 'muted small', text: inv.note })),
    el('td', { 'data-label': 'State' }, badge(inv.state, STATES[inv.state] ?? null)),
    el('td', { 'data-label': 'Made' }, timeEl(inv.created_at), inv.created_by && el('div', { class: 'muted small', text: `by ${inv.created_by}` })),
    el('td', { 'data-label': 'Expires' }, timeEl(inv.expires_at)),
    el('td', { 'data-label': 'Used by' }, inv.used_by_email
      ? el('span', { text: inv.used_by_email })
      : el('span', { class: 'muted', text: '—' })),
    el('td', { class: 'actions-cell' }, withdraw || null));
}

export async function loadInvitations() {
  const alert = $('invitations-alert');
  const status = $('invitations-status');
  clearAlert(alert);
  status.textContent = 'Loading invitations…';
  let page;
  try {
    page = await apiFetch('/api/v1/admin/invitations');
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
    return;
  }
  $('invitations-mode').textContent = page?.invitation_only
    ? 'Registration here needs an invitation: each one makes one account, before it expires.'
    : 'Registration is open to anyone now (WEBSPLAT_REGISTRATION_INVITATION_ONLY is off); invitations work, but nobody needs one.';
  const list = Array.isArray(page?.invitations) ? page.invitations : [];
  $('invitations-body').replaceChildren(...list.map(row));
  $('invitations-wrap').hidden = list.length === 0;
  const unused = list.filter((i) => i.state === 'unused').length;
  status.textContent = list.length ? `${count(list.length)} invitation(s), ${count(unused)} unused.` : 'No invitations yet.';
}

async function makeInvitation(event) {
  event.preventDefault();
  const alert = $('invitations-alert');
  const made = $('invitation-made');
  clearAlert(alert);
  made.hidden = true;
  const email = $('invitation-email').value.trim();
  const note = $('invitation-note').value.trim();
  const days = Number($('invitation-days').value || 14);
  const button = $('invitation-create');
  setBusy(button, true, 'Making…');
  let answer;
  try {
    answer = await apiFetch('/api/v1/admin/invitations', {
      method: 'POST',
      csrf: state.csrf,
      body: { ...(email ? { email } : {}), note, expires_in_days: days },
    });
  } catch (err) {
    reportError(err, alert);
    return;
  } finally {
    setBusy(button, false);
  }
  $('invitation-form').reset();
  made.replaceChildren(
    el('p', { text: `Send this link${answer.email ? ` to ${answer.email}` : ''}. It is shown only now:` }),
    el('p', {}, el('code', { id: 'invitation-url', class: 'mono', text: answer.url })),
    el('p', { class: 'small' }, 'Code: ', el('code', { id: 'invitation-code', text: answer.code })));
  made.hidden = false;
  await loadInvitations();
}

async function withdrawInvitation(inv, button) {
  const ok = await confirmInPage({
    title: 'Withdraw this invitation?',
    message: [`Nobody can register with it any more${inv.email ? ` (it was for ${inv.email})` : ''}. No account is affected.`],
    confirmLabel: 'Withdraw',
    danger: true,
  });
  if (!ok) return;
  const alert = $('invitations-alert');
  clearAlert(alert);
  setBusy(button, true, 'Withdrawing…');
  try {
    await apiFetch(`/api/v1/admin/invitations/${enc(inv.id)}`, { method: 'DELETE', csrf: state.csrf });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  await loadInvitations();
  announce($('invitations-status'), 'The invitation is withdrawn.');
}

export function wireInvitations() {
  $('invitation-form').addEventListener('submit', makeInvitation);
}
