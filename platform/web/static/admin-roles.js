// admin-roles.js — the admin console's roles section: the roles with their permissions and
// holders, the form that defines or edits one, and deleting one.
import { apiFetch, clearAlert, el, setBusy, showAlert } from './api.js';
import {
  $, enc, state, sections, can, reportError, announce, grantableRoles, count, badge, MEMBER,
  NAME_RE, confirmInPage,
} from './admin-common.js';

const METHODS = ['*', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const SCOPES = ['own', 'any'];

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

export async function loadRoles() {
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
  if (state.users.loaded && grantableRoles().join() !== before) sections.renderUsers();
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

export function resetRoleForm() {
  state.editingRole = null;
  $('role-form-heading').textContent = 'Define a role';
}

export async function saveRole(event) {
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
  if (existed && state.editingRole !== name && !(await confirmInPage({
    title: `Replace the role “${name}”?`,
    message: 'A role of that name exists. Its description and permissions are replaced by these; every user who holds it gets the new permissions at once.',
    confirmLabel: 'Replace role',
  }))) return;

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
  if (!(await confirmInPage({
    title: `Delete the role “${role.name}”?`,
    message: [
      holders > 0
        ? `${count(holders)} user(s) hold it and lose what it allows at once.`
        : 'No user holds it.',
      'Its permissions are deleted with it and cannot be restored; no user, workspace or data is deleted.',
    ],
    confirmLabel: 'Delete role',
    danger: true,
  }))) return;
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
  if (state.users.loaded && holders > 0) await sections.loadUsers();
  $('roles-heading').focus();
}

Object.assign(sections, { loadRoles });
