// projects.js — the dashboard's "Your projects" card: the user's projects with when each
// was last edited and where it is published (GET /api/v1/workspace/projects, which asks the
// running workspace or gives the last list it told), each with a tile of its initials, and
// the recent activity those dates make (edits and publishes, newest first); a published
// project's tile shows its site's first picture. Text from the
// API is always set as text (api.js's el()).
import { apiFetch, describeError, el, formatDate, showAlert, timeEl } from './api.js';

const $ = (id) => document.getElementById(id);
/** How many events "Recent activity" lists. */
const ACTIVITY = 8;

function initials(name) {
  const words = String(name ?? '').trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[1][0] : (words[0] ?? '?').slice(0, 2)).toUpperCase();
}

/** A stable hue per project, so a tile keeps its colour. */
function hue(id) {
  let h = 0;
  for (const c of String(id)) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

/**
 * The project's tile: its initials, and over them the first picture of its published site
 * (GET /api/v1/sites/{name}/thumbnail) once that has loaded; a site that shows no picture
 * (404) keeps the initials.
 */
function projectTile(project, sites) {
  const tile = el('span', { class: ['project-tile', `hue-${Math.round(hue(project.id) / 30) % 12}`], 'aria-hidden': 'true', text: initials(project.name) });
  const site = sites.find((s) => typeof s?.name === 'string');
  if (!site) return tile;
  const picture = el('img', {
    class: 'project-thumb', alt: '', decoding: 'async',
    src: `/api/v1/sites/${encodeURIComponent(site.name)}/thumbnail`,
  });
  picture.addEventListener('load', () => tile.classList.add('has-thumb'));
  picture.addEventListener('error', () => picture.remove());
  tile.append(picture);
  return tile;
}

function projectItem(project) {
  const sites = Array.isArray(project.sites) ? project.sites : [];
  return el('li', { class: 'project-item', dataset: { project: project.id } },
    projectTile(project, sites),
    el('div', { class: 'project-body' },
      el('a', { class: 'project-name', href: '/workspace/open', text: project.name }),
      el('div', { class: 'muted small' }, 'Last edited ', timeEl(project.updated_at), ` · version ${project.version}`),
      sites.length
        ? el('ul', { class: 'plain-list project-sites' }, sites.map((site) => el('li', {},
          'Published at ', el('a', { class: 'site-url', href: site.url, target: '_blank', rel: 'noopener', text: site.url }))))
        : el('div', { class: 'muted small', text: 'Not published.' })));
}

function activity(projects) {
  const events = [];
  for (const p of projects) {
    events.push({ at: p.updated_at, text: `Edited “${p.name}”` });
    for (const site of p.sites ?? []) events.push({ at: site.published_at, text: `Published “${p.name}” at ${site.url}` });
  }
  return events
    .filter((e) => !Number.isNaN(new Date(e.at).getTime()))
    .sort((a, b) => new Date(b.at) - new Date(a.at))
    .slice(0, ACTIVITY);
}

export async function loadProjects() {
  const source = $('projects-source');
  let answer;
  try {
    answer = await apiFetch('/api/v1/workspace/projects');
  } catch (err) {
    source.textContent = '';
    showAlert($('projects-alert'), describeError(err));
    return;
  }
  const projects = Array.isArray(answer?.projects) ? answer.projects : [];
  if (answer.live) {
    source.textContent = answer.total > projects.length
      ? `The ${projects.length} edited last of your ${answer.total} projects.`
      : 'Everything in your workspace.';
  } else if (answer.as_of) {
    source.textContent = `As your workspace last told us, ${formatDate(answer.as_of)}. Open it for the latest.`;
  } else {
    source.textContent = 'Your projects show here once your workspace has run.';
  }
  $('projects-list').replaceChildren(...projects.map(projectItem));
  $('projects-empty').hidden = projects.length > 0 || !answer.as_of;
  const events = activity(projects);
  $('activity-list').replaceChildren(...events.map((e) => el('li', {}, timeEl(e.at), ' ', el('span', { text: e.text }))));
  $('activity-empty').hidden = events.length > 0;
}
