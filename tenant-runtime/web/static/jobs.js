// jobs.js — background jobs (generation, indexing, export, publish) as every view shows
// them: following one job's server-sent events, and a progress card drawn from the job's
// own JSON — its status, progress and ordered steps (`job.steps`: name, label, state,
// message) — so no view hardcodes a job's steps.

import { ApiError, api, el } from './api.js';

const STATUS_LABELS = {
  queued: 'Queued',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
};

const STEP_STATE_LABELS = {
  pending: 'not started',
  running: 'under way',
  done: 'done',
  failed: 'failed',
  skipped: 'skipped',
};

export const finished = (job) => job?.status === 'succeeded' || job?.status === 'failed';

const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2 };

/**
 * Whether `update` is newer than `last` (same job). A job's event stream can deliver, after
 * its opening state, progress it had already made before (events broadcast while the
 * stream was being opened): those must not move the bar back.
 */
export function newer(update, last) {
  if (!last || update.id !== last.id) return true;
  const a = RANK[update.status] ?? 1;
  const b = RANK[last.status] ?? 1;
  if (a !== b) return a > b;
  if (b === 2) return false;
  if (update.updated_at !== last.updated_at) return String(update.updated_at) > String(last.updated_at);
  return (Number(update.progress) || 0) >= (Number(last.progress) || 0);
}

/**
 * Follows a job until it ends: `onUpdate(job)` for each newer state, `onEnd(job)` once when
 * it has finished, `onGone()` if the job disappears. Returns a function that stops
 * following. The browser reconnects a dropped stream by itself; meanwhile the job's state
 * is read once, so a job that ended while the stream was down is shown as ended.
 */
export function followJob(job, { onUpdate, onEnd, onGone }) {
  let last = null;
  let source = null;
  let stopped = false;
  const stop = () => {
    stopped = true;
    source?.close();
    source = null;
  };
  const take = (update) => {
    if (stopped || !newer(update, last)) return;
    last = update;
    onUpdate?.(update);
    if (finished(update)) {
      stop();
      onEnd?.(update);
    }
  };
  take(job);
  if (stopped) return stop;
  source = new EventSource(`/api/v1/jobs/${encodeURIComponent(job.id)}/events`);
  source.addEventListener('job', (event) => {
    let update;
    try { update = JSON.parse(event.data); } catch { return; }
    take(update);
  });
  source.addEventListener('error', async () => {
    if (stopped) return;
    try {
      take(await api(`/api/v1/jobs/${encodeURIComponent(job.id)}`));
    } catch (err) {
      if (!stopped && err instanceof ApiError && err.status === 404) {
        stop();
        onGone?.();
      }
    }
  });
  return stop;
}

/** Fills `list` (an <ol>) with a job's steps, in order, each marked with its state. */
export function showSteps(list, job) {
  const steps = Array.isArray(job?.steps) ? job.steps : [];
  list.replaceChildren(...steps.map((step) => {
    const state = String(step.state ?? 'pending');
    const item = el('li', {
      class: ['step', `step-${state}`, state === 'done' && 'done', state === 'running' && 'active'],
      dataset: { step: String(step.name ?? ''), state },
      title: step.message ? `${step.label}: ${step.message}` : `${step.label} (${STEP_STATE_LABELS[state] ?? state})`,
      text: String(step.label ?? step.name ?? ''),
    });
    if (state === 'running') item.setAttribute('aria-current', 'step');
    return item;
  }));
}

/**
 * A progress card for one job: its status badge, a progress bar, the step under way and
 * the list of steps. Ids start with `prefix` (`${prefix}-status`, `-progress`, `-percent`,
 * `-step`, `-steps`, and `${prefix}-job` for the card). `show(job)` draws a state. Inside
 * another card, pass `{ nested: true }`: a plain section with an h3.
 */
export function progressCard(prefix, title, label, { nested = false } = {}) {
  const status = el('span', { id: `${prefix}-status`, class: 'badge', text: 'Not started' });
  const progress = el('progress', { id: `${prefix}-progress`, max: '100', value: '0', 'aria-labelledby': `${prefix}-progress-label` }, '0%');
  const percent = el('span', { id: `${prefix}-percent`, class: 'muted small', text: '0%' });
  const step = el('span', { id: `${prefix}-step`, class: 'nowrap' });
  const steps = el('ol', { id: `${prefix}-steps`, class: 'steps', 'aria-label': 'Steps' });
  const root = el('section', { id: `${prefix}-job`, class: nested ? 'job-card nested' : 'card job-card', hidden: true, 'aria-labelledby': `${prefix}-job-title` },
    el(nested ? 'h3' : 'h2', { id: `${prefix}-job-title`, text: title }),
    el('div', { class: 'progress-wrap' },
      el('div', { class: 'pane-head' },
        el('span', { id: `${prefix}-progress-label`, text: label }), status, percent),
      progress,
      el('p', { class: 'small', 'aria-live': 'polite' }, 'Step: ', step)),
    steps);

  function show(job) {
    root.hidden = false;
    status.textContent = STATUS_LABELS[job.status] ?? job.status;
    status.dataset.status = job.status;
    status.className = `badge ${job.status === 'succeeded' ? 'badge-success' : job.status === 'failed' ? 'badge-error' : 'badge-accent'}`;
    const value = Math.max(0, Math.min(100, Number(job.progress) || 0));
    progress.value = value;
    progress.textContent = `${value}%`;
    percent.textContent = `${value}%`;
    const running = (job.steps ?? []).find((s) => s.state === 'running');
    step.textContent = (job.status === 'running' && running?.label)
      || job.step
      || (job.status === 'queued' ? 'waiting to start' : '—');
    showSteps(steps, job);
  }

  return { root, show };
}
