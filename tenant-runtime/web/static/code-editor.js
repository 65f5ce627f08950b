// code-editor.js — the page editor's code view, written here (no package): the editing
// stays a plain <textarea> (so typing, selection, undo, copy and paste, screen readers and
// the tests all use the browser's own control), laid exactly over a layer that shows the
// same text with line numbers and syntax colours for HTML, CSS, JavaScript and Markdown.
// The textarea's own text is transparent; both layers share the font, padding, width and
// wrapping, and scroll together, so each coloured line sits under the text it shows. Lines
// wrap or scroll sideways, as the user chooses (remembered in localStorage). The layer is
// built from text nodes only (api.js's el()), never HTML, so a page's content cannot run.

import { el } from './api.js';

const WRAP_KEY = 'websplat.editor.wrap';

const JS_KEYWORDS = new Set(('async await break case catch class const continue default delete do else export extends '
  + 'false finally for from function if import in instanceof let new null of return static super switch this throw '
  + 'true try typeof undefined var void while yield').split(' '));

/** Tokenizers: each rule is [class, regex]; text no rule matches stays plain. */
const RULES = {
  html: [
    ['comment', /<!--[\s\S]*?(?:-->|$)/y],
    ['doctype', /<!doctype[^>]*>/iy],
    ['tag', /<\/?[a-zA-Z][\w:-]*/y],
    ['tag', /\/?>/y],
    ['string', /"[^"]*"|'[^']*'/y],
    ['attr', /[a-zA-Z_:][\w:.-]*(?==)/y],
    ['entity', /&[#\w]+;/y],
  ],
  css: [
    ['comment', /\/\*[\s\S]*?(?:\*\/|$)/y],
    ['string', /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/y],
    ['at', /@[\w-]+/y],
    ['property', /[a-zA-Z-]+(?=\s*:(?![^{]*\{))/y],
    ['number', /#[0-9a-fA-F]{3,8}\b|-?\d*\.?\d+(?:%|[a-zA-Z]+)?/y],
    ['punct', /[{}:;,()]/y],
  ],
  js: [
    ['comment', /\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$)/y],
    ['string', /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/y],
    ['number', /\b\d+(?:\.\d+)?\b/y],
    ['word', /[A-Za-z_$][\w$]*/y],
  ],
  md: [
    ['heading', /^#{1,6} [^\n]*/my],
    ['code', /`[^`\n]+`/y],
    ['strong', /\*\*[^*\n]+\*\*|__[^_\n]+__/y],
    ['em', /\*[^*\n]+\*|_[^_\n]+_/y],
    ['link', /\[[^\]\n]*\]\([^)\n]*\)/y],
    ['quote', /^> [^\n]*/my],
  ],
};

export function languageOf(path) {
  const ext = String(path ?? '').split('.').pop().toLowerCase();
  return { html: 'html', htm: 'html', css: 'css', js: 'js', mjs: 'js', md: 'md' }[ext] ?? null;
}

/** `text` as [class|null, piece] tokens for `language`. */
export function tokenize(text, language) {
  const rules = RULES[language];
  if (!rules) return [[null, text]];
  const out = [];
  let plain = '';
  let i = 0;
  outer: while (i < text.length) {
    for (const [kind, rule] of rules) {
      rule.lastIndex = i;
      const m = rule.exec(text);
      if (m && m[0].length) {
        if (plain) { out.push([null, plain]); plain = ''; }
        const cls = kind === 'word' ? (JS_KEYWORDS.has(m[0]) ? 'keyword' : null) : kind;
        out.push([cls, m[0]]);
        i += m[0].length;
        continue outer;
      }
    }
    plain += text[i];
    i += 1;
  }
  if (plain) out.push([null, plain]);
  return out;
}

/**
 * Turns `textarea` into the code view: returns the element to put where the textarea was
 * (the textarea inside it) and a wrap checkbox for a toolbar. `getPath()` names the open
 * page, whose extension picks the colours. Setting `textarea.value` redraws the layer.
 */
export function codeEditor(textarea, getPath) {
  const layer = el('pre', { class: 'code-layer', 'aria-hidden': 'true' });
  const frame = el('div', { class: 'code-frame' }, layer, textarea);
  textarea.classList.add('code-input');
  const wrapBox = el('input', { type: 'checkbox', id: 'editor-wrap' });
  const wrapToggle = el('label', { class: 'label-inline small', for: 'editor-wrap' }, wrapBox, 'Wrap lines');

  let scheduled = false;
  function draw() {
    scheduled = false;
    const language = languageOf(getPath());
    const lines = textarea.value.split('\n');
    let tokens = tokenize(textarea.value, language);
    const rows = [];
    let row = [];
    const flush = () => { rows.push(row); row = []; };
    // Split the tokens at line ends, so each line is a row with its number.
    for (const [cls, piece] of tokens) {
      const parts = piece.split('\n');
      parts.forEach((part, n) => {
        if (n > 0) flush();
        if (part) row.push(cls ? el('span', { class: `tok-${cls}`, text: part }) : part);
      });
    }
    flush();
    tokens = null;
    layer.replaceChildren(...rows.slice(0, lines.length).map((parts, n) => el('div', { class: 'code-line' },
      el('span', { class: 'code-number', text: String(n + 1) }),
      // An empty line still takes a line's height.
      el('span', { class: 'code-text' }, parts.length ? parts : '\u200b'))));
    frame.style.setProperty('--gutter', `${String(lines.length).length + 2}ch`);
    sync();
  }
  function redraw() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  }
  function sync() {
    layer.scrollTop = textarea.scrollTop;
    layer.scrollLeft = textarea.scrollLeft;
  }
  function setWrap(on) {
    wrapBox.checked = on;
    frame.classList.toggle('code-wrap', on);
    textarea.setAttribute('wrap', on ? 'soft' : 'off');
    try { localStorage.setItem(WRAP_KEY, on ? '1' : '0'); } catch { /* private mode */ }
    redraw();
  }

  // Programmatic `textarea.value = …` (opening a page, discarding) redraws too.
  const native = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value');
  Object.defineProperty(textarea, 'value', {
    configurable: true,
    get() { return native.get.call(this); },
    set(v) { native.set.call(this, v); redraw(); },
  });
  textarea.addEventListener('input', redraw);
  textarea.addEventListener('scroll', sync);
  wrapBox.addEventListener('change', () => setWrap(wrapBox.checked));
  let saved = null;
  try { saved = localStorage.getItem(WRAP_KEY); } catch { /* private mode */ }
  setWrap(saved === '1');
  return { frame, wrapToggle, redraw };
}
