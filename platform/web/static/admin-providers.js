// admin-providers.js — the admin console's sign-in methods: the configured identity
// providers, read from the configuration.
import { apiFetch, clearAlert, el } from './api.js';
import { $, reportError } from './admin-common.js';

/** How people register with local accounts: open, by invitation or closed, and whether
 *  they confirm their address by mail. */
function registration(p) {
  if (!p.registration_open) return 'Closed';
  const how = p.invitation_only ? 'By invitation' : 'Open';
  return p.email_verification ? `${how}, address confirmed by e-mail` : how;
}

export async function loadProviders() {
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
      el('td', {}, p.registration_open == null ? dash() : registration(p)),
    )));
    $('providers-wrap').hidden = providers.length === 0;
    status.textContent = providers.length === 0 ? 'No sign-in method is configured.' : '';
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
  }
}
