// sites.js — the dashboard's "Published sites" card: the user's sites with their public
// addresses, sizes and when they were published (issue #14). Publishing itself happens in
// the workspace (Export & publish), which copies the site out; this card only lists.

import { apiFetch, describeError, el, formatBytes as formatSize, showAlert, timeEl } from './api.js';

export async function initSites() {
  const list = document.getElementById('sites-list');
  const empty = document.getElementById('sites-empty');
  const alert = document.getElementById('sites-alert');
  const total = document.getElementById('sites-total');
  try {
    const { sites, bytes } = await apiFetch('/api/v1/sites');
    list.replaceChildren(...sites.map((site) => el('li', { 'data-site': site.name },
      el('a', { class: 'site-url', href: site.url, target: '_blank', rel: 'noopener', text: site.url }),
      el('span', { class: 'muted', text: ` — ${formatSize(site.bytes)}, published ` }),
      timeEl(site.published_at))));
    empty.hidden = sites.length > 0;
    total.textContent = sites.length ? `They take ${formatSize(bytes)} of your storage.` : '';
  } catch (err) {
    showAlert(alert, describeError(err));
  }
}
