// workspace.js — the dashboard's workspace tile: the state of the user's workspace, live
// progress while it starts (server-sent events from /api/v1/workspace/events), "Open
// workspace" once it is ready, and errors in words.
import { apiFetch, clearAlert, describeError, formatBytes, formatDate, showAlert } from './api.js';

const $ = (id) => document.getElementById(id);

// What each state means to a person, and how far along the start it is (of 4 steps).
const STATES = {
  queued: { text: 'Waiting for your turn to start…', step: 0 },
  requested: { text: 'Getting a fresh workspace ready for you…', step: 1 },
  creating: { text: 'Creating your private container…', step: 2 },
  starting: { text: 'Starting WebSplat in it…', step: 3 },
  ready: { text: 'Your workspace is ready.', step: 4 },
  stopping: { text: 'Stopping your workspace…', step: 0 },
  stopped: { text: 'Your workspace is stopped. Everything in it is kept.', step: 0 },
  failed: { text: 'Your workspace could not run.', step: 0 },
};
const IN_PROGRESS = new Set(['queued', 'requested', 'creating', 'starting', 'stopping']);

// The place in the pool's start queue, in words.
function queueText(ahead) {
  if (ahead === 0) return 'Your workspace is next to start…';
  if (ahead === 1) return 'Waiting to start: 1 person ahead of you.';
  return `Waiting to start: ${ahead} people ahead of you.`;
}

/** `onReady` is called each time the workspace is seen becoming ready. */
export function initWorkspace(getCsrf, onReady = () => {}) {
  const ui = {
    state: $('workspace-state'),
    reason: $('workspace-reason'),
    progress: $('workspace-progress'),
    alert: $('workspace-alert'),
    open: $('workspace-open'),
    start: $('workspace-start'),
    stop: $('workspace-stop'),
    url: $('workspace-url'),
    usage: $('workspace-usage'),
  };
  let events = null;
  const seen = [];

  function render(status) {
    // The states this page has shown, oldest first (also a tooltip: "requested → … → ready").
    if (seen[seen.length - 1] !== status.state) {
      seen.push(status.state);
      if (status.state === 'ready') onReady();
    }
    ui.state.title = seen.join(' → ');
    const known = STATES[status.state] ?? { text: `Your workspace is ${status.state}.`, step: 0 };
    ui.state.textContent = status.state === 'queued' && Number.isInteger(status.ahead)
      ? queueText(status.ahead)
      : known.text;
    ui.state.dataset.state = status.state;
    const reason = status.reason
      ? (status.state === 'failed' ? `What happened: ${status.reason}. Start it again; your work is kept.` : `Reason: ${status.reason}.`)
      : '';
    ui.reason.textContent = reason;
    ui.reason.hidden = !reason;
    const busy = IN_PROGRESS.has(status.state) && status.state !== 'stopping';
    ui.progress.hidden = !busy;
    ui.progress.value = known.step;
    ui.open.hidden = status.state !== 'ready';
    ui.start.hidden = !['stopped', 'failed'].includes(status.state);
    ui.stop.hidden = !['ready', 'queued', 'requested', 'creating', 'starting'].includes(status.state);
    if (status.usage) {
      const share = status.usage.quota_bytes > 0 ? Math.round((100 * status.usage.used_bytes) / status.usage.quota_bytes) : 0;
      ui.usage.textContent = `Storage: ${formatBytes(status.usage.used_bytes)} of ${formatBytes(status.usage.quota_bytes)} (${share}%), as of ${formatDate(status.usage.at)}.`;
      ui.usage.hidden = false;
    }
    if (status.url) {
      ui.url.textContent = status.url;
      ui.url.hidden = false;
    }
    if (IN_PROGRESS.has(status.state)) follow();
  }

  function follow() {
    if (events) return;
    events = new EventSource('/api/v1/workspace/events');
    events.addEventListener('state', (e) => {
      let status;
      try { status = JSON.parse(e.data); } catch { return; }
      render(status);
      if (!IN_PROGRESS.has(status.state)) stopFollowing();
    });
    events.onerror = () => {
      // The stream ends once the workspace settles; look once more, then rest.
      stopFollowing();
      refresh();
    };
  }

  function stopFollowing() {
    if (events) {
      events.close();
      events = null;
    }
  }

  async function refresh() {
    try {
      render(await apiFetch('/api/v1/workspace'));
    } catch (err) {
      showAlert(ui.alert, describeError(err));
    }
  }

  async function act(path, button) {
    clearAlert(ui.alert);
    button.disabled = true;
    try {
      render(await apiFetch(path, { method: 'POST', csrf: getCsrf() }));
    } catch (err) {
      showAlert(ui.alert, describeError(err));
    } finally {
      button.disabled = false;
    }
  }

  ui.start.addEventListener('click', () => act('/api/v1/workspace/start', ui.start));
  ui.stop.addEventListener('click', () => act('/api/v1/workspace/stop', ui.stop));
  refresh();
}
