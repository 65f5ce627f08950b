// export.js — the "Export & publish" tab: downloads of the current version (a static-site
// zip, the pages as Markdown) and publishing it to /sites/{id}/.

import { api, alertRegion, clearAlert, describeError, el, refreshUsage, setBusy, showAlert } from './api.js';

export async function render(panel, ctx) {
  const id = encodeURIComponent(ctx.id);
  const alert = alertRegion('publish-alert');
  const publish = el('button', { type: 'button', id: 'publish', class: 'primary', text: 'Publish the current version' });
  const published = el('p', { id: 'publish-result', 'aria-live': 'polite' });

  panel.replaceChildren(el('div', { class: 'grid-2' },
    el('section', { class: 'card', 'aria-labelledby': 'export-title' },
      el('h2', { id: 'export-title', text: 'Export' }),
      el('p', { class: 'muted', text: `Downloads of version ${ctx.project?.head_version ?? ''}, the current one.` }),
      el('ul', null,
        el('li', null,
          el('a', { id: 'export-zip', href: `/api/v1/projects/${id}/export.zip`, download: '', text: 'Static site (.zip)' }),
          el('span', { class: 'muted small', text: ' — every file, ready for any web host' })),
        el('li', null,
          el('a', { id: 'export-markdown', href: `/api/v1/projects/${id}/export/markdown.zip`, download: '', text: 'Pages as Markdown (.zip)' }),
          el('span', { class: 'muted small', text: ' — for a CMS or a static-site generator' })))),
    el('section', { class: 'card', 'aria-labelledby': 'publish-title' },
      el('h2', { id: 'publish-title', text: 'Publish' }),
      el('p', { class: 'muted', text: 'Publishing replaces the published site with the current version in one step. The site is served sandboxed from this workspace.' }),
      el('div', { class: 'actions' }, publish),
      alert, published)));

  publish.addEventListener('click', async () => {
    clearAlert(alert);
    published.replaceChildren();
    setBusy(publish, true, 'Publishing…');
    try {
      const answer = await api(`/api/v1/projects/${id}/publish`, { method: 'POST' });
      // Only a path on this origin becomes a link.
      const url = typeof answer.url === 'string' && answer.url.startsWith('/') && !answer.url.startsWith('//') ? answer.url : null;
      published.replaceChildren(
        `Published version ${answer.version} (${answer.files} file${answer.files === 1 ? '' : 's'}). `,
        url ? el('a', { id: 'published-url', href: url, target: '_blank', rel: 'noopener', text: new URL(url, location.origin).href }) : null);
      refreshUsage();
    } catch (err) {
      showAlert(alert, describeError(err));
    } finally {
      setBusy(publish, false);
    }
  });
  return null;
}
