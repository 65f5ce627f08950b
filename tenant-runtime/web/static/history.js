// history.js — the History tab: every version (newest first), what each changed, a diff
// between any two, and restore (which commits a copy of an old version: nothing is lost).

import {
  api, alertRegion, clearAlert, describeError, el, refreshUsage, setBusy, showAlert, timeEl, toast,
} from './api.js';

/** A unified diff as lines, each a <span> classed by its kind (text only). */
export function diffBlock(text) {
  const pre = el('pre', { class: 'diff' });
  const lines = String(text ?? '').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    let kind = null;
    if (line.startsWith('@@')) kind = 'hunk';
    else if (line.startsWith('+++') || line.startsWith('---')) kind = 'hunk';
    else if (line.startsWith('+')) kind = 'add';
    else if (line.startsWith('-')) kind = 'del';
    pre.append(el('span', { class: kind, text: line || ' ' }));
  }
  return pre;
}

const CHANGE_LABELS = { added: 'added', removed: 'removed', modified: 'modified' };

export async function render(panel, ctx) {
  const id = encodeURIComponent(ctx.id);
  const alert = alertRegion('history-alert');
  const list = el('ol', { id: 'version-list', class: 'plain-list' });
  const fromSelect = el('select', { id: 'diff-from', name: 'from' });
  const toSelect = el('select', { id: 'diff-to', name: 'to' });
  const compareForm = el('form', { id: 'compare-form', class: 'inline-form' },
    el('div', { class: 'field' }, el('label', { for: 'diff-from', text: 'From version' }), fromSelect),
    el('div', { class: 'field' }, el('label', { for: 'diff-to', text: 'To version' }), toSelect),
    el('button', { type: 'submit', id: 'compare', text: 'Compare' }));
  const diffTitle = el('h2', { id: 'diff-title', tabindex: '-1', text: 'Changes' });
  const diffView = el('div', { id: 'diff-view', 'aria-live': 'polite' },
    el('p', { class: 'muted', text: 'Choose a version’s “Show changes”, or compare two versions.' }));

  panel.replaceChildren(
    alert,
    el('div', { class: 'grid-2' },
      el('section', { class: 'card', 'aria-labelledby': 'versions-title' },
        el('h2', { id: 'versions-title', text: 'Versions' }),
        el('p', { class: 'muted small', text: 'Undo and redo (above) move between versions; restoring commits a copy of an old version as the newest one.' }),
        list),
      el('section', { class: 'card', 'aria-labelledby': 'diff-title' },
        diffTitle, compareForm, diffView)));

  async function showDiff(from, to) {
    clearAlert(alert);
    diffTitle.textContent = `Changes from version ${from} to ${to}`;
    diffView.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
    try {
      const answer = await api(`/api/v1/projects/${id}/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
      diffView.replaceChildren();
      if (!answer.files.length) {
        diffView.append(el('p', { class: 'muted', text: 'No file changed (the settings may have).' }));
      }
      for (const file of answer.files) {
        diffView.append(el('section', { class: 'diff-file', dataset: { path: file.path } },
          el('h3', null, file.path, ' ', el('span', {
            class: `badge ${file.change === 'added' ? 'badge-success' : file.change === 'removed' ? 'badge-error' : 'badge-info'}`,
            text: CHANGE_LABELS[file.change] ?? file.change,
          })),
          file.diff ? diffBlock(file.diff) : el('p', { class: 'muted', text: 'No text difference to show.' })));
      }
      fromSelect.value = String(from);
      toSelect.value = String(to);
      diffTitle.focus({ preventScroll: false });
    } catch (err) {
      diffView.replaceChildren();
      showAlert(alert, describeError(err));
    }
  }

  compareForm.addEventListener('submit', (event) => {
    event.preventDefault();
    showDiff(fromSelect.value, toSelect.value);
  });

  let history;
  try {
    history = await api(`/api/v1/projects/${id}/versions`);
  } catch (err) {
    showAlert(alert, describeError(err));
    return null;
  }

  fromSelect.replaceChildren();
  toSelect.replaceChildren();
  for (const v of history.versions) {
    const label = `${v.number}${v.number === history.head ? ' (current)' : ''} — ${v.message}`;
    fromSelect.append(el('option', { value: v.number, text: label }));
    toSelect.append(el('option', { value: v.number, text: label }));
  }
  toSelect.value = String(history.head);
  const parentOfHead = history.versions.find((v) => v.number === history.head)?.parent;
  if (parentOfHead != null) fromSelect.value = String(parentOfHead);

  for (const v of history.versions) {
    const isHead = v.number === history.head;
    const item = el('li', { class: ['version', isHead && 'current'], dataset: { number: v.number } },
      el('span', { class: 'badge badge-accent', text: `v${v.number}` }),
      el('span', { class: 'message', text: v.message }),
      isHead ? el('span', { class: 'badge badge-success', text: 'current' }) : null,
      el('span', { class: 'muted small' }, timeEl(v.created_at)));
    const buttons = el('span', { class: 'actions' });
    if (v.parent != null) {
      buttons.append(el('button', {
        type: 'button', class: 'small-button show-changes', text: 'Show changes',
        'aria-label': `Show the changes of version ${v.number}`,
        on: { click: () => showDiff(v.parent, v.number) },
      }));
    }
    if (!isHead) {
      const restore = el('button', {
        type: 'button', class: 'small-button restore-version', text: 'Restore',
        'aria-label': `Restore version ${v.number}`,
      });
      restore.addEventListener('click', async () => {
        clearAlert(alert);
        if (ctx.drafts.size) {
          showAlert(alert, `You have unsaved changes in ${[...ctx.drafts.keys()].join(', ')}: save or discard them first.`);
          return;
        }
        setBusy(restore, true, 'Restoring…');
        try {
          const project = await api(`/api/v1/projects/${id}/versions/${encodeURIComponent(v.number)}/restore`, { method: 'POST' });
          ctx.setProject(project);
          toast(`Restored version ${v.number} as version ${project.head_version}.`);
          refreshUsage();
          ctx.rerender();
        } catch (err) {
          setBusy(restore, false);
          showAlert(alert, describeError(err));
        }
      });
      buttons.append(restore);
    }
    item.append(buttons);
    list.append(item);
  }
  return null;
}
