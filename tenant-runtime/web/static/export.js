// export.js — the "Export & publish" tab: exports of the current version (a static-site
// zip, the pages as Markdown), publishing it on the web under a name of the user's choice
// (the platform copies it out of the workspace and serves it to anyone at
// {name}.{sites domain}; asked same-origin at /_websplat/sites, which the platform answers
// itself), and a build inside this workspace at /sites/{id}/. Exports and the workspace
// build are background jobs: their buttons show the job's progress and steps, then the
// download (or the build).

import { api, alertRegion, clearAlert, clearFieldErrors, describeError, el, field, fieldErrors, formatBytes, refreshUsage, setBusy, showAlert, timeEl } from './api.js';
import { finished, followJob, progressCard } from './jobs.js';

/** A link only to a path on this origin. */
function localPath(value) {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') ? value : null;
}

export async function render(panel, ctx) {
  const id = encodeURIComponent(ctx.id);
  const stops = new Set();
  let disposed = false;

  /** One job-backed action: a button, its progress card and what it produced. */
  function action({ key, kind, label, title, busyLabel, start, done }) {
    const button = el('button', { type: 'button', id: `${key}-start`, class: 'primary', text: label });
    const alert = alertRegion(`${key}-alert`);
    const card = progressCard(key, title, 'Progress', { nested: true });
    const outcome = el('p', { id: `${key}-result`, 'aria-live': 'polite' });

    function follow(job) {
      if (!finished(job)) setBusy(button, true, busyLabel);
      outcome.replaceChildren();
      // A job that has already ended ends inside followJob(), before `stop` is set.
      let stop = null;
      stop = followJob(job, {
        onUpdate: (update) => { if (!disposed) card.show(update); },
        onEnd: (update) => {
          if (stop) stops.delete(stop);
          if (disposed) return;
          setBusy(button, false);
          if (update.status === 'failed') {
            showAlert(alert, `It failed: ${update.error ?? 'no reason was given'}.`);
          } else {
            done(update.result ?? {}, outcome, key);
            refreshUsage();
          }
        },
        onGone: () => {
          if (stop) stops.delete(stop);
          if (disposed) return;
          setBusy(button, false);
          showAlert(alert, 'The job is gone.');
        },
      });
      if (!finished(job)) stops.add(stop);
    }

    button.addEventListener('click', async () => {
      clearAlert(alert);
      setBusy(button, true, 'Starting…');
      try {
        follow(await start());
      } catch (err) {
        setBusy(button, false);
        showAlert(alert, describeError(err));
      }
    });
    return { kind, follow, nodes: [el('div', { class: 'actions' }, button), alert, card.root, outcome] };
  }

  const download = (result, outcome, key) => {
    const href = localPath(result.artifact);
    outcome.replaceChildren(
      href ? el('a', { id: `${key}-download`, class: 'button download', href, download: String(result.file_name ?? ''), text: `Download ${result.file_name ?? 'the zip'}` }) : 'The export is ready.',
      ` (${formatBytes(result.bytes)}, ${result.files} file${result.files === 1 ? '' : 's'} of version ${result.version}; kept until `,
      timeEl(result.expires_at),
      ' or the next export.)');
  };

  const site = action({
    key: 'export-site',
    kind: 'export_site',
    label: 'Export the static site (.zip)',
    title: 'Static site export',
    busyLabel: 'Exporting…',
    start: () => api(`/api/v1/projects/${id}/exports`, { method: 'POST', json: { format: 'site' } }),
    done: download,
  });
  const markdown = action({
    key: 'export-markdown',
    kind: 'export_markdown',
    label: 'Export the pages as Markdown (.zip)',
    title: 'Markdown export',
    busyLabel: 'Exporting…',
    start: () => api(`/api/v1/projects/${id}/exports`, { method: 'POST', json: { format: 'markdown' } }),
    done: download,
  });
  const publish = action({
    key: 'publish',
    kind: 'publish_site',
    label: 'Publish the current version',
    title: 'Publishing',
    busyLabel: 'Publishing…',
    start: () => api(`/api/v1/projects/${id}/publish`, { method: 'POST' }),
    done: (result, outcome) => {
      const url = localPath(result.url);
      outcome.replaceChildren(
        `Published version ${result.version} (${result.files} file${result.files === 1 ? '' : 's'}). `,
        url ? el('a', { id: 'published-url', href: url, target: '_blank', rel: 'noopener', text: new URL(url, location.origin).href }) : null);
    },
  });

  // Publishing on the web: the platform's own endpoint on this origin.
  const nameInput = el('input', {
    id: 'site-name', name: 'name', type: 'text', required: true, minlength: 3, maxlength: 40,
    autocomplete: 'off', spellcheck: 'false', pattern: '[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?',
    value: String(ctx.project?.name ?? 'my-site').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'my-site',
  });
  const webButton = el('button', { type: 'submit', id: 'site-publish', class: 'primary', text: 'Publish on the web' });
  const webAlert = alertRegion('site-alert');
  const webResult = el('p', { id: 'site-result', 'aria-live': 'polite' });
  const siteList = el('ul', { id: 'site-list', class: 'plain-list' });
  const webForm = el('form', { id: 'site-form', novalidate: true },
    field('Site name', nameInput, 'Your site’s address starts with it: letters, digits and dashes, 3 to 40. Publishing again under your name replaces the site at once.'),
    el('div', { class: 'actions' }, webButton), webAlert, webResult);

  function siteRow(site) {
    const takeDown = el('button', { type: 'button', class: 'small-button danger', 'data-site': site.name, text: 'Take down' });
    takeDown.addEventListener('click', async () => {
      clearAlert(webAlert);
      setBusy(takeDown, true, 'Taking down…');
      try {
        await api(`/_websplat/sites/${encodeURIComponent(site.name)}`, { method: 'DELETE' });
        webResult.textContent = `${site.name} is no longer published.`;
        await listSites();
      } catch (err) {
        setBusy(takeDown, false);
        showAlert(webAlert, describeError(err));
      }
    });
    return el('li', { 'data-site': site.name },
      el('a', { class: 'site-url', href: site.url, target: '_blank', rel: 'noopener', text: site.url }),
      ` — ${formatBytes(site.bytes)}, published `, timeEl(site.published_at), ' ', takeDown);
  }

  async function listSites() {
    try {
      const { sites } = await api('/_websplat/sites');
      const mine = sites.filter((s) => s.project === ctx.id);
      siteList.replaceChildren(...(mine.length ? mine.map(siteRow) : [el('li', { class: 'muted', text: 'This project is not published on the web yet.' })]));
    } catch (err) {
      siteList.replaceChildren(el('li', { class: 'muted', text: err.status === 404 ? 'Publishing on the web needs the WebSplat platform.' : describeError(err) }));
    }
  }

  webForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(webAlert);
    clearFieldErrors(webForm);
    webResult.replaceChildren();
    setBusy(webButton, true, 'Publishing…');
    try {
      const site = await api(`/_websplat/sites/${encodeURIComponent(nameInput.value.trim())}`, { method: 'PUT', json: { project: ctx.id } });
      webResult.replaceChildren('Published: ', el('a', { id: 'site-url', href: site.url, target: '_blank', rel: 'noopener', text: site.url }));
      await listSites();
    } catch (err) {
      if (!fieldErrors(webForm, err)) showAlert(webAlert, describeError(err));
    } finally {
      setBusy(webButton, false);
    }
  });

  panel.replaceChildren(el('div', { class: 'grid-2' },
    el('section', { class: 'card', 'aria-labelledby': 'site-title' },
      el('h2', { id: 'site-title', text: 'Publish on the web' }),
      el('p', { class: 'muted', text: 'The current version is copied out of your workspace and served to anyone, without cookies, at its own address — also while your workspace is stopped. Views count in Analytics.' }),
      webForm, el('h3', { text: 'Published addresses' }), siteList),
    el('section', { class: 'card', 'aria-labelledby': 'export-title' },
      el('h2', { id: 'export-title', text: 'Export' }),
      el('p', { class: 'muted', text: `Exports of version ${ctx.project?.head_version ?? ''}, the current one: the static site is every file, ready for any web host; the Markdown is for a CMS or a static-site generator.` }),
      site.nodes, markdown.nodes),
    el('section', { class: 'card', 'aria-labelledby': 'publish-title' },
      el('h2', { id: 'publish-title', text: 'Build in this workspace' }),
      el('p', { class: 'muted', text: 'A build of the current version inside this workspace, replaced in one step and served sandboxed here, for you only. To publish for everyone, use “Publish on the web”.' }),
      publish.nodes)));

  listSites();

  // The latest export or publish of this project is shown: followed if still under way
  // (e.g. started before a reload), with its download while that is kept.
  try {
    const { jobs } = await api('/api/v1/jobs');
    for (const a of [site, markdown, publish]) {
      const latest = jobs.find((j) => j.project_id === ctx.id && j.kind === a.kind);
      const expires = Date.parse(latest?.result?.expires_at ?? '');
      const current = latest && (!finished(latest)
        || (latest.status === 'succeeded' && (a.kind === 'publish_site' || expires > Date.now())));
      if (current && !disposed) a.follow(latest);
    }
  } catch { /* nothing to show */ }

  return () => {
    disposed = true;
    for (const stop of stops) stop();
    stops.clear();
  };
}
