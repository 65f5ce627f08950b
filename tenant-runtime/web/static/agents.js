// agents.js — the Agents view: the list, and one form to create or edit an agent (role,
// instructions, model, tools, autonomy, creativity), with the API's validation messages
// shown beside the field they are about.

import {
  ApiError, api, alertRegion, clearAlert, clearFieldErrors, confirmDialog, describeError, el, field,
  fieldErrors, setBusy, showAlert, toast,
} from './api.js';

const TOOLS = [
  ['site_editing', 'Site editing', 'change the pages of your sites'],
  ['document_search', 'Document search', 'read your documents'],
  ['web_search', 'Web search', 'look things up on the web'],
];

const AUTONOMY = [
  ['suggest', 'Suggest: proposes every change for you to accept'],
  ['ask', 'Ask: applies small changes, asks before major ones'],
  ['autonomous', 'Autonomous: applies its changes (undo brings them back)'],
];

export async function render(container) {
  let editing = null; // the agent being edited, or null for a new one

  const listAlert = alertRegion('agents-alert');
  const formAlert = alertRegion('agent-form-alert');
  const list = el('ul', { id: 'agent-list', class: 'plain-list agent-list' });

  const formTitle = el('h2', { id: 'agent-form-title', tabindex: '-1', text: 'New agent' });
  const name = el('input', { type: 'text', id: 'agent-name', name: 'name', required: true, maxlength: '64', autocomplete: 'off' });
  const role = el('input', { type: 'text', id: 'agent-role', name: 'role', maxlength: '200', placeholder: 'Copywriter for a bakery' });
  const instructions = el('textarea', { id: 'agent-instructions', name: 'instructions', rows: '5' });
  const model = el('input', { type: 'text', id: 'agent-model', name: 'model', value: 'auto', autocomplete: 'off' });
  const tools = el('fieldset', { id: 'agent-tools', class: 'field' },
    el('legend', { text: 'Tools it may use' }),
    TOOLS.map(([value, label, hint]) => el('label', { class: 'label-inline' },
      el('input', { type: 'checkbox', name: 'tools', value, id: `agent-tool-${value}` }),
      `${label} `, el('span', { class: 'muted small', text: `(${hint})` }))));
  const autonomy = el('select', { id: 'agent-autonomy', name: 'autonomy' },
    AUTONOMY.map(([value, label]) => el('option', { value, text: label })));
  const creativity = el('input', { type: 'range', id: 'agent-creativity', name: 'creativity', min: '0', max: '1', step: '0.05', value: '0.5' });
  const creativityValue = el('output', { id: 'agent-creativity-value', for: 'agent-creativity', text: '0.50' });
  const submit = el('button', { type: 'submit', id: 'save-agent', class: 'primary', text: 'Create agent' });
  const cancel = el('button', { type: 'button', id: 'new-agent', text: 'New agent instead', hidden: true });
  const form = el('form', { id: 'agent-form', novalidate: true },
    field('Name', name),
    field('Role', role, 'One line: what this agent is for.'),
    field('Instructions', instructions, 'How it should work and write (at most 20,000 characters).'),
    field('Model', model, '“auto” lets the workspace choose, or name one (e.g. gpt-4o).'),
    tools,
    field('Autonomy', autonomy),
    el('div', { class: 'field' },
      el('label', { for: 'agent-creativity' }, 'Creativity ', creativityValue),
      creativity,
      el('p', { class: 'hint', text: '0 sticks to the facts, 1 takes liberties.' })),
    el('div', { class: 'actions' }, submit, cancel));

  container.replaceChildren(
    el('div', { class: 'view-head' }, el('h1', { tabindex: '-1', text: 'Agents' })),
    el('p', { class: 'muted', text: 'Agents are named configurations of the AI that works on your sites. The generator uses an agent’s autonomy; the built-in generator is template-based, so instructions and model take effect with a language model only.' }),
    el('div', { class: 'grid-2' },
      el('section', { class: 'card', 'aria-labelledby': 'agent-list-title' },
        el('h2', { id: 'agent-list-title', text: 'Your agents' }), listAlert, list),
      el('section', { class: 'card', 'aria-labelledby': 'agent-form-title' },
        formTitle, formAlert, form)));

  creativity.addEventListener('input', () => {
    creativityValue.textContent = Number(creativity.value).toFixed(2);
  });

  function fill(agent) {
    editing = agent;
    clearAlert(formAlert);
    clearFieldErrors(form);
    formTitle.textContent = agent ? `Edit ${agent.name}` : 'New agent';
    submit.textContent = agent ? 'Save changes' : 'Create agent';
    cancel.hidden = !agent;
    name.value = agent?.name ?? '';
    role.value = agent?.role ?? '';
    instructions.value = agent?.instructions ?? '';
    model.value = agent?.model ?? 'auto';
    for (const box of tools.querySelectorAll('input')) box.checked = Boolean(agent?.tools?.includes(box.value));
    autonomy.value = agent?.autonomy ?? 'suggest';
    creativity.value = String(agent?.creativity ?? 0.5);
    creativityValue.textContent = Number(creativity.value).toFixed(2);
  }
  cancel.addEventListener('click', () => {
    fill(null);
    name.focus();
  });

  async function load() {
    let answer;
    try {
      answer = await api('/api/v1/agents?per_page=100');
    } catch (err) {
      showAlert(listAlert, describeError(err));
      return;
    }
    list.replaceChildren();
    if (!answer.agents.length) list.append(el('li', { class: 'muted', id: 'no-agents', text: 'No agents yet: create one with the form.' }));
    for (const agent of answer.agents) {
      const edit = el('button', { type: 'button', class: 'small-button edit-agent', text: 'Edit', 'aria-label': `Edit ${agent.name}` });
      const remove = el('button', { type: 'button', class: 'small-button danger delete-agent', text: 'Delete', 'aria-label': `Delete ${agent.name}` });
      edit.addEventListener('click', () => {
        fill(agent);
        formTitle.focus();
      });
      remove.addEventListener('click', async () => {
        const ok = await confirmDialog(`Delete the agent "${agent.name}"?`, { confirmLabel: 'Delete agent', danger: true, title: 'Delete this agent?' });
        if (!ok) return;
        clearAlert(listAlert);
        setBusy(remove, true, 'Deleting…');
        try {
          await api(`/api/v1/agents/${encodeURIComponent(agent.id)}`, { method: 'DELETE' });
          if (editing?.id === agent.id) fill(null);
          toast(`Deleted ${agent.name}.`);
          await load();
        } catch (err) {
          setBusy(remove, false);
          showAlert(listAlert, describeError(err));
        }
      });
      list.append(el('li', { class: 'agent', dataset: { id: agent.id } },
        el('span', { class: 'agent-name', text: agent.name }),
        agent.role ? el('span', { class: 'muted small', text: agent.role }) : null,
        el('span', { class: 'badge', text: agent.autonomy }),
        el('span', { class: 'badge', text: `model: ${agent.model}` }),
        el('span', { class: 'muted small', text: agent.tools.length ? `tools: ${agent.tools.join(', ')}` : 'no tools' }),
        el('span', { class: 'push' }, edit, remove)));
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(formAlert);
    clearFieldErrors(form);
    const body = {
      name: name.value.trim(),
      role: role.value.trim(),
      instructions: instructions.value,
      model: model.value.trim() || 'auto',
      tools: [...tools.querySelectorAll('input:checked')].map((box) => box.value),
      autonomy: autonomy.value,
      creativity: Number(creativity.value),
    };
    if (!body.name) {
      fieldErrors(form, { field: 'name', message: 'Give the agent a name.' });
      return;
    }
    setBusy(submit, true, 'Saving…');
    try {
      const saved = editing
        ? await api(`/api/v1/agents/${encodeURIComponent(editing.id)}`, { method: 'PUT', json: body })
        : await api('/api/v1/agents', { method: 'POST', json: body });
      setBusy(submit, false);
      const message = editing ? `Saved ${saved.name}.` : `Created ${saved.name}.`;
      fill(saved);
      // One success message, beside the form (no toast as well).
      showAlert(formAlert, message, 'success');
      await load();
    } catch (err) {
      setBusy(submit, false);
      if (err instanceof ApiError && err.status === 409) {
        fieldErrors(form, { field: 'name', message: err.message });
      } else if (!fieldErrors(form, err)) {
        showAlert(formAlert, describeError(err));
      }
    }
  });

  await load();
  return null;
}
