// admin-fleet.js — the admin console's fleet section: users, tenants by state, capacity,
// the dependencies' health and the access levels' use, at a glance.
import { apiFetch, clearAlert, el, setBusy } from './api.js';
import { $, reportError, count, cpu, mebibytes, duration, badge, sections } from './admin-common.js';

function dependencyState(value) {
  if (value === 'ok') return badge('OK', 'success');
  return [badge('Unavailable', 'danger'), ' ', el('span', { class: 'muted', text: value ?? 'unknown' })];
}

function renderFleet(fleet) {
  $('fleet-users-total').textContent = count(fleet.users_total);
  $('fleet-users-disabled').textContent = count(fleet.users_disabled);
  $('fleet-cpu').textContent = cpu(fleet.cpu_millicores_if_all_run);
  $('fleet-memory').textContent = mebibytes(fleet.memory_mib_if_all_run);
  const deps = fleet.dependencies ?? {};
  $('fleet-postgresql').replaceChildren(...[dependencyState(deps.postgresql)].flat());
  $('fleet-redis').replaceChildren(...[dependencyState(deps.redis)].flat());
  $('fleet-docker').replaceChildren(...[dependencyState(deps.docker)].flat());
  const tenants = fleet.tenants ?? {};
  const live = ['requested', 'creating', 'starting', 'ready'].reduce((n, s) => n + (tenants[s] ?? 0), 0);
  $('fleet-tenants-running').textContent = `${count(live)} of ${count(fleet.max_running_tenants ?? 0)}`;
  $('fleet-tenants').textContent = Object.entries(tenants)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s} ${count(n)}`)
    .join(', ') || 'none';
  const perLevel = Object.entries(fleet.max_running_per_level ?? {}).map(([l, n]) => `${l} ≤ ${count(n)}`);
  $('fleet-capacity').textContent = [`${count(fleet.max_concurrent_spawns ?? 0)} starting at once`, ...perLevel].join('; ');
  $('fleet-summary').hidden = false;

  const levels = Array.isArray(fleet.access_levels) ? fleet.access_levels : [];
  $('fleet-levels-body').replaceChildren(...levels.map((level) => el('tr', {},
    el('th', { scope: 'row' }, level.name),
    el('td', { class: 'num' }, count(level.users)),
    el('td', { class: 'num', title: `${level.cpu_millicores} millicores` }, cpu(level.cpu_millicores)),
    el('td', { class: 'num' }, mebibytes(level.memory_mib)),
    el('td', { class: 'num' }, duration(level.idle_timeout_seconds)),
  )));
}

export async function loadFleet() {
  const status = $('fleet-status');
  const alert = $('fleet-alert');
  const refresh = $('fleet-refresh');
  clearAlert(alert);
  status.textContent = 'Loading the fleet…';
  setBusy(refresh, true);
  try {
    renderFleet(await apiFetch('/api/v1/admin/fleet') ?? {});
    status.textContent = `As of ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    status.textContent = '';
    reportError(err, alert);
  } finally {
    setBusy(refresh, false);
  }
}

Object.assign(sections, { loadFleet });
