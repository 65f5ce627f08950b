// account.js — the platform's header in the workspace: the signed-in user's name and a
// menu leading to the dashboard, the admin console (for those who may) and signing out.
// The platform answers /_websplat/me and /_websplat/sign-out on this origin itself; a
// runtime on its own (no platform) answers 404 and the menu stays hidden.

import { api, el } from './api.js';

export async function initAccountMenu() {
  const root = document.getElementById('account-menu');
  if (!root) return;
  let me;
  try {
    me = await api('/_websplat/me');
  } catch {
    return;
  }
  const signOut = el('button', { type: 'button', id: 'account-sign-out', role: 'menuitem', class: 'menu-item', text: 'Sign out' });
  signOut.addEventListener('click', async () => {
    signOut.disabled = true;
    signOut.textContent = 'Signing out…';
    try {
      const answer = await api('/_websplat/sign-out', { method: 'POST' });
      location.assign(answer.sign_in_url ?? me.sign_in_url);
    } catch {
      location.assign(me.sign_in_url);
    }
  });
  const items = [
    el('li', { role: 'none' }, el('a', { id: 'account-dashboard', role: 'menuitem', class: 'menu-item', href: me.dashboard_url, text: 'Dashboard' })),
    me.admin_url && el('li', { role: 'none' }, el('a', { id: 'account-admin', role: 'menuitem', class: 'menu-item', href: me.admin_url, text: 'Admin' })),
    el('li', { role: 'none' }, signOut),
  ];
  const details = el('details', { class: 'account-details' },
    el('summary', { id: 'account-name', 'aria-label': `Account menu of ${me.display_name}`, text: me.display_name }),
    el('div', { class: 'account-popup' },
      me.email && el('p', { class: 'muted account-email', text: me.email }),
      el('ul', { role: 'menu', class: 'menu-list' }, items)));
  document.addEventListener('click', (event) => {
    if (details.open && !details.contains(event.target)) details.open = false;
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && details.open) {
      details.open = false;
      details.querySelector('summary')?.focus();
    }
  });
  root.replaceChildren(details);
  root.hidden = false;
}
