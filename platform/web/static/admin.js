// admin.js — the admin console: the fleet at a glance, users (search, roles, access level,
// disable/enable), roles (list, define, delete), access levels (list, create, edit, delete)
// and the audit log. The signed-in user's capabilities (GET /api/v1/me) decide which parts
// exist: every element marked data-needs="<capability>" is removed when the user lacks it,
// and rows render only the controls the API would accept from them. Text from the API is
// always set as text (api.js's el()), never parsed as HTML.
import { apiFetch, ApiError, clearAlert, describeError, el, setBusy, showAlert, timeEl } from './api.js';

const LOGIN_URL = '/login?return_to=%2Fadmin';
const USERS_PER_PAGE = 25;
const AUDIT_PAGE = 50;
const METHODS = ['*', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const SCOPES = ['own', 'any'];
/** Workspace features the platform knows (platform/src/authz/access_levels.rs). */
const FEATURES = ['sites', 'documents', 'chat', 'seo', 'export', 'publish', 'analytics', 'agents', 'generation', 'web_search'];
/** Roles offered when the user may grant roles but not list them. */
const BUILTIN_ROLES = ['admin', 'operator', 'auditor'];
const MEMBER = 'member';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
const numberFormat = new Intl.NumberFormat();

const state = {
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

const can = (capability) => state.caps.has(capability);

function goToLogin() {
  location.replace(LOGIN_URL);
}

/** A lapsed session sends the user back to sign in; anything else is shown in `region`. */
function reportError(err, region) {
  if (err instanceof ApiError && err.status === 401) {
    goToLogin();
    return;
  }
  showAlert(region, describeError(err));
}

/** Says `message` in a section's status line (a polite live region). */
function announce(region, message) {
  region.textContent = message;
}

// ----- formatting ----------------------------------------------------------------------

function count(n) {
  return typeof n === 'number' ? numberFormat.format(n) : '—';
}

function cpu(millicores) {
  if (typeof millicores !== 'number') return '—';
  const cores = millicores / 1000;
  return `${cores.toLocaleString(undefined, { maximumFractionDigits: 2 })} CPU`;
}

function mebibytes(mib) {
  if (typeof mib !== 'number') return '—';
  const units = [['TiB', 1024 * 1024], ['GiB', 1024]];
  for (const [unit, size] of units) {
    if (mib >= size) return `${(mib / size).toLocaleString(undefined, { maximumFractionDigits: 1 })} ${unit}`;
  }
  return `${numberFormat.format(mib)} MiB`;
}

function duration(seconds) {
  if (typeof seconds !== 'number') return '—';
  const units = [['d', 86400], ['h', 3600], ['min', 60]];
  for (const [unit, size] of units) {
    if (seconds >= size) return `${(seconds / size).toLocaleString(undefined, { maximumFractionDigits: 1 })} ${unit}`;
  }
  return `${seconds} s`;
}

function userLabel(user) {
  return user.email || user.display_name || user.id;
}

function badge(text, kind) {
  return el('span', { class: ['badge', kind && `badge-${kind}`], text });
}

// ----- header and capabilities -----------------------------------------------------------

function renderHeader(me) {
  $('user-name').textContent = me.display_name || me.email || 'Signed in';
  const email = $('user-email');
  email.textContent = me.email ?? '';
  email.hidden = !me.email;
  const roles = Array.isArray(me.roles) ? me.roles : [];
  $('admin-roles').textContent = roles.length
    ? `Your roles: ${roles.join(', ')}. The console shows what they allow.`
    : 'The console shows what your roles allow.';
}

/** Removes every part of the page the user's capabilities do not open. */
function applyCapabilities() {
  for (const node of document.querySelectorAll('[data-needs]')) {
    if (!can(node.dataset.needs)) node.remove();
  }
  $('nothing-to-show').hidden = document.querySelector('.admin-section') !== null;
  // One section needs no table of contents.
  $('admin-nav').hidden = $('admin-nav').querySelectorAll('a').length < 2;
}

// ----- fleet ---------------------------------------------------------------------------

function dependencyState(value) {
  if (value === 'ok') return badge('OK', 'success');
  return [badge('Unavailable', 'danger'), ' ', el('span', { class: 'muted', text: value ?? 'unknown' })];
}

function renderFleet(fleet) {
  $('fleet-users-total').textContent = count(fleet.users_total);
  $('fleet-users-disabled').textContent = count(fleet.users_disabled);
  $('fleet-cpu').textContent = cpu(fleet.cpu_millicores_if_all_run);
  $('fleet-memory').textContent = mebibytes(fleet.memory_mib_if_all_run);
  const deps = fleet.dependencies ?? {};
  $('fleet-postgresql').replaceChildren(...[dependencyState(deps.postgresql)].flat());
  $('fleet-redis').replaceChildren(...[dependencyState(deps.redis)].flat());
  $('fleet-docker').replaceChildren(...[dependencyState(deps.docker)].flat());
  const tenants = fleet.tenants ?? {};
  const live = ['requested', 'creating', 'starting', 'ready'].reduce((n, s) => n + (tenants[s] ?? 0), 0);
  $('fleet-tenants-running').textContent = `${count(live)} of ${count(fleet.max_running_tenants ?? 0)}`;
  $('fleet-tenants').textContent = Object.entries(tenants)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s} ${count(n)}`)
    .join(', ') || 'none';
  const perLevel = Object.entries(fleet.max_running_per_level ?? {}).map(([l, n]) => `${l} ≤ ${count(n)}`);
  $('fleet-capacity').textContent = [`${count(fleet.max_concurrent_spawns ?? 0)} starting at once`, ...perLevel].join('; ');
  $('fleet-summary').hidden = false;

  const levels = Array.isArray(fleet.access_levels) ? fleet.access_levels : [];
  $('fleet-levels-body').replaceChildren(...levels.map((level) => el('tr', {},
    el('th', { scope: 'row' }, level.name),
    el('td', { class: 'num' }, count(level.users)),
    el('td', { class: 'num', title: `${level.cpu_millicores} millicores` }, cpu(level.cpu_millicores)),
    el('td', { class: 'num' }, mebibytes(level.memory_mib)),
    el('td', { class: 'num' }, duration(level.idle_timeout_seconds)),
  )));
}

async function loadFleet() {
  const status = $('fleet-status');
  const alert = $('fleet-alert');
  const refresh = $('fleet-refresh');
  clearAlert(alert);
  status.textContent = 'Loading the fleet…';
  setBusy(refresh, true);
  try {
    renderFleet(await apiFetch('/api/v1/admin/fleet') ?? {});
    status.textContent = `As of ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
  } finally {
    setBusy(refresh, false);
  }
}

// ----- users ---------------------------------------------------------------------------

/** Roles that can be granted: every role but member (which everyone is). */
function grantableRoles() {
  const names = state.roles ? state.roles.map((r) => r.name) : BUILTIN_ROLES;
  return names.filter((name) => name !== MEMBER);
}

function levelNames() {
  return state.levels ? state.levels.map((l) => l.name) : [];
}

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
  }, options.map((role) => el('option', { value: role, text: role })));
  const grant = el('button', {
    type: 'button',
    class: 'button button-secondary button-small grant-role',
    'aria-label': `Add role to ${userLabel(user)}`,
    text: 'Add role',
  });
  grant.addEventListener('click', () => changeRole(user, select.value, true, grant));
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

async function loadUsers() {
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

function searchUsers(event) {
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
    can('roles.read') && loadRoles(),
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
    can('access_levels.read') && loadLevels(),
    can('fleet.read') && loadFleet(),
  ]);
}

async function setDisabled(user, disable, button) {
  const who = userLabel(user);
  if (disable && !confirm(`Disable ${who}?\n\nTheir sessions and API tokens end at once; they cannot sign in until enabled again.`)) return;
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
    can('fleet.read') && loadFleet(),
  ]);
}

/** Deletes an account after two questions: whether at all, and whether with its data. */
async function deleteUser(user, button) {
  const who = userLabel(user);
  if (!confirm(`Delete ${who} for good?\n\nTheir sessions end, their workspace container is removed and the account cannot be restored.`)) return;
  const withVolume = confirm(`Also delete ${who}'s workspace data (sites, documents, uploads)?\n\nOK deletes the data volume for good. Cancel keeps it on the host (named in the audit log) for an operator.`);
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
  await Promise.all([loadUsers(), can('fleet.read') && loadFleet()]);
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

// ----- roles ---------------------------------------------------------------------------

function permissionList(permissions) {
  if (permissions.length === 0) return el('span', { class: 'muted', text: 'None of its own' });
  return el('ul', { class: 'permission-list' }, permissions.map((p) => el('li', {},
    el('span', {
      class: ['method', 'method-small', p.action !== '*' && `method-${String(p.action).toLowerCase()}`],
      text: p.action === '*' ? 'ANY' : p.action,
    }),
    ' ',
    el('code', { text: p.object }),
    ' ',
    badge(p.scope, p.scope === 'own' ? 'muted' : null),
  )));
}

function roleRow(role) {
  const permissions = Array.isArray(role.permissions) ? role.permissions : [];
  const inherits = Array.isArray(role.inherits) ? role.inherits : [];
  let actions = null;
  if (can('roles.write')) {
    const buttons = [];
    if (role.name !== 'admin' && role.name !== MEMBER) {
      const edit = el('button', { type: 'button', class: 'button button-secondary button-small edit-role', text: 'Edit', 'aria-label': `Edit the role ${role.name}` });
      edit.addEventListener('click', () => editRole(role));
      buttons.push(edit);
    }
    if (!role.builtin) {
      const remove = el('button', { type: 'button', class: 'button button-danger button-small delete-role', text: 'Delete', 'aria-label': `Delete the role ${role.name}` });
      remove.addEventListener('click', () => deleteRole(role, remove));
      buttons.push(remove);
    }
    actions = el('td', { class: 'actions' }, el('div', { class: 'action-group' }, buttons));
  }
  return el('tr', { dataset: { role: role.name } },
    el('th', { scope: 'row' },
      el('span', { class: 'cell-title', text: role.name }),
      role.builtin && [' ', badge('Built-in', 'muted')],
      role.description && el('span', { class: 'cell-sub', text: role.description }),
      inherits.length > 0 && el('span', { class: 'cell-sub', text: `Also has everything of: ${inherits.join(', ')}` }),
    ),
    el('td', {}, permissionList(permissions)),
    el('td', { class: 'num' }, role.name === MEMBER ? 'Everyone' : count(role.holders)),
    actions,
  );
}

function renderRoles() {
  const roles = state.roles ?? [];
  $('roles-body').replaceChildren(...roles.map(roleRow));
  $('roles-wrap').hidden = roles.length === 0;
}

async function loadRoles() {
  const status = $('roles-status');
  const alert = $('roles-alert');
  clearAlert(alert);
  const before = grantableRoles().join();
  try {
    const data = await apiFetch('/api/v1/admin/roles');
    state.roles = Array.isArray(data?.roles) ? data.roles : [];
    renderRoles();
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
    return;
  }
  // The users' role pickers list the roles: redraw them when the set changed.
  if (state.users.loaded && grantableRoles().join() !== before) renderUsers();
}

/** Parses one permission per line, `METHOD /pattern scope`; throws a sentence on error. */
function parsePermissions(text) {
  const permissions = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `Line ${index + 1} (“${line}”)`;
    const parts = line.split(/\s+/);
    if (parts.length !== 3) throw new Error(`${where}: write METHOD /pattern scope, e.g. “GET /api/v1/admin/fleet any”.`);
    const [method, object, scope] = parts;
    const action = method.toUpperCase();
    if (!METHODS.includes(action)) throw new Error(`${where}: the method must be one of ${METHODS.join(', ')}.`);
    if (!object.startsWith('/')) throw new Error(`${where}: the pattern must start with “/”.`);
    if (!SCOPES.includes(scope)) throw new Error(`${where}: the scope must be own or any.`);
    permissions.push({ object, action, scope });
  });
  if (permissions.length === 0) throw new Error('Give the role at least one permission.');
  return permissions;
}

function editRole(role) {
  state.editingRole = role.name;
  $('role-name').value = role.name;
  $('role-description').value = role.description ?? '';
  $('role-permissions').value = (role.permissions ?? [])
    .map((p) => `${p.action} ${p.object} ${p.scope}`)
    .join('\n');
  const heading = $('role-form-heading');
  heading.textContent = `Edit the role ${role.name}`;
  heading.scrollIntoView({ block: 'start' });
  $('role-permissions').focus();
}

function resetRoleForm() {
  state.editingRole = null;
  $('role-form-heading').textContent = 'Define a role';
}

async function saveRole(event) {
  event.preventDefault();
  const alert = $('roles-alert');
  clearAlert(alert);
  const name = $('role-name').value.trim();
  if (!NAME_RE.test(name)) {
    showAlert(alert, 'A role’s name is 1 to 32 lowercase letters, digits, “-” or “_”, starting with a letter.');
    $('role-name').focus();
    return;
  }
  let permissions;
  try {
    permissions = parsePermissions($('role-permissions').value);
  } catch (err) {
    showAlert(alert, err.message);
    $('role-permissions').focus();
    return;
  }
  const existed = (state.roles ?? []).some((r) => r.name === name);
  if (existed && state.editingRole !== name
    && !confirm(`A role named “${name}” exists. Replace its description and permissions?`)) return;

  const button = $('role-save');
  setBusy(button, true, 'Saving…');
  try {
    await apiFetch(`/api/v1/admin/roles/${enc(name)}`, {
      method: 'PUT',
      body: { description: $('role-description').value.trim(), permissions },
      csrf: state.csrf,
    });
  } catch (err) {
    reportError(err, alert);
    return;
  } finally {
    setBusy(button, false);
  }
  $('role-form').reset();
  announce($('roles-status'), existed ? `Saved the role ${name}.` : `Created the role ${name}.`);
  await loadRoles();
  $('roles-heading').focus();
}

async function deleteRole(role, button) {
  const holders = role.holders ?? 0;
  const warning = holders > 0 ? `\n\n${count(holders)} user(s) hold it and will lose it.` : '';
  if (!confirm(`Delete the role “${role.name}”?${warning}`)) return;
  const alert = $('roles-alert');
  clearAlert(alert);
  setBusy(button, true, 'Deleting…');
  try {
    await apiFetch(`/api/v1/admin/roles/${enc(role.name)}`, { method: 'DELETE', csrf: state.csrf });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  announce($('roles-status'), `Deleted the role ${role.name}.`);
  await loadRoles();
  if (state.users.loaded && holders > 0) await loadUsers();
  $('roles-heading').focus();
}

// ----- access levels -------------------------------------------------------------------

function levelRow(level) {
  const features = Array.isArray(level.features) ? level.features : [];
  const isDefault = level.name === state.defaultLevel;
  let actions = null;
  if (can('access_levels.write')) {
    const edit = el('button', { type: 'button', class: 'button button-secondary button-small edit-level', text: 'Edit', 'aria-label': `Edit the access level ${level.name}` });
    edit.addEventListener('click', () => editLevel(level));
    // The API refuses to delete a level someone has, or the one new users get.
    let remove = null;
    if (!isDefault && level.users === 0) {
      remove = el('button', { type: 'button', class: 'button button-danger button-small delete-level', text: 'Delete', 'aria-label': `Delete the access level ${level.name}` });
      remove.addEventListener('click', () => deleteLevel(level, remove));
    }
    actions = el('td', { class: 'actions' }, el('div', { class: 'action-group' }, edit, remove));
  }
  return el('tr', { dataset: { level: level.name } },
    el('th', { scope: 'row' },
      el('span', { class: 'cell-title', text: level.name }),
      isDefault && [' ', badge('Default')],
      level.description && el('span', { class: 'cell-sub', text: level.description }),
    ),
    el('td', {}, features.length
      ? el('ul', { class: 'chip-list' }, features.map((f) => el('li', { class: 'chip', text: f })))
      : el('span', { class: 'muted', text: 'None' })),
    el('td', {}, el('ul', { class: 'plain-list' },
      el('li', { title: `${level.cpu_millicores} millicores` }, `${cpu(level.cpu_millicores)}`),
      el('li', {}, `${mebibytes(level.memory_mib)} memory`),
      el('li', {}, `${mebibytes(level.storage_mib)} storage`),
      el('li', {}, `Stops after ${duration(level.idle_timeout_seconds)} idle`),
    )),
    el('td', {}, el('ul', { class: 'plain-list' },
      el('li', {}, `Uploads up to ${mebibytes(level.max_upload_mib)}`),
      el('li', {}, `${count(level.ai_tokens_per_day)} AI tokens a day`),
      el('li', {}, `${count(level.read_requests_per_minute)} reads, ${count(level.write_requests_per_minute)} writes a minute`),
    )),
    el('td', { class: 'num' }, count(level.users)),
    actions,
  );
}

function renderLevels() {
  const levels = state.levels ?? [];
  $('levels-body').replaceChildren(...levels.map(levelRow));
  $('levels-wrap').hidden = levels.length === 0;
}

async function loadLevels() {
  const alert = $('levels-alert');
  clearAlert(alert);
  const before = levelNames().join();
  try {
    const data = await apiFetch('/api/v1/admin/access-levels');
    state.levels = Array.isArray(data?.access_levels) ? data.access_levels : [];
    state.defaultLevel = typeof data?.default === 'string' ? data.default : '';
    renderLevels();
  } catch (err) {
    reportError(err, alert);
    return;
  }
  if (levelNames().join() !== before) {
    renderLevelFilter();
    renderFeatureChoices();
    if (state.users.loaded) renderUsers();
  }
}

const LEVEL_NUMBERS = [
  ['level-cpu', 'cpu_millicores', 'CPU'],
  ['level-memory', 'memory_mib', 'Memory'],
  ['level-storage', 'storage_mib', 'Storage'],
  ['level-upload', 'max_upload_mib', 'Largest upload'],
  ['level-ai', 'ai_tokens_per_day', 'AI tokens per day'],
  ['level-reads', 'read_requests_per_minute', 'Reads per minute'],
  ['level-writes', 'write_requests_per_minute', 'Writes per minute'],
  ['level-idle', 'idle_timeout_seconds', 'Idle timeout'],
];

/** The feature checkboxes: the known features, plus any a level has that this page does not know. */
function renderFeatureChoices() {
  const box = $('level-features');
  if (!box) return;
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  const known = new Set(FEATURES);
  for (const level of state.levels ?? []) for (const f of level.features ?? []) known.add(f);
  box.replaceChildren(...[...known].map((feature) => el('label', { class: 'checkbox' },
    el('input', { type: 'checkbox', name: 'features', value: feature, checked: checked.has(feature) }),
    ' ',
    el('span', { text: feature }),
  )));
}

function fillLevelForm(level) {
  $('level-name').value = level?.name ?? '';
  $('level-description').value = level?.description ?? '';
  const features = new Set(level?.features ?? []);
  for (const input of $('level-features').querySelectorAll('input')) input.checked = features.has(input.value);
  for (const [id, field] of LEVEL_NUMBERS) $(id).value = level ? String(level[field] ?? '') : '';
}

function editLevel(level) {
  state.editingLevel = level.name;
  fillLevelForm(level);
  $('level-name').readOnly = true;
  $('level-form-heading').textContent = `Edit the access level ${level.name}`;
  $('level-save').textContent = 'Save changes';
  $('level-cancel').textContent = 'Cancel';
  $('level-form-heading').scrollIntoView({ block: 'start' });
  $('level-description').focus();
}

function resetLevelForm() {
  state.editingLevel = null;
  fillLevelForm(null);
  $('level-name').readOnly = false;
  $('level-form-heading').textContent = 'New access level';
  $('level-save').textContent = 'Create level';
  $('level-cancel').textContent = 'Clear';
}

/** The level form as a request body, or null after saying what is wrong. */
function readLevelForm(alert) {
  const body = {
    description: $('level-description').value.trim(),
    features: [...$('level-features').querySelectorAll('input:checked')].map((i) => i.value),
  };
  for (const [id, field, label] of LEVEL_NUMBERS) {
    const input = $(id);
    const value = Number(input.value);
    if (input.value.trim() === '' || !input.checkValidity() || !Number.isSafeInteger(value)) {
      const max = input.max ? ` to ${numberFormat.format(Number(input.max))}` : ' or more';
      showAlert(alert, `${label} must be a whole number from ${numberFormat.format(Number(input.min))}${max}.`);
      input.focus();
      return null;
    }
    body[field] = value;
  }
  return body;
}

async function saveLevel(event) {
  event.preventDefault();
  const alert = $('levels-alert');
  clearAlert(alert);
  const editing = state.editingLevel;
  const name = editing ?? $('level-name').value.trim();
  if (!NAME_RE.test(name)) {
    showAlert(alert, 'An access level’s name is 1 to 32 lowercase letters, digits, “-” or “_”, starting with a letter.');
    $('level-name').focus();
    return;
  }
  const body = readLevelForm(alert);
  if (!body) return;

  const button = $('level-save');
  setBusy(button, true, 'Saving…');
  try {
    if (editing) {
      await apiFetch(`/api/v1/admin/access-levels/${enc(name)}`, { method: 'PUT', body, csrf: state.csrf });
    } else {
      await apiFetch('/api/v1/admin/access-levels', { method: 'POST', body: { name, ...body }, csrf: state.csrf });
    }
  } catch (err) {
    reportError(err, alert);
    return;
  } finally {
    setBusy(button, false);
  }
  resetLevelForm();
  announce($('levels-status'), editing ? `Saved the access level ${name}.` : `Created the access level ${name}.`);
  await Promise.all([loadLevels(), can('fleet.read') && loadFleet()]);
  $('levels-heading').focus();
}

async function deleteLevel(level, button) {
  if (!confirm(`Delete the access level “${level.name}”?`)) return;
  const alert = $('levels-alert');
  clearAlert(alert);
  setBusy(button, true, 'Deleting…');
  try {
    await apiFetch(`/api/v1/admin/access-levels/${enc(level.name)}`, { method: 'DELETE', csrf: state.csrf });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  if (state.editingLevel === level.name) resetLevelForm();
  announce($('levels-status'), `Deleted the access level ${level.name}.`);
  await Promise.all([loadLevels(), can('fleet.read') && loadFleet()]);
  $('levels-heading').focus();
}

// ----- audit log -----------------------------------------------------------------------

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

function auditRow(record) {
  const detail = record.detail && typeof record.detail === 'object' && Object.keys(record.detail).length
    ? el('code', { class: 'detail-json', text: JSON.stringify(record.detail) })
    : null;
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

async function loadAudit() {
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

function submitAudit(event) {
  event?.preventDefault();
  const filter = readAuditForm($('audit-alert'));
  if (!filter) return;
  state.audit = { filter, before: null, previous: [], next: null };
  loadAudit();
}

function olderAudit() {
  if (state.audit.next == null) return;
  state.audit.previous.push(state.audit.before);
  state.audit.before = state.audit.next;
  loadAudit().then(() => $('audit-heading').focus());
}

function newestAudit() {
  state.audit.previous = [];
  state.audit.before = null;
  loadAudit();
}

// ----- session -------------------------------------------------------------------------

async function signOut() {
  const alert = $('page-alert');
  const button = $('sign-out');
  clearAlert(alert);
  setBusy(button, true, 'Signing out…');
  try {
    await apiFetch('/auth/logout', { method: 'POST', csrf: state.csrf });
  } catch (err) {
    // 401: the session had already ended, which is where signing out leads anyway.
    if (!(err instanceof ApiError && err.status === 401)) {
      setBusy(button, false);
      showAlert(alert, describeError(err));
      return;
    }
  }
  location.assign('/login');
}

// ----- start ---------------------------------------------------------------------------

function wireEvents() {
  $('sign-out').addEventListener('click', signOut);
  if (can('fleet.read')) $('fleet-refresh').addEventListener('click', loadFleet);
  if (can('users.read')) {
    $('user-search-form').addEventListener('submit', searchUsers);
    $('users-prev').addEventListener('click', () => { state.users.page -= 1; loadUsers().then(() => $('users-heading').focus()); });
    $('users-next').addEventListener('click', () => { state.users.page += 1; loadUsers().then(() => $('users-heading').focus()); });
  }
  if (can('roles.read') && can('roles.write')) {
    $('role-form').addEventListener('submit', saveRole);
    $('role-form').addEventListener('reset', resetRoleForm);
  }
  if (can('access_levels.read') && can('access_levels.write')) {
    renderFeatureChoices();
    $('level-form').addEventListener('submit', saveLevel);
    $('level-cancel').addEventListener('click', () => {
      resetLevelForm();
      $('level-name').focus();
    });
  }
  if (can('audit.read')) {
    $('audit-form').addEventListener('submit', submitAudit);
    $('audit-form').addEventListener('reset', () => setTimeout(submitAudit));
    $('audit-older').addEventListener('click', olderAudit);
    $('audit-newest').addEventListener('click', newestAudit);
  }
}

// ----- sign-in methods ------------------------------------------------------------------

async function loadProviders() {
  const status = $('providers-status');
  const alert = $('providers-alert');
  clearAlert(alert);
  status.textContent = 'Loading the sign-in methods…';
  try {
    const list = await apiFetch('/api/v1/admin/providers');
    const providers = Array.isArray(list) ? list : [];
    const dash = () => el('span', { class: 'muted', text: '—' });
    $('providers-body').replaceChildren(...providers.map((p) => el('tr', {},
      el('td', {}, el('code', { text: p.id })),
      el('td', { text: p.kind }),
      el('td', { text: p.display_name }),
      el('td', {}, p.issuer ? el('code', { text: p.issuer }) : dash()),
      el('td', {}, p.client_id ? el('code', { text: p.client_id }) : dash()),
      el('td', {}, p.registration_open == null ? dash() : (p.registration_open ? 'Open' : 'Closed')),
    )));
    $('providers-wrap').hidden = providers.length === 0;
    status.textContent = providers.length === 0 ? 'No sign-in method is configured.' : '';
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
  }
}

async function init() {
  let me;
  try {
    me = await apiFetch('/api/v1/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      goToLogin();
      return;
    }
    $('page-status').textContent = '';
    showAlert($('page-alert'), `${describeError(err)} Reload the page to try again.`);
    return;
  }
  state.me = me ?? {};
  state.csrf = me?.csrf_token ?? '';
  state.caps = new Set(Array.isArray(me?.capabilities) ? me.capabilities : []);
  renderHeader(state.me);
  $('sign-out').disabled = false;
  $('page-status').textContent = '';
  $('page-status').hidden = true;

  if (!can('admin_console')) {
    // The roles changed since the page was served.
    showAlert($('page-alert'), 'Your roles no longer include the admin console. Ask an administrator if you need it.');
    return;
  }
  // The forms to write need the lists they edit.
  if (!can('roles.read')) $('role-form')?.remove();
  if (!can('access_levels.read')) $('level-form')?.remove();
  applyCapabilities();
  wireEvents();
  $('page-content').hidden = false;

  const lookups = Promise.all([
    can('roles.read') && loadRoles(),
    can('access_levels.read') && loadLevels(),
  ]);
  await Promise.all([
    can('fleet.read') && loadFleet(),
    // The user rows offer roles and levels: load those first.
    can('users.read') && lookups.then(loadUsers),
    can('audit.read') && loadAudit(),
    can('providers.read') && loadProviders(),
    lookups,
  ]);
}

init();
