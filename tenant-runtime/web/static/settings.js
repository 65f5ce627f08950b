// settings.js — the Settings tab: the project's name and what the site says about itself
// (title, description, keywords, theme, language, site URL); and deleting the project.

import {
  api, alertRegion, clearAlert, clearFieldErrors, confirmDialog, describeError, el, field,
  fieldErrors, refreshUsage, setBusy, showAlert, splitList, toast,
} from './api.js';

const FIELD_NAMES = {
  'settings.title': 'title',
  'settings.description': 'description',
  'settings.keywords': 'keywords',
  'settings.theme': 'theme',
  'settings.language': 'language',
  'settings.site_url': 'site_url',
};

export async function render(panel, ctx) {
  const id = encodeURIComponent(ctx.id);
  const project = ctx.project;
  const s = project.settings ?? {};
  const alert = alertRegion('settings-alert');

  const name = el('input', { type: 'text', id: 'settings-name', name: 'name', required: true, maxlength: '100', value: project.name });
  const title = el('input', { type: 'text', id: 'settings-title', name: 'title', maxlength: '200', value: s.title ?? '' });
  const description = el('textarea', { id: 'settings-description', name: 'description', rows: '3', maxlength: '1000' });
  description.value = s.description ?? '';
  const keywords = el('input', { type: 'text', id: 'settings-keywords', name: 'keywords', value: (s.keywords ?? []).join(', ') });
  const theme = el('select', { id: 'settings-theme', name: 'theme' },
    ['light', 'dark', 'auto'].map((t) => el('option', { value: t, text: t, selected: s.theme === t })));
  const language = el('input', { type: 'text', id: 'settings-language', name: 'language', value: s.language ?? 'en', maxlength: '35' });
  const siteUrl = el('input', { type: 'url', id: 'settings-site-url', name: 'site_url', value: s.site_url ?? '', placeholder: 'https://bakery.example' });
  const save = el('button', { type: 'submit', id: 'save-settings', class: 'primary', text: 'Save settings' });
  const form = el('form', { id: 'settings-form', novalidate: true },
    field('Project name', name),
    field('Site title', title, 'Used by the generator and the SEO checks.'),
    field('Site description', description),
    field('Keywords', keywords, 'Comma-separated; the SEO report measures how the pages use them.'),
    el('div', { class: 'field-row' },
      field('Theme', theme),
      field('Language', language, 'A language tag such as en or pt-BR.')),
    field('Site URL', siteUrl, 'Where the published site will live; used for the sitemap and canonical links.'),
    el('div', { class: 'actions' }, save));

  const remove = el('button', { type: 'button', id: 'delete-project', class: 'danger', text: 'Delete this project' });

  panel.replaceChildren(
    el('section', { class: 'card', 'aria-labelledby': 'settings-heading' },
      el('h2', { id: 'settings-heading', text: 'Settings' }),
      el('p', { class: 'muted small', text: 'Changing the settings makes a new version, like editing a page.' }),
      alert, form),
    el('section', { class: 'card', 'aria-labelledby': 'danger-heading' },
      el('h2', { id: 'danger-heading', text: 'Delete' }),
      el('p', { class: 'muted', text: 'Deleting a project removes its pages and its whole history.' }),
      remove));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(alert);
    clearFieldErrors(form);
    const body = {
      name: name.value.trim(),
      settings: {
        title: title.value.trim(),
        description: description.value.trim(),
        keywords: splitList(keywords.value),
        theme: theme.value,
        language: language.value.trim(),
        site_url: siteUrl.value.trim(),
      },
    };
    if (!body.name) {
      fieldErrors(form, { field: 'name', message: 'The project needs a name.' });
      return;
    }
    setBusy(save, true, 'Saving…');
    try {
      const updated = await api(`/api/v1/projects/${id}`, { method: 'PATCH', json: body });
      ctx.setProject(updated);
      showAlert(alert, `Settings saved (version ${updated.head_version}).`, 'success');
    } catch (err) {
      if (!fieldErrors(form, err, FIELD_NAMES)) showAlert(alert, describeError(err));
    } finally {
      setBusy(save, false);
    }
  });

  remove.addEventListener('click', async () => {
    const ok = await confirmDialog(
      `Delete "${ctx.project.name}" with all its pages and its whole history? This cannot be undone.`,
      { confirmLabel: 'Delete project', danger: true, title: 'Delete this project?' },
    );
    if (!ok) return;
    setBusy(remove, true, 'Deleting…');
    try {
      await api(`/api/v1/projects/${id}`, { method: 'DELETE' });
      ctx.drafts.clear();
      toast(`Deleted "${ctx.project.name}".`);
      refreshUsage();
      location.hash = '#/projects';
    } catch (err) {
      setBusy(remove, false);
      showAlert(alert, describeError(err));
    }
  });
  return null;
}
