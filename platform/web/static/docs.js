// docs.js — the API reference at /api/docs, rendered in the browser from the OpenAPI 3.1
// document at /api/v1/openapi.json: operations grouped by tag, their parameters, request
// bodies and responses, component schemas one level deep (nested $refs become links), and a
// filter box. Everything from the document is inserted as text, never as HTML.
import { apiFetch, describeError, el, showAlert } from './api.js';

const SPEC_URL = '/api/v1/openapi.json';
const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options', 'trace'];
const SCHEMA_PREFIX = '#/components/schemas/';
const MAX_DEPTH = 6;

const $ = (id) => document.getElementById(id);
const ui = {
  alert: $('docs-alert'),
  status: $('docs-status'),
  body: $('docs-body'),
  empty: $('docs-empty'),
  nav: $('docs-nav'),
  filter: $('docs-filter'),
  count: $('docs-filter-count'),
};

let spec = {};

// ----- references ----------------------------------------------------------------------

function unescapePointer(part) {
  let decoded = part;
  try { decoded = decodeURIComponent(part); } catch { /* keep it as written */ }
  return decoded.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Resolves a local reference ("#/components/…") in the document, or undefined. */
function resolvePointer(ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
  let node = spec;
  for (const part of ref.slice(2).split('/')) {
    if (node == null || typeof node !== 'object') return undefined;
    node = node[unescapePointer(part)];
  }
  return node;
}

/** Follows $ref chains (parameters, bodies, responses, schemas); {} when unresolvable. */
function deref(node) {
  const seen = new Set();
  let current = node;
  while (current && typeof current === 'object' && typeof current.$ref === 'string') {
    if (seen.has(current.$ref)) return {};
    seen.add(current.$ref);
    current = resolvePointer(current.$ref);
  }
  return current && typeof current === 'object' ? current : {};
}

function schemaName(ref) {
  return typeof ref === 'string' && ref.startsWith(SCHEMA_PREFIX)
    ? unescapePointer(ref.slice(SCHEMA_PREFIX.length))
    : null;
}

function slug(text) {
  return String(text).replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
}

const schemaAnchor = (name) => `schema-${slug(name)}`;

function uniqueAnchor(base, used) {
  let anchor = base;
  for (let n = 2; used.has(anchor); n += 1) anchor = `${base}-${n}`;
  used.add(anchor);
  return anchor;
}

// ----- schema types --------------------------------------------------------------------

function isNullSchema(schema) {
  if (!schema || typeof schema !== 'object') return false;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.length === 1 && types[0] === 'null';
}

function schemaLink(name) {
  const schemas = spec.components?.schemas;
  return schemas && Object.hasOwn(schemas, name)
    ? el('a', { class: 'type-ref', href: `#${schemaAnchor(name)}`, text: name })
    : el('span', { class: 'type-ref', text: name });
}

function joinNodes(groups, separator) {
  return groups.flatMap((group, i) => (i === 0 ? group : [separator, ...group]));
}

function hasUnion(nodes) {
  return nodes.some((n) => typeof n === 'string' && (n.includes(' | ') || n.includes(' & ')));
}

/** A short type description as nodes: text, with links for $refs. */
function typeNodes(schema, depth = 0) {
  if (schema === false) return ['never'];
  if (!schema || typeof schema !== 'object') return ['any'];
  if (depth > MAX_DEPTH) return ['…'];
  if (typeof schema.$ref === 'string') {
    const name = schemaName(schema.$ref);
    return [name ? schemaLink(name) : schema.$ref];
  }
  const variants = schema.oneOf ?? schema.anyOf;
  if (Array.isArray(variants) && variants.length) {
    // "X | null" reads better than "null | X".
    const ordered = [...variants.filter((v) => !isNullSchema(v)), ...variants.filter(isNullSchema)];
    return joinNodes(ordered.map((v) => typeNodes(v, depth + 1)), ' | ');
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length) {
    return joinNodes(schema.allOf.map((v) => typeNodes(v, depth + 1)), ' & ');
  }
  if ('const' in schema) return [JSON.stringify(schema.const)];
  if (Array.isArray(schema.enum) && schema.enum.length) {
    return [schema.enum.map((v) => JSON.stringify(v)).join(' | ')];
  }

  let types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (!types.length) types = schema.properties ? ['object'] : schema.items ? ['array'] : [];
  if (!types.length) return ['any'];

  const parts = types.map((type) => {
    if (type === 'array') {
      const inner = typeNodes(schema.items, depth + 1);
      return hasUnion(inner) ? ['array of (', ...inner, ')'] : ['array of ', ...inner];
    }
    if (type === 'object' && !schema.properties
        && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      return ['map of ', ...typeNodes(schema.additionalProperties, depth + 1)];
    }
    if (schema.format && type !== 'null') return [`${type} (${schema.format})`];
    return [String(type)];
  });
  const nodes = joinNodes(parts, ' | ');
  if (schema.nullable === true && !types.includes('null')) nodes.push(' | null');
  return nodes;
}

function typeEl(schema) {
  return el('code', { class: 'type' }, typeNodes(schema));
}

/** Description plus short facts (default, limits, example) about a schema. */
function notes(description, schema, extra = []) {
  const s = schema && typeof schema === 'object' ? schema : {};
  const facts = [...extra];
  if (s.deprecated) facts.push('deprecated');
  if (s.readOnly) facts.push('read-only');
  if (s.writeOnly) facts.push('write-only');
  if (s.minLength != null || s.maxLength != null) facts.push(`length ${s.minLength ?? 0}–${s.maxLength ?? '∞'}`);
  if (s.minimum != null) facts.push(`≥ ${s.minimum}`);
  if (s.maximum != null) facts.push(`≤ ${s.maximum}`);
  if (s.pattern) facts.push(`pattern ${s.pattern}`);
  if ('default' in s) facts.push(`default ${JSON.stringify(s.default)}`);
  const example = s.example ?? (Array.isArray(s.examples) ? s.examples[0] : undefined);
  if (example !== undefined) facts.push(`example ${JSON.stringify(example)}`);
  const text = description || s.description;
  return [
    text && el('span', { class: 'description', text }),
    facts.length > 0 && el('span', { class: 'facts', text: facts.join(' · ') }),
  ];
}

// ----- schema blocks -------------------------------------------------------------------

/** The schema to expand in place: through $refs, array items and "X or null". */
function expandable(schema) {
  let s = schema;
  for (let i = 0; i < MAX_DEPTH && s && typeof s === 'object'; i += 1) {
    if (typeof s.$ref === 'string') { s = deref(s); continue; }
    const variants = s.oneOf ?? s.anyOf;
    const nonNull = Array.isArray(variants) ? variants.filter((v) => !isNullSchema(v)) : [];
    if (nonNull.length === 1) { s = nonNull[0]; continue; }
    if (Array.isArray(s.allOf) && s.allOf.length === 1 && !s.properties) { s = s.allOf[0]; continue; }
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (types.includes('array') && s.items) { s = s.items; continue; }
    break;
  }
  return s && typeof s === 'object' ? s : {};
}

/** Properties and required names of an object schema, merging allOf members. */
function collectObject(schema, depth = 0) {
  const s = deref(schema);
  const result = { properties: new Map(), required: new Set() };
  if (depth > MAX_DEPTH) return result;
  for (const part of Array.isArray(s.allOf) ? s.allOf : []) {
    const sub = collectObject(part, depth + 1);
    sub.properties.forEach((v, k) => result.properties.set(k, v));
    sub.required.forEach((r) => result.required.add(r));
  }
  for (const [name, prop] of Object.entries(s.properties ?? {})) result.properties.set(name, prop);
  for (const name of Array.isArray(s.required) ? s.required : []) result.required.add(name);
  return result;
}

function table(headers, rows, className = 'table table-compact') {
  return el('div', { class: 'table-wrap' },
    el('table', { class: className },
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows)));
}

function propertiesTable({ properties, required }) {
  return table(['Name', 'Type', 'Required', 'Description'], [...properties].map(([name, prop]) => el('tr', {},
    el('td', {}, el('code', { text: name })),
    el('td', {}, typeEl(prop)),
    el('td', { text: required.has(name) ? 'Yes' : 'No' }),
    el('td', {}, notes(prop?.description, prop)),
  )));
}

/** A schema's type line and, one level deep, its properties (or its variants). */
function schemaBlock(schema) {
  const block = el('div', { class: 'schema' }, el('p', { class: 'schema-type' }, 'Type: ', typeEl(schema)));
  const target = expandable(schema);
  const variants = target.oneOf ?? target.anyOf;
  if (Array.isArray(variants) && variants.filter((v) => !isNullSchema(v)).length > 1) {
    block.append(el('p', { class: 'hint', text: 'One of:' }), el('ul', { class: 'variants' }, variants.map((variant) => {
      const inline = variant && typeof variant === 'object' && !variant.$ref ? collectObject(variant) : null;
      return el('li', {},
        variant?.title && el('strong', { text: `${variant.title}: ` }),
        typeEl(variant),
        variant?.description && el('span', { class: 'description', text: ` — ${variant.description}` }),
        inline?.properties.size > 0 && propertiesTable(inline));
    })));
    return block;
  }
  const object = collectObject(target);
  if (object.properties.size > 0) block.append(propertiesTable(object));
  return block;
}

// ----- operations ----------------------------------------------------------------------

/** Tag for an untagged path: its first segment, skipping an "/api/v1"-style prefix. */
function fallbackTag(path) {
  const segments = path.split('/').filter(Boolean);
  const named = segments.find((s) => s !== 'api' && !/^v\d+$/.test(s) && !s.startsWith('{'));
  return named ?? segments[0] ?? 'default';
}

function collectGroups() {
  const groups = new Map();
  const addGroup = (name, description = '') => {
    if (!groups.has(name)) groups.set(name, { name, description, entries: [] });
    return groups.get(name);
  };
  for (const tag of Array.isArray(spec.tags) ? spec.tags : []) {
    if (tag?.name) addGroup(tag.name, tag.description ?? '');
  }

  const anchors = new Set();
  for (const [path, rawItem] of Object.entries(spec.paths ?? {})) {
    const pathItem = deref(rawItem);
    for (const method of METHODS) {
      const op = pathItem[method];
      if (!op || typeof op !== 'object') continue;
      const tags = Array.isArray(op.tags) && op.tags.length ? op.tags : [fallbackTag(path)];
      const base = `op-${slug(op.operationId || `${method}-${path}`)}`;
      for (const tag of tags) {
        addGroup(String(tag)).entries.push({
          key: `${method} ${path}`,
          path,
          method,
          op,
          pathItem,
          anchor: uniqueAnchor(base, anchors),
          haystack: [method, path, op.summary, op.operationId, tag].filter(Boolean).join(' ').toLowerCase(),
        });
      }
    }
  }
  const result = [...groups.values()].filter((g) => g.entries.length > 0);
  for (const group of result) group.anchor = uniqueAnchor(`tag-${slug(group.name)}`, anchors);
  return result;
}

function mergedParameters(pathItem, op) {
  const byKey = new Map();
  const all = [...(Array.isArray(pathItem.parameters) ? pathItem.parameters : []),
    ...(Array.isArray(op.parameters) ? op.parameters : [])];
  for (const raw of all) {
    const param = deref(raw);
    if (param.name) byKey.set(`${param.in}:${param.name}`, param); // operation overrides path
  }
  return [...byKey.values()];
}

function parameterSchema(param) {
  if (param.schema) return param.schema;
  const media = Object.values(param.content ?? {})[0];
  return media?.schema;
}

function securityText(op) {
  const requirements = op.security ?? spec.security;
  if (!Array.isArray(requirements)) return null;
  const options = requirements.map((r) => Object.keys(r ?? {}).join(' + '));
  const named = options.filter(Boolean);
  if (named.length === 0) return 'none';
  return named.join(' or ') + (named.length < options.length ? ' (optional)' : '');
}

function statusClass(status) {
  return /^[1-5]/.test(status) ? `status status-${status[0]}xx` : 'status';
}

function responseBody(response) {
  const entries = Object.entries(response.content ?? {});
  if (!entries.length) return el('span', { class: 'muted', text: '—' });
  return entries.map(([mediaType, media]) => el('div', { class: 'media-line' },
    typeEl(media?.schema), ' ', el('span', { class: 'media-type', text: mediaType })));
}

function renderOperation(entry) {
  const { path, method, op, pathItem, anchor } = entry;
  const label = method.toUpperCase();
  const article = el('article', { class: 'operation', id: anchor, 'aria-labelledby': `${anchor}-title` },
    el('h3', { class: 'op-title', id: `${anchor}-title` },
      el('span', { class: `method method-${method}`, text: label }),
      el('code', { class: 'op-path', text: path }),
      op.deprecated && el('span', { class: 'badge badge-warning', text: 'Deprecated' }),
      el('a', { class: 'op-anchor', href: `#${anchor}`, 'aria-label': `Link to ${label} ${path}`, text: '#' })));

  if (op.summary) article.append(el('p', { class: 'op-summary', text: op.summary }));
  if (op.description && op.description !== op.summary) {
    article.append(el('p', { class: 'description', text: op.description }));
  }
  const auth = securityText(op);
  if (auth || op.operationId) {
    article.append(el('p', { class: 'op-meta' },
      auth && [el('span', { text: 'Authentication: ' }), el('strong', { text: auth })],
      auth && op.operationId && ' · ',
      op.operationId && [el('span', { text: 'Operation ID: ' }), el('code', { text: op.operationId })]));
  }

  const params = mergedParameters(pathItem, op);
  if (params.length) {
    article.append(el('h4', { text: 'Parameters' }), table(['Name', 'In', 'Type', 'Required', 'Description'],
      params.map((p) => el('tr', {},
        el('td', {}, el('code', { text: p.name })),
        el('td', { text: p.in ?? '' }),
        el('td', {}, typeEl(parameterSchema(p))),
        el('td', { text: p.required || p.in === 'path' ? 'Yes' : 'No' }),
        el('td', {}, notes(p.description, parameterSchema(p), p.deprecated ? ['deprecated'] : []))))));
  }

  if (op.requestBody) {
    const body = deref(op.requestBody);
    article.append(el('h4', {}, 'Request body ',
      el('span', { class: body.required ? 'badge' : 'badge badge-muted', text: body.required ? 'required' : 'optional' })));
    if (body.description) article.append(el('p', { class: 'description', text: body.description }));
    for (const [mediaType, media] of Object.entries(body.content ?? {})) {
      article.append(el('div', { class: 'media' },
        el('p', { class: 'media-type', text: mediaType }),
        media?.schema && schemaBlock(media.schema)));
    }
  }

  const responses = Object.entries(op.responses ?? {});
  if (responses.length) {
    article.append(el('h4', { text: 'Responses' }), table(['Status', 'Description', 'Body'],
      responses.map(([status, raw]) => {
        const response = deref(raw);
        return el('tr', {},
          el('td', {}, el('span', { class: statusClass(status), text: status })),
          el('td', { class: 'description', text: response.description ?? '' }),
          el('td', {}, responseBody(response)));
      })));
  }
  return article;
}

function renderGroup(group) {
  group.section = el('section', { class: 'docs-section', id: group.anchor, 'aria-labelledby': `${group.anchor}-heading` },
    el('h2', { id: `${group.anchor}-heading`, text: group.name }),
    group.description && el('p', { class: 'description', text: group.description }),
    group.entries.map((entry) => (entry.article = renderOperation(entry))));
  return group.section;
}

// ----- other sections ------------------------------------------------------------------

function renderIntro() {
  const info = spec.info ?? {};
  const version = info.version ? String(info.version) : '';
  const servers = Array.isArray(spec.servers) ? spec.servers.filter((s) => s?.url) : [];
  return el('section', { class: 'docs-intro' },
    el('h1', {}, info.title || 'API reference',
      version && [' ', el('span', { class: 'badge', text: version.startsWith('v') ? version : `v${version}` })]),
    info.description && el('p', { class: 'description', text: info.description }),
    servers.length > 0 && el('ul', { class: 'servers' }, servers.map((s) => el('li', {},
      el('code', { text: s.url }), s.description && ` — ${s.description}`))),
    el('p', { class: 'hint' },
      `OpenAPI ${spec.openapi ?? 'document'} · `,
      el('a', { href: SPEC_URL, text: 'download the JSON' })));
}

function renderSecuritySchemes() {
  const entries = Object.entries(spec.components?.securitySchemes ?? {});
  if (!entries.length) return null;
  return el('section', { class: 'docs-section', id: 'authentication', 'aria-labelledby': 'authentication-heading' },
    el('h2', { id: 'authentication-heading', text: 'Authentication' }),
    table(['Name', 'Type', 'Details'], entries.map(([name, raw]) => {
      const s = deref(raw);
      const facts = [
        s.scheme && `scheme ${s.scheme}`,
        s.bearerFormat && `format ${s.bearerFormat}`,
        s.in && s.name && `${s.in} “${s.name}”`,
        s.openIdConnectUrl && `discovery ${s.openIdConnectUrl}`,
      ].filter(Boolean);
      return el('tr', {},
        el('td', {}, el('code', { text: name })),
        el('td', { text: s.type ?? '' }),
        el('td', {}, notes(s.description, null, facts)));
    })));
}

function renderSchemas() {
  const schemas = spec.components?.schemas ?? {};
  const names = Object.keys(schemas).sort((a, b) => a.localeCompare(b));
  if (!names.length) return null;
  return el('section', { class: 'docs-section', id: 'schemas', 'aria-labelledby': 'schemas-heading' },
    el('h2', { id: 'schemas-heading', text: 'Schemas' }),
    names.map((name) => {
      const schema = schemas[name] && typeof schemas[name] === 'object' ? schemas[name] : {};
      return el('article', { class: 'schema-card', id: schemaAnchor(name) },
        el('h3', {}, el('code', { text: name })),
        schema.description && el('p', { class: 'description', text: schema.description }),
        schemaBlock(schema));
    }));
}

function renderNav(groups) {
  const blocks = groups.map((group) => {
    const items = group.entries.map((entry) => {
      entry.navItem = el('li', {}, el('a', { href: `#${entry.anchor}` },
        el('span', { class: `method method-${entry.method} method-small`, text: entry.method.toUpperCase() }),
        el('span', { class: 'nav-path', text: entry.path })));
      return entry.navItem;
    });
    group.navGroup = el('div', { class: 'nav-group' },
      el('a', { class: 'nav-group-title', href: `#${group.anchor}`, text: group.name }),
      el('ul', {}, items));
    return group.navGroup;
  });
  const extras = [
    spec.components?.securitySchemes && el('li', {}, el('a', { href: '#authentication', text: 'Authentication' })),
    spec.components?.schemas && el('li', {}, el('a', { href: '#schemas', text: 'Schemas' })),
  ].filter(Boolean);
  if (extras.length) {
    blocks.push(el('div', { class: 'nav-group' }, el('span', { class: 'nav-group-title', text: 'Reference' }), el('ul', {}, extras)));
  }
  return blocks;
}

// ----- filter --------------------------------------------------------------------------

function applyFilter(groups, query) {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  const all = new Set();
  const matched = new Set();
  for (const group of groups) {
    let any = false;
    for (const entry of group.entries) {
      all.add(entry.key);
      const match = terms.every((t) => entry.haystack.includes(t));
      entry.article.hidden = !match;
      entry.navItem.hidden = !match;
      if (match) {
        any = true;
        matched.add(entry.key);
      }
    }
    group.section.hidden = !any;
    group.navGroup.hidden = !any;
  }
  const noun = (n) => `${n} operation${n === 1 ? '' : 's'}`;
  ui.count.textContent = terms.length ? `${matched.size} of ${noun(all.size)} match` : noun(all.size);
  ui.empty.hidden = matched.size > 0 || all.size === 0;
}

function wireFilter(groups) {
  let timer;
  ui.filter.disabled = false;
  ui.filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => applyFilter(groups, ui.filter.value), 120);
  });
  ui.filter.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && ui.filter.value) {
      ui.filter.value = '';
      applyFilter(groups, '');
    }
  });
  // "/" jumps to the filter, as on many documentation sites.
  document.addEventListener('keydown', (event) => {
    const target = event.target;
    const typing = target instanceof HTMLElement
      && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
    if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      ui.filter.focus();
    }
  });
  applyFilter(groups, ui.filter.value);
}

function scrollToHash() {
  if (!location.hash) return;
  let id = location.hash.slice(1);
  try { id = decodeURIComponent(id); } catch { /* use as is */ }
  document.getElementById(id)?.scrollIntoView();
}

async function init() {
  try {
    spec = await apiFetch(SPEC_URL);
  } catch (err) {
    ui.status.textContent = '';
    showAlert(ui.alert, `Could not load the API description. ${describeError(err)}`);
    return;
  }
  if (!spec || typeof spec !== 'object' || Array.isArray(spec) || (spec.paths != null && typeof spec.paths !== 'object')) {
    ui.status.textContent = '';
    showAlert(ui.alert, 'The API description is not a valid OpenAPI document.');
    return;
  }

  const groups = collectGroups();
  ui.body.replaceChildren(...[
    renderIntro(),
    renderSecuritySchemes(),
    ...groups.map(renderGroup),
    renderSchemas(),
  ].filter(Boolean));
  ui.nav.replaceChildren(...renderNav(groups));
  ui.status.textContent = '';
  ui.status.hidden = true;
  wireFilter(groups);
  scrollToHash();
}

init();
