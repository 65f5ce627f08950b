// admin-users.js — the admin console's users section: search, roles, access level, details,
// disable/enable and delete. Rows render only the controls the API would accept from the
// signed-in user.
import { apiFetch, clearAlert, el, setBusy, timeEl } from './api.js';
import {
  $, enc, state, sections, can, reportError, announce, grantableRoles, levelNames, count,
  userLabel, badge, confirmInPage,
} from './admin-common.js';

const USERS_PER_PAGE = 25;

function revokeButton(user, role) {
  const button = el('button', {
    type: 'button',
    class: 'chip-remove revoke-role',
    dataset: { role },
    'aria-label': `Remove the role ${role} from ${userLabel(user)}`,
    title: `Remove the role ${role}`,
    text: '×',
  });
  button.addEventListener('click', () => changeRole(user, role, false, button));
  return button;
}

function rolesCell(user) {
  const held = Array.isArray(user.roles) ? user.roles : [];
  const writable = can('roles.write');
  const chips = held.length
    ? el('ul', { class: 'chip-list' }, held.map((role) => el('li', { class: 'chip', dataset: { role } },
      el('span', { text: role }),
      writable && revokeButton(user, role),
    )))
    : el('span', { class: 'muted', text: 'None' });
  if (!writable) return chips;

  const options = grantableRoles().filter((role) => !held.includes(role));
  if (options.length === 0) return chips;
  const select = el('select', {
    class: 'role-select',
    'aria-label': `Role to add to ${userLabel(user)}`,
  }, [
    // No role is preselected: granting one is a choice, never the first entry by default.
    el('option', { value: '', text: 'Choose a role…', disabled: true, selected: true }),
    ...options.map((role) => el('option', { value: role, text: role })),
  ]);
  const grant = el('button', {
    type: 'button',
    class: 'button button-secondary button-small grant-role',
    'aria-label': `Add role to ${userLabel(user)}`,
    text: 'Add role',
    disabled: true,
  });
  select.addEventListener('change', () => { grant.disabled = !select.value; });
  grant.addEventListener('click', () => { if (select.value) changeRole(user, select.value, true, grant); });
  return [chips, el('div', { class: 'inline-control' }, select, grant)];
}

function levelCell(user) {
  const names = levelNames();
  if (!can('roles.write') || names.length === 0) return el('span', { text: user.access_level ?? '—' });
  const select = el('select', {
    class: 'access-level-select',
    'aria-label': `Access level of ${userLabel(user)}`,
  }, names.map((name) => el('option', { value: name, text: name })));
  select.value = user.access_level;
  const set = el('button', {
    type: 'button',
    class: 'button button-secondary button-small set-access-level',
    'aria-label': `Set access level of ${userLabel(user)}`,
    text: 'Set',
  });
  set.addEventListener('click', () => assignLevel(user, select.value, set));
  return el('div', { class: 'inline-control' }, select, set);
}

function userRow(user) {
  const isMe = user.id === state.me.id;
  const detailsId = `user-details-${user.id}`;
  const details = el('button', {
    type: 'button',
    class: 'button button-secondary button-small user-details',
    'aria-expanded': 'false',
    'aria-controls': detailsId,
    'aria-label': `Details of ${userLabel(user)}`,
    text: 'Details',
  });
  details.addEventListener('click', () => toggleDetails(user, details, detailsId));

  let toggle = null;
  if (can('users.write') && !isMe) {
    toggle = user.disabled_at
      ? el('button', { type: 'button', class: 'button button-secondary button-small enable-user', text: 'Enable', 'aria-label': `Enable ${userLabel(user)}` })
      : el('button', { type: 'button', class: 'button button-danger button-small disable-user', text: 'Disable', 'aria-label': `Disable ${userLabel(user)}` });
    toggle.addEventListener('click', () => setDisabled(user, !user.disabled_at, toggle));
  }
  let remove = null;
  if (can('users.write') && !isMe) {
    remove = el('button', { type: 'button', class: 'button button-danger button-small delete-user', text: 'Delete', 'aria-label': `Delete ${userLabel(user)}` });
    remove.addEventListener('click', () => deleteUser(user, remove));
  }

  return el('tr', { dataset: { userId: user.id }, class: user.disabled_at && 'row-disabled' },
    el('th', { scope: 'row' },
      el('span', { class: 'cell-title', text: user.display_name || '—' }),
      isMe && [' ', badge('You')],
      el('span', { class: 'cell-sub', text: user.email || 'No e-mail address' }),
      el('code', { class: 'cell-sub cell-id', text: user.id }),
    ),
    el('td', {}, levelCell(user)),
    el('td', {}, rolesCell(user)),
    el('td', {}, timeEl(user.created_at)),
    el('td', {}, user.disabled_at
      ? [badge('Disabled', 'danger'), el('span', { class: 'cell-sub' }, timeEl(user.disabled_at))]
      : badge('Enabled', 'success')),
    el('td', { class: 'actions' }, el('div', { class: 'action-group' }, details, toggle, remove)),
  );
}

function renderUsers() {
  const { list, page, total } = state.users;
  $('users-body').replaceChildren(...list.map(userRow));
  const empty = list.length === 0;
  $('users-wrap').hidden = empty;
  $('users-empty').hidden = !empty;
  const pages = Math.max(1, Math.ceil(total / USERS_PER_PAGE));
  $('users-pager').hidden = total <= USERS_PER_PAGE;
  $('users-page-info').textContent = `Page ${page} of ${pages} · ${count(total)} user${total === 1 ? '' : 's'}`;
  $('users-prev').disabled = page <= 1;
  $('users-next').disabled = page >= pages;
}

export async function loadUsers() {
  const status = $('users-status');
  const alert = $('users-alert');
  clearAlert(alert);
  status.textContent = 'Loading users…';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state.users.query)) {
    if (value !== '') params.set(key, value);
  }
  params.set('page', String(state.users.page));
  params.set('per_page', String(USERS_PER_PAGE));
  const button = $('user-search-submit');
  setBusy(button, true);
  try {
    const data = await apiFetch(`/api/v1/admin/users?${params}`);
    state.users.list = Array.isArray(data?.users) ? data.users : [];
    state.users.total = typeof data?.total === 'number' ? data.total : state.users.list.length;
    state.users.loaded = true;
    // A page emptied by a change elsewhere: show the last page that has users.
    const lastPage = Math.max(1, Math.ceil(state.users.total / USERS_PER_PAGE));
    if (state.users.list.length === 0 && state.users.page > lastPage) {
      state.users.page = lastPage;
      await loadUsers();
      return;
    }
    renderUsers();
    status.textContent = `${count(state.users.total)} user${state.users.total === 1 ? '' : 's'} found.`;
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
  } finally {
    setBusy(button, false);
  }
}

export function searchUsers(event) {
  event.preventDefault();
  const levelFilter = $('user-level-filter');
  state.users.query = {
    q: $('user-search').value.trim(),
    access_level: levelFilter ? levelFilter.value : '',
    disabled: $('user-state-filter').value,
  };
  state.users.page = 1;
  loadUsers();
}

function rowOf(userId) {
  return [...$('users-body').rows].find((row) => row.dataset.userId === userId) ?? null;
}

/** Reloads one user and redraws their row, moving focus to `focusCss` in the new row. */
async function refreshUser(userId, focusCss) {
  let fresh;
  try {
    fresh = await apiFetch(`/api/v1/admin/users/${enc(userId)}`);
  } catch (err) {
    reportError(err, $('users-alert'));
    return;
  }
  const index = state.users.list.findIndex((u) => u.id === userId);
  if (index === -1 || !fresh) return;
  state.users.list[index] = fresh;
  const old = rowOf(userId);
  if (!old) return;
  const detailsOpen = old.nextElementSibling?.classList.contains('detail-row') ? old.nextElementSibling : null;
  detailsOpen?.remove();
  const row = userRow(fresh);
  old.replaceWith(row);
  const target = (focusCss && row.querySelector(focusCss)) || row.querySelector('.role-select, .user-details');
  target?.focus();
}

async function changeRole(user, role, grant, button) {
  const alert = $('users-alert');
  clearAlert(alert);
  if (!role) return;
  setBusy(button, true, grant ? 'Adding…' : undefined);
  try {
    await apiFetch(`/api/v1/admin/users/${enc(user.id)}/roles/${enc(role)}`, {
      method: grant ? 'PUT' : 'DELETE',
      csrf: state.csrf,
    });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  if (user.id === state.me.id) {
    // The user's own capabilities changed: the whole console may differ now.
    location.reload();
    return;
  }
  announce($('users-status'), grant
    ? `Added the role ${role} to ${userLabel(user)}.`
    : `Removed the role ${role} from ${userLabel(user)}.`);
  await Promise.all([
    refreshUser(user.id, grant ? `.revoke-role[data-role="${CSS.escape(role)}"]` : '.role-select'),
    can('roles.read') && sections.loadRoles(),
  ]);
}

async function assignLevel(user, level, button) {
  const alert = $('users-alert');
  clearAlert(alert);
  if (level === user.access_level) {
    announce($('users-status'), `${userLabel(user)} already has the access level ${level}.`);
    return;
  }
  setBusy(button, true);
  try {
    await apiFetch(`/api/v1/admin/users/${enc(user.id)}/access-level`, {
      method: 'PUT',
      body: { access_level: level },
      csrf: state.csrf,
    });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  announce($('users-status'), `${userLabel(user)} now has the access level ${level}.`);
  await Promise.all([
    refreshUser(user.id, '.access-level-select'),
    can('access_levels.read') && sections.loadLevels(),
    can('fleet.read') && sections.loadFleet(),
  ]);
}

async function setDisabled(user, disable, button) {
  const who = userLabel(user);
  if (disable && !(await confirmInPage({
    title: `Disable ${who}?`,
    message: 'Their sessions and API tokens end at once and their workspace stops; they cannot sign in until enabled again. Nothing of theirs is deleted.',
    confirmLabel: 'Disable account',
    danger: true,
  }))) return;
  const alert = $('users-alert');
  clearAlert(alert);
  setBusy(button, true, disable ? 'Disabling…' : 'Enabling…');
  let result;
  try {
    result = await apiFetch(`/api/v1/admin/users/${enc(user.id)}/${disable ? 'disable' : 'enable'}`, {
      method: 'POST',
      csrf: state.csrf,
    });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  announce($('users-status'), disable
    ? `Disabled ${who}: ${count(result?.sessions_ended ?? 0)} session(s) ended, ${count(result?.tokens_revoked ?? 0)} API token(s) revoked.`
    : `Enabled ${who}. Their old sessions and tokens stay ended.`);
  await Promise.all([
    refreshUser(user.id, disable ? '.enable-user' : '.disable-user'),
    can('fleet.read') && sections.loadFleet(),
  ]);
}

/** Deletes an account after one in-page question, which offers to keep its data. */
async function deleteUser(user, button) {
  const who = userLabel(user);
  const answer = await confirmInPage({
    title: `Delete ${who}?`,
    message: [
      'Their sessions and API tokens end, their workspace container is removed, and the account cannot be restored.',
      'Their workspace data (projects, documents, uploads) is kept unless you tick the box below: an operator can then still find it on the host, named in the audit log.',
    ],
    confirmLabel: 'Delete account',
    danger: true,
    checkbox: { label: 'Also delete their workspace data for good', hint: 'Leave it unticked to keep the data.' },
  });
  if (!answer) return;
  const withVolume = answer.checked;
  const alert = $('users-alert');
  clearAlert(alert);
  setBusy(button, true, 'Deleting…');
  let result;
  try {
    result = await apiFetch(`/api/v1/admin/users/${enc(user.id)}?delete_volume=${withVolume}`, {
      method: 'DELETE',
      csrf: state.csrf,
    });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  announce($('users-status'), result?.volume_deleted
    ? `Deleted ${who} and their workspace data.`
    : `Deleted ${who}.${result?.volume ? ` Their workspace data stays in the volume ${result.volume}.` : ''}`);
  await Promise.all([loadUsers(), can('fleet.read') && sections.loadFleet()]);
}

function identitiesTable(identities) {
  if (identities.length === 0) return el('p', { class: 'muted', text: 'No linked identities.' });
  return el('div', { class: 'table-wrap' }, el('table', { class: 'table table-compact' },
    el('caption', { class: 'visually-hidden', text: 'Linked identities' }),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col', text: 'Provider' }),
      el('th', { scope: 'col', text: 'E-mail' }),
      el('th', { scope: 'col', text: 'Linked' }),
      el('th', { scope: 'col', text: 'Last sign-in' }),
    )),
    el('tbody', {}, identities.map((identity) => el('tr', {},
      el('td', {}, identity.provider ?? ''),
      el('td', {}, identity.email || el('span', { class: 'muted', text: '—' })),
      el('td', {}, timeEl(identity.created_at)),
      el('td', {}, timeEl(identity.last_login_at, 'Never')),
    ))),
  ));
}

async function toggleDetails(user, button, detailsId) {
  const row = rowOf(user.id);
  const open = $(detailsId);
  if (open) {
    open.remove();
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  setBusy(button, true);
  let detail;
  try {
    detail = await apiFetch(`/api/v1/admin/users/${enc(user.id)}`);
  } catch (err) {
    reportError(err, $('users-alert'));
    return;
  } finally {
    setBusy(button, false);
  }
  if (!row?.isConnected || $(detailsId)) return;
  const identities = Array.isArray(detail?.identities) ? detail.identities : [];
  const columns = row.cells.length;
  row.after(el('tr', { id: detailsId, class: 'detail-row' },
    el('td', { colspan: columns },
      el('dl', { class: 'details' },
        el('div', {}, el('dt', { text: 'E-mail verified' }), el('dd', { text: detail?.email_verified ? 'Yes' : 'No' })),
        el('div', {}, el('dt', { text: 'Live sessions' }), el('dd', { text: count(detail?.sessions ?? 0) })),
        el('div', {}, el('dt', { text: 'Updated' }), el('dd', {}, timeEl(detail?.updated_at))),
      ),
      el('h4', { text: 'Linked identities' }),
      identitiesTable(identities),
    ),
  ));
  button.setAttribute('aria-expanded', 'true');
}

/** The access-level filter of the user search, from the levels now known. */
function renderLevelFilter() {
  const select = $('user-level-filter');
  if (!select) return;
  const chosen = select.value;
  select.replaceChildren(
    el('option', { value: '', text: 'Any' }),
    ...levelNames().map((name) => el('option', { value: name, text: name })),
  );
  select.value = levelNames().includes(chosen) ? chosen : '';
}

Object.assign(sections, { loadUsers, renderUsers, renderLevelFilter });
