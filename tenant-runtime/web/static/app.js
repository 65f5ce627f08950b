// app.js — the workspace app: routes by the URL's fragment to one view at a time, keeps the
// header (navigation, storage use, theme) up to date.
//
//   #/projects                      the project list
//   #/projects/{id}/{tab}           a project: edit | history | seo | generate | chat |
//                                   analytics | export | settings
//   #/projects/{id}/chat/{session}  a project's chat session
//   #/documents                     documents: upload, list, search
//   #/agents                        agents
//   #/chat, #/analytics             choose the project whose chats / analytics to open
//
// Inside a project the header's Chat and Analytics links lead to that project's tabs (and
// are marked current on them); elsewhere they lead to the project choosers.

import { el, refreshUsage } from './api.js';
import * as projects from './projects.js';
import * as workspace from './workspace.js';
import * as documents from './documents.js';
import * as agents from './agents.js';
import * as chooser from './chooser.js';
import { initAccountMenu } from './account.js';

const main = document.getElementById('main');

/** The header link a project's tab belongs under. */
const TAB_NAV = { chat: 'chat', analytics: 'analytics' };

const ROUTES = [
  { nav: 'projects', pattern: /^#\/projects\/?$/, view: (c) => projects.render(c) },
  {
    nav: (m) => TAB_NAV[m[2]] ?? 'projects',
    project: (m) => m[1],
    pattern: /^#\/projects\/([0-9a-fA-F-]{36})(?:\/([a-z]+)(?:\/([0-9a-fA-F-]{36}))?)?\/?$/,
    view: (c, m) => workspace.render(c, m[1], m[2] ?? 'edit', m[3] ?? null),
    // Switching tabs within one project keeps the project's state (unsaved edits, jobs).
    keep: (m) => workspace.isMounted(m[1]),
    update: (m) => workspace.showTab(m[2] ?? 'edit', m[3] ?? null),
  },
  { nav: 'documents', pattern: /^#\/documents\/?$/, view: (c) => documents.render(c) },
  { nav: 'agents', pattern: /^#\/agents\/?$/, view: (c) => agents.render(c) },
  { nav: 'chat', pattern: /^#\/chat\/?$/, view: (c) => chooser.render(c, 'chat') },
  { nav: 'analytics', pattern: /^#\/analytics\/?$/, view: (c) => chooser.render(c, 'analytics') },
];

let cleanup = null;

/** Marks the header link `nav` current; inside project `projectId`, the Chat and
 *  Analytics links lead to its tabs, elsewhere to the choosers. */
function setNav(nav, projectId = null) {
  for (const link of document.querySelectorAll('.app-nav a[data-nav]')) {
    const kind = link.dataset.nav;
    if (kind === 'chat' || kind === 'analytics') {
      link.setAttribute('href', projectId ? `#/projects/${projectId}/${kind}` : `#/${kind}`);
    }
    if (kind === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function route() {
  const hash = location.hash || '';
  if (!hash.startsWith('#/') || hash === '#/') {
    location.replace('#/projects');
    return;
  }
  for (const r of ROUTES) {
    const match = hash.match(r.pattern);
    if (!match) continue;
    const projectId = r.project?.(match) ?? null;
    setNav(typeof r.nav === 'function' ? r.nav(match) : r.nav, projectId);
    if (projectId) chooser.rememberProject(projectId);
    if (r.keep?.(match)) {
      r.update(match);
      return;
    }
    if (typeof cleanup === 'function') {
      try { cleanup(); } catch { /* a view's cleanup must not stop the next one */ }
    }
    cleanup = null;
    main.replaceChildren();
    cleanup = await r.view(main, match);
    main.querySelector('h1')?.focus({ preventScroll: true });
    return;
  }
  setNav(null);
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  main.replaceChildren(el('section', { class: 'placeholder' },
    el('h1', { tabindex: '-1', text: 'Page not found' }),
    el('p', { text: 'There is nothing at this address in your workspace.' }),
    el('p', null, el('a', { href: '#/projects', text: 'Go to your projects' }))));
  main.querySelector('h1')?.focus();
}

// ----- theme: follow the system, or light / dark chosen here --------------------------------

const THEMES = ['auto', 'light', 'dark'];

function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const button = document.getElementById('theme-toggle');
  if (button) {
    button.textContent = `Theme: ${theme}`;
    button.setAttribute('aria-label', theme === 'auto'
      ? 'Colour theme: follow the system (change)'
      : `Colour theme: ${theme} (change)`);
  }
}

function storedTheme() {
  try { return localStorage.getItem('websplat-theme') ?? 'auto'; } catch { return 'auto'; }
}

document.getElementById('theme-toggle')?.addEventListener('click', () => {
  const next = THEMES[(THEMES.indexOf(storedTheme()) + 1) % THEMES.length];
  try { localStorage.setItem('websplat-theme', next); } catch { /* private mode: this tab only */ }
  applyTheme(next);
});
applyTheme(storedTheme());
initAccountMenu();

document.getElementById('skip-link')?.addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

// Leaving the page with unsaved edits asks first.
window.addEventListener('beforeunload', (event) => {
  if (workspace.hasUnsavedChanges()) {
    event.preventDefault();
    event.returnValue = '';
  }
});

window.addEventListener('hashchange', route);
route();
refreshUsage();
