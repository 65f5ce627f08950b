// documents.js — the Documents view: upload several files at once (with progress), then
// follow the job that indexes them (a step per document); the list with each document's
// status (indexing, indexed, failed with the reason) and delete; and full-text search whose
// highlighted snippets are built as text nodes and <mark> elements (the server's snippet
// HTML is never parsed as HTML).

import {
  ApiError, api, alertRegion, clearAlert, confirmDialog, describeError, el, errorFrom, formatBytes,
  refreshUsage, setBusy, showAlert, timeEl, toast,
} from './api.js';
import { finished, followJob, progressCard } from './jobs.js';

const STATUS_BADGES = {
  indexing: ['badge-accent', 'Indexing…'],
  indexed: ['badge-success', 'Indexed'],
  failed: ['badge-error', 'Failed'],
};

const MAX_FILES = 20;

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the entities an HTML escaper produces (&amp; &lt; &gt; &quot; &#39; &#x27; …). */
export function decodeEntities(text) {
  return String(text).replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]+);/g, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name] ?? whole;
  });
}

/** A snippet like `a &amp; <mark>b</mark>` as nodes: text, and <mark> elements for matches. */
export function snippetNodes(snippet) {
  const nodes = [];
  let marked = false;
  for (const part of String(snippet ?? '').split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') { marked = true; continue; }
    if (part === '</mark>') { marked = false; continue; }
    if (!part) continue;
    const text = decodeEntities(part);
    nodes.push(marked ? el('mark', { text }) : document.createTextNode(text));
  }
  return nodes;
}

/** POSTs a FormData with upload progress (fetch cannot report it); resolves to the JSON. */
function upload(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/documents');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener('load', () => onProgress(1));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try { resolve(JSON.parse(xhr.responseText)); } catch {
          reject(new ApiError({ status: xhr.status, code: 'invalid_response', message: 'The workspace sent an answer that could not be read.' }));
        }
      } else {
        reject(errorFrom(xhr.status, { get: (name) => xhr.getResponseHeader(name) }, xhr.responseText));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError({
      status: 0, code: 'network_error', message: 'The upload did not reach the workspace (it may be larger than allowed, or the connection dropped).',
    })));
    xhr.send(form);
  });
}

export async function render(container) {
  let disposed = false;
  let stopFollowing = null;
  const uploadAlert = alertRegion('upload-alert');
  const listAlert = alertRegion('documents-alert');
  const searchAlert = alertRegion('search-alert');

  const files = el('input', {
    type: 'file', id: 'document-files', name: 'files', multiple: true,
    accept: '.pdf,.docx,.txt,.md,.markdown,.html,.htm,application/pdf,text/plain,text/markdown,text/html,application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    'aria-describedby': 'document-files-hint',
  });
  const chosen = el('ul', { id: 'chosen-files', class: 'small muted' });
  const uploadButton = el('button', { type: 'submit', id: 'upload-documents', class: 'primary', text: 'Upload' });
  const progress = el('progress', { id: 'upload-progress', max: '100', value: '0', hidden: true, 'aria-labelledby': 'upload-status' });
  const uploadStatus = el('span', { id: 'upload-status', class: 'small', 'aria-live': 'polite' });
  // A drop area around the file input: files dragged onto it are chosen as if picked.
  const dropZone = el('div', { id: 'drop-zone', class: 'drop-zone' },
    el('p', { class: 'drop-zone-text', text: 'Drop files here, or choose them:' }),
    files);
  const uploadForm = el('form', { id: 'upload-form', novalidate: true },
    el('div', { class: 'field' },
      el('label', { for: 'document-files', text: 'Files' }),
      dropZone,
      el('p', { class: 'hint', id: 'document-files-hint', text: `PDF, Word (.docx), HTML, Markdown or plain text; up to ${MAX_FILES} at a time. A file that is not what it claims to be stops the whole upload, so nothing is half-added; the others are then indexed in the background, and one whose text cannot be read is listed as failed, with the reason.` })),
    chosen,
    el('div', { class: 'upload-row' }, uploadButton, progress, uploadStatus));

  const indexing = progressCard('indexing', 'Indexing', 'Indexing the upload');
  const tableBody = el('tbody', { id: 'document-rows' });
  const table = el('div', { class: 'table-wrap' }, el('table', { id: 'document-table' },
    el('caption', { class: 'visually-hidden', text: 'Your documents' }),
    el('thead', null, el('tr', null,
      el('th', { scope: 'col', text: 'Name' }),
      el('th', { scope: 'col', text: 'Kind' }),
      el('th', { scope: 'col', text: 'Status' }),
      el('th', { scope: 'col', class: 'num', text: 'Size' }),
      el('th', { scope: 'col', class: 'num', text: 'Pages' }),
      el('th', { scope: 'col', class: 'num', text: 'Passages' }),
      el('th', { scope: 'col', text: 'Added' }),
      el('th', { scope: 'col' }, el('span', { class: 'visually-hidden', text: 'Actions' })))),
    tableBody));

  const query = el('input', { type: 'search', id: 'search-query', name: 'q', maxlength: '500', placeholder: 'opening hours', autocomplete: 'off' });
  const searchButton = el('button', { type: 'submit', id: 'search-documents', text: 'Search' });
  const searchForm = el('form', { id: 'search-form', class: 'inline-form', role: 'search' },
    el('div', { class: 'field' }, el('label', { for: 'search-query', text: 'Search your documents' }), query),
    searchButton);
  const results = el('ol', { id: 'search-results', class: 'plain-list', 'aria-live': 'polite' });

  container.replaceChildren(
    el('div', { class: 'view-head' }, el('h1', { tabindex: '-1', text: 'Documents' })),
    el('p', { class: 'muted', text: 'What you upload here is the knowledge your agents can search: menus, price lists, brochures, notes.' }),
    el('div', { class: 'grid-2' },
      el('section', { class: 'card', 'aria-labelledby': 'upload-title' },
        el('h2', { id: 'upload-title', text: 'Upload' }), uploadForm, uploadAlert, indexing.root),
      el('section', { class: 'card', 'aria-labelledby': 'search-title' },
        el('h2', { id: 'search-title', text: 'Search' }), searchForm, searchAlert, results)),
    el('section', { class: 'card', 'aria-labelledby': 'documents-title' },
      el('h2', { id: 'documents-title', text: 'Your documents' }), listAlert, table));

  function showChosen() {
    chosen.replaceChildren();
    for (const file of files.files) {
      chosen.append(el('li', { text: `${file.name} — ${formatBytes(file.size)}` }));
    }
  }
  const dragging = (on) => dropZone.classList.toggle('drop-zone-active', on);
  dropZone.addEventListener('dragenter', (event) => { event.preventDefault(); dragging(true); });
  dropZone.addEventListener('dragover', (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
    dragging(true);
  });
  dropZone.addEventListener('dragleave', (event) => {
    if (!dropZone.contains(event.relatedTarget)) dragging(false);
  });
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dragging(false);
    const dropped = event.dataTransfer?.files;
    if (!dropped?.length) return;
    files.files = dropped;
    files.dispatchEvent(new Event('change', { bubbles: true }));
  });
  files.addEventListener('change', () => {
    clearAlert(uploadAlert);
    files.removeAttribute('aria-invalid');
    showChosen();
  });

  let loads = 0;
  async function load() {
    const mine = ++loads;
    let documents;
    try {
      documents = (await api('/api/v1/documents')).documents;
    } catch (err) {
      showAlert(listAlert, describeError(err));
      return;
    }
    // Only the latest read is drawn: an older answer arriving late must not win.
    if (mine !== loads || disposed) return;
    tableBody.replaceChildren();
    if (!documents.length) {
      tableBody.append(el('tr', { id: 'no-documents' }, el('td', { colspan: '8', class: 'muted', text: 'No documents yet.' })));
    }
    for (const doc of documents) {
      const remove = el('button', { type: 'button', class: 'danger small-button delete-document', text: 'Delete', 'aria-label': `Delete ${doc.name}` });
      remove.addEventListener('click', async () => {
        const ok = await confirmDialog(`Delete "${doc.name}"? It is removed from search too.`,
          { confirmLabel: 'Delete document', danger: true, title: 'Delete this document?' });
        if (!ok) return;
        clearAlert(listAlert);
        setBusy(remove, true, 'Deleting…');
        try {
          await api(`/api/v1/documents/${encodeURIComponent(doc.id)}`, { method: 'DELETE' });
          toast(`Deleted ${doc.name}.`);
          refreshUsage();
          await load();
        } catch (err) {
          setBusy(remove, false);
          showAlert(listAlert, describeError(err));
        }
      });
      const [badge, label] = STATUS_BADGES[doc.status] ?? ['', String(doc.status ?? '')];
      tableBody.append(el('tr', { class: 'document-row', dataset: { id: doc.id, status: doc.status ?? '' } },
        el('td', { class: 'document-name', text: doc.name }),
        el('td', { text: doc.kind }),
        el('td', { class: 'document-status' },
          el('span', { class: ['badge', badge], text: label }),
          doc.error ? el('span', { class: 'document-error', text: doc.error }) : null),
        el('td', { class: 'num', text: formatBytes(doc.size) }),
        el('td', { class: 'num', text: doc.status === 'indexed' ? doc.pages : '—' }),
        el('td', { class: 'num', text: doc.status === 'indexed' ? doc.passages : '—' }),
        el('td', null, timeEl(doc.created_at)),
        el('td', null, remove)));
    }
  }

  uploadForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(uploadAlert);
    const list = [...files.files];
    if (!list.length) {
      showAlert(uploadAlert, 'Choose one or more files first.');
      files.setAttribute('aria-invalid', 'true');
      files.focus();
      return;
    }
    if (list.length > MAX_FILES) {
      showAlert(uploadAlert, `Upload at most ${MAX_FILES} files at a time (you chose ${list.length}).`);
      files.setAttribute('aria-invalid', 'true');
      files.focus();
      return;
    }
    const data = new FormData();
    for (const file of list) data.append('files', file, file.name);
    setBusy(uploadButton, true, 'Uploading…');
    progress.hidden = false;
    progress.value = 0;
    uploadStatus.textContent = `Uploading ${list.length} file${list.length === 1 ? '' : 's'}…`;
    try {
      const answer = await upload(data, (fraction) => {
        progress.value = Math.round(fraction * 100);
        uploadStatus.textContent = fraction >= 1 ? 'Checking and storing…' : `Uploading… ${Math.round(fraction * 100)}%`;
      });
      const added = answer.documents ?? [];
      uploadStatus.textContent = '';
      showAlert(uploadAlert, `Added ${added.map((d) => d.name).join(', ')}; indexing them now.`, 'info');
      files.value = '';
      showChosen();
      refreshUsage();
      if (answer.job) follow(answer.job);
      await load();
    } catch (err) {
      uploadStatus.textContent = '';
      showAlert(uploadAlert, `Nothing was uploaded: ${describeError(err)}`);
    } finally {
      progress.hidden = true;
      setBusy(uploadButton, false);
    }
  });

  /** Follows an indexing job: its steps, and the list's statuses as documents settle. */
  function follow(job) {
    stopFollowing?.();
    stopFollowing = followJob(job, {
      onUpdate: (update) => {
        if (disposed) return;
        indexing.show(update);
        load();
      },
      onEnd: (update) => {
        if (disposed) return;
        stopFollowing = null;
        const steps = update.steps ?? [];
        const failed = steps.filter((s) => s.state === 'failed');
        const indexed = steps.filter((s) => s.state === 'done');
        if (update.status === 'failed') {
          showAlert(uploadAlert, `Indexing stopped: ${update.error ?? 'no reason was given'}.`);
        } else if (failed.length) {
          showAlert(uploadAlert,
            `${indexed.length ? `Indexed ${indexed.map((s) => s.label).join(', ')}. ` : ''}Could not index ${failed.map((s) => `${s.label} (${s.message ?? 'no reason given'})`).join('; ')}.`,
            'warning');
        } else if (indexed.length) {
          showAlert(uploadAlert, `Indexed ${indexed.map((s) => s.label).join(', ')}: they can be searched now.`, 'success');
        }
        load();
      },
    });
  }

  searchForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearAlert(searchAlert);
    const q = query.value.trim();
    if (!q) {
      showAlert(searchAlert, 'Type what to search for.');
      query.focus();
      return;
    }
    setBusy(searchButton, true, 'Searching…');
    try {
      const { hits } = await api(`/api/v1/documents/search?q=${encodeURIComponent(q)}`);
      results.replaceChildren();
      if (!hits.length) results.append(el('li', { class: 'muted', id: 'no-hits', text: `Nothing found for “${q}”.` }));
      for (const hit of hits) {
        results.append(el('li', { class: 'search-hit', dataset: { documentId: hit.document_id ?? '' } },
          el('strong', { class: 'hit-document', text: hit.document_name }),
          el('span', { class: 'muted small', text: ` · page ${hit.page} · score ${Number(hit.score).toFixed(2)}` }),
          el('p', { class: 'snippet' }, snippetNodes(hit.snippet))));
      }
    } catch (err) {
      showAlert(searchAlert, describeError(err));
    } finally {
      setBusy(searchButton, false);
    }
  });

  await load();
  // Indexing still under way (e.g. uploaded before a reload) is followed.
  try {
    const { jobs } = await api('/api/v1/jobs');
    const running = jobs.find((j) => j.kind === 'index_documents' && !finished(j));
    if (running && !disposed) follow(running);
  } catch { /* nothing to follow */ }
  return () => {
    disposed = true;
    stopFollowing?.();
    stopFollowing = null;
  };
}
