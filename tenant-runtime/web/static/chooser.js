// chooser.js — what the header's Chat and Analytics links open outside a project: chats and
// analytics belong to a project, so this lists the projects, each linking to its Chat or
// Analytics tab (the project opened last first). Inside a project the header links go
// straight to that project's tab (app.js).

import { api, alertRegion, describeError, el, showAlert, timeEl } from './api.js';

const KINDS = {
  chat: {
    title: 'Chat',
    intro: 'Chats belong to a project: talk about a site and the documents behind it. Choose the project to chat about.',
    action: 'Open chats',
  },
  analytics: {
    title: 'Analytics',
    intro: 'Each published site counts its own views, without cookies. Choose the project whose analytics to see.',
    action: 'Open analytics',
  },
};

const LAST_PROJECT_KEY = 'websplat-last-project';

/** Remembers the project opened last (for this tab). */
export function rememberProject(id) {
  try { sessionStorage.setItem(LAST_PROJECT_KEY, id); } catch { /* private mode */ }
}

function lastProject() {
  try { return sessionStorage.getItem(LAST_PROJECT_KEY); } catch { return null; }
}

export async function render(container, kind) {
  const info = KINDS[kind];
  const alert = alertRegion('chooser-alert');
  const list = el('ul', { id: 'chooser-list', class: 'plain-list chooser-list' });
  const more = el('p', { class: 'muted small', hidden: true });
  container.replaceChildren(el('section', { class: 'chooser', id: `choose-${kind}`, dataset: { kind } },
    el('div', { class: 'view-head' }, el('h1', { tabindex: '-1', text: info.title })),
    el('p', { class: 'muted', text: info.intro }),
    alert,
    el('div', { class: 'card' }, list, more)));

  let answer;
  try {
    answer = await api('/api/v1/projects?page=1&per_page=100');
  } catch (err) {
    showAlert(alert, describeError(err));
    return null;
  }
  const last = lastProject();
  const projects = [...answer.projects].sort((a, b) => (b.id === last) - (a.id === last));
  if (!projects.length) {
    list.append(el('li', { id: 'chooser-empty', class: 'muted' },
      'No projects yet. ', el('a', { href: '#/projects', text: 'Create your first project' }), '.'));
  }
  for (const project of projects) {
    list.append(el('li', { class: 'chooser-item', dataset: { id: project.id } },
      el('a', { href: `#/projects/${encodeURIComponent(project.id)}/${kind}`, class: 'chooser-link' },
        el('span', { class: 'chooser-name', text: project.name }),
        el('span', { class: 'visually-hidden', text: ` — ${info.action}` })),
      project.id === last ? el('span', { class: 'badge badge-accent', text: 'opened last' }) : null,
      el('span', { class: 'muted small' }, 'Changed ', timeEl(project.updated_at))));
  }
  if (answer.total > projects.length) {
    more.hidden = false;
    more.replaceChildren(`Showing the ${projects.length} projects changed most recently; open others from `,
      el('a', { href: '#/projects', text: 'Projects' }), '.');
  }
  return null;
}
