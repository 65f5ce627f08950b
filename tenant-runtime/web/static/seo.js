// seo.js — the SEO tab: the project's score and, page by page, what the deterministic
// checks found with advice on each; keyword use; links to the sitemap and robots.txt.

import { api, alertRegion, describeError, el, setBusy, showAlert } from './api.js';

const SEVERITY = {
  error: { label: 'Error', badge: 'badge-error' },
  warning: { label: 'Warning', badge: 'badge-warning' },
  info: { label: 'Note', badge: 'badge-info' },
};

function scoreClass(score) {
  if (score >= 80) return 'score-good';
  if (score >= 50) return 'score-fair';
  return 'score-poor';
}

function readabilityLabel(value) {
  if (value == null) return 'not enough text';
  const r = Number(value);
  const words = r >= 80 ? 'easy' : r >= 60 ? 'plain' : r >= 30 ? 'fairly difficult' : 'difficult';
  return `${r.toFixed(0)} / 100 (${words})`;
}

function pageSection(page) {
  const findings = el('ul', { class: 'plain-list findings' });
  if (!page.findings.length) findings.append(el('li', { class: 'muted', text: 'Nothing to fix on this page.' }));
  for (const finding of page.findings) {
    const severity = SEVERITY[finding.severity] ?? { label: finding.severity, badge: '' };
    findings.append(el('li', { class: `finding severity-${finding.severity}`, dataset: { code: finding.code } },
      el('span', { class: `badge ${severity.badge}`, text: severity.label }), ' ',
      el('span', { class: 'finding-message', text: finding.message }),
      el('p', { class: 'advice small' }, el('strong', { text: 'Advice: ' }), finding.advice)));
  }
  let keywords = null;
  if (page.keywords.length) {
    keywords = el('div', { class: 'table-wrap' }, el('table', null,
      el('caption', { class: 'visually-hidden', text: `Keywords on ${page.path}` }),
      el('thead', null, el('tr', null,
        el('th', { scope: 'col', text: 'Keyword' }),
        el('th', { scope: 'col', class: 'num', text: 'Occurrences' }),
        el('th', { scope: 'col', class: 'num', text: 'Density' }))),
      el('tbody', null, page.keywords.map((k) => el('tr', null,
        el('td', { text: k.keyword }),
        el('td', { class: 'num', text: k.occurrences }),
        el('td', { class: 'num', text: `${Number(k.density).toFixed(1)} %` }))))));
  }
  const headingId = `seo-page-${page.path.replace(/[^a-z0-9]/gi, '-')}`;
  return el('section', { class: 'card seo-page', dataset: { path: page.path }, 'aria-labelledby': headingId },
    el('h3', { id: headingId },
      el('span', { text: page.path }),
      el('span', { class: `badge ${page.score >= 80 ? 'badge-success' : page.score >= 50 ? 'badge-warning' : 'badge-error'} page-score`, text: `${page.score} / 100` })),
    el('dl', { class: 'facts' },
      el('dt', { text: 'Title' }), el('dd', { text: page.title ?? '(none)' }),
      el('dt', { text: 'Description' }), el('dd', { text: page.description ?? '(none)' }),
      el('dt', { text: 'Words' }), el('dd', { text: page.word_count }),
      el('dt', { text: 'Readability' }), el('dd', { text: readabilityLabel(page.readability) })),
    keywords,
    el('h4', { text: `Findings (${page.findings.length})` }),
    findings);
}

export async function render(panel, ctx) {
  const id = encodeURIComponent(ctx.id);
  const alert = alertRegion('seo-alert');
  const score = el('span', { id: 'seo-score', text: '…' });
  const scoreBox = el('p', { class: 'score', 'aria-live': 'polite' }, score, el('small', { text: '/ 100' }));
  const meter = el('meter', { id: 'seo-meter', min: '0', max: '100', low: '50', high: '80', optimum: '100', value: '0', 'aria-label': 'SEO score' });
  const refresh = el('button', { type: 'button', id: 'seo-refresh', text: 'Check again' });
  const pages = el('div', { id: 'seo-pages' });

  panel.replaceChildren(
    el('section', { class: 'card', 'aria-labelledby': 'seo-title' },
      el('h2', { id: 'seo-title', text: 'Search engine readiness' }),
      scoreBox, meter,
      el('p', { class: 'muted small', text: 'The project’s score is the mean of its pages’ scores. The checks are deterministic: the same pages always get the same report.' }),
      el('div', { class: 'actions' }, refresh,
        el('a', { href: `/api/v1/projects/${id}/sitemap.xml`, target: '_blank', rel: 'noopener', text: 'sitemap.xml' }),
        el('a', { href: `/api/v1/projects/${id}/robots.txt`, target: '_blank', rel: 'noopener', text: 'robots.txt' }))),
    alert, pages);

  async function load() {
    setBusy(refresh, true, 'Checking…');
    try {
      const report = await api(`/api/v1/projects/${id}/seo`);
      score.textContent = String(report.score);
      scoreBox.className = `score ${scoreClass(report.score)}`;
      meter.value = report.score;
      pages.replaceChildren();
      if (!report.pages.length) pages.append(el('p', { class: 'muted', text: 'There is no HTML page to check yet.' }));
      for (const page of report.pages) pages.append(pageSection(page));
    } catch (err) {
      showAlert(alert, describeError(err));
    } finally {
      setBusy(refresh, false);
    }
  }
  refresh.addEventListener('click', load);
  await load();
  return null;
}
