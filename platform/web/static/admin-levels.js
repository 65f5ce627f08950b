// admin-levels.js — the admin console's access levels section: the levels with their
// features and limits, the form that creates or edits one, and deleting one.
import { apiFetch, clearAlert, el, setBusy, showAlert } from './api.js';
import {
  $, enc, numberFormat, state, sections, can, reportError, announce, levelNames, count, cpu,
  mebibytes, duration, badge, NAME_RE, confirmInPage,
} from './admin-common.js';

/** Workspace features the platform knows (platform/src/authz/access_levels.rs). */
const FEATURES = ['sites', 'documents', 'chat', 'seo', 'export', 'publish', 'analytics', 'agents', 'generation', 'web_search'];

function levelRow(level) {
  const features = Array.isArray(level.features) ? level.features : [];
  const isDefault = level.name === state.defaultLevel;
  let actions = null;
  if (can('access_levels.write')) {
    const edit = el('button', { type: 'button', class: 'button button-secondary button-small edit-level', text: 'Edit', 'aria-label': `Edit the access level ${level.name}` });
    edit.addEventListener('click', () => editLevel(level));
    // The API refuses to delete a level someone has, or the one new users get.
    let remove = null;
    if (!isDefault && level.users === 0) {
      remove = el('button', { type: 'button', class: 'button button-danger button-small delete-level', text: 'Delete', 'aria-label': `Delete the access level ${level.name}` });
      remove.addEventListener('click', () => deleteLevel(level, remove));
    }
    actions = el('td', { class: 'actions' }, el('div', { class: 'action-group' }, edit, remove));
  }
  return el('tr', { dataset: { level: level.name } },
    el('th', { scope: 'row' },
      el('span', { class: 'cell-title', text: level.name }),
      isDefault && [' ', badge('Default')],
      level.description && el('span', { class: 'cell-sub', text: level.description }),
    ),
    el('td', {}, features.length
      ? el('ul', { class: 'chip-list' }, features.map((f) => el('li', { class: 'chip', text: f })))
      : el('span', { class: 'muted', text: 'None' })),
    el('td', {}, el('ul', { class: 'plain-list' },
      el('li', { title: `${level.cpu_millicores} millicores` }, `${cpu(level.cpu_millicores)}`),
      el('li', {}, `${mebibytes(level.memory_mib)} memory`),
      el('li', {}, `${mebibytes(level.storage_mib)} storage`),
      el('li', {}, `Stops after ${duration(level.idle_timeout_seconds)} idle`),
      el('li', { class: 'level-cap' }, typeof level.max_running_workspaces === 'number'
        ? `At most ${count(level.max_running_workspaces)} workspaces running`
        : 'Running workspaces: the pool’s limit'),
    )),
    el('td', {}, el('ul', { class: 'plain-list' },
      el('li', {}, `Uploads up to ${mebibytes(level.max_upload_mib)}`),
      el('li', {}, `${count(level.ai_tokens_per_day)} AI tokens a day`),
      el('li', {}, `${count(level.read_requests_per_minute)} reads, ${count(level.write_requests_per_minute)} writes a minute`),
    )),
    el('td', { class: 'num' }, count(level.users)),
    actions,
  );
}

function renderLevels() {
  const levels = state.levels ?? [];
  $('levels-body').replaceChildren(...levels.map(levelRow));
  $('levels-wrap').hidden = levels.length === 0;
}

export async function loadLevels() {
  const alert = $('levels-alert');
  clearAlert(alert);
  const before = levelNames().join();
  try {
    const data = await apiFetch('/api/v1/admin/access-levels');
    state.levels = Array.isArray(data?.access_levels) ? data.access_levels : [];
    state.defaultLevel = typeof data?.default === 'string' ? data.default : '';
    renderLevels();
  } catch (err) {
    reportError(err, alert);
    return;
  }
  if (levelNames().join() !== before) {
    sections.renderLevelFilter();
    renderFeatureChoices();
    if (state.users.loaded) sections.renderUsers();
  }
}

const LEVEL_NUMBERS = [
  ['level-cpu', 'cpu_millicores', 'CPU'],
  ['level-memory', 'memory_mib', 'Memory'],
  ['level-storage', 'storage_mib', 'Storage'],
  ['level-upload', 'max_upload_mib', 'Largest upload'],
  ['level-ai', 'ai_tokens_per_day', 'AI tokens per day'],
  ['level-reads', 'read_requests_per_minute', 'Reads per minute'],
  ['level-writes', 'write_requests_per_minute', 'Writes per minute'],
  ['level-ai-calls', 'ai_requests_per_minute', 'AI calls per minute'],
  ['level-ai-rate', 'ai_tokens_per_minute', 'AI tokens per minute'],
  ['level-idle', 'idle_timeout_seconds', 'Idle timeout'],
  // Optional: empty means no cap of the level's own.
  ['level-cap', 'max_running_workspaces', 'Running workspaces at most', true],
];

/** The feature checkboxes: the known features, plus any a level has that this page does not know. */
export function renderFeatureChoices() {
  const box = $('level-features');
  if (!box) return;
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  const known = new Set(FEATURES);
  for (const level of state.levels ?? []) for (const f of level.features ?? []) known.add(f);
  box.replaceChildren(...[...known].map((feature) => el('label', { class: 'checkbox' },
    el('input', { type: 'checkbox', name: 'features', value: feature, checked: checked.has(feature) }),
    ' ',
    el('span', { text: feature }),
  )));
}

function fillLevelForm(level) {
  $('level-name').value = level?.name ?? '';
  $('level-description').value = level?.description ?? '';
  const features = new Set(level?.features ?? []);
  for (const input of $('level-features').querySelectorAll('input')) input.checked = features.has(input.value);
  for (const [id, field] of LEVEL_NUMBERS) $(id).value = level ? String(level[field] ?? '') : '';
}

function editLevel(level) {
  state.editingLevel = level.name;
  fillLevelForm(level);
  $('level-name').readOnly = true;
  $('level-form-heading').textContent = `Edit the access level ${level.name}`;
  $('level-save').textContent = 'Save changes';
  $('level-cancel').textContent = 'Cancel';
  $('level-form-heading').scrollIntoView({ block: 'start' });
  $('level-description').focus();
}

export function resetLevelForm() {
  state.editingLevel = null;
  fillLevelForm(null);
  $('level-name').readOnly = false;
  $('level-form-heading').textContent = 'New access level';
  $('level-save').textContent = 'Create level';
  $('level-cancel').textContent = 'Clear';
}

/** The level form as a request body, or null after saying what is wrong. */
function readLevelForm(alert) {
  const body = {
    description: $('level-description').value.trim(),
    features: [...$('level-features').querySelectorAll('input:checked')].map((i) => i.value),
  };
  for (const [id, field, label, optional] of LEVEL_NUMBERS) {
    const input = $(id);
    if (optional && input.value.trim() === '') {
      body[field] = null;
      continue;
    }
    const value = Number(input.value);
    if (input.value.trim() === '' || !input.checkValidity() || !Number.isSafeInteger(value)) {
      const max = input.max ? ` to ${numberFormat.format(Number(input.max))}` : ' or more';
      showAlert(alert, `${label} must be a whole number from ${numberFormat.format(Number(input.min))}${max}.`);
      input.focus();
      return null;
    }
    body[field] = value;
  }
  return body;
}

export async function saveLevel(event) {
  event.preventDefault();
  const alert = $('levels-alert');
  clearAlert(alert);
  const editing = state.editingLevel;
  const name = editing ?? $('level-name').value.trim();
  if (!NAME_RE.test(name)) {
    showAlert(alert, 'An access level’s name is 1 to 32 lowercase letters, digits, “-” or “_”, starting with a letter.');
    $('level-name').focus();
    return;
  }
  const body = readLevelForm(alert);
  if (!body) return;

  const button = $('level-save');
  setBusy(button, true, 'Saving…');
  try {
    if (editing) {
      await apiFetch(`/api/v1/admin/access-levels/${enc(name)}`, { method: 'PUT', body, csrf: state.csrf });
    } else {
      await apiFetch('/api/v1/admin/access-levels', { method: 'POST', body: { name, ...body }, csrf: state.csrf });
    }
  } catch (err) {
    reportError(err, alert);
    return;
  } finally {
    setBusy(button, false);
  }
  resetLevelForm();
  announce($('levels-status'), editing ? `Saved the access level ${name}.` : `Created the access level ${name}.`);
  await Promise.all([loadLevels(), can('fleet.read') && sections.loadFleet()]);
  $('levels-heading').focus();
}

async function deleteLevel(level, button) {
  const users = level.users ?? 0;
  if (!(await confirmInPage({
    title: `Delete the access level “${level.name}”?`,
    message: [
      `Its features and limits are deleted and cannot be restored.${users > 0 ? ` ${count(users)} user(s) have it: the platform refuses to delete a level in use, so move them first.` : ''}`,
      'No user, workspace or data is deleted.',
    ],
    confirmLabel: 'Delete level',
    danger: true,
  }))) return;
  const alert = $('levels-alert');
  clearAlert(alert);
  setBusy(button, true, 'Deleting…');
  try {
    await apiFetch(`/api/v1/admin/access-levels/${enc(level.name)}`, { method: 'DELETE', csrf: state.csrf });
  } catch (err) {
    setBusy(button, false);
    reportError(err, alert);
    return;
  }
  if (state.editingLevel === level.name) resetLevelForm();
  announce($('levels-status'), `Deleted the access level ${level.name}.`);
  await Promise.all([loadLevels(), can('fleet.read') && sections.loadFleet()]);
  $('levels-heading').focus();
}

Object.assign(sections, { loadLevels });
