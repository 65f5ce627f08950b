// login.js — the sign-in page: lists the identity providers from /auth/providers (in order),
// runs the local e-mail/password sign-in and registration forms, and sends the browser on to
// return_to (a same-origin path only) once signed in.
import {
  apiFetch, ApiError, clearAlert, clearFieldErrors, describeError, el, fieldErrors, safeReturnTo, setBusy,
  showAlert,
} from './api.js';

const PASSWORD_MIN = 12;
const PASSWORD_MAX = 128;
const SVG_NS = 'http://www.w3.org/2000/svg';
const GITHUB_MARK = 'M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z';

const params = new URLSearchParams(location.search);
const returnTo = safeReturnTo(params.get('return_to'));
const errorText = params.get('error')?.slice(0, 500) ?? '';
const invitationCode = params.get('invitation')?.trim().slice(0, 100) ?? '';
const verified = params.get('verified') === '1';

const $ = (id) => document.getElementById(id);
const alertBox = $('alert');
const notice = $('notice');
const providersStatus = $('providers-status');
const providerList = $('providers');
const divider = $('local-divider');
const signinForm = $('signin-form');
const signinButton = $('local-signin');
const registerForm = $('register-form');
const registerButton = $('local-register');
const registerToggle = $('register-toggle');
const passwordInput = $('register-password');
const confirmInput = $('register-confirm');

/** `/auth/login/{id}?return_to=…`; "/" stays readable, everything else is encoded. */
function providerHref(id) {
  const target = encodeURIComponent(returnTo).replace(/%2F/gi, '/');
  return `/auth/login/${encodeURIComponent(id)}?return_to=${target}`;
}

function providerIcon(provider, label) {
  if (provider.kind === 'github') {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 16 16');
    svg.setAttribute('class', 'provider-icon');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('fill', 'currentColor');
    path.setAttribute('d', GITHUB_MARK);
    svg.append(path);
    return svg;
  }
  const initial = [...label.trim()][0]?.toUpperCase() ?? '?';
  return el('span', { class: 'provider-icon provider-initial', 'aria-hidden': 'true', text: initial });
}

function providerButton(provider) {
  const label = typeof provider.display_name === 'string' && provider.display_name.trim()
    ? provider.display_name.trim()
    : provider.id;
  const kindClass = String(provider.kind ?? '').toLowerCase().replace(/[^a-z0-9-]/g, '');
  return el('a', {
    class: ['provider-button', kindClass && `provider-${kindClass}`],
    href: providerHref(provider.id),
    dataset: { provider: provider.id },
  }, providerIcon(provider, label), el('span', { text: `Continue with ${label}` }));
}

function renderProviders(providers) {
  const valid = providers.filter((p) => p && typeof p.id === 'string' && p.id !== '');
  // Every provider that is not the local account is a redirect to an external sign-in.
  const redirects = valid.filter((p) => p.kind !== 'local');
  const local = valid.find((p) => p.kind === 'local');

  providerList.replaceChildren(...redirects.map(providerButton));
  providerList.hidden = redirects.length === 0;

  if (local) {
    signinForm.hidden = false;
    divider.hidden = redirects.length === 0;
    registerToggle.hidden = local.registration_open !== true;
    const invitation = $('invitation-field');
    invitation.hidden = local.invitation_required !== true;
    $('register-invitation').required = local.invitation_required === true;
    if (invitationCode) $('register-invitation').value = invitationCode;
    if (local.registration_open === true && location.hash === '#register') showView('register', false);
  }

  if (valid.length === 0) {
    providersStatus.textContent = 'No sign-in methods are configured. Please contact your administrator.';
  } else {
    providersStatus.textContent = '';
    providersStatus.hidden = true;
  }
}

function renderProvidersError(err) {
  showAlert(alertBox, `Could not load the sign-in options. ${describeError(err)}`);
  const retry = el('button', {
    type: 'button',
    class: 'button button-secondary',
    text: 'Try again',
    on: {
      click: async () => {
        clearAlert(alertBox);
        providersStatus.textContent = 'Loading sign-in options…';
        try {
          renderProviders(await loadProviders());
        } catch (again) {
          renderProvidersError(again);
        }
      },
    },
  });
  providersStatus.replaceChildren(retry);
}

async function loadProviders() {
  const providers = await apiFetch('/auth/providers');
  return Array.isArray(providers) ? providers : [];
}

async function isSignedIn() {
  try {
    await apiFetch('/api/v1/me');
    return true;
  } catch {
    return false;
  }
}

function showView(view, focus = true) {
  const register = view === 'register';
  signinForm.hidden = register;
  registerForm.hidden = !register;
  // The page says what it is for in each mode (issue #14).
  $('page-title').textContent = register ? 'Create an account' : 'Sign in';
  const lead = document.querySelector('main .lead');
  if (lead) {
    lead.textContent = register
      ? 'Get your own workspace, where you build and publish your sites.'
      : 'Sign in to reach your workspace, your account and your API tokens.';
  }
  document.title = `${register ? 'Create an account' : 'Sign in'} — WebSplat`;
  clearAlert(alertBox);
  history.replaceState(null, '', `${location.pathname}${location.search}${register ? '#register' : ''}`);
  if (focus) (register ? $('register-name') : $('signin-email')).focus();
}

function codePoints(value) {
  return [...value].length;
}

function checkPasswords() {
  const length = codePoints(passwordInput.value);
  passwordInput.setCustomValidity(
    length > 0 && (length < PASSWORD_MIN || length > PASSWORD_MAX)
      ? `Use ${PASSWORD_MIN} to ${PASSWORD_MAX} characters (currently ${length}).`
      : '',
  );
  confirmInput.setCustomValidity(
    confirmInput.value && confirmInput.value !== passwordInput.value ? 'The passwords do not match.' : '',
  );
}

/** Keeps a button disabled, with a countdown, until a rate limit has passed. */
function cooldown(button, seconds) {
  const label = button.textContent;
  let remaining = Math.min(Math.ceil(seconds), 600);
  button.disabled = true;
  const tick = () => {
    if (remaining <= 0) {
      button.textContent = label;
      button.disabled = false;
      return;
    }
    button.textContent = `Retry in ${remaining} s`;
    remaining -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

/** Says what went wrong: beside the field it is about, or in the banner above. */
function reportFailure(form, button, err, names) {
  setBusy(button, false);
  if (!(err instanceof ApiError && fieldErrors(form, err, names))) showAlert(alertBox, describeError(err));
  if (err instanceof ApiError && err.status === 429 && err.retryAfter > 0) cooldown(button, err.retryAfter);
}

/**
 * Sends a form; a mistake in one field is said beside that field (`names` maps the API's
 * field names to the form's), anything else in the banner above.
 */
async function submitLocal(form, button, busyLabel, path, body, onFailure, names = {}) {
  clearAlert(alertBox);
  clearFieldErrors(form);
  setBusy(button, true, busyLabel);
  try {
    await apiFetch(path, { method: 'POST', body });
    // Stay busy while the browser navigates away, so the form cannot be sent twice.
    location.assign(returnTo);
  } catch (err) {
    reportFailure(form, button, err, names);
    onFailure?.();
  }
}

/**
 * Registers. The platform answers the same for a new address and a taken one: either
 * "check your mail" (the page says so and waits for the link), or "sign in now", which the
 * page does with the same address and password.
 */
async function register(body) {
  const names = { email: 'register_email', password: 'register_password', invitation: 'invitation' };
  clearAlert(alertBox);
  clearFieldErrors(registerForm);
  setBusy(registerButton, true, 'Creating account…');
  let accepted;
  try {
    accepted = await apiFetch('/api/v1/auth/register', { method: 'POST', body });
  } catch (err) {
    reportFailure(registerForm, registerButton, err, names);
    return;
  }
  if (accepted?.next === 'check_email') {
    setBusy(registerButton, false);
    registerForm.hidden = true;
    $('page-title').textContent = 'Check your e-mail';
    document.title = 'Check your e-mail — WebSplat';
    const lead = document.querySelector('main .lead');
    if (lead) lead.textContent = 'One more step before you can sign in.';
    notice.replaceChildren(String(accepted.message ?? 'We sent you a link. Follow it to finish creating your account.'));
    notice.hidden = false;
    return;
  }
  try {
    await apiFetch('/api/v1/auth/login', { method: 'POST', body: { email: body.email, password: body.password } });
    location.assign(returnTo);
  } catch (err) {
    setBusy(registerButton, false);
    if (err instanceof ApiError && err.status === 401) {
      showAlert(alertBox, 'We could not sign you in with this e-mail address and password. If you already have an account, sign in with its password instead.');
    } else {
      reportFailure(registerForm, registerButton, err, names);
    }
  }
}

signinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const { email, password } = signinForm.elements;
  submitLocal(signinForm, signinButton, 'Signing in…', '/api/v1/auth/login', {
    email: email.value.trim(),
    password: password.value,
  }, () => {
    password.value = '';
    password.focus();
  });
});

registerForm.addEventListener('submit', (event) => {
  event.preventDefault();
  checkPasswords();
  if (!registerForm.reportValidity()) return;
  const displayName = $('register-name').value.trim();
  if (!displayName) {
    fieldErrors(registerForm, { field: 'display_name', message: 'Please enter a display name.' });
    return;
  }
  const invitation = $('register-invitation').value.trim();
  register({
    email: $('register-email').value.trim(),
    password: passwordInput.value,
    display_name: displayName,
    ...(invitation && !$('invitation-field').hidden ? { invitation } : {}),
  });
});

passwordInput.addEventListener('input', checkPasswords);
confirmInput.addEventListener('input', checkPasswords);
$('show-register').addEventListener('click', () => showView('register'));
$('show-signin').addEventListener('click', () => showView('signin'));

async function init() {
  if (errorText) showAlert(alertBox, errorText);
  if (verified) {
    notice.replaceChildren('Your e-mail address is confirmed. Sign in to continue.');
    notice.hidden = false;
  }

  const [signedIn, providers] = await Promise.all([
    isSignedIn(),
    loadProviders().catch((err) => err),
  ]);

  if (signedIn) {
    if (!errorText) {
      location.replace(returnTo);
      return;
    }
    // Keep the error readable rather than navigating away from it.
    notice.replaceChildren('You are already signed in. ', el('a', { href: returnTo, text: 'Continue' }));
    notice.hidden = false;
  }

  if (providers instanceof Error) renderProvidersError(providers);
  else renderProviders(providers);
}

init();
