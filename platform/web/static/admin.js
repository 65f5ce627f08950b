// admin.js — the admin console: the fleet at a glance, users (search, roles, access level,
// disable/enable), roles (list, define, delete), access levels (list, create, edit, delete),
// the workspaces (stop, logs), the audit log and the sign-in methods, one module per
// section (admin-*.js), each on a page of its own (/admin, /admin/users, …: the server
// serves this document at each address and this module shows the section it names). The signed-in
// user's capabilities (GET /api/v1/me) decide which parts exist: every element marked
// data-needs="<capability>" is removed when the user lacks it, and rows render only the
// controls the API would accept from them. Text from the API is always set as text (api.js's
// el()), never parsed as HTML. This module starts the page: the header, the capabilities,
// the sections' events and first loads, and signing out.
import { apiFetch, ApiError, clearAlert, describeError, setBusy, showAlert } from './api.js';
import { $, can, goToLogin, state } from './admin-common.js';
import { loadAudit, newestAudit, olderAudit, submitAudit } from './admin-audit.js';
import { loadFleet } from './admin-fleet.js';
import { loadLevels, renderFeatureChoices, resetLevelForm, saveLevel } from './admin-levels.js';
import { loadProviders } from './admin-providers.js';
import { loadRoles, resetRoleForm, saveRole } from './admin-roles.js';
import { loadUsers, searchUsers } from './admin-users.js';
import { loadWorkspaces, wireWorkspaces } from './admin-workspaces.js';
import { loadInvitations, wireInvitations } from './admin-invitations.js';

/** The console's pages: address → the section it shows. */
const PAGES = {
  '/admin': 'fleet',
  '/admin/users': 'users',
  '/admin/roles': 'roles',
  '/admin/access-levels': 'access-levels',
  '/admin/workspaces': 'workspaces',
  '/admin/audit': 'audit',
  '/admin/sign-in-methods': 'providers',
  '/admin/invitations': 'invitations',
};

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

/**
 * Shows the section this page's address names and marks its link; the overview of someone
 * who may not see the fleet leads to their first page. Returns the section's id, or null.
 */
function showPage() {
  const path = location.pathname.replace(/\/+$/, '') || '/admin';
  const wanted = PAGES[path] ?? 'fleet';
  let section = $(wanted);
  if (!section && path === '/admin') {
    const first = $('admin-nav').querySelector('a[data-section]');
    if (first) {
      location.replace(first.getAttribute('href'));
      return null;
    }
  }
  for (const link of $('admin-nav').querySelectorAll('a')) {
    if (link.getAttribute('href') === path) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!section) {
    $('section-closed').hidden = !document.querySelector('.admin-section');
    return null;
  }
  section.hidden = false;
  const heading = section.querySelector('h2');
  if (heading) document.title = `${heading.textContent} — Admin console — WebSplat`;
  return wanted;
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
  if (can('workspaces.read')) wireWorkspaces();
  if (can('invitations.write')) wireInvitations();
  if (can('audit.read')) {
    $('audit-form').addEventListener('submit', submitAudit);
    $('audit-form').addEventListener('reset', () => setTimeout(submitAudit));
    $('audit-older').addEventListener('click', olderAudit);
    $('audit-newest').addEventListener('click', newestAudit);
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
  const page = showPage();
  $('page-content').hidden = false;
  if (!page) return;

  // Only this page's section loads; the users page also needs the roles and levels its
  // rows offer.
  const lookups = () => Promise.all([
    can('roles.read') && loadRoles(),
    can('access_levels.read') && loadLevels(),
  ]);
  const loaders = {
    fleet: loadFleet,
    users: () => lookups().then(loadUsers),
    roles: loadRoles,
    'access-levels': loadLevels,
    workspaces: loadWorkspaces,
    audit: loadAudit,
    providers: loadProviders,
    invitations: loadInvitations,
  };
  await loaders[page]();
}

init();
