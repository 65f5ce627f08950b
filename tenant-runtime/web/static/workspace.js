// workspace.js — one project: its header (name, version, undo/redo) and tabs. The tab
// modules get a shared context:
//   ctx.id, ctx.project            the project as last read
//   ctx.setProject(p)              after an answer that carries the project
//   ctx.refresh()                  reads the project again (after a save, a generation…)
//   ctx.drafts                     Map path → {content, etag}: unsaved edits (kept while the
//                                  page is open, also across tabs and views)
//   ctx.rerender()                 draws the current tab again (after undo/redo/restore)
//   ctx.selectedPath               the page open in the editor
//   ctx.sub                        what the URL names inside the tab (a chat session)
//   ctx.subHandler                 set by a tab that follows ctx.sub changes itself
//                                  (otherwise a change draws the tab again)

import {
  ApiError, api, alertRegion, clearAlert, describeError, el, setBusy, showAlert, toast,
} from './api.js';
import * as editor from './editor.js';
import * as history from './history.js';
import * as seo from './seo.js';
import * as generate from './generate.js';
import * as chat from './chat.js';
import * as analytics from './analytics.js';
import * as exporting from './export.js';
import * as settings from './settings.js';

const TABS = [
  { id: 'edit', label: 'Editor', module: editor },
  { id: 'history', label: 'History', module: history },
  { id: 'seo', label: 'SEO', module: seo },
  { id: 'generate', label: 'Generate', module: generate },
  { id: 'chat', label: 'Chat', module: chat },
  { id: 'analytics', label: 'Analytics', module: analytics },
  { id: 'export', label: 'Export & publish', module: exporting },
  { id: 'settings', label: 'Settings', module: settings },
];

/** Unsaved edits by project id, kept for as long as the app is open. */
const draftsByProject = new Map();

/** The mounted project's context, or null. */
let current = null;

export function isMounted(id) {
  return current !== null && current.id === id && current.root.isConnected;
}

export function hasUnsavedChanges() {
  for (const drafts of draftsByProject.values()) if (drafts.size) return true;
  return false;
}

function draftsOf(id) {
  if (!draftsByProject.has(id)) draftsByProject.set(id, new Map());
  return draftsByProject.get(id);
}

export async function render(container, id, tab, sub = null) {
  const title = el('h1', { id: 'project-name', tabindex: '-1', text: 'Loading…' });
  const version = el('span', { id: 'project-version', class: 'badge' });
  const undo = el('button', { type: 'button', id: 'undo', text: 'Undo', disabled: true });
  const redo = el('button', { type: 'button', id: 'redo', text: 'Redo', disabled: true });
  const alert = alertRegion('workspace-alert');
  const tabs = el('nav', { class: 'tabs', 'aria-label': 'Project sections' },
    TABS.map((t) => el('a', { href: `#/projects/${id}/${t.id}`, 'data-tab': t.id, id: `tab-${t.id}`, text: t.label })));
  const panelHolder = el('div', { id: 'tab-holder' });
  const root = el('section', { class: 'workspace', dataset: { projectId: id } },
    el('div', { class: 'workspace-head' },
      el('a', { href: '#/projects', class: 'small', text: '← Projects' }),
      title, version,
      el('div', { class: 'toolbar', role: 'group', 'aria-label': 'History' }, undo, redo)),
    alert, tabs, panelHolder);
  container.replaceChildren(root);

  const ctx = {
    id,
    root,
    project: null,
    drafts: draftsOf(id),
    tab: null,
    panel: null,
    tabCleanup: null,
    selectedPath: null,
    sub,
    subHandler: null,
    alert,
    setProject(project) {
      ctx.project = project;
      title.textContent = project.name;
      version.textContent = `Version ${project.head_version}`;
      undo.disabled = !project.can_undo;
      redo.disabled = !project.can_redo;
      undo.title = project.can_undo ? 'Go back to the version before this one' : 'Nothing to undo';
      redo.title = project.can_redo ? 'Go forward to the version you undid' : 'Nothing to redo';
      updateTitle();
    },
    async refresh() {
      const project = await api(`/api/v1/projects/${encodeURIComponent(id)}`);
      ctx.setProject(project);
      return project;
    },
    rerender() {
      showTabIn(ctx.tab);
    },
  };

  function updateTitle() {
    const tabLabel = TABS.find((t) => t.id === ctx.tab)?.label ?? '';
    document.title = `${tabLabel ? `${tabLabel} — ` : ''}${ctx.project?.name ?? 'Project'} — WebSplat`;
  }

  async function move(kind) {
    clearAlert(alert);
    if (ctx.drafts.size) {
      showAlert(alert, `You have unsaved changes in ${[...ctx.drafts.keys()].join(', ')}: save or discard them before you ${kind}.`);
      return;
    }
    const button = kind === 'undo' ? undo : redo;
    setBusy(button, true);
    try {
      const project = await api(`/api/v1/projects/${encodeURIComponent(id)}/${kind}`, { method: 'POST' });
      setBusy(button, false);
      ctx.setProject(project);
      toast(kind === 'undo' ? `Undone: the project is back at version ${project.head_version}.` : `Redone: the project is at version ${project.head_version}.`);
      ctx.rerender();
    } catch (err) {
      setBusy(button, false);
      if (err instanceof ApiError && err.status === 409) {
        showAlert(alert, describeError(err), 'info');
        ctx.refresh().catch(() => {});
      } else {
        showAlert(alert, describeError(err));
      }
    }
  }
  undo.addEventListener('click', () => move('undo'));
  redo.addEventListener('click', () => move('redo'));

  function showTabIn(tabId) {
    const tab = TABS.find((t) => t.id === tabId);
    if (!tab) {
      location.replace(`#/projects/${id}/edit`);
      return;
    }
    if (typeof ctx.tabCleanup === 'function') {
      try { ctx.tabCleanup(); } catch { /* never block the next tab */ }
    }
    ctx.tabCleanup = null;
    ctx.subHandler = null;
    ctx.tab = tab.id;
    for (const link of tabs.querySelectorAll('a')) {
      if (link.dataset.tab === tab.id) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    updateTitle();
    // A fresh panel each time: a slow tab that finishes after the user moved on draws into
    // a detached node, never over the tab now shown.
    const panel = el('div', { id: 'tab-panel', class: `tab-${tab.id}`, 'aria-labelledby': `tab-${tab.id}`, role: 'region' });
    ctx.panel = panel;
    panelHolder.replaceChildren(panel);
    Promise.resolve(tab.module.render(panel, ctx)).then((fn) => {
      if (ctx.panel === panel) ctx.tabCleanup = fn ?? null;
      else if (typeof fn === 'function') fn();
    }, (err) => {
      if (ctx.panel === panel) panel.replaceChildren(el('p', { class: 'alert alert-error', role: 'alert', text: describeError(err) }));
    });
  }

  try {
    await ctx.refresh();
  } catch (err) {
    title.textContent = 'Project not available';
    root.querySelector('.toolbar').hidden = true;
    tabs.hidden = true;
    showAlert(alert, describeError(err), 'error', ' ', el('a', { href: '#/projects', text: 'Back to your projects' }));
    return null;
  }
  current = ctx;
  current.showTab = showTabIn;
  showTabIn(tab);
  return () => {
    if (typeof ctx.tabCleanup === 'function') ctx.tabCleanup();
    ctx.tabCleanup = null;
    if (current === ctx) current = null;
  };
}

/** Shows another tab of the mounted project (or, in the tab shown, what `sub` names). */
export function showTab(tab, sub = null) {
  if (!current) return;
  const same = current.tab === tab;
  current.sub = sub;
  if (same && typeof current.subHandler === 'function') current.subHandler(sub);
  else current.showTab(tab);
}
