// dashboard.js — the signed-in dashboard: shows the current user and their linked identities,
// their workspace (workspace.js), and lets them create API tokens (the secret is shown once), copy them and revoke them.
// Every state-changing request carries the session's CSRF token from /api/v1/me.
import { apiFetch, ApiError, clearAlert, describeError, el, formatDate, setBusy, showAlert, timeEl } from './api.js';
import { loadProjects } from './projects.js';
import { initSites } from './sites.js';
import { initWorkspace } from './workspace.js';

const LOGIN_URL = '/login?return_to=/dashboard';
const TOKEN_NAME_MAX = 64;
const EXPIRY_MAX_DAYS = 3650;

const $ = (id) => document.getElementById(id);
const ui = {
  pageAlert: $('page-alert'),
  pageStatus: $('page-status'),
  content: $('page-content'),
  userName: $('user-name'),
  userEmail: $('user-email'),
  signOut: $('sign-out'),
  adminNav: $('admin-nav'),
  accountId: $('account-id'),
  accountEmail: $('account-email'),
  accountCreated: $('account-created'),
  accountRoles: $('account-roles'),
  accountLevel: $('account-level'),
  identitiesWrap: $('identities-wrap'),
  identitiesBody: $('identities-body'),
  identitiesEmpty: $('identities-empty'),
  tokensHeading: $('tokens-heading'),
  tokenAlert: $('token-alert'),
  tokenForm: $('token-form'),
  tokenName: $('token-name'),
  tokenExpiry: $('token-expiry'),
  createToken: $('create-token'),
  tokensStatus: $('tokens-status'),
  tokensWrap: $('tokens-wrap'),
  tokensBody: $('tokens-body'),
  tokensEmpty: $('tokens-empty'),
  newToken: $('new-token'),
  newTokenName: $('new-token-name'),
  newTokenValue: $('new-token-value'),
  copyToken: $('copy-token'),
  copyStatus: $('copy-status'),
  dismissToken: $('dismiss-token'),
};

const state = {
  csrf: '',
  tokens: [],
  providerNames: new Map(),
};

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

// ----- account -------------------------------------------------------------------------

function providerLabel(id) {
  const name = state.providerNames.get(id);
  if (!name || name === id) return id ?? '';
  return [name, ' ', el('span', { class: 'muted', text: `(${id})` })];
}

function renderAccount(me) {
  ui.userName.textContent = me.display_name || me.email || 'Signed in';
  ui.userEmail.textContent = me.email ?? '';
  ui.userEmail.hidden = !me.email;

  // Only for those whose roles open the console (the page itself is refused to others).
  const capabilities = Array.isArray(me.capabilities) ? me.capabilities : [];
  ui.adminNav.hidden = !capabilities.includes('admin_console');
  document.getElementById('operator-link').hidden = !capabilities.includes('pools.read');

  ui.accountId.textContent = me.id ?? '';
  ui.accountEmail.replaceChildren(me.email || el('span', { class: 'muted', text: 'No e-mail address' }));
  ui.accountCreated.replaceChildren(timeEl(me.created_at));
  const roles = Array.isArray(me.roles) ? me.roles : [];
  ui.accountRoles.textContent = ['member', ...roles].join(', ');
  const level = me.access_level;
  if (level && typeof level === 'object') {
    const cores = (level.cpu_millicores / 1000).toLocaleString(undefined, { maximumFractionDigits: 2 });
    ui.accountLevel.replaceChildren(
      el('strong', { text: level.name }),
      el('span', {
        class: 'muted',
        text: ` — ${cores} CPU, ${level.memory_mib} MiB memory, ${level.storage_mib} MiB storage`,
      }),
    );
  } else {
    ui.accountLevel.replaceChildren(el('span', { class: 'muted', text: '—' }));
  }

  const identities = Array.isArray(me.identities) ? me.identities : [];
  ui.identitiesBody.replaceChildren(...identities.map((identity) => el('tr', {},
    el('td', {}, providerLabel(identity.provider)),
    el('td', {}, identity.email || el('span', { class: 'muted', text: '—' })),
    el('td', {}, timeEl(identity.created_at)),
    el('td', {}, timeEl(identity.last_login_at, 'Never')),
  )));
  ui.identitiesWrap.hidden = identities.length === 0;
  ui.identitiesEmpty.hidden = identities.length !== 0;
}

// ----- tokens --------------------------------------------------------------------------

function isExpired(token) {
  return Boolean(token.expires_at) && Date.parse(token.expires_at) <= Date.now();
}

function tokenRow(token) {
  const revoke = el('button', {
    type: 'button',
    class: 'button button-danger button-small',
    'aria-label': `Revoke token ${token.name}`,
    text: 'Revoke',
  });
  revoke.addEventListener('click', () => revokeToken(token, revoke));

  const expires = token.expires_at
    ? [timeEl(token.expires_at), isExpired(token) && [' ', el('span', { class: 'badge badge-danger', text: 'Expired' })]]
    : el('span', { class: 'muted', text: 'Never' });

  return el('tr', { dataset: { tokenId: token.id } },
    el('th', { scope: 'row' }, token.name),
    el('td', {}, el('code', { text: `${token.prefix ?? ''}…` })),
    el('td', {}, timeEl(token.created_at)),
    el('td', {}, expires),
    el('td', {}, timeEl(token.last_used_at, 'Never')),
    el('td', { class: 'actions' }, revoke),
  );
}

function renderTokens() {
  state.tokens.sort((a, b) => (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0));
  ui.tokensBody.replaceChildren(...state.tokens.map(tokenRow));
  const empty = state.tokens.length === 0;
  ui.tokensWrap.hidden = empty;
  ui.tokensEmpty.hidden = !empty;
}

async function loadTokens() {
  ui.tokensStatus.textContent = 'Loading tokens…';
  try {
    const data = await apiFetch('/api/v1/tokens');
    state.tokens = Array.isArray(data?.tokens) ? data.tokens : [];
    ui.tokensStatus.textContent = '';
    renderTokens();
  } catch (err) {
    ui.tokensStatus.textContent = '';
    reportError(err, ui.tokenAlert);
  }
}

/** Reads the create form; returns the request body, or null after showing what is wrong. */
function readTokenForm() {
  const name = ui.tokenName.value.trim();
  const nameLength = [...name].length;
  if (nameLength < 1 || nameLength > TOKEN_NAME_MAX) {
    showAlert(ui.tokenAlert, `Give the token a name of 1 to ${TOKEN_NAME_MAX} characters.`);
    ui.tokenName.focus();
    return null;
  }
  const body = { name };
  const rawDays = ui.tokenExpiry.value.trim();
  if (ui.tokenExpiry.validity.badInput || rawDays !== '') {
    const days = Number(rawDays);
    if (ui.tokenExpiry.validity.badInput || !Number.isInteger(days) || days < 1 || days > EXPIRY_MAX_DAYS) {
      showAlert(ui.tokenAlert, `Expiry must be a whole number of days from 1 to ${EXPIRY_MAX_DAYS}, or empty for no expiry.`);
      ui.tokenExpiry.focus();
      return null;
    }
    body.expires_in_days = days;
  }
  return body;
}

async function createToken(event) {
  event.preventDefault();
  clearAlert(ui.tokenAlert);
  const body = readTokenForm();
  if (!body) return;

  setBusy(ui.createToken, true, 'Creating…');
  try {
    const created = await apiFetch('/api/v1/tokens', { method: 'POST', body, csrf: state.csrf });
    const { token: secret, ...meta } = created ?? {};
    state.tokens = state.tokens.filter((t) => t.id !== meta.id);
    state.tokens.push(meta);
    renderTokens();
    ui.tokenForm.reset();
    if (typeof secret === 'string' && secret) showSecret(meta.name ?? body.name, secret);
    else showAlert(ui.tokenAlert, 'The token was created, but the server did not return its secret. Revoke it and try again.');
  } catch (err) {
    reportError(err, ui.tokenAlert);
  } finally {
    setBusy(ui.createToken, false);
  }
}

function showSecret(name, secret) {
  ui.newTokenName.textContent = name;
  ui.newTokenValue.value = secret;
  ui.copyStatus.textContent = '';
  ui.copyToken.textContent = 'Copy';
  ui.newToken.hidden = false;
  ui.newTokenValue.focus();
  ui.newTokenValue.select();
}

function hideSecret() {
  ui.newToken.hidden = true;
  ui.newTokenValue.value = '';
  ui.newTokenName.textContent = '';
  ui.copyStatus.textContent = '';
}

/** Clipboard API where available (secure contexts), else the selection + execCommand fallback. */
async function copyFromInput(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

async function copySecret() {
  const ok = await copyFromInput(ui.newTokenValue);
  ui.copyStatus.textContent = ok
    ? 'Copied to the clipboard.'
    : 'Could not copy automatically: the token is selected, press Ctrl+C (⌘C on a Mac).';
  if (ok) {
    ui.copyToken.textContent = 'Copied';
    setTimeout(() => { ui.copyToken.textContent = 'Copy'; }, 2000);
  } else {
    ui.newTokenValue.focus();
    ui.newTokenValue.select();
  }
}

async function revokeToken(token, button) {
  const sure = confirm(`Revoke the token "${token.name}"?\n\nAnything that uses it will lose access immediately. This cannot be undone.`);
  if (!sure) return;

  clearAlert(ui.tokenAlert);
  setBusy(button, true, 'Revoking…');
  try {
    await apiFetch(`/api/v1/tokens/${encodeURIComponent(token.id)}`, { method: 'DELETE', csrf: state.csrf });
  } catch (err) {
    // 404: it is already gone, which is what the user asked for.
    if (!(err instanceof ApiError && err.status === 404)) {
      setBusy(button, false);
      reportError(err, ui.tokenAlert);
      return;
    }
  }
  state.tokens = state.tokens.filter((t) => t.id !== token.id);
  renderTokens();
  ui.tokensStatus.textContent = `Token “${token.name}” revoked.`;
  ui.tokensHeading.focus();
}

// ----- session -------------------------------------------------------------------------

async function signOut() {
  clearAlert(ui.pageAlert);
  setBusy(ui.signOut, true, 'Signing out…');
  try {
    await apiFetch('/auth/logout', { method: 'POST', csrf: state.csrf });
  } catch (err) {
    // 401: the session had already ended, which is where signing out leads anyway.
    if (!(err instanceof ApiError && err.status === 401)) {
      setBusy(ui.signOut, false);
      showAlert(ui.pageAlert, describeError(err));
      return;
    }
  }
  location.assign('/login');
}

async function loadProviderNames() {
  try {
    const providers = await apiFetch('/auth/providers');
    for (const p of Array.isArray(providers) ? providers : []) {
      if (p && typeof p.id === 'string') state.providerNames.set(p.id, p.display_name || p.id);
    }
  } catch {
    // Names are cosmetic: identities then show the provider id.
  }
}

async function init() {
  const providerNames = loadProviderNames();
  let me;
  try {
    me = await apiFetch('/api/v1/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      goToLogin();
      return;
    }
    ui.pageStatus.textContent = '';
    showAlert(ui.pageAlert, `${describeError(err)} Reload the page to try again.`);
    return;
  }
  await providerNames;

  state.csrf = me?.csrf_token ?? '';
  renderAccount(me ?? {});
  ui.signOut.disabled = false;
  ui.pageStatus.textContent = '';
  ui.pageStatus.hidden = true;
  ui.content.hidden = false;
  // The projects come from the running workspace: asked again once it is ready.
  initWorkspace(() => state.csrf, loadProjects);
  loadProjects();
  initSites();
  loadAiUsage();
  await loadTokens();
}

/** One line: the AI budget spent and left this period (GET /api/v1/me/ai-usage). */
async function loadAiUsage() {
  const line = document.getElementById('ai-usage');
  try {
    const u = await apiFetch('/api/v1/me/ai-usage');
    const n = (x) => Number(x ?? 0).toLocaleString();
    line.textContent = u.budget_tokens > 0
      ? `AI: ${n(u.used_tokens)} of ${n(u.budget_tokens)} tokens used today; ${n(u.remaining_tokens)} left, renewing ${formatDate(u.period_end)}.`
      : 'AI: your access level includes no AI use.';
    line.hidden = false;
  } catch {
    // The line is extra: without it the dashboard still works.
  }
}

ui.signOut.addEventListener('click', signOut);
ui.tokenForm.addEventListener('submit', createToken);
ui.copyToken.addEventListener('click', copySecret);
ui.dismissToken.addEventListener('click', () => {
  hideSecret();
  ui.tokenName.focus();
});

init();
