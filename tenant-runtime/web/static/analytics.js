// analytics.js — the Analytics tab: page views of the published site (or of previews) over
// the last 7, 30 or 90 days: totals, a chart per day (SVG built element by element, no
// library; every day's bar carries data-day, data-views and data-visitors), the numbers as
// a table, and the top pages and referring sites. Days are UTC days, as the server counts.

import { api, alertRegion, clearAlert, describeError, el, setBusy, showAlert } from './api.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const RANGES = [7, 30, 90];
const SOURCES = [
  ['site', 'Published site'],
  ['preview', 'Previews'],
];

/** The range and source chosen, per project, while the app is open. */
const chosen = new Map();

/** An SVG element: attributes set as given, children appended (strings as text). */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    else if (key === 'dataset') for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Today's date in UTC, YYYY-MM-DD (the server's days are UTC days). */
export function utcToday() {
  return new Date().toISOString().slice(0, 10);
}

/** `day` (YYYY-MM-DD) moved by `n` days. */
export function addDays(day, n) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** A short label for a day: "5 Jan" in the reader's language. */
function dayLabel(day, options = { month: 'short', day: 'numeric' }) {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return day;
  return date.toLocaleDateString(undefined, { ...options, timeZone: 'UTC' });
}

const count = (n) => Number(n) || 0;
const plural = (n, one, many) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** A round axis maximum ≥ max and its step: 1, 2 or 5 times a power of ten, ≤ 5 steps. */
export function niceScale(max) {
  const top = Math.max(1, max);
  const rough = top / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= rough) ?? 10 * power;
  step = Math.max(1, step);
  return { max: Math.ceil(top / step) * step, step };
}

/**
 * The chart: a bar per day for views, a line with a point per day for visitors, axes with
 * gridlines, a <title> tooltip per day, and an accessible name and description.
 */
export function chart(summary, caption) {
  const days = Array.isArray(summary.by_day) ? summary.by_day : [];
  const width = 960;
  const height = 260;
  const m = { top: 14, right: 14, bottom: 34, left: 46 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const peak = Math.max(0, ...days.map((d) => Math.max(count(d.views), count(d.visitors))));
  const scale = niceScale(peak);
  const y = (v) => m.top + plotH - (v / scale.max) * plotH;
  const band = days.length ? plotW / days.length : plotW;
  const barW = Math.max(1, Math.min(36, band * 0.7));
  const x = (i) => m.left + band * i + band / 2;
  const today = utcToday();

  const titleId = 'analytics-chart-title';
  const descId = 'analytics-chart-desc';
  const best = days.reduce((a, d) => (count(d.views) > count(a?.views) ? d : a), null);
  const root = svg('svg', {
    id: 'analytics-chart', class: 'chart', viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-labelledby': `${titleId} ${descId}`, focusable: 'false',
  },
  svg('title', { id: titleId }, caption),
  svg('desc', { id: descId },
    `${plural(count(summary.views), 'view', 'views')} and ${plural(count(summary.visitors), 'visitor', 'visitors')} in ${days.length} days`,
    best && count(best.views) ? `; the busiest day was ${best.day} with ${plural(count(best.views), 'view', 'views')}.` : '.'));

  // The y axis: gridlines and labels.
  const grid = svg('g', { class: 'chart-grid', 'aria-hidden': 'true' });
  for (let v = 0; v <= scale.max; v += scale.step) {
    grid.append(
      svg('line', { class: v === 0 ? 'chart-axis' : 'chart-gridline', x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }),
      svg('text', { class: 'chart-label', x: m.left - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, v.toLocaleString()));
  }
  grid.append(svg('line', { class: 'chart-axis', x1: m.left, x2: m.left, y1: m.top, y2: m.top + plotH }));
  root.append(grid);

  // The x axis: at most about 8 day labels (always the last one).
  const every = Math.max(1, Math.ceil(days.length / 8));
  const labels = svg('g', { class: 'chart-x', 'aria-hidden': 'true' });
  days.forEach((d, i) => {
    if ((days.length - 1 - i) % every !== 0) return;
    labels.append(
      svg('line', { class: 'chart-axis', x1: x(i), x2: x(i), y1: m.top + plotH, y2: m.top + plotH + 4 }),
      svg('text', { class: ['chart-label', d.day === today && 'chart-today'], x: x(i), y: m.top + plotH + 18, 'text-anchor': 'middle' }, dayLabel(d.day)));
  });
  root.append(labels);

  // A group per day: a tooltip, a hover area the height of the plot, the bar, the point.
  const bars = svg('g', { class: 'chart-days' });
  days.forEach((d, i) => {
    const views = count(d.views);
    const visitors = count(d.visitors);
    const top = y(views);
    bars.append(svg('g', {
      class: ['chart-day', d.day === today && 'today'],
      dataset: { day: d.day, views, visitors },
    },
    svg('title', {}, `${dayLabel(d.day, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })}: ${plural(views, 'view', 'views')}, ${plural(visitors, 'visitor', 'visitors')}`),
    svg('rect', { class: 'chart-hit', x: m.left + band * i, y: m.top, width: band, height: plotH }),
    svg('rect', {
      class: 'bar bar-views', x: x(i) - barW / 2, y: top, width: barW, height: Math.max(0, m.top + plotH - top),
      dataset: { day: d.day, views },
    }),
    svg('circle', {
      class: 'point point-visitors', cx: x(i), cy: y(visitors), r: days.length > 45 ? 2 : 3.5,
      dataset: { day: d.day, visitors },
    })));
  });
  root.append(bars);
  if (days.length > 1) {
    root.append(svg('polyline', {
      class: 'line-visitors', 'aria-hidden': 'true',
      points: days.map((d, i) => `${x(i).toFixed(1)},${y(count(d.visitors)).toFixed(1)}`).join(' '),
    }));
  }
  return root;
}

/** A two-column table (name, views) of ranked rows, with an empty-state row. */
function rankedTable(id, caption, nameHeading, rows, emptyText, total) {
  const body = el('tbody');
  if (!rows.length) {
    body.append(el('tr', { class: 'empty-row' }, el('td', { colspan: '3', class: 'muted', text: emptyText })));
  }
  for (const row of rows) {
    const views = count(row.views);
    const share = total ? Math.round((views / total) * 100) : 0;
    body.append(el('tr', { dataset: { name: String(row.name) } },
      el('td', { class: 'ranked-name', text: String(row.name) }),
      el('td', { class: 'num', text: views.toLocaleString() }),
      el('td', { class: 'num muted', text: `${share} %` })));
  }
  return el('div', { class: 'table-wrap' }, el('table', { id },
    el('caption', { class: 'visually-hidden', text: caption }),
    el('thead', null, el('tr', null,
      el('th', { scope: 'col', text: nameHeading }),
      el('th', { scope: 'col', class: 'num', text: 'Views' }),
      el('th', { scope: 'col', class: 'num', text: 'Share' }))),
    body));
}

/** The numbers behind the chart, one row per day (newest first). */
function dayTable(days) {
  return el('div', { class: 'table-wrap' }, el('table', { id: 'analytics-days' },
    el('caption', { class: 'visually-hidden', text: 'Views and visitors per day' }),
    el('thead', null, el('tr', null,
      el('th', { scope: 'col', text: 'Day (UTC)' }),
      el('th', { scope: 'col', class: 'num', text: 'Views' }),
      el('th', { scope: 'col', class: 'num', text: 'Visitors' }))),
    el('tbody', null, [...days].reverse().map((d) => el('tr', { dataset: { day: d.day } },
      el('td', null, el('time', { datetime: d.day, text: dayLabel(d.day, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }) })),
      el('td', { class: 'num', text: count(d.views).toLocaleString() }),
      el('td', { class: 'num', text: count(d.visitors).toLocaleString() }))))));
}

/** A group of radio buttons drawn as a segmented control. */
function segmented(id, legend, name, options, value) {
  return el('fieldset', { id, class: 'segmented' },
    el('legend', { text: legend }),
    options.map(([v, label]) => el('label', { class: 'segment', id: `${id}-${v}-label` },
      el('input', { type: 'radio', name, value: v, id: `${id}-${v}`, checked: String(v) === String(value) }),
      el('span', { text: label }))));
}

export async function render(panel, ctx) {
  const id = encodeURIComponent(ctx.id);
  const prefs = chosen.get(ctx.id) ?? { days: 30, source: 'site' };
  chosen.set(ctx.id, prefs);
  let disposed = false;
  let turn = 0;

  const alert = alertRegion('analytics-alert');
  const range = segmented('analytics-range', 'Range', 'range', RANGES.map((n) => [n, `${n} days`]), prefs.days);
  const source = segmented('analytics-source', 'Views of', 'source', SOURCES, prefs.source);
  const refresh = el('button', { type: 'button', id: 'analytics-refresh', text: 'Refresh' });
  const views = el('dd', { id: 'analytics-views', text: '…' });
  const visitors = el('dd', { id: 'analytics-visitors', text: '…' });
  const busiest = el('dd', { id: 'analytics-busiest', text: '…' });
  const period = el('p', { id: 'analytics-period', class: 'muted small', 'aria-live': 'polite' });
  const hint = el('p', { id: 'analytics-hint', class: 'notice small', hidden: true });
  const chartHolder = el('figure', { class: 'chart-figure', id: 'analytics-chart-holder' });
  const legend = el('ul', { class: 'chart-legend small', 'aria-hidden': 'true' },
    el('li', null, el('span', { class: 'swatch swatch-views' }), 'Views (bars)'),
    el('li', null, el('span', { class: 'swatch swatch-visitors' }), 'Visitors (line)'));
  const daysHolder = el('div', { id: 'analytics-days-holder' });
  const pagesHolder = el('div', { id: 'analytics-pages-holder' });
  const referrersHolder = el('div', { id: 'analytics-referrers-holder' });
  const content = el('div', { id: 'analytics-content' },
    el('section', { class: 'card', 'aria-labelledby': 'analytics-title' },
      el('h2', { id: 'analytics-title', text: 'Views and visitors' }),
      period,
      el('dl', { class: 'totals' },
        el('div', { class: 'total' }, el('dt', { text: 'Views' }), views),
        el('div', { class: 'total' }, el('dt', { text: 'Visitors' }), visitors),
        el('div', { class: 'total' }, el('dt', { text: 'Busiest day' }), busiest)),
      el('p', { id: 'analytics-privacy', class: 'muted small',
        text: 'Visitors are counted without cookies: a visitor is an anonymous hash that changes every day, so nobody is followed from one day to the next and the visitors shown are each day’s visitors, summed.' }),
      hint,
      chartHolder,
      el('details', { class: 'chart-details' },
        el('summary', { text: 'The numbers per day' }),
        daysHolder)),
    el('div', { class: 'grid-2' },
      el('section', { class: 'card', 'aria-labelledby': 'analytics-pages-title' },
        el('h2', { id: 'analytics-pages-title', text: 'Top pages' }), pagesHolder),
      el('section', { class: 'card', 'aria-labelledby': 'analytics-referrers-title' },
        el('h2', { id: 'analytics-referrers-title', text: 'Referring sites' }), referrersHolder)));

  panel.replaceChildren(
    el('div', { class: 'analytics-controls' }, range, source, refresh),
    alert,
    content);

  function hintFor(summary) {
    if (count(summary.views)) return null;
    if (summary.source === 'site') {
      return [
        'No views of the published site in this range. Published pages count their views; publish under ',
        el('a', { href: `#/projects/${ctx.id}/export`, text: 'Export & publish' }),
        '. Robots and automated browsers are not counted.',
      ];
    }
    return ['No views of previews in this range. Pages viewed in this workspace’s preview count here; robots and automated browsers are not counted.'];
  }

  function show(summary) {
    const days = Array.isArray(summary.by_day) ? summary.by_day : [];
    const total = count(summary.views);
    const sourceLabel = SOURCES.find(([v]) => v === summary.source)?.[1] ?? summary.source;
    views.textContent = total.toLocaleString();
    visitors.textContent = count(summary.visitors).toLocaleString();
    const best = days.reduce((a, d) => (count(d.views) > count(a?.views) ? d : a), null);
    busiest.textContent = best && count(best.views)
      ? `${dayLabel(best.day)} (${plural(count(best.views), 'view', 'views')})`
      : '—';
    views.dataset.value = String(total);
    visitors.dataset.value = String(count(summary.visitors));
    const long = { day: 'numeric', month: 'short', year: 'numeric' };
    period.textContent = `${sourceLabel}, ${dayLabel(summary.from, long)} to ${dayLabel(summary.to, long)} (UTC days): ${plural(total, 'view', 'views')}.`;
    const hintParts = hintFor(summary);
    hint.hidden = !hintParts;
    hint.replaceChildren(...(hintParts ?? []));
    const caption = `Views and visitors per day, ${summary.from} to ${summary.to} (${sourceLabel.toLowerCase()})`;
    chartHolder.replaceChildren(chart(summary, caption), legend);
    daysHolder.replaceChildren(dayTable(days));
    const pages = Array.isArray(summary.pages) ? summary.pages : [];
    const referrers = Array.isArray(summary.referrers) ? summary.referrers : [];
    pagesHolder.replaceChildren(rankedTable('analytics-pages', 'Top pages', 'Page', pages,
      'No page was viewed in this range.', total));
    referrersHolder.replaceChildren(
      rankedTable('analytics-referrers', 'Referring sites', 'Site', referrers,
        'No visit came from another site in this range.', referrers.reduce((s, r) => s + count(r.views), 0)),
      el('p', { class: 'muted small', text: 'Only the referring site’s name is kept. Visits from bookmarks, typed addresses and apps that hide where they came from are not listed.' }));
  }

  async function load() {
    const mine = ++turn;
    clearAlert(alert);
    const to = utcToday();
    const from = addDays(to, -(prefs.days - 1));
    content.setAttribute('aria-busy', 'true');
    setBusy(refresh, true, 'Loading…');
    try {
      const summary = await api(`/api/v1/projects/${id}/analytics?from=${from}&to=${to}&source=${encodeURIComponent(prefs.source)}`);
      if (disposed || mine !== turn) return;
      show(summary);
      content.dataset.source = String(summary.source);
      content.dataset.days = String(summary.by_day?.length ?? 0);
    } catch (err) {
      if (disposed || mine !== turn) return;
      showAlert(alert, describeError(err));
    } finally {
      if (mine === turn) {
        content.removeAttribute('aria-busy');
        setBusy(refresh, false);
      }
    }
  }

  range.addEventListener('change', (event) => {
    prefs.days = Number(event.target.value) || 30;
    load();
  });
  source.addEventListener('change', (event) => {
    prefs.source = event.target.value === 'preview' ? 'preview' : 'site';
    load();
  });
  refresh.addEventListener('click', load);

  await load();
  return () => { disposed = true; };
}
