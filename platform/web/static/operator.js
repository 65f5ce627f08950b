// operator.js — the operator console: one card per pool with its figures (running,
// starting, queued, failed in the last hour, capacity used), a chart of its start latency
// (p50 and p95 per bucket, drawn from GET /api/v1/pools/{name}/starts, no external
// service), and a form that resizes it live (PATCH /api/v1/pools/{name}) or drains it.
// Text from the API is set as text only (api.js's el()), never parsed as HTML.
import { apiFetch, clearAlert, describeError, el, setBusy, showAlert } from './api.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const state = { csrf: '' };

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  for (const child of children) node.append(child);
  return node;
}

/** The start-latency chart: p50 and p95 (ms) per bucket over the window. */
function chart(pool, starts) {
  const buckets = Array.isArray(starts?.buckets) ? starts.buckets : [];
  const figure = el('figure', { class: 'latency-chart', 'data-pool': pool.name });
  const caption = el('figcaption', { class: 'muted' },
    `Start latency (request to ready) over the last ${starts?.minutes ?? 60} minutes: p50 and p95.`);
  if (buckets.length === 0) {
    figure.append(el('p', { class: 'muted', text: 'No starts in this window yet.' }), caption);
    return figure;
  }
  const width = 600;
  const height = 160;
  const pad = 36;
  const end = Date.now();
  const start = end - (starts.minutes ?? 60) * 60000;
  const top = Math.max(...buckets.map((b) => b.p95_ms), 1);
  const x = (at) => pad + ((Date.parse(at) - start) / (end - start)) * (width - 2 * pad);
  const y = (ms) => height - pad + -((ms / top) * (height - 2 * pad));
  const line = (key, cls) => svg('polyline', {
    class: cls,
    fill: 'none',
    'stroke-width': 2,
    stroke: key === 'p50_ms' ? '#4450d8' : '#d8445a',
    points: buckets.map((b) => `${x(b.at).toFixed(1)},${y(b[key]).toFixed(1)}`).join(' '),
  });
  const title = svg('title');
  title.textContent = `Start latency of the ${pool.name} pool`;
  const label = (text, tx, ty) => {
    const t = svg('text', { x: tx, y: ty, 'font-size': 11, fill: 'currentColor' });
    t.textContent = text;
    return t;
  };
  const drawing = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', width: '100%', 'aria-label': `Start latency of the ${pool.name} pool`,
  },
  title,
  svg('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: 'currentColor', 'stroke-opacity': 0.3 }),
  label(`${Math.round(top)} ms`, 2, pad),
  label('0', 2, height - pad),
  label('p50', width - pad + 4, Math.max(y(buckets[buckets.length - 1].p50_ms), y(buckets[buckets.length - 1].p95_ms) + 12)),
  label('p95', width - pad + 4, y(buckets[buckets.length - 1].p95_ms)),
  line('p50_ms', 'p50'),
  line('p95_ms', 'p95'),
  ...buckets.flatMap((b) => [
    svg('circle', { cx: x(b.at).toFixed(1), cy: y(b.p50_ms).toFixed(1), r: 3, fill: '#4450d8' }),
    svg('circle', { cx: x(b.at).toFixed(1), cy: y(b.p95_ms).toFixed(1), r: 3, fill: '#d8445a' }),
  ]));
  const last = buckets[buckets.length - 1];
  figure.append(drawing, caption, el('p', { class: 'muted latency-latest' },
    `Latest: p50 ${Math.round(last.p50_ms)} ms, p95 ${Math.round(last.p95_ms)} ms over ${last.count} start(s).`));
  return figure;
}

function figureRow(name, value, id) {
  return el('div', { class: 'figure' }, el('dt', {}, name), el('dd', { class: 'stat', 'data-figure': id }, String(value)));
}

function numberField(pool, key, label, min, max) {
  const id = `${pool.name}-${key}`;
  return el('p', { class: 'field' },
    el('label', { for: id }, label),
    el('input', { id, name: key, type: 'number', min, max, required: true, value: pool[key] }));
}

function checkboxField(pool, key, label) {
  return el('p', { class: 'field' }, el('label', { class: 'checkbox' },
    el('input', { type: 'checkbox', name: key, checked: Boolean(pool[key]) }),
    ' ',
    el('span', { text: label })));
}

function engineFields(pool) {
  const engineId = `${pool.name}-engine`;
  const endpointId = `${pool.name}-endpoint`;
  const select = el('select', { id: engineId, name: 'engine' },
    el('option', { value: 'docker', text: 'Docker Engine (this machine)' }),
    el('option', { value: 'swarm', text: 'Docker Swarm cluster' }));
  select.value = pool.engine ?? 'docker';
  return el('div', { class: 'form-grid' },
    el('p', { class: 'field' }, el('label', { for: engineId }, 'Engine'), select),
    el('p', { class: 'field' },
      el('label', { for: endpointId }, 'Swarm manager API (unix:///… or tcp://host:port)'),
      el('input', { id: endpointId, name: 'endpoint', type: 'text', maxlength: 300, value: pool.endpoint ?? '' })));
}

const MIB = 1024 * 1024;

// The machines of a swarm pool: a lost or drained one stands out, in words.
function machineList(machines) {
  if (!machines) return null;
  if (machines.error) {
    return el('p', { class: 'alert alert-error', role: 'alert', 'data-machines': 'error' },
      `The pool's swarm does not answer: ${machines.error}`);
  }
  const rows = (machines.machines ?? []).map((m) => {
    const lost = m.state !== 'ready';
    const words = lost ? `unavailable (${m.state}): its workspaces failed; their data waits on it`
      : m.active ? 'ready' : 'drained: no new workspaces';
    return el('tr', { 'data-machine': m.name, 'data-state': m.state },
      el('td', { text: m.name }),
      el('td', {}, el('span', { class: `badge ${lost ? 'badge-danger' : m.active ? 'badge-success' : 'badge-warning'}`, text: words })),
      el('td', { text: String(m.workspaces) }),
      el('td', { text: `${Math.round(m.reserved_bytes / MIB)} of ${Math.round(m.memory_bytes / MIB)} MiB` }));
  });
  const ready = (machines.machines ?? []).filter((m) => m.state === 'ready' && m.active);
  const moveAlert = el('div', { class: 'alert', role: 'alert' });
  const userInput = el('input', { name: 'user', type: 'text', required: true, placeholder: 'the owner\'s user id', maxlength: 36 });
  const target = el('select', { name: 'node' }, ...ready.map((m) => el('option', { value: m.id, text: m.name })));
  const moveButton = el('button', { type: 'submit', class: 'button button-secondary' }, 'Move the workspace');
  const move = el('form', { class: 'move-form form-grid', 'data-move': 'workspace' },
    el('p', { class: 'field' }, el('label', {}, 'Workspace (user id)'), userInput),
    el('p', { class: 'field' }, el('label', {}, 'To machine'), target),
    el('div', { class: 'form-actions' }, moveButton),
    moveAlert);
  move.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearAlert(moveAlert);
    setBusy(moveButton, true);
    showAlert(moveAlert, 'Moving: stopping it, copying its data, pinning it to the new machine…', 'info');
    try {
      const done = await apiFetch(`/api/v1/admin/workspaces/${encodeURIComponent(userInput.value.trim())}/move`,
        { method: 'POST', body: { node: target.value }, csrf: state.csrf });
      showAlert(moveAlert, `Moved to ${done.machine.name}: ${done.steps.join('; ')}.`, 'success');
    } catch (err) {
      showAlert(moveAlert, describeError(err));
    } finally {
      setBusy(moveButton, false);
    }
  });
  return el('div', { class: 'machines' },
    el('h3', { text: 'Machines' }),
    rows.length === 0 ? el('p', { class: 'muted', text: 'No machine carries this pool\'s label (websplat.pool).' })
      : el('table', { class: 'table' },
        el('thead', {}, el('tr', {}, el('th', { text: 'Machine' }), el('th', { text: 'State' }),
          el('th', { text: 'Workspaces' }), el('th', { text: 'Memory reserved' }))),
        el('tbody', {}, ...rows)),
    move);
}

function card(pool, starts, machines) {
  const f = pool.figures ?? {};
  const used = (f.running ?? 0) + (f.starting ?? 0) + (f.queued ?? 0) + (f.warm ?? 0) + (f.warm_returning ?? 0);
  const alert = el('div', { class: 'alert', role: 'alert' });
  const form = el('form', { class: 'pool-form stack', 'data-pool': pool.name },
    el('div', { class: 'form-grid form-grid-numbers' },
      numberField(pool, 'max_running', 'Running at most', 0, 100000),
      numberField(pool, 'max_starting', 'Starting at once', 1, 1000),
      numberField(pool, 'queue_max', 'Queue length', 0, 100000),
      numberField(pool, 'warm_new', 'Warm for first sign-ins', 0, 1000),
      numberField(pool, 'returning_warm', 'Warm for returning people', 0, 1000),
      numberField(pool, 'returning_ttl_seconds', 'Returning wait (seconds)', 60, 604800)),
    checkboxField(pool, 'returning_ahead', 'Make each returning person\'s next container as their workspace stops'),
    engineFields(pool));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = {};
    for (const key of ['max_running', 'max_starting', 'queue_max', 'warm_new', 'returning_warm', 'returning_ttl_seconds']) {
      body[key] = Number(form.elements[key].value);
    }
    body.returning_ahead = form.elements.returning_ahead.checked;
    body.engine = form.elements.engine.value;
    body.endpoint = form.elements.endpoint.value.trim() || null;
    act(`/api/v1/pools/${encodeURIComponent(pool.name)}`, 'PATCH', body, form.querySelector('button'), alert);
  });
  const drain = el('button', { type: 'button', class: 'button button-secondary' },
    pool.draining ? 'Start again (undrain)' : 'Drain');
  form.append(el('div', { class: 'form-actions' },
    el('button', { type: 'submit', class: 'button' }, 'Save sizes'), drain));
  drain.addEventListener('click', () => act(
    `/api/v1/pools/${encodeURIComponent(pool.name)}/${pool.draining ? 'undrain' : 'drain'}`, 'POST', undefined, drain, alert,
  ));
  return el('section', { class: 'card admin-section pool', 'data-pool': pool.name, 'aria-labelledby': `pool-${pool.name}` },
    el('div', { class: 'section-head' },
      el('h2', { id: `pool-${pool.name}` }, pool.name),
      pool.draining ? el('span', { class: 'badge badge-warning', text: 'Draining' }) : null),
    pool.description ? el('p', { class: 'muted', text: pool.description }) : null,
    el('p', { class: 'muted' }, `Serves: ${(pool.access_levels ?? []).join(', ') || 'no access level'}.`),
    el('dl', { class: 'details stats figures' },
      figureRow('Running', f.running ?? 0, 'running'),
      figureRow('Starting', f.starting ?? 0, 'starting'),
      figureRow('Queued', f.queued ?? 0, 'queued'),
      figureRow('Warm (unclaimed)', f.warm ?? 0, 'warm'),
      figureRow('Warm for returning people', f.warm_returning ?? 0, 'warm-returning'),
      figureRow('Made ahead (not started)', f.pre_created ?? 0, 'pre-created'),
      figureRow('Failed in the last hour', f.failed_last_hour ?? 0, 'failed'),
      figureRow('Capacity used', `${used} of ${pool.max_running}`, 'capacity')),
    machineList(machines),
    chart(pool, starts),
    alert,
    form);
}

async function act(path, method, body, button, alert) {
  clearAlert(alert);
  setBusy(button, true);
  try {
    await apiFetch(path, { method, body, csrf: state.csrf });
    await load();
    showAlert($('page-alert'), 'Saved: in force at the next start on every replica.', 'success');
  } catch (err) {
    setBusy(button, false);
    showAlert(alert, describeError(err));
  }
}

async function load() {
  const status = $('page-status');
  clearAlert($('page-alert'));
  try {
    const { pools } = await apiFetch('/api/v1/pools');
    const cards = await Promise.all(pools.map(async (pool) => {
      let starts = null;
      try {
        starts = await apiFetch(`/api/v1/pools/${encodeURIComponent(pool.name)}/starts?minutes=60`);
      } catch {
        starts = null;
      }
      let machines = null;
      if (pool.engine === 'swarm') {
        try {
          machines = await apiFetch(`/api/v1/pools/${encodeURIComponent(pool.name)}/machines`);
        } catch (err) {
          machines = { error: describeError(err) };
        }
      }
      return card(pool, starts, machines);
    }));
    $('pools').replaceChildren(...cards);
    status.textContent = `As of ${new Date().toLocaleTimeString()}.`;
    status.classList.remove('loading');
  } catch (err) {
    status.textContent = '';
    if (err?.status === 401) {
      location.assign(`/login?return_to=${encodeURIComponent('/operator')}`);
      return;
    }
    showAlert($('page-alert'), describeError(err));
  }
}

async function startPage() {
  try {
    const me = await apiFetch('/api/v1/me');
    state.csrf = me?.csrf_token ?? '';
    $('user-name').textContent = me.display_name || me.email || 'Signed in';
    $('user-email').textContent = me.email ?? '';
  } catch (err) {
    if (err?.status === 401) {
      location.assign(`/login?return_to=${encodeURIComponent('/operator')}`);
      return;
    }
  }
  $('pools-refresh').addEventListener('click', load);
  await load();
}

startPage();
