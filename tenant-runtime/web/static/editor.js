// editor.js — the Editor tab: the project's pages, a code editor for the chosen one (saved
// with If-Match, so a stale copy never overwrites newer work: a 409 shows both versions and
// lets the user take the current one or overwrite it), and the sandboxed preview.

import {
  ApiError, alertRegion, api, clearAlert, confirmDialog, describeError, el, encodePath, formatBytes,
  refreshUsage, request, setBusy, showAlert, toast,
} from './api.js';
import { codeEditor } from './code-editor.js';

const PAGE_EXTENSIONS = /\.(html?|css|js|md)$/i;

function contentType(path) {
  const ext = path.split('.').pop().toLowerCase();
  return {
    html: 'text/html; charset=utf-8',
    htm: 'text/html; charset=utf-8',
    css: 'text/css; charset=utf-8',
    js: 'text/javascript; charset=utf-8',
    md: 'text/markdown; charset=utf-8',
  }[ext] ?? 'text/plain; charset=utf-8';
}

function starter(path) {
  if (/\.html?$/i.test(path)) {
    const name = path.split('/').pop().replace(/\.html?$/i, '').replace(/[-_]+/g, ' ');
    const title = name.charAt(0).toUpperCase() + name.slice(1);
    return `<!doctype html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n  <meta name="viewport" content="width=device-width, initial-scale=1">\n  <title>${title.replace(/[<&]/g, '')}</title>\n</head>\n<body>\n  <h1>${title.replace(/[<&]/g, '')}</h1>\n</body>\n</html>\n`;
  }
  if (/\.md$/i.test(path)) return '# New page\n';
  return '';
}

export async function render(panel, ctx) {
  const id = ctx.id;
  const pageUrl = (path) => `/api/v1/projects/${encodeURIComponent(id)}/pages/${encodePath(path)}`;

  // What is open: the page's path, its content and ETag as last read from the server, and
  // the ETag the text in the editor is based on (differs after a conflict was resolved).
  let path = null;
  let original = '';
  let serverEtag = null;
  let baseEtag = null;
  let previewCounter = 0;
  let disposed = false;

  const alert = alertRegion('editor-alert');
  const fileList = el('ul', { id: 'file-list' });
  const assetTitle = el('h3', { id: 'assets-title', class: 'small', text: 'Images and fonts', hidden: true });
  const assetList = el('ul', { id: 'asset-list', class: 'asset-list', 'aria-labelledby': 'assets-title', hidden: true });
  const newPath = el('input', {
    type: 'text', id: 'new-page-path', name: 'path', placeholder: 'about.html', autocomplete: 'off',
    'aria-describedby': 'new-page-hint',
  });
  const newForm = el('form', { id: 'new-page-form', novalidate: true },
    el('label', { for: 'new-page-path', text: 'New page' }),
    newPath,
    el('p', { class: 'hint', id: 'new-page-hint', text: '.html, .css, .js or .md; folders with /' }),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'add-page', text: 'Add page' })));

  const editorTitle = el('h2', { id: 'editor-title', text: 'No page open' });
  const state = el('span', { id: 'editor-state', class: 'editor-state small', 'aria-live': 'polite' });
  const textarea = el('textarea', {
    id: 'page-editor', class: 'code', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off',
    wrap: 'off', disabled: true, 'aria-describedby': 'editor-help',
  });
  const textareaLabel = el('label', { for: 'page-editor', class: 'visually-hidden', text: 'Page content' });
  // Line numbers, colours and wrapping around the same textarea (code-editor.js).
  const code = codeEditor(textarea, () => path);
  const save = el('button', { type: 'button', id: 'save-page', class: 'primary', text: 'Save', disabled: true });
  const discard = el('button', { type: 'button', id: 'discard-page', text: 'Discard changes', disabled: true });
  const remove = el('button', { type: 'button', id: 'delete-page', class: 'danger', text: 'Delete page', disabled: true });

  const conflictMessage = el('p', { id: 'conflict-message' });
  const conflictCurrent = el('textarea', { id: 'conflict-current', class: 'code', readonly: 'readonly', wrap: 'off' });
  const conflictCurrentField = el('div', { class: 'field' },
    el('label', { for: 'conflict-current', text: 'The current version, saved elsewhere' }), conflictCurrent);
  const takeTheirs = el('button', { type: 'button', id: 'conflict-reload', text: 'Load the current version (drop my changes)' });
  const overwrite = el('button', { type: 'button', id: 'conflict-overwrite', class: 'danger', text: 'Overwrite with my version' });
  const saveAsNew = el('button', { type: 'button', id: 'conflict-save-new', class: 'primary', text: 'Save my version as a new page' });
  const conflict = el('section', { id: 'conflict', class: 'card conflict', hidden: true, 'aria-labelledby': 'conflict-title' },
    el('h3', { id: 'conflict-title', text: 'This page changed since you opened it' }),
    conflictMessage, conflictCurrentField,
    el('div', { class: 'actions' }, takeTheirs, overwrite, saveAsNew));

  const frame = el('iframe', {
    id: 'preview-frame', title: 'Preview', sandbox: 'allow-scripts', referrerpolicy: 'no-referrer',
  });
  const previewNote = el('p', { class: 'muted', id: 'preview-note', hidden: true });
  const openPreview = el('a', { id: 'preview-open', class: 'small', target: '_blank', rel: 'noopener noreferrer', text: 'Open in a new tab' });
  const reloadPreviewButton = el('button', { type: 'button', id: 'preview-reload', class: 'small-button', text: 'Reload' });

  panel.replaceChildren(
    el('div', { class: 'editor-layout' },
      el('aside', { class: 'file-list card', 'aria-labelledby': 'files-title' },
        el('h2', { id: 'files-title', text: 'Pages' }), fileList, assetTitle, assetList, newForm),
      el('section', { class: 'editor-pane card', 'aria-labelledby': 'editor-title' },
        el('div', { class: 'pane-head' }, editorTitle, state, el('span', { class: 'push' }, code.wrapToggle)),
        textareaLabel, code.frame,
        el('p', { class: 'hint', id: 'editor-help', text: 'Ctrl+S (⌘S) saves. Every save is a new version: undo goes back.' }),
        el('div', { class: 'actions' }, save, discard, remove),
        alert, conflict),
      el('section', { class: 'preview-pane card', 'aria-labelledby': 'preview-title' },
        el('div', { class: 'pane-head' },
          el('h2', { id: 'preview-title', text: 'Preview' }),
          el('span', { class: 'push' }, reloadPreviewButton, ' ', openPreview)),
        el('p', { class: 'hint', text: 'Sandboxed: the page’s scripts run, but cannot reach your workspace.' }),
        previewNote, frame)));

  const pages = () => (ctx.project?.files ?? []).filter((f) => PAGE_EXTENSIONS.test(f.path));

  function dirty() {
    return path !== null && ctx.drafts.has(path);
  }

  function showState() {
    if (path === null) {
      state.textContent = '';
      return;
    }
    const unsaved = dirty();
    state.textContent = unsaved ? 'Unsaved changes' : `Saved · version ${ctx.project?.head_version ?? '?'}`;
    state.classList.toggle('dirty', unsaved);
    discard.disabled = !unsaved;
    for (const button of fileList.querySelectorAll('.file-item')) {
      button.classList.toggle('dirty', ctx.drafts.has(button.dataset.path));
    }
  }

  function renderFiles() {
    fileList.replaceChildren();
    const list = pages();
    if (!list.length) fileList.append(el('li', { class: 'muted', text: 'No pages yet.' }));
    // Images and fonts are shown, not edited here (pages refer to them by path).
    const assets = (ctx.project?.files ?? []).filter((f) => !PAGE_EXTENSIONS.test(f.path));
    assetTitle.hidden = assetList.hidden = !assets.length;
    assetList.replaceChildren(...assets.map((f) => el('li', { dataset: { path: f.path } },
      el('span', { text: f.path }), el('span', { class: 'size', text: formatBytes(f.size) }))));
    for (const file of list) {
      const button = el('button', {
        type: 'button', class: 'file-item', dataset: { path: file.path },
        'aria-current': file.path === path ? 'true' : null,
      }, el('span', { text: file.path }), el('span', { class: 'size', text: formatBytes(file.size) }));
      button.addEventListener('click', () => open(file.path));
      fileList.append(el('li', null, button));
    }
    showState();
  }

  function previewPath() {
    const list = pages().map((f) => f.path);
    if (path && /\.html?$/i.test(path) && list.includes(path)) return path;
    if (list.includes('index.html')) return 'index.html';
    return list.find((p) => /\.html?$/i.test(p)) ?? null;
  }

  // The preview is served under a short-lived, read-only capability: a sandboxed page never
  // sends the workspace cookie, so its stylesheets, images and beacon need the capability.
  let previewBase = null;
  let previewBaseUntil = 0;
  async function previewLink() {
    if (!previewBase || Date.now() > previewBaseUntil) {
      const link = await api(`/api/v1/projects/${encodeURIComponent(id)}/preview-link`);
      previewBase = link.base;
      // Renewed well before it expires, so a reload never gets a dead link.
      previewBaseUntil = Date.parse(link.expires_at) - 5 * 60 * 1000;
    }
    return previewBase;
  }

  async function reloadPreview() {
    const target = previewPath();
    if (!target) {
      frame.hidden = true;
      openPreview.hidden = true;
      previewNote.hidden = false;
      previewNote.textContent = 'Add an HTML page to see a preview.';
      return;
    }
    previewCounter += 1;
    let base;
    try {
      base = await previewLink();
    } catch (err) {
      frame.hidden = true;
      previewNote.hidden = false;
      previewNote.textContent = `The preview cannot be shown: ${describeError(err)}`;
      return;
    }
    const url = `${base}${encodePath(target)}`;
    frame.hidden = false;
    openPreview.hidden = false;
    previewNote.hidden = !(path && target !== path);
    previewNote.textContent = path && target !== path ? `Showing ${target} (${path} is not a page of its own).` : '';
    frame.title = `Preview of ${target}`;
    openPreview.href = url;
    frame.src = `${url}?v=${ctx.project?.head_version ?? 0}.${previewCounter}`;
  }

  function hideConflict() {
    conflict.hidden = true;
    conflictCurrent.value = '';
  }

  function showConflict(message, current) {
    conflict.hidden = false;
    conflictMessage.textContent = message;
    const gone = current && current.exists === false;
    conflictCurrentField.hidden = gone;
    takeTheirs.hidden = gone;
    overwrite.hidden = gone;
    saveAsNew.hidden = !gone;
    conflictCurrent.value = gone ? '' : String(current?.content ?? '');
    conflict.dataset.etag = gone ? '' : String(current?.etag ?? '');
    (gone ? saveAsNew : takeTheirs).focus();
  }

  async function open(target, { keepAlert = false } = {}) {
    if (!keepAlert) clearAlert(alert);
    hideConflict();
    path = target;
    ctx.selectedPath = target;
    editorTitle.textContent = target;
    textareaLabel.textContent = `Content of ${target}`;
    textarea.disabled = true;
    save.disabled = true;
    remove.disabled = true;
    renderFiles();
    reloadPreview();
    let answer;
    try {
      answer = await request(pageUrl(target), { headers: { Accept: '*/*' } });
    } catch (err) {
      if (disposed || path !== target) return;
      showAlert(alert, describeError(err));
      return;
    }
    if (disposed || path !== target) return;
    original = typeof answer.data === 'string' ? answer.data : (answer.data == null ? '' : JSON.stringify(answer.data));
    serverEtag = answer.etag;
    const draft = ctx.drafts.get(target);
    if (draft) {
      textarea.value = draft.content;
      baseEtag = draft.etag;
      if (draft.etag !== serverEtag) {
        showAlert(alert, 'This page was changed elsewhere since you started your unsaved edit. Saving will show you both versions.', 'warning');
      }
    } else {
      textarea.value = original;
      baseEtag = serverEtag;
    }
    textarea.disabled = false;
    save.disabled = false;
    remove.disabled = false;
    showState();
  }

  function noteInput() {
    if (path === null) return;
    if (textarea.value === original && baseEtag === serverEtag) ctx.drafts.delete(path);
    else ctx.drafts.set(path, { content: textarea.value, etag: baseEtag });
    showState();
  }

  async function saved(answer, content) {
    original = content;
    serverEtag = answer.data?.etag ?? answer.etag;
    baseEtag = serverEtag;
    ctx.drafts.delete(path);
    hideConflict();
    try {
      await ctx.refresh();
    } catch { /* the header shows the last known version */ }
    if (disposed) return;
    renderFiles();
    reloadPreview();
    refreshUsage();
    const version = answer.data?.head_version ?? ctx.project?.head_version;
    toast(answer.status === 201 ? `Created ${path} (version ${version}).` : `Saved ${path} (version ${version}).`);
  }

  /** Saves what is in the editor; `ifMatch` overrides the ETag it is based on (null: none). */
  async function doSave(ifMatch = baseEtag) {
    if (path === null) return;
    clearAlert(alert);
    const target = path;
    const content = textarea.value;
    setBusy(save, true, 'Saving…');
    try {
      const answer = await request(pageUrl(target), {
        method: 'PUT',
        body: content,
        headers: { 'Content-Type': contentType(target) },
        ifMatch: ifMatch ?? undefined,
      });
      if (disposed || path !== target) return;
      await saved(answer, content);
    } catch (err) {
      if (disposed || path !== target) return;
      if (err instanceof ApiError && err.status === 409 && err.code === 'stale_version') {
        showConflict(describeError(err), err.current);
      } else if (err instanceof ApiError && err.status === 428) {
        // Someone created this page while we thought it new: show theirs.
        try {
          const current = await request(pageUrl(target), { headers: { Accept: '*/*' } });
          showConflict(describeError(err), { etag: current.etag, content: current.data ?? '' });
        } catch (inner) {
          showAlert(alert, describeError(inner));
        }
      } else {
        showAlert(alert, describeError(err));
      }
    } finally {
      if (!disposed) setBusy(save, false);
    }
  }

  textarea.addEventListener('input', noteInput);
  textarea.addEventListener('keydown', (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 's') {
      event.preventDefault();
      if (!save.disabled) doSave();
    }
  });
  save.addEventListener('click', () => doSave());
  discard.addEventListener('click', () => {
    if (path === null) return;
    ctx.drafts.delete(path);
    open(path);
  });
  takeTheirs.addEventListener('click', () => {
    original = conflictCurrent.value;
    serverEtag = conflict.dataset.etag || null;
    baseEtag = serverEtag;
    textarea.value = original;
    ctx.drafts.delete(path);
    hideConflict();
    showAlert(alert, 'Loaded the current version; your changes were dropped.', 'info');
    showState();
    reloadPreview();
    textarea.focus();
  });
  overwrite.addEventListener('click', () => doSave(conflict.dataset.etag || null));
  saveAsNew.addEventListener('click', () => doSave(null));
  reloadPreviewButton.addEventListener('click', reloadPreview);

  remove.addEventListener('click', async () => {
    if (path === null) return;
    const target = path;
    const ok = await confirmDialog(`Delete ${target}? The deletion is a new version: undo brings the page back.`,
      { confirmLabel: 'Delete page', danger: true, title: 'Delete this page?' });
    if (!ok || disposed) return;
    setBusy(remove, true, 'Deleting…');
    try {
      await request(pageUrl(target), { method: 'DELETE', ifMatch: serverEtag });
      ctx.drafts.delete(target);
      await ctx.refresh();
      if (disposed) return;
      toast(`Deleted ${target}.`);
      const next = previewPath() ?? pages()[0]?.path ?? null;
      if (next) await open(next);
      else {
        path = null;
        textarea.value = '';
        textarea.disabled = true;
        editorTitle.textContent = 'No page open';
        renderFiles();
        reloadPreview();
      }
    } catch (err) {
      showAlert(alert, describeError(err));
    } finally {
      if (!disposed) setBusy(remove, false);
      if (path === null) remove.disabled = true;
    }
  });

  newForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(alert);
    const target = newPath.value.trim().replace(/^\/+/, '');
    if (!PAGE_EXTENSIONS.test(target)) {
      showAlert(alert, 'A page’s name ends in .html, .css, .js or .md, e.g. about.html.');
      newPath.setAttribute('aria-invalid', 'true');
      newPath.focus();
      return;
    }
    newPath.removeAttribute('aria-invalid');
    if (pages().some((f) => f.path === target)) {
      await open(target);
      return;
    }
    const button = newForm.querySelector('button');
    setBusy(button, true, 'Adding…');
    try {
      await request(pageUrl(target), {
        method: 'PUT', body: starter(target), headers: { 'Content-Type': contentType(target) },
      });
      newPath.value = '';
      await ctx.refresh();
      if (disposed) return;
      toast(`Added ${target}.`);
      refreshUsage();
      await open(target);
      textarea.focus();
    } catch (err) {
      if (err instanceof ApiError && err.field === 'path') newPath.setAttribute('aria-invalid', 'true');
      showAlert(alert, describeError(err));
    } finally {
      setBusy(button, false);
    }
  });

  const list = pages();
  const first = [ctx.selectedPath, 'index.html', list.find((f) => /\.html?$/i.test(f.path))?.path, list[0]?.path]
    .find((p) => p && list.some((f) => f.path === p));
  if (first) await open(first);
  else renderFiles();
  if (!first) reloadPreview();

  return () => {
    disposed = true;
  };
}
