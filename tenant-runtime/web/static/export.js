// export.js — the "Export & publish" tab: exports of the current version (a static-site
// zip, the pages as Markdown) and publishing it to /sites/{id}/. Each is a background job:
// its button shows the job's progress and steps, then the download (or the published site).

import { api, alertRegion, clearAlert, describeError, el, formatBytes, refreshUsage, setBusy, showAlert, timeEl } from './api.js';
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

  panel.replaceChildren(el('div', { class: 'grid-2' },
    el('section', { class: 'card', 'aria-labelledby': 'export-title' },
      el('h2', { id: 'export-title', text: 'Export' }),
      el('p', { class: 'muted', text: `Exports of version ${ctx.project?.head_version ?? ''}, the current one: the static site is every file, ready for any web host; the Markdown is for a CMS or a static-site generator.` }),
      site.nodes, markdown.nodes),
    el('section', { class: 'card', 'aria-labelledby': 'publish-title' },
      el('h2', { id: 'publish-title', text: 'Publish' }),
      el('p', { class: 'muted', text: 'Publishing replaces the published site with the current version in one step. The site is served sandboxed from this workspace.' }),
      publish.nodes)));

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
