// admin-ai.js — the AI gateway page of the admin console: the providers with their health,
// the model aliases, and usage and spend over the last 30 days (a chart of tokens per day,
// and totals by user and by model), from /api/v1/admin/ai/*. Text from the API is set as
// text (el()), never parsed as HTML.
import { apiFetch, el, showAlert } from './api.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const number = (n) => Number(n ?? 0).toLocaleString();
const dollars = (nanos) => (Number(nanos ?? 0) / 1e9).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 6 });

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function renderProviders(data) {
  $('ai-providers-body').replaceChildren(...(data.providers ?? []).map((p) => el('tr', { dataset: { provider: p.id } },
    el('th', { scope: 'row' }, p.id),
    el('td', {}, p.kind),
    el('td', {}, el('code', {}, p.endpoint)),
    el('td', {}, (p.models ?? []).join(', ')),
    el('td', {}, el('span', { class: ['badge', p.health === 'healthy' ? 'badge-success' : 'badge-danger'] }, p.health)),
  )));
  $('ai-aliases-body').replaceChildren(...(data.aliases ?? []).map((a) => el('tr', {},
    el('th', { scope: 'row' }, a.name),
    el('td', {}, (a.targets ?? []).join(' → ')),
    el('td', {}, (a.levels ?? []).length ? a.levels.join(', ') : 'every level'),
  )));
  $('ai-prices').textContent = `Prices: platform/prices.toml, version ${data.prices_version}.`;
  $('ai-providers-status').textContent = '';
}

function totals(points) {
  const by = new Map();
  for (const p of points) {
    const t = by.get(p.key) ?? { key: p.key, calls: 0, errors: 0, tokens_in: 0, tokens_out: 0, cost_nanos: 0 };
    for (const f of ['calls', 'errors', 'tokens_in', 'tokens_out', 'cost_nanos']) t[f] += Number(p[f] ?? 0);
    by.set(p.key, t);
  }
  return [...by.values()].sort((a, b) => (b.tokens_in + b.tokens_out) - (a.tokens_in + a.tokens_out));
}

function rows(list) {
  return list.map((t) => el('tr', {},
    el('th', { scope: 'row' }, t.key),
    el('td', { class: 'num' }, number(t.calls)),
    el('td', { class: 'num' }, number(t.errors)),
    el('td', { class: 'num' }, number(t.tokens_in)),
    el('td', { class: 'num' }, number(t.tokens_out)),
    el('td', { class: 'num' }, dollars(t.cost_nanos)),
  ));
}

function renderChart(points) {
  const days = new Map();
  for (const p of points) {
    const day = p.at.slice(0, 10);
    days.set(day, (days.get(day) ?? 0) + Number(p.tokens_in ?? 0) + Number(p.tokens_out ?? 0));
  }
  const chart = $('ai-chart');
  const entries = [...days.entries()].sort();
  if (!entries.length) {
    chart.replaceChildren(svg('text', { x: 10, y: 80 }, 'No calls yet.'));
    return;
  }
  const max = Math.max(...entries.map(([, v]) => v), 1);
  const width = 600 / Math.max(entries.length, 1);
  chart.replaceChildren(...entries.map(([day, value], i) => {
    const h = Math.max(2, (value / max) * 130);
    const bar = svg('rect', { x: i * width + 2, y: 140 - h, width: Math.max(width - 4, 2), height: h, class: 'chart-bar', 'data-day': day, 'data-tokens': value });
    bar.append(svg('title', {}, `${day}: ${number(value)} tokens`));
    return bar;
  }), svg('text', { x: 2, y: 156, class: 'chart-label' }, entries[0][0]), svg('text', { x: 598, y: 156, 'text-anchor': 'end', class: 'chart-label' }, entries.at(-1)[0]));
}

async function load() {
  try {
    renderProviders(await apiFetch('/api/v1/admin/ai/providers'));
  } catch (err) {
    $('ai-providers-status').textContent = '';
    showAlert($('page-alert'), err.message ?? String(err));
  }
  try {
    const [byUser, byModel] = await Promise.all([
      apiFetch('/api/v1/admin/ai/usage?by=user&bucket=day'),
      apiFetch('/api/v1/admin/ai/usage?by=model&bucket=day'),
    ]);
    renderChart(byModel.points ?? []);
    $('ai-users-body').replaceChildren(...rows(totals(byUser.points ?? [])));
    $('ai-models-body').replaceChildren(...rows(totals(byModel.points ?? [])));
    $('ai-usage-status').textContent = `As of ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    $('ai-usage-status').textContent = '';
    showAlert($('page-alert'), err.message ?? String(err));
  }
}

load();
