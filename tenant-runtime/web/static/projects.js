// projects.js — the project list: create, open, delete (after confirmation).

import {
  api, alertRegion, clearAlert, clearFieldErrors, confirmDialog, describeError, el, field,
  fieldErrors, refreshUsage, setBusy, showAlert, timeEl, toast,
} from './api.js';

const PER_PAGE = 24;

export async function render(container) {
  let page = 1;
  const alert = alertRegion('projects-alert');
  const nameInput = el('input', {
    type: 'text', id: 'new-project-name', name: 'name', required: true, maxlength: '100',
    autocomplete: 'off', placeholder: 'e.g. Corner Bakery',
  });
  const createButton = el('button', { type: 'submit', id: 'create-project', class: 'primary', text: 'Create project' });
  const form = el('form', { id: 'new-project-form', class: 'inline-form', novalidate: true },
    field('New project name', nameInput),
    createButton);
  const list = el('ul', { id: 'project-list', class: 'project-grid', 'aria-live': 'polite' });
  const pager = el('nav', { class: 'pager', 'aria-label': 'Project pages' });

  container.replaceChildren(
    el('div', { class: 'view-head' }, el('h1', { tabindex: '-1', text: 'Your projects' })),
    el('section', { class: 'card', 'aria-labelledby': 'new-project-title' },
      el('h2', { id: 'new-project-title', text: 'Start a website' }),
      el('p', { class: 'muted', text: 'A new project starts with one page. Next you can describe your site and have it generated, or edit the page yourself.' }),
      form),
    alert,
    el('section', { 'aria-label': 'Projects' }, list, pager),
  );

  async function load() {
    clearAlert(alert);
    let answer;
    try {
      answer = await api(`/api/v1/projects?page=${page}&per_page=${PER_PAGE}`);
    } catch (err) {
      showAlert(alert, describeError(err));
      return;
    }
    list.replaceChildren();
    if (!answer.projects.length) {
      list.append(el('li', { class: 'muted', id: 'no-projects', text: page === 1 ? 'No projects yet: create your first one above.' : 'No more projects.' }));
    }
    for (const project of answer.projects) list.append(card(project));
    pager.replaceChildren();
    const pages = Math.max(1, Math.ceil(answer.total / answer.per_page));
    if (pages > 1) {
      pager.append(
        el('button', { type: 'button', text: 'Previous', disabled: page <= 1, on: { click: () => { page -= 1; load(); } } }),
        el('span', { class: 'muted', text: `Page ${page} of ${pages}` }),
        el('button', { type: 'button', text: 'Next', disabled: page >= pages, on: { click: () => { page += 1; load(); } } }),
      );
    }
  }

  function card(project) {
    const href = `#/projects/${encodeURIComponent(project.id)}/edit`;
    const remove = el('button', { type: 'button', class: 'danger delete-project', text: 'Delete' });
    remove.setAttribute('aria-label', `Delete ${project.name}`);
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog(
        `Delete "${project.name}" with all its pages and its whole history? This cannot be undone.`,
        { confirmLabel: 'Delete project', danger: true, title: 'Delete this project?' },
      );
      if (!ok) return;
      setBusy(remove, true, 'Deleting…');
      try {
        await api(`/api/v1/projects/${encodeURIComponent(project.id)}`, { method: 'DELETE' });
        toast(`Deleted "${project.name}".`);
        refreshUsage();
        await load();
        nameInput.focus();
      } catch (err) {
        setBusy(remove, false);
        showAlert(alert, describeError(err));
      }
    });
    return el('li', { class: 'project-card', dataset: { id: project.id } },
      el('h2', null, el('a', { href, text: project.name })),
      el('p', { class: 'muted small' }, `Version ${project.head_version} · updated `, timeEl(project.updated_at)),
      el('div', { class: 'actions' },
        el('a', { class: 'button open-project', href, text: 'Open', 'aria-label': `Open ${project.name}` }),
        remove));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(alert);
    clearFieldErrors(form);
    const name = nameInput.value.trim();
    if (!name) {
      fieldErrors(form, { field: 'name', message: 'Give the project a name.' });
      return;
    }
    setBusy(createButton, true, 'Creating…');
    try {
      const project = await api('/api/v1/projects', { method: 'POST', json: { name } });
      refreshUsage();
      location.hash = `#/projects/${encodeURIComponent(project.id)}/generate`;
    } catch (err) {
      setBusy(createButton, false);
      if (!fieldErrors(form, err)) showAlert(alert, describeError(err));
    }
  });

  await load();
}
