// generate.js — the Generate tab: a brief (name, description, sections, tone, keywords,
// autonomy, optionally an agent) → a background job whose progress (and steps, as the job
// lists them) arrives over server-sent events → the result: applied as a new version, or
// a proposal to accept or reject.

import {
  ApiError, api, alertRegion, clearAlert, clearFieldErrors, describeError, el, field, fieldErrors,
  refreshUsage, setBusy, showAlert, splitList, timeEl, toast,
} from './api.js';
import { finished, followJob, progressCard } from './jobs.js';

export async function render(panel, ctx) {
  const id = encodeURIComponent(ctx.id);
  let stopFollowing = null;
  let disposed = false;

  // ----- the brief -----
  const formAlert = alertRegion('generate-alert');
  const name = el('input', { type: 'text', id: 'brief-name', name: 'name', required: true, maxlength: '100', value: ctx.project?.name ?? '' });
  const description = el('textarea', { id: 'brief-description', name: 'description', rows: '3', maxlength: '500' });
  const sections = el('input', { type: 'text', id: 'brief-sections', name: 'sections', required: true, placeholder: 'Menu, About us, Visit' });
  const tone = el('select', { id: 'brief-tone', name: 'tone' },
    el('option', { value: 'friendly', text: 'Friendly' }),
    el('option', { value: 'professional', text: 'Professional' }),
    el('option', { value: 'playful', text: 'Playful' }));
  const keywords = el('input', { type: 'text', id: 'brief-keywords', name: 'keywords', placeholder: 'sourdough, pastries' });
  const autonomy = el('select', { id: 'brief-autonomy', name: 'autonomy' },
    el('option', { value: 'suggest', text: 'Suggest: show me a proposal first' }),
    el('option', { value: 'ask', text: 'Ask: propose major changes (a whole site is one)' }),
    el('option', { value: 'autonomous', text: 'Autonomous: apply it as a new version' }),
    el('option', { value: '', text: 'As the chosen agent is set' }));
  const agent = el('select', { id: 'brief-agent', name: 'agent_id' }, el('option', { value: '', text: 'No agent' }));
  const submit = el('button', { type: 'submit', id: 'generate-submit', class: 'primary', text: 'Generate the site' });
  const form = el('form', { id: 'generate-form', novalidate: true },
    field('Site name', name),
    field('Description', description, 'What the site is about, in a sentence or two (at most 500 characters).'),
    field('Sections', sections, 'Comma-separated, 1 to 8: each becomes a page.'),
    el('div', { class: 'field-row' },
      field('Tone', tone),
      field('Autonomy', autonomy, 'Undo always brings the previous version back.'),
      field('Agent', agent, 'Optional: an agent whose settings to use.')),
    field('Keywords', keywords, 'Comma-separated, at most 10: what people search for.'),
    el('div', { class: 'actions' }, submit));

  // ----- progress -----
  const card = progressCard('generate', 'Progress', 'Generation');
  const progressSection = card.root;

  // ----- result and proposals -----
  const resultAlert = alertRegion('generate-result-alert');
  const result = el('div', { id: 'generate-result' });
  const proposals = el('ul', { id: 'proposal-list', class: 'plain-list' });
  const proposalsAlert = alertRegion('proposals-alert');

  panel.replaceChildren(
    el('p', { class: 'notice', id: 'generator-notice' },
      el('strong', { text: 'About the generator: ' }),
      'this workspace’s built-in generator is template-based. It fills page templates with the words of your brief; it is not a language model, and every result says which generator made it.'),
    el('div', { class: 'grid-2' },
      el('section', { class: 'card', 'aria-labelledby': 'brief-title' },
        el('h2', { id: 'brief-title', text: 'Describe your site' }), formAlert, form),
      el('div', null,
        progressSection,
        resultAlert,
        result,
        el('section', { class: 'card', 'aria-labelledby': 'proposals-title' },
          el('h2', { id: 'proposals-title', text: 'Proposals' }),
          el('p', { class: 'muted small', text: 'Generated sites waiting for your decision. Accepting one commits it as a new version.' }),
          proposalsAlert, proposals))));

  // ----- behaviour -----

  async function showResult(job) {
    setBusy(submit, false);
    result.replaceChildren();
    if (job.status === 'failed') {
      showAlert(resultAlert, `The generation failed: ${job.error ?? 'no reason was given'}.`);
      return;
    }
    const r = job.result ?? {};
    const files = Array.isArray(r.files) ? r.files : [];
    const parts = [
      el('h2', { id: 'result-title', text: r.applied ? 'Your site was generated and applied' : 'Your site is ready to review' }),
      el('p', { id: 'result-generator', class: 'notice' }, el('strong', { text: 'Made by: ' }), String(r.generator ?? 'an unnamed generator')),
      r.review?.notes ? el('p', { id: 'result-notes', text: String(r.review.notes) }) : null,
      files.length ? el('p', { class: 'small' }, `Files: ${files.join(', ')}`) : null,
    ];
    if (r.applied) {
      parts.push(el('p', { id: 'result-applied' },
        `It is now version ${r.version}. `,
        el('a', { href: `#/projects/${id}/edit`, id: 'open-editor', text: 'Open the editor' }),
        ' · ',
        el('a', { href: `#/projects/${id}/seo`, text: 'See the SEO report' }),
        ' · Undo (above) goes back.'));
      try {
        await ctx.refresh();
      } catch { /* the header keeps the last known version */ }
      refreshUsage();
    } else if (r.proposal_id) {
      parts.push(el('p', { id: 'result-proposal' }, 'Nothing changed yet: it is a proposal, listed below. Accept it to apply it as a new version, or reject it.'));
    }
    result.replaceChildren(el('section', { class: 'card', 'aria-labelledby': 'result-title' }, parts));
    await loadProposals();
  }

  function follow(job) {
    stopFollowing?.();
    if (!finished(job)) setBusy(submit, true, 'Generating…');
    stopFollowing = followJob(job, {
      onUpdate: (update) => { if (!disposed) card.show(update); },
      onEnd: (update) => { if (!disposed) showResult(update); },
      onGone: () => {
        if (disposed) return;
        setBusy(submit, false);
        showAlert(resultAlert, 'The job is gone.');
      },
    });
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(formAlert);
    clearAlert(resultAlert);
    clearFieldErrors(form);
    const brief = {
      name: name.value.trim(),
      description: description.value.trim(),
      sections: splitList(sections.value),
      tone: tone.value,
      keywords: splitList(keywords.value),
    };
    if (autonomy.value) brief.autonomy = autonomy.value;
    if (agent.value) brief.agent_id = agent.value;
    if (!brief.name) {
      fieldErrors(form, { field: 'name', message: 'Give the site a name.' });
      return;
    }
    if (!brief.sections.length) {
      fieldErrors(form, { field: 'sections', message: 'Name at least one section, e.g. Menu, About us.' });
      return;
    }
    setBusy(submit, true, 'Starting…');
    result.replaceChildren();
    try {
      const job = await api(`/api/v1/projects/${id}/generate`, { method: 'POST', json: brief });
      if (disposed) return;
      follow(job);
    } catch (err) {
      setBusy(submit, false);
      if (!fieldErrors(form, err)) showAlert(formAlert, describeError(err));
    }
  });

  async function decide(proposal, action, force = false, button = null) {
    clearAlert(proposalsAlert);
    setBusy(button, true);
    try {
      const query = force ? '?force=true' : '';
      const answer = await api(`/api/v1/proposals/${encodeURIComponent(proposal.id)}/${action}${query}`, { method: 'POST' });
      if (action === 'accept') {
        try { await ctx.refresh(); } catch { /* shown on the next read */ }
        refreshUsage();
        showAlert(proposalsAlert, `Accepted as version ${answer.version}. `, 'success',
          el('a', { href: `#/projects/${id}/edit`, text: 'Open the editor' }));
      } else {
        toast('Proposal rejected.');
      }
      await loadProposals(false);
    } catch (err) {
      setBusy(button, false);
      if (err instanceof ApiError && err.status === 409 && action === 'accept' && !force) {
        // Still open? Then the project moved on since the proposal was made: offer to apply it anyway.
        const open = (await loadProposals(false))?.some((p) => p.id === proposal.id && p.status === 'open');
        if (open) {
          const again = el('button', { type: 'button', id: 'accept-force', class: 'danger', text: 'Accept anyway' });
          again.addEventListener('click', () => decide(proposal, 'accept', true, again));
          showAlert(proposalsAlert, `${describeError(err)} `, 'warning', again);
          again.focus();
          return;
        }
      }
      showAlert(proposalsAlert, describeError(err));
    }
  }

  /** Lists the project's proposals (open first); returns them. */
  async function loadProposals(clearMessages = true) {
    if (clearMessages) clearAlert(proposalsAlert);
    let list;
    try {
      list = (await api(`/api/v1/projects/${id}/proposals`)).proposals;
    } catch (err) {
      showAlert(proposalsAlert, describeError(err));
      return null;
    }
    if (disposed) return list;
    proposals.replaceChildren();
    const open = list.filter((p) => p.status === 'open');
    const closed = list.filter((p) => p.status !== 'open').slice(0, 5);
    if (!open.length) proposals.append(el('li', { class: 'muted', id: 'no-proposals', text: 'No proposal is waiting.' }));
    for (const p of [...open, ...closed]) {
      const item = el('li', { class: 'version proposal', dataset: { id: p.id, status: p.status } },
        el('span', { class: 'message' }, p.summary, ' ',
          el('span', { class: 'muted small' }, `(based on version ${p.base_version}, `, timeEl(p.created_at), ')')),
        el('span', { class: `badge ${p.status === 'open' ? 'badge-accent' : p.status === 'accepted' ? 'badge-success' : ''}`, text: p.status }));
      if (p.status === 'open') {
        const accept = el('button', { type: 'button', class: 'primary small-button accept-proposal', text: 'Accept' });
        const reject = el('button', { type: 'button', class: 'small-button reject-proposal', text: 'Reject' });
        accept.addEventListener('click', () => decide(p, 'accept', false, accept));
        reject.addEventListener('click', () => decide(p, 'reject', false, reject));
        item.append(el('span', { class: 'actions' }, accept, reject));
      }
      proposals.append(item);
    }
    return list;
  }

  async function loadAgents() {
    try {
      const answer = await api('/api/v1/agents?per_page=100');
      for (const a of answer.agents) {
        agent.append(el('option', { value: a.id, text: `${a.name} (${a.autonomy})` }));
      }
    } catch { /* the brief works without agents */ }
  }

  /** A generation of this project still under way (e.g. started before a reload) is followed. */
  async function resume() {
    try {
      const { jobs } = await api('/api/v1/jobs');
      const running = jobs.find((j) => j.kind === 'generate_site' && j.project_id === ctx.id && !finished(j));
      if (running && !disposed) follow(running);
    } catch { /* nothing to resume */ }
  }

  await Promise.all([loadAgents(), loadProposals(), resume()]);

  return () => {
    disposed = true;
    stopFollowing?.();
    stopFollowing = null;
  };
}
