// chat.js — the Chat tab: a project's chat sessions (start, rename, delete, page through),
// one conversation with "load earlier", and a composer whose reply streams in as it is
// written. The reply to a POST arrives as server-sent events, so it is read with fetch and
// a stream reader and parsed here (EventSource only does GET):
//   message  the stored user message          token  {"text": "…"}: the next piece
//   done     the stored assistant message, with its sources (document, page)
// The session shown is in the URL: #/projects/{id}/chat/{session}.

import {
  ApiError, api, alertRegion, clearAlert, clearFieldErrors, confirmDialog, describeError, el,
  errorFrom, fieldErrors, setBusy, showAlert, timeEl, toast,
} from './api.js';

const SESSIONS_PER_PAGE = 20;
const MESSAGES_PER_PAGE = 50;
const MAX_MESSAGE_CHARS = 8000;
const DEFAULT_TITLE = 'New chat';

/**
 * A server-sent-events parser (the WHATWG format): feed it decoded text in any chunks with
 * push(); it calls onEvent({event, data}) for every complete event. Lines end with \n, \r\n
 * or \r; `:` lines are comments; several data lines are joined with \n; an event without
 * data is not dispatched, nor is an unfinished one when the stream ends.
 */
export function sseParser(onEvent) {
  let buffer = '';
  let name = '';
  let data = [];

  function line(text) {
    if (text === '') {
      if (data.length) onEvent({ event: name || 'message', data: data.join('\n') });
      name = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }

  return {
    push(chunk) {
      buffer += chunk;
      const breaks = /\r\n|\n|\r/g;
      let start = 0;
      let match;
      while ((match = breaks.exec(buffer)) !== null) {
        // A \r at the very end may be the first half of a \r\n: wait for the next chunk.
        if (match[0] === '\r' && match.index === buffer.length - 1) break;
        line(buffer.slice(start, match.index));
        start = breaks.lastIndex;
      }
      buffer = buffer.slice(start);
    },
    end() {
      buffer = '';
      name = '';
      data = [];
    },
  };
}

/**
 * POSTs a message and reads the reply's event stream, calling onEvent for each event.
 * Rejects with an ApiError for an error answered before the stream (e.g. 400), or the
 * AbortError when `signal` aborts.
 */
async function postMessage(sessionId, content, onEvent, signal) {
  let response;
  try {
    response = await fetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream, application/json;q=0.9' },
      body: JSON.stringify({ content }),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (cause) {
    if (cause?.name === 'AbortError') throw cause;
    throw new ApiError({ status: 0, code: 'network_error', message: 'Could not reach the workspace. Check your connection and try again.' });
  }
  if (!response.ok) throw errorFrom(response.status, response.headers, await response.text());
  const type = response.headers.get('Content-Type') ?? '';
  if (!type.includes('text/event-stream') || !response.body) {
    throw new ApiError({ status: response.status, code: 'invalid_response', message: 'The workspace sent an answer that could not be read.' });
  }
  const parser = sseParser(onEvent);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
  } finally {
    parser.end();
    reader.releaseLock();
  }
}

/** JSON.parse, or null for what is not JSON. */
function parseJson(text) {
  try { return JSON.parse(text); } catch { return null; }
}

/** A title from the first message: one line, at most 60 characters. */
export function titleFrom(text) {
  const line = String(text).replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (!line) return DEFAULT_TITLE;
  return line.length > 60 ? `${line.slice(0, 59).trimEnd()}…` : line;
}

/** The sources of a reply as chips naming document and page (one chip per page). */
function sourceChips(sources) {
  const list = Array.isArray(sources) ? sources : [];
  const seen = new Set();
  const chips = [];
  for (const source of list) {
    if (!source || typeof source !== 'object') continue;
    const name = String(source.document_name ?? 'a document');
    const page = source.page ?? '?';
    const key = `${source.document_id ?? name}|${page}`;
    if (seen.has(key)) continue;
    seen.add(key);
    chips.push(el('li', {
      class: 'source-chip',
      dataset: { documentId: source.document_id ?? '', page: String(page) },
      title: `Source: ${name}, page ${page}`,
    },
    el('span', { class: 'source-name', text: name }),
    el('span', { class: 'source-page', text: ` · p. ${page}` })));
  }
  if (!chips.length) return null;
  return el('ul', { class: 'source-chips', 'aria-label': 'Sources' }, chips);
}

/** One message as a list item; its text is text, never HTML. */
function bubble(message, { pending = false } = {}) {
  const role = message.role === 'user' ? 'user' : 'assistant';
  const item = el('li', {
    class: ['chat-message', role, pending && 'pending'],
    dataset: { role, ...(message.id != null ? { id: String(message.id) } : {}) },
  },
  el('div', { class: 'chat-meta' },
    el('span', { class: 'chat-role', text: role === 'user' ? 'You' : 'Assistant' }),
    message.created_at ? timeEl(message.created_at) : null),
  el('div', { class: 'chat-text', text: message.content ?? '' }),
  sourceChips(message.sources));
  return item;
}

/** Puts a stored message into an existing bubble (after streaming). */
function fill(item, message) {
  item.classList.remove('pending', 'streaming');
  item.removeAttribute('aria-busy');
  if (message.id != null) item.dataset.id = String(message.id);
  const meta = item.querySelector('.chat-meta');
  meta.querySelector('time')?.remove();
  if (message.created_at) meta.append(timeEl(message.created_at));
  item.querySelector('.chat-text').textContent = message.content ?? '';
  item.querySelector('.source-chips')?.remove();
  const chips = sourceChips(message.sources);
  if (chips) item.append(chips);
}

export async function render(panel, ctx) {
  const projectId = encodeURIComponent(ctx.id);
  const chatUrl = (sessionId) => `#/projects/${ctx.id}/chat${sessionId ? `/${sessionId}` : ''}`;
  /** Names the session shown in the URL, without a new history entry or a hashchange. */
  const setUrl = (sessionId) => {
    ctx.sub = sessionId;
    if (location.hash !== chatUrl(sessionId)) history.replaceState(null, '', chatUrl(sessionId));
  };

  let disposed = false;
  let sessions = [];
  let total = 0;
  let shownCount = SESSIONS_PER_PAGE;
  let selected = null;
  let agents = [];
  let oldestId = null;
  let stream = null; // the AbortController of the reply being read
  let opening = 0; // counts open() calls: a slow one never draws over a later one

  // ----- the session list -----
  const listAlert = alertRegion('sessions-alert');
  const agentSelect = el('select', { id: 'chat-agent', name: 'agent_id' },
    el('option', { value: '', text: 'Built-in assistant' }));
  const newChat = el('button', { type: 'submit', id: 'new-chat', class: 'primary', text: 'New chat' });
  const newForm = el('form', { id: 'new-chat-form', class: 'new-chat-form' },
    el('div', { class: 'field' },
      el('label', { for: 'chat-agent', text: 'Agent' }), agentSelect,
      el('p', { class: 'hint', text: 'Optional: the agent the chat is with.' })),
    newChat);
  const sessionList = el('ul', { id: 'session-list', class: 'plain-list session-list' });
  const more = el('button', { type: 'button', id: 'more-sessions', class: 'small-button', text: 'Show more chats', hidden: true });

  // ----- the conversation -----
  const alert = alertRegion('chat-alert');
  const title = el('h2', { id: 'chat-title', tabindex: '-1', text: 'Start a chat' });
  const agentLine = el('p', { id: 'chat-agent-line', class: 'muted small', hidden: true });
  const renameButton = el('button', { type: 'button', id: 'rename-session', class: 'small-button', text: 'Rename', hidden: true });
  const deleteButton = el('button', { type: 'button', id: 'delete-session', class: 'small-button danger', text: 'Delete', hidden: true });
  const renameInput = el('input', { type: 'text', id: 'rename-title', name: 'title', maxlength: '120', autocomplete: 'off' });
  const renameForm = el('form', { id: 'rename-form', class: 'inline-form', hidden: true, novalidate: true },
    el('div', { class: 'field' }, el('label', { for: 'rename-title', text: 'Title' }), renameInput),
    el('button', { type: 'submit', id: 'rename-save', class: 'primary', text: 'Save' }),
    el('button', { type: 'button', id: 'rename-cancel', text: 'Cancel' }));
  const earlier = el('button', { type: 'button', id: 'load-earlier', class: 'small-button', text: 'Load earlier messages', hidden: true });
  const log = el('ol', { id: 'chat-log', class: 'chat-log' });
  const empty = el('p', { id: 'chat-empty', class: 'muted chat-empty',
    text: 'Ask about your documents or your site. Your first message starts a new chat.' });
  const scroller = el('div', { class: 'chat-scroll', role: 'log', 'aria-label': 'Messages', tabindex: '0' },
    el('div', { class: 'chat-earlier' }, earlier), empty, log);
  const input = el('textarea', {
    id: 'chat-input', name: 'content', rows: '3', maxlength: String(MAX_MESSAGE_CHARS),
    placeholder: 'When do you open?', 'aria-describedby': 'chat-input-hint',
  });
  const send = el('button', { type: 'submit', id: 'chat-send', class: 'primary', text: 'Send' });
  const composer = el('form', { id: 'chat-form', class: 'chat-form', novalidate: true },
    el('div', { class: 'field' },
      el('label', { for: 'chat-input', text: 'Your message' }),
      input,
      el('p', { class: 'hint', id: 'chat-input-hint', text: 'Enter sends; Shift+Enter starts a new line.' })),
    el('div', { class: 'actions' }, send));

  panel.replaceChildren(el('div', { class: 'chat-layout' },
    el('section', { class: 'card chat-sessions', 'aria-labelledby': 'sessions-title' },
      el('h2', { id: 'sessions-title', text: 'Chats' }),
      newForm, listAlert, sessionList, more),
    el('section', { class: 'card chat-conversation', 'aria-labelledby': 'chat-title' },
      el('div', { class: 'chat-head' }, title,
        el('div', { class: 'toolbar', role: 'group', 'aria-label': 'This chat' }, renameButton, deleteButton)),
      agentLine, renameForm,
      el('p', { id: 'chat-notice', class: 'notice small',
        text: 'The built-in assistant is template-based, not a language model: it quotes the passages of your documents that match and reports on your site.' }),
      alert, scroller, composer)));

  // ----- helpers -----
  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const toBottom = () => { scroller.scrollTop = scroller.scrollHeight; };

  function agentName(agentId) {
    if (!agentId) return null;
    return agents.find((a) => a.id === agentId)?.name ?? 'an agent that no longer exists';
  }

  function showHeader() {
    const has = selected !== null;
    title.textContent = has ? selected.title : 'Start a chat';
    renameButton.hidden = !has;
    deleteButton.hidden = !has;
    if (!has) renameForm.hidden = true;
    const agent = has ? agentName(selected.agent_id) : null;
    agentLine.hidden = !agent;
    agentLine.textContent = agent ? `With ${agent}.` : '';
  }

  function drawSessions() {
    sessionList.replaceChildren();
    if (!sessions.length) {
      sessionList.append(el('li', { id: 'no-sessions', class: 'muted', text: 'No chats yet.' }));
    }
    for (const s of sessions) {
      const current = selected?.id === s.id;
      sessionList.append(el('li', { class: ['session-item', current && 'current'], dataset: { id: s.id } },
        el('a', { href: chatUrl(s.id), class: 'session-link', 'aria-current': current ? 'true' : null, text: s.title }),
        el('span', { class: 'muted small' }, timeEl(s.updated_at))));
    }
    more.hidden = sessions.length >= total;
  }

  /** Reads the first `shownCount` sessions (newest activity first) and draws them. */
  async function loadSessions() {
    const per = Math.min(100, shownCount);
    const found = [];
    let count = 0;
    for (let page = 1; found.length < shownCount; page += 1) {
      const answer = await api(`/api/v1/projects/${projectId}/sessions?page=${page}&per_page=${per}`);
      count = answer.total;
      found.push(...answer.sessions);
      if (answer.sessions.length < per) break;
    }
    if (disposed) return;
    sessions = found.slice(0, shownCount);
    total = count;
    const fresh = selected && sessions.find((s) => s.id === selected.id);
    if (fresh) selected = fresh;
    drawSessions();
    showHeader();
  }

  async function refreshSessions() {
    try {
      await loadSessions();
    } catch (err) {
      if (!disposed) showAlert(listAlert, describeError(err));
    }
  }

  function showMessages(messages, { prepend = false } = {}) {
    const items = messages.map((m) => bubble(m));
    if (prepend) log.prepend(...items);
    else log.append(...items);
    if (messages.length) oldestId = prepend || oldestId === null ? messages[0].id : oldestId;
    earlier.hidden = messages.length < MESSAGES_PER_PAGE;
    empty.hidden = log.children.length > 0;
  }

  /** Shows session `sessionId` (or the most recent one, or none). */
  async function open(sessionId) {
    const turn = ++opening;
    stream?.abort();
    stream = null;
    clearAlert(alert);
    renameForm.hidden = true;
    if (!sessionId && selected === null && sessions.length) sessionId = sessions[0].id;
    if (!sessionId) {
      selected = null;
      scroller.removeAttribute('aria-busy');
      log.replaceChildren();
      oldestId = null;
      earlier.hidden = true;
      empty.hidden = false;
      showHeader();
      drawSessions();
      return;
    }
    if (selected?.id !== sessionId) {
      let session = sessions.find((s) => s.id === sessionId);
      if (!session) {
        try {
          session = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}`);
        } catch (err) {
          if (turn !== opening || disposed) return;
          showAlert(alert, err instanceof ApiError && err.status === 404
            ? 'That chat no longer exists.'
            : describeError(err));
          setUrl(null);
          selected = null;
          showHeader();
          drawSessions();
          return;
        }
        if (session.project_id && session.project_id !== ctx.id) {
          showAlert(alert, 'That chat belongs to another project.');
          return;
        }
      }
      selected = session;
    }
    setUrl(sessionId);
    showHeader();
    drawSessions();
    log.replaceChildren();
    oldestId = null;
    earlier.hidden = true;
    empty.hidden = true;
    scroller.setAttribute('aria-busy', 'true');
    try {
      const { messages } = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}/messages?limit=${MESSAGES_PER_PAGE}`);
      if (turn !== opening || disposed) return;
      showMessages(messages);
      toBottom();
    } catch (err) {
      if (turn !== opening || disposed) return;
      showAlert(alert, describeError(err));
    } finally {
      if (turn === opening) scroller.removeAttribute('aria-busy');
    }
  }

  async function createSession() {
    const body = agentSelect.value ? { agent_id: agentSelect.value } : {};
    const session = await api(`/api/v1/projects/${projectId}/sessions`, { method: 'POST', json: body });
    selected = session;
    sessions = [session, ...sessions.filter((s) => s.id !== session.id)];
    total += 1;
    setUrl(session.id);
    scroller.removeAttribute('aria-busy');
    log.replaceChildren();
    oldestId = null;
    earlier.hidden = true;
    empty.hidden = false;
    showHeader();
    drawSessions();
    return session;
  }

  // ----- sending -----
  async function sendMessage() {
    // One reply at a time, and never while a conversation is still being read.
    if (stream || scroller.getAttribute('aria-busy') === 'true') return;
    clearAlert(alert);
    clearFieldErrors(composer);
    const text = input.value.trim();
    if (!text) {
      fieldErrors(composer, { field: 'content', message: 'Write a message first.' });
      return;
    }
    if (text.length > MAX_MESSAGE_CHARS) {
      fieldErrors(composer, { field: 'content', message: `Write at most ${MAX_MESSAGE_CHARS} characters.` });
      return;
    }
    setBusy(send, true, 'Sending…');
    const controller = new AbortController();
    stream = controller;
    let session = selected;
    try {
      if (!session) session = await createSession();
    } catch (err) {
      stream = null;
      setBusy(send, false);
      showAlert(alert, describeError(err));
      return;
    }
    const firstExchange = log.children.length === 0 && session.title === DEFAULT_TITLE;
    input.value = '';
    const mine = bubble({ role: 'user', content: text }, { pending: true });
    const reply = bubble({ role: 'assistant', content: '' }, { pending: true });
    reply.classList.add('streaming');
    reply.setAttribute('aria-busy', 'true');
    const replyText = reply.querySelector('.chat-text');
    log.append(mine, reply);
    empty.hidden = true;
    toBottom();

    let stored = false;
    let finished = false;
    const onEvent = ({ event, data }) => {
      if (controller.signal.aborted) return;
      const follow = nearBottom();
      const value = parseJson(data);
      if (event === 'message' && value && typeof value === 'object') {
        stored = true;
        fill(mine, value);
        if (oldestId === null) oldestId = value.id;
      } else if (event === 'token' && value && typeof value.text === 'string') {
        replyText.append(value.text);
      } else if (event === 'done' && value && typeof value === 'object') {
        finished = true;
        fill(reply, value);
      } else if (event === 'error') {
        showAlert(alert, value?.error?.message ?? value?.message ?? 'The reply could not be completed.');
      }
      if (follow) toBottom();
    };
    try {
      await postMessage(session.id, text, onEvent, controller.signal);
    } catch (err) {
      if (err?.name === 'AbortError' || controller.signal.aborted) return;
      if (!stored) {
        // Refused before anything was stored: take the bubbles back, give the text back.
        mine.remove();
        reply.remove();
        empty.hidden = log.children.length > 0;
        if (!input.value) input.value = text;
        if (!(err instanceof ApiError && fieldErrors(composer, err))) showAlert(alert, describeError(err));
        return;
      }
      showAlert(alert, describeError(err));
    } finally {
      if (stream === controller) stream = null;
      if (!disposed) setBusy(send, false);
    }
    if (disposed || controller.signal.aborted) return;
    if (!finished) {
      // The stream ended early; the reply is stored on the server anyway.
      showAlert(alert, 'The reply was cut off; here is the conversation as stored.', 'warning');
      await open(session.id);
      return;
    }
    if (firstExchange) {
      try {
        const renamed = await api(`/api/v1/sessions/${encodeURIComponent(session.id)}`,
          { method: 'PATCH', json: { title: titleFrom(text) } });
        if (selected?.id === renamed.id) selected = renamed;
      } catch { /* the chat keeps its default title */ }
    }
    await refreshSessions();
    if (!disposed && document.activeElement === document.body) input.focus();
  }

  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    sendMessage();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  input.addEventListener('input', () => clearFieldErrors(composer));

  newForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (stream) return;
    clearAlert(listAlert);
    clearAlert(alert);
    setBusy(newChat, true, 'Starting…');
    try {
      ++opening;
      await createSession();
      input.focus();
    } catch (err) {
      showAlert(listAlert, describeError(err));
    } finally {
      setBusy(newChat, false);
    }
  });

  more.addEventListener('click', async () => {
    shownCount += SESSIONS_PER_PAGE;
    setBusy(more, true, 'Loading…');
    await refreshSessions();
    setBusy(more, false);
    more.hidden = sessions.length >= total;
  });

  earlier.addEventListener('click', async () => {
    if (!selected || oldestId === null) return;
    const sessionId = selected.id;
    setBusy(earlier, true, 'Loading…');
    try {
      const { messages } = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}/messages?before=${encodeURIComponent(oldestId)}&limit=${MESSAGES_PER_PAGE}`);
      if (disposed || selected?.id !== sessionId) return;
      const height = scroller.scrollHeight;
      showMessages(messages, { prepend: true });
      scroller.scrollTop += scroller.scrollHeight - height;
    } catch (err) {
      showAlert(alert, describeError(err));
    } finally {
      setBusy(earlier, false);
      if (!earlier.hidden) earlier.focus();
    }
  });

  renameButton.addEventListener('click', () => {
    if (!selected) return;
    renameForm.hidden = false;
    renameInput.value = selected.title;
    clearFieldErrors(renameForm);
    renameInput.focus();
    renameInput.select();
  });
  renameForm.querySelector('#rename-cancel').addEventListener('click', () => {
    renameForm.hidden = true;
    renameButton.focus();
  });
  renameForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!selected) return;
    const save = renameForm.querySelector('#rename-save');
    clearFieldErrors(renameForm);
    setBusy(save, true, 'Saving…');
    try {
      const renamed = await api(`/api/v1/sessions/${encodeURIComponent(selected.id)}`,
        { method: 'PATCH', json: { title: renameInput.value } });
      selected = renamed;
      sessions = sessions.map((s) => (s.id === renamed.id ? renamed : s));
      renameForm.hidden = true;
      showHeader();
      drawSessions();
      toast('Chat renamed.');
      renameButton.focus();
    } catch (err) {
      if (!fieldErrors(renameForm, err)) showAlert(alert, describeError(err));
    } finally {
      setBusy(save, false);
    }
  });

  deleteButton.addEventListener('click', async () => {
    if (!selected) return;
    const doomed = selected;
    const ok = await confirmDialog(`Delete the chat "${doomed.title}" and all its messages?`,
      { confirmLabel: 'Delete chat', danger: true, title: 'Delete this chat?' });
    if (!ok || disposed) return;
    setBusy(deleteButton, true, 'Deleting…');
    try {
      await api(`/api/v1/sessions/${encodeURIComponent(doomed.id)}`, { method: 'DELETE' });
      stream?.abort();
      stream = null;
      sessions = sessions.filter((s) => s.id !== doomed.id);
      total = Math.max(0, total - 1);
      selected = null;
      toast(`Deleted the chat "${doomed.title}".`);
      setUrl(null);
      await refreshSessions();
      await open(null);
      title.focus();
    } catch (err) {
      showAlert(alert, describeError(err));
    } finally {
      setBusy(deleteButton, false);
    }
  });

  // Another session chosen in the list (or by URL) while this tab is shown.
  const onSub = (sub) => {
    if (disposed) return;
    if (sub && sub === selected?.id) return;
    if (!sub && selected) {
      setUrl(selected.id);
      return;
    }
    open(sub);
  };
  ctx.subHandler = onSub;

  // ----- first load -----
  api('/api/v1/agents?per_page=100').then((answer) => {
    if (disposed) return;
    agents = Array.isArray(answer?.agents) ? answer.agents : [];
    for (const a of agents) agentSelect.append(el('option', { value: a.id, text: a.name }));
    showHeader();
  }, () => { /* chats work without agents */ });
  try {
    await loadSessions();
  } catch (err) {
    showAlert(listAlert, describeError(err));
  }
  if (!disposed) await open(ctx.sub ?? null);

  return () => {
    disposed = true;
    stream?.abort();
    stream = null;
    if (ctx.subHandler === onSub) ctx.subHandler = null;
  };
}
