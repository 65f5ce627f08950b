// app.js — the workspace app: routes by the URL's fragment to one view at a time, keeps the
// header (navigation, storage use, theme) up to date.
//
//   #/projects                      the project list
//   #/projects/{id}/{tab}           a project: edit | history | seo | generate | export | settings
//   #/documents                     documents: upload, list, search
//   #/agents                        agents
//   #/chat, #/analytics             not built yet: a plain "coming soon" page

import { el, refreshUsage } from './api.js';
import * as projects from './projects.js';
import * as workspace from './workspace.js';
import * as documents from './documents.js';
import * as agents from './agents.js';

const main = document.getElementById('main');

function comingSoon(title, text) {
  return (container) => {
    container.replaceChildren(el('section', { class: 'placeholder', id: 'coming-soon' },
      el('h1', { tabindex: '-1', text: title }),
      el('p', null, el('span', { class: 'badge badge-info', text: 'Coming soon' })),
      el('p', { class: 'muted', text }),
      el('p', null, el('a', { href: '#/projects', text: 'Back to your projects' }))));
  };
}

const ROUTES = [
  { nav: 'projects', pattern: /^#\/projects\/?$/, view: (c) => projects.render(c) },
  {
    nav: 'projects',
    pattern: /^#\/projects\/([0-9a-fA-F-]{36})(?:\/([a-z]+))?\/?$/,
    view: (c, m) => workspace.render(c, m[1], m[2] ?? 'edit'),
    // Switching tabs within one project keeps the project's state (unsaved edits, jobs).
    keep: (m) => workspace.isMounted(m[1]),
    update: (m) => workspace.showTab(m[2] ?? 'edit'),
  },
  { nav: 'documents', pattern: /^#\/documents\/?$/, view: (c) => documents.render(c) },
  { nav: 'agents', pattern: /^#\/agents\/?$/, view: (c) => agents.render(c) },
  {
    nav: 'chat',
    pattern: /^#\/chat\/?$/,
    view: comingSoon('Chat', 'Chat sessions with your agents are not part of this workspace yet. When they arrive, you will talk to an agent here and watch it edit your site.'),
  },
  {
    nav: 'analytics',
    pattern: /^#\/analytics\/?$/,
    view: comingSoon('Analytics', 'Visitor analytics for your published sites are not available in this workspace yet.'),
  },
];

let cleanup = null;

function setNav(nav) {
  for (const link of document.querySelectorAll('.app-nav a[data-nav]')) {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
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
    setNav(r.nav);
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
