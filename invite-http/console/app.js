// The console: sign-in, a hash router and the pages (campaigns, new campaign, campaign detail,
// accounts, suppressions). Pages are built with DOM calls only — user data is never parsed as
// HTML — and refresh their numbers with fetch, without reloading.

import * as api from './api.js';
import { barChart, columnChart, meter, stackedBar } from './charts.js';

const REFRESH_MS = 2000;
const LOG_PAGE = 25;
const SUPPRESSION_PAGE = 50;

// ---- DOM helpers ----

/** An element: `attrs` sets attributes (`on…` adds listeners, booleans set or omit), then children. */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      node.addEventListener(k.slice(2), v);
    } else if (v === true) {
      node.setAttribute(k, '');
    } else {
      node.setAttribute(k, String(v));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const main = () => document.getElementById('main');

/** Says `text` to screen readers and shows it in the status line. */
function announce(text) {
  const status = document.getElementById('announce');
  status.textContent = text;
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${hr} h`;
  if (hr > 0) return `${hr} h ${m} min`;
  if (m > 0) return `${m} min`;
  return `${s} s`;
}

// ---- problems ----

/** Removes the problem boxes and field errors shown in `scope`. */
function clearProblems(scope) {
  scope.querySelectorAll('.problem, .field-error').forEach((n) => n.remove());
  scope.querySelectorAll('[aria-invalid]').forEach((n) => {
    n.removeAttribute('aria-invalid');
    n.removeAttribute('aria-describedby');
  });
}

/**
 * Shows a failed call in `scope`: the problem's title and detail in an alert at its top, each
 * field error next to its field (`[data-field=NAME]`, an index such as `targets[3]` matched on
 * `targets`), the field errors without a field in the alert.
 */
function showProblem(scope, error) {
  clearProblems(scope);
  const box = h('div', { class: 'problem', role: 'alert', tabindex: '-1' },
    h('p', { class: 'problem-title' }, h('strong', {}, error.title || 'Something went wrong')),
    error.detail ? h('p', {}, error.detail) : null);
  const loose = [];
  for (const fe of error.errors || []) {
    const base = String(fe.field).split(/[[.]/)[0];
    const field = scope.querySelector(`[data-field="${CSS.escape(base)}"]`);
    if (!field) {
      loose.push(fe);
      continue;
    }
    const id = `err-${base}-${Math.random().toString(36).slice(2, 8)}`;
    const msg = h('p', { class: 'field-error', id }, `${fe.field}: ${fe.message}`);
    field.append(msg);
    const input = field.querySelector('input, select, textarea');
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', id);
    }
  }
  if (loose.length) {
    box.append(h('ul', {}, loose.map((fe) => h('li', {}, `${fe.field}: ${fe.message}`))));
  }
  scope.prepend(box);
  box.focus();
}

// ---- sign-in ----

/** Takes a token from `#token=…`, keeps it for this tab and removes it from the address bar. */
function takeTokenFromAddress() {
  const m = location.hash.match(/^#token=([^&]+)/);
  if (!m) return;
  api.setToken(decodeURIComponent(m[1]));
  history.replaceState(null, '', `${location.pathname}${location.search}#/campaigns`);
}

function signInPage() {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'signin-title' },
    h('h2', { id: 'signin-title' }, 'Sign in'),
    h('p', {}, 'Paste the bearer token (JWT) the service gave you. It is kept in this tab only.'),
    h('div', { class: 'field', 'data-field': 'token' }, h('label', { for: 'token' }, 'Token'), input),
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    api.setToken(input.value.trim());
    try {
      await api.call('GET', '/tasks', { query: { limit: 1 }, trying: true });
      location.hash = '#/campaigns';
      route();
    } catch (err) {
      api.setToken(null);
      showProblem(form, err);
    }
  });
  return [form];
}

// ---- task state machine (as the API applies it) ----

const ACTIONS = [
  { name: 'start', label: 'Start', allowed: (t) => t.status === 'PENDING' && !t.start_requested },
  { name: 'pause', label: 'Pause', allowed: (t) => t.status === 'IN_PROGRESS' },
  { name: 'resume', label: 'Resume', allowed: (t) => t.status === 'PAUSED' },
  { name: 'cancel', label: 'Cancel', allowed: (t) => ['PENDING', 'IN_PROGRESS', 'PAUSED'].includes(t.status) },
];

/** The start / pause / resume / cancel buttons of `task`, disabled where the API would refuse. */
function actionButtons(task, scope, after) {
  return h('div', { class: 'actions', role: 'group', tabindex: '-1', 'aria-label': `Actions for ${task.name}` },
    ACTIONS.map((a) => h('button', {
      type: 'button',
      class: `action-${a.name}`,
      'data-key': `${task.id}:${a.name}`,
      'data-action': a.name,
      disabled: !a.allowed(task),
      'aria-label': `${a.label} ${task.name}`,
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        try {
          const t = await api.post(`/tasks/${task.id}/${a.name}`);
          clearProblems(scope());
          announce(`${task.name}: ${t.status}`);
        } catch (err) {
          showProblem(scope(), err);
        }
        await after();
      },
    }, a.label)));
}

/** The progress of a task: a bar of done / failed / uncertain / skipped / pending, and words. */
function progress(task, s) {
  const c = s.counts;
  const segments = [
    { key: 'done', label: 'done', value: c.success },
    { key: 'failed', label: 'failed', value: c.failed },
    { key: 'uncertain', label: 'uncertain', value: c.uncertain },
    { key: 'skipped', label: 'skipped', value: c.skipped },
    { key: 'pending', label: 'pending', value: c.pending + c.in_progress },
  ];
  const percent = Math.floor(s.percent);
  const words = segments
    .filter((x) => x.key !== 'uncertain' || x.value > 0)
    .map((x) => `${x.value} ${x.label}`)
    .join(' · ');
  return h('div', {
    class: 'progress',
    role: 'progressbar',
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': percent,
    'aria-valuetext': `${percent} %: ${words}`,
    'aria-label': `Progress of ${task.name}`,
    'data-percent': percent,
  },
  stackedBar(segments, `${task.name}: ${words}`),
  h('span', { class: 'progress-text' }, h('strong', { class: 'percent' }, `${percent} %`), ` of ${s.total} · ${words}`));
}

function eta(s) {
  if (!s.eta) return '—';
  const e = s.eta;
  const parts = [];
  if (e.finish_at) {
    parts.push(`${duration(e.seconds_left)} (${when(e.finish_at)})`);
  } else if (e.remaining > 0) {
    parts.push('not placeable yet');
  }
  if (e.uncovered > 0) parts.push(`${e.uncovered} no account can take`);
  return parts.join('; ') || '—';
}

// ---- refresh ----

let refreshTimer = null;
let routeSerial = 0;

/** Runs `fn` every few seconds while the current page is shown. */
function every(fn) {
  const serial = routeSerial;
  const tick = async () => {
    if (serial !== routeSerial) return;
    if (!document.hidden) {
      try {
        await fn();
      } catch {
        // The next tick tries again; a refused token has already signed out.
      }
    }
    if (serial === routeSerial) refreshTimer = setTimeout(tick, REFRESH_MS);
  };
  refreshTimer = setTimeout(tick, REFRESH_MS);
}

/** Replaces `node`'s children, keeping keyboard focus on the element with the same `data-key`. */
function replaceKeepingFocus(node, children) {
  const key = document.activeElement?.getAttribute?.('data-key');
  node.replaceChildren(...children.flat(Infinity).filter(Boolean));
  if (key) {
    const again = node.querySelector(`[data-key="${CSS.escape(key)}"]`);
    // A button that is now disabled cannot hold focus: its group keeps it.
    const target = again && !again.disabled ? again : again?.closest('[tabindex]');
    if (target) target.focus();
  }
}

// ---- campaigns ----

function campaignsPage() {
  const region = h('div', { class: 'table-wrap' });
  const filter = h('select', { id: 'status-filter' },
    h('option', { value: '' }, 'Any status'),
    ['PENDING', 'IN_PROGRESS', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'].map((s) => h('option', { value: s }, s)));
  const section = h('section', { 'aria-labelledby': 'campaigns-title' },
    h('div', { class: 'heading' },
      h('h2', { id: 'campaigns-title' }, 'Campaigns'),
      h('a', { href: '#/new', class: 'button' }, 'New campaign')),
    h('p', { class: 'filters' }, h('label', { for: 'status-filter' }, 'Show '), filter),
    region);
  const load = async () => {
    const page = await api.get('/tasks', { limit: 100, status: filter.value });
    const statuses = await Promise.all(page.items.map((t) => api.get(`/tasks/${t.id}/status`).catch(() => null)));
    if (page.items.length === 0) {
      replaceKeepingFocus(region, [h('p', { class: 'empty' }, 'No campaigns yet. ', h('a', { href: '#/new' }, 'Create one.'))]);
      return;
    }
    const rows = page.items.map((t, i) => {
      const s = statuses[i];
      return h('tr', { 'data-task': t.id, 'data-status': t.status },
        h('th', { scope: 'row' }, h('a', { href: `#/campaigns/${t.id}` }, t.name),
          h('span', { class: 'sub' }, `#${t.id} · ${t.action.replaceAll('_', ' ')} · ${t.platform}`)),
        h('td', { class: 'status', 'data-label': 'Status' }, h('span', { class: `badge badge-${t.status}` }, t.status),
          t.status_reason ? h('span', { class: 'sub' }, t.status_reason) : null),
        h('td', { 'data-label': 'Progress' }, s ? progress(t, s) : '—'),
        h('td', { class: 'eta', 'data-label': 'ETA' }, s ? eta(s) : '—'),
        h('td', { 'data-label': 'Priority' }, t.priority),
        h('td', { 'data-label': 'Actions' }, actionButtons(t, () => section, load)));
    });
    replaceKeepingFocus(region, [h('table', { class: 'campaigns' },
      h('caption', { class: 'visually-hidden' }, 'Your campaigns'),
      h('thead', {}, h('tr', {}, ['Campaign', 'Status', 'Progress', 'ETA', 'Priority', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))]);
  };
  filter.addEventListener('change', () => load().catch((e) => showProblem(section, e)));
  load().catch((e) => showProblem(section, e));
  every(load);
  return [section];
}

// ---- templates (as the service parses them) ----

const VARIABLES = ['username', 'first_name', 'last_name', 'full_name'];

/** Parses a template like the service: `{var}`, `{var|fallback}`, `{{` and `}}` for braces. */
function parseTemplate(source) {
  if (!source.trim()) return { error: 'template is empty' };
  const pieces = [];
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '{' && source[i + 1] === '{') { text += '{'; i++; continue; }
    if (c === '}' && source[i + 1] === '}') { text += '}'; i++; continue; }
    if (c === '}') return { error: `unmatched '}' at position ${i} (write '}}' for a literal brace)` };
    if (c === '{') {
      const close = source.indexOf('}', i + 1);
      const open = source.indexOf('{', i + 1);
      if (close < 0 || (open >= 0 && open < close)) return { error: `unclosed '{' at position ${i} (write '{{' for a literal brace)` };
      const inner = source.slice(i + 1, close);
      const bar = inner.indexOf('|');
      const name = (bar < 0 ? inner : inner.slice(0, bar)).trim();
      if (!VARIABLES.includes(name)) return { error: `unknown variable {${name}} at position ${i}; known: ${VARIABLES.join(', ')}` };
      if (text) pieces.push({ text });
      text = '';
      pieces.push({ name, fallback: bar < 0 ? null : inner.slice(bar + 1) });
      i = close;
      continue;
    }
    text += c;
  }
  if (text) pieces.push({ text });
  return { pieces };
}

function renderTemplate(pieces, person) {
  const full = person.full_name || [person.first_name, person.last_name].filter(Boolean).join(' ');
  const values = { ...person, full_name: full };
  return pieces.map((p) => {
    if (p.text !== undefined) return p.text;
    const v = values[p.name];
    return v && v.trim() ? v : (p.fallback ?? '');
  }).join('');
}

// ---- audience ----

/** The audience as a file: the uploaded one, else the pasted lines (blank ones dropped) as a one-column CSV. */
function audienceFile(pasted, upload) {
  if (upload.files && upload.files[0]) return { file: upload.files[0], pasted: false };
  const lines = pasted.value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return null;
  // No header row: the report's row numbers are then the lines as pasted.
  const csv = lines.map((l) => `"${l.replaceAll('"', '""')}"`).join('\n');
  return { file: new File([csv], 'pasted.csv', { type: 'text/csv' }), pasted: true };
}

function audienceForm(audience, extra) {
  const form = new FormData();
  form.append('file', audience.file, audience.file.name);
  if (audience.pasted) {
    form.append('has_header', 'false');
    form.append('identifier_column', '1');
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v !== undefined && v !== null && v !== '') form.append(k, String(v));
  }
  return form;
}

/** The validation report of an audience: counts, then the first row errors with row numbers. */
function validationReport(r) {
  const dup = r.duplicate;
  const items = [
    ['Rows', r.rows], ['Valid', r.valid], ['Invalid', r.invalid],
    ['Duplicate', `${dup} (${r.duplicate_in_file} in the file, ${r.duplicate_existing} already in the campaign, ${r.duplicate_reached} reached recently)`],
    ['Suppressed', r.suppressed],
  ];
  return h('section', { class: 'report', 'aria-labelledby': 'report-title', 'data-valid': r.valid, 'data-invalid': r.invalid },
    h('h3', { id: 'report-title' }, 'Validation report'),
    h('p', { class: 'sub' }, `${r.format.toUpperCase()}${r.header ? ', with a header row' : ''}`),
    h('dl', { class: 'counts' }, items.map(([k, v]) => [h('dt', {}, k), h('dd', { 'data-count': k.toLowerCase() }, String(v))])),
    r.errors.length ? h('table', { class: 'row-errors' },
      h('caption', {}, `Row errors (first ${r.errors.length} of ${r.error_total})`),
      h('thead', {}, h('tr', {}, ['Row', 'Column', 'Value', 'Reason'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, r.errors.map((e) => h('tr', {}, h('td', {}, e.row), h('td', {}, e.column), h('td', {}, e.value), h('td', {}, e.reason))))) : null);
}

// ---- new campaign ----

function field(name, label, input, hint) {
  const hintId = hint ? `hint-${name}` : null;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: input.id }, label), input,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
}

function newCampaignPage() {
  const name = h('input', { id: 'f-name', name: 'name', required: true, maxlength: 255, autocomplete: 'off' });
  const platform = h('select', { id: 'f-platform', name: 'platform' },
    ['sandbox', 'telegram', 'instagram', 'whatsapp'].map((p) => h('option', { value: p }, p)));
  const action = h('select', { id: 'f-action', name: 'action' },
    [['invite', 'Invite to a group'], ['message', 'Send a message'], ['invite_and_message', 'Invite, then message']]
      .map(([v, l]) => h('option', { value: v }, l)));
  const group = h('input', { id: 'f-group', name: 'group', placeholder: '@my_group', autocomplete: 'off' });
  const template = h('textarea', { id: 'f-template', name: 'template', rows: 3, placeholder: 'Hello {first_name|friend}!' });
  const priority = h('select', { id: 'f-priority', name: 'priority' },
    ['low', 'medium', 'high'].map((p) => h('option', { value: p, selected: p === 'medium' }, p)));
  const scheduled = h('input', { id: 'f-scheduled', name: 'scheduled_at', type: 'datetime-local' });
  const dedupe = h('input', { id: 'f-dedupe', name: 'dedupe_days', type: 'number', min: 1, max: 3650, inputmode: 'numeric' });
  const contacts = h('input', { id: 'f-contacts', name: 'add_to_contacts', type: 'checkbox' });
  const pasted = h('textarea', { id: 'f-pasted', name: 'pasted', rows: 5, placeholder: '@alice_example\n+79161234567\n123456789' });
  const upload = h('input', { id: 'f-file', name: 'file', type: 'file', accept: '.csv,.xlsx,.json,text/csv,application/json' });
  const preview = h('div', { class: 'preview', 'aria-live': 'polite', id: 'template-preview' });
  const reportBox = h('div', { id: 'audience-report' });
  const check = h('button', { type: 'button', id: 'check-audience' }, 'Check audience');
  const create = h('button', { type: 'submit', id: 'create', disabled: true }, 'Create campaign');
  let checked = false;

  const groupField = field('group', 'Group or channel', group, '@name, numeric id or invite link.');
  const templateField = field('template', 'Message template', template,
    'Variables: {username}, {first_name}, {last_name}, {full_name}; a fallback after |: {first_name|friend}. {{ and }} write braces.');
  const previewField = h('div', { class: 'field' }, h('span', { class: 'label' }, 'Preview'), preview);

  const updateAction = () => {
    const a = action.value;
    groupField.hidden = a === 'message';
    templateField.hidden = a === 'invite';
    previewField.hidden = a === 'invite';
  };
  const updatePreview = () => {
    const parsed = parseTemplate(template.value);
    if (parsed.error) {
      preview.replaceChildren(h('p', { class: 'field-error' }, template.value.trim() ? parsed.error : 'Write a template to see a message.'));
      return;
    }
    preview.replaceChildren(
      h('p', {}, h('span', { class: 'sub' }, 'To Alice Smith (@alice_example): '),
        h('q', { 'data-preview': 'named' }, renderTemplate(parsed.pieces, { username: 'alice_example', first_name: 'Alice', last_name: 'Smith' }))),
      h('p', {}, h('span', { class: 'sub' }, 'To someone with no names (fallbacks): '),
        h('q', { 'data-preview': 'fallback' }, renderTemplate(parsed.pieces, { username: 'user_123' }))));
  };
  const unchecked = () => {
    checked = false;
    create.disabled = true;
    reportBox.replaceChildren();
  };
  action.addEventListener('change', updateAction);
  template.addEventListener('input', updatePreview);
  for (const n of [pasted, upload, platform, dedupe]) {
    n.addEventListener('input', unchecked);
    n.addEventListener('change', unchecked);
  }

  const form = h('form', { class: 'card', 'aria-labelledby': 'new-title', novalidate: true },
    h('h2', { id: 'new-title' }, 'New campaign'),
    h('fieldset', {}, h('legend', {}, 'Campaign'),
      field('name', 'Name', name),
      h('div', { class: 'row' }, field('platform', 'Platform', platform), field('action', 'Action', action)),
      groupField, templateField, previewField,
      h('div', { class: 'row' }, field('priority', 'Priority', priority), field('scheduled_at', 'Start not before (your time)', scheduled),
        field('dedupe_days', 'Skip people reached within (days)', dedupe)),
      h('div', { class: 'field check', 'data-field': 'add_to_contacts' }, contacts, h('label', { for: 'f-contacts' }, 'Add each person to contacts first'))),
    h('fieldset', {}, h('legend', {}, 'Audience'),
      field('targets', 'Paste identifiers, one per line', pasted, '@username, t.me/username, numeric id or +phone. Blank lines are dropped; row numbers count the others.'),
      field('file', 'Or upload a file (CSV, XLSX, JSON)', upload),
      h('p', {}, check),
      reportBox),
    h('p', { class: 'submit' }, create, ' ', h('span', { class: 'hint' }, 'Check the audience first: nothing is stored before.')));

  check.addEventListener('click', async () => {
    clearProblems(form);
    const audience = audienceFile(pasted, upload);
    if (!audience) {
      showProblem(form, { title: 'No audience', errors: [{ field: 'targets', message: 'paste identifiers or choose a file' }] });
      return;
    }
    check.disabled = true;
    try {
      const r = await api.call('POST', '/import/validate', {
        form: audienceForm(audience, { platform: platform.value, dedupe_days: dedupe.value }),
      });
      reportBox.replaceChildren(validationReport(r));
      checked = true;
      create.disabled = r.valid === 0;
      announce(`Audience checked: ${r.valid} valid, ${r.invalid} invalid`);
    } catch (err) {
      showProblem(form, err);
    } finally {
      check.disabled = false;
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!checked) return;
    clearProblems(form);
    const body = {
      name: name.value,
      platform: platform.value,
      action: action.value,
      priority: priority.value,
      add_to_contacts: contacts.checked,
    };
    if (action.value !== 'message') body.group = group.value;
    if (action.value !== 'invite') body.template = template.value;
    if (scheduled.value) body.scheduled_at = new Date(scheduled.value).toISOString();
    if (dedupe.value) body.dedupe_days = Number(dedupe.value);
    create.disabled = true;
    let task;
    try {
      task = (await api.call('POST', '/tasks', { json: body })).task;
    } catch (err) {
      create.disabled = false;
      showProblem(form, err);
      return;
    }
    try {
      const audience = audienceFile(pasted, upload);
      const r = await api.call('POST', '/import/file', { form: audienceForm(audience, { task_id: task.id }) });
      announce(`Campaign ${task.name} created with ${r.inserted} people`);
      location.hash = `#/campaigns/${task.id}`;
    } catch (err) {
      showProblem(form, err);
      form.querySelector('.problem').append(h('p', {}, 'The campaign was created without its audience: ',
        h('a', { href: `#/campaigns/${task.id}` }, 'open it'), '.'));
    }
  });
  updateAction();
  updatePreview();
  return [form];
}

// ---- campaign detail ----

/** The hours of `timeline` with the quiet hours between them as zeros (at most a week's). */
function hourly(timeline) {
  const HOUR = 3600 * 1000;
  const known = new Map(timeline.map((t) => [new Date(t.hour).getTime(), t.actions]));
  const times = [...known.keys()].sort((a, b) => a - b);
  if (times.length === 0 || (times[times.length - 1] - times[0]) / HOUR > 7 * 24) {
    return timeline.map((t) => ({ hour: new Date(t.hour).toISOString(), actions: t.actions }));
  }
  const out = [];
  for (let t = times[0]; t <= times[times.length - 1]; t += HOUR) {
    out.push({ hour: new Date(t).toISOString(), actions: known.get(t) || 0 });
  }
  return out;
}

async function download(path, filename) {
  const response = await api.call('GET', path, { raw: true, query: { format: 'csv' } });
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const a = h('a', { href, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

function detailPage(id) {
  const header = h('div', { class: 'heading' });
  const summary = h('div', { class: 'summary' });
  const charts = h('div', { class: 'charts' });
  const accounts = h('div', { class: 'table-wrap' });
  const logBox = h('div', { class: 'table-wrap' });
  const section = h('section', { 'aria-labelledby': 'detail-title' }, header, summary, charts,
    h('h3', {}, 'Accounts'), accounts,
    h('h3', { id: 'log-title' }, 'Execution log'));
  const logStatus = h('select', { id: 'log-status' }, h('option', { value: '' }, 'Any'),
    ['PENDING', 'SUCCESS', 'FAILED', 'SKIPPED'].map((s) => h('option', { value: s }, s)));
  const logAccount = h('select', { id: 'log-account' }, h('option', { value: '' }, 'Any'));
  const logFilter = h('form', { class: 'filters', 'aria-labelledby': 'log-title' },
    h('label', { for: 'log-status' }, 'Status '), logStatus, ' ',
    h('label', { for: 'log-account' }, 'Account '), logAccount, ' ',
    h('button', { type: 'submit' }, 'Filter'));
  section.append(logFilter, logBox);
  let offset = 0;
  let knownAccounts = [];

  const loadLog = async () => {
    const page = await api.get(`/tasks/${id}/logs`, { status: logStatus.value, account_id: logAccount.value, limit: LOG_PAGE, offset });
    const rows = page.items.map((l) => h('tr', {},
      h('td', {}, when(l.created_at)), h('td', {}, l.account_id), h('td', {}, l.action), h('td', {}, l.target_id),
      h('td', {}, l.status), h('td', {}, l.outcome || ''), h('td', {}, [l.error_kind, l.error_code].filter(Boolean).join(' '))));
    const prev = h('button', { type: 'button', disabled: offset === 0, 'data-key': 'log-prev', onclick: () => { offset = Math.max(0, offset - LOG_PAGE); loadLog(); } }, 'Previous');
    const next = h('button', { type: 'button', disabled: page.next_offset === null || page.next_offset === undefined, 'data-key': 'log-next', onclick: () => { offset = page.next_offset; loadLog(); } }, 'Next');
    replaceKeepingFocus(logBox, [
      h('table', { class: 'log' },
        h('caption', {}, page.items.length ? `Rows ${offset + 1}–${offset + page.items.length}` : 'No rows'),
        h('thead', {}, h('tr', {}, ['Time', 'Account', 'Action', 'Target', 'Status', 'Outcome', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)),
      h('nav', { class: 'pager', 'aria-label': 'Log pages' }, prev, ' ', next)]);
  };
  logFilter.addEventListener('submit', (e) => {
    e.preventDefault();
    offset = 0;
    loadLog().catch((err) => showProblem(section, err));
  });

  const load = async () => {
    const [task, s, stats, owned] = await Promise.all([
      api.get(`/tasks/${id}`), api.get(`/tasks/${id}/status`), api.get(`/tasks/${id}/stats`),
      api.get('/accounts').catch(() => ({ items: [] }))]);
    const states = new Map(owned.items.map((a) => [a.id, a]));
    const stateOf = (id) => {
      const a = states.get(id);
      if (!a) return '—';
      const words = a.state.replaceAll('_', ' ');
      return [words, a.reason, a.until ? `until ${when(a.until)}` : null].filter(Boolean).join(' · ');
    };
    document.title = `${task.name} · Invite Service`;
    replaceKeepingFocus(header, [
      h('h2', { id: 'detail-title' }, task.name, ' ', h('span', { class: `badge badge-${task.status}` }, task.status)),
      actionButtons(task, () => section, load),
      h('button', { type: 'button', id: 'download-csv', 'data-key': 'csv', onclick: () => download(`/tasks/${id}/report`, `campaign-${id}-report.csv`).catch((err) => showProblem(section, err)) }, 'Download CSV report')]);
    const facts = [
      ['Action', task.action.replaceAll('_', ' ')], ['Platform', task.platform], ['Group', task.group],
      ['Priority', task.priority], ['Created', when(task.created_at)], ['Scheduled', task.scheduled_at ? when(task.scheduled_at) : null],
      ['Started', task.started_at ? when(task.started_at) : null], ['Finished', task.finished_at ? when(task.finished_at) : null],
      ['ETA', eta(s)], ['Accounts able to act', `${s.active_accounts} of ${s.accounts}`], ['Reason', task.status_reason],
      ['Waiting', s.waiting_reason],
    ].filter(([, v]) => v);
    summary.replaceChildren(progress(task, s),
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      task.template ? h('p', {}, 'Template: ', h('q', {}, task.template)) : '');
    const outcomes = Object.entries(s.outcomes || {}).sort((a, b) => b[1] - a[1]).map(([label, value]) => ({ label, value }));
    const hours = hourly(stats.timeline).map((t) => ({ label: when(t.hour), short: `${t.hour.slice(11, 13)}h`, value: t.actions }));
    charts.replaceChildren(
      h('figure', { class: 'chart', id: 'outcomes-chart' }, h('figcaption', {}, 'Outcomes'), barChart(outcomes, 'Finished targets by outcome')),
      h('figure', { class: 'chart', id: 'hours-chart' }, h('figcaption', {}, 'Actions per hour (UTC)'), columnChart(hours, 'Actions per hour')));
    const errors = Object.entries(stats.per_error || {});
    accounts.replaceChildren(
      h('table', { class: 'per-account' },
        h('thead', {}, h('tr', {}, ['Account', 'Attempts', 'Succeeded', 'Failed', 'State now (cooldown)'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, stats.per_account.map((a) => h('tr', {}, h('th', { scope: 'row' }, a.account_id), h('td', {}, a.attempts), h('td', {}, a.successes), h('td', {}, a.failures), h('td', { class: 'state' }, stateOf(a.account_id)))))),
      errors.length ? h('p', {}, 'Errors: ', errors.map(([k, v]) => `${k} ${v}`).join(', ')) : null);
    const ids = stats.per_account.map((a) => a.account_id);
    if (ids.join() !== knownAccounts.join()) {
      knownAccounts = ids;
      const chosen = logAccount.value;
      logAccount.replaceChildren(h('option', { value: '' }, 'Any'), ids.map((a) => h('option', { value: a, selected: a === chosen }, a)));
    }
    await loadLog();
  };
  load().catch((err) => showProblem(section, err));
  every(load);
  return [h('p', {}, h('a', { href: '#/campaigns' }, '← All campaigns')), section];
}

// ---- accounts ----

function accountsPage() {
  const list = h('div', { class: 'accounts' });
  const section = h('section', { 'aria-labelledby': 'accounts-title' }, h('h2', { id: 'accounts-title' }, 'Accounts'), list);
  const load = async () => {
    const r = await api.get('/accounts');
    if (r.items.length === 0) {
      list.replaceChildren(h('p', { class: 'empty' }, 'No accounts yet.'));
      return;
    }
    list.replaceChildren(h('table', { class: 'account-table' },
      h('thead', {}, h('tr', {}, ['Account', 'State', 'Use of limits (rolling window)', 'Next free slot'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, r.items.map((a) => h('tr', { 'data-account': a.id },
        h('th', { scope: 'row' }, a.display_name || a.id, h('span', { class: 'sub' }, `${a.id} · ${a.platform}`)),
        h('td', {}, h('span', { class: `badge state-${a.state}` }, a.state.replaceAll('_', ' ')),
          a.reason ? h('span', { class: 'sub' }, a.reason) : null,
          a.until ? h('span', { class: 'sub' }, `until ${when(a.until)}`) : null),
        h('td', {}, a.usage.map((u) => h('div', { class: 'usage', 'data-kind': u.kind },
          h('span', { class: 'usage-text' }, `${u.kind}: ${u.used} / ${u.limit}`),
          meter(u.used, u.limit, `${u.kind}: ${u.used} of ${u.limit}`)))),
        h('td', {}, a.usage.map((u) => h('div', {}, `${u.kind}: ${u.next_allowed_at ? when(u.next_allowed_at) : 'now'}`))))))));
  };
  load().catch((e) => showProblem(section, e));
  every(load);

  const session = h('textarea', { id: 'a-session', name: 'session', rows: 3, autocomplete: 'off', spellcheck: 'false' });
  const apiId = h('input', { id: 'a-api-id', name: 'api_id', inputmode: 'numeric', autocomplete: 'off' });
  const apiHash = h('input', { id: 'a-api-hash', name: 'api_hash', type: 'password', autocomplete: 'off' });
  const label = h('input', { id: 'a-label', name: 'label', autocomplete: 'off' });
  const verify = h('input', { id: 'a-verify', type: 'checkbox', checked: true });
  const result = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'add-account-title', novalidate: true },
    h('h3', { id: 'add-account-title' }, 'Add a Telegram account'),
    field('session', 'Session string', session, 'A Telethon or Pyrogram session string. It is sealed on the server and never shown again.'),
    h('div', { class: 'row' }, field('api_id', 'api_id (optional)', apiId), field('api_hash', 'api_hash (optional)', apiHash)),
    field('label', 'Label (optional)', label),
    h('div', { class: 'field check' }, verify, h('label', { for: 'a-verify' }, 'Connect and check the session now')),
    h('button', { type: 'submit' }, 'Add account'), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(form);
    const body = { platform: 'telegram', session: session.value.trim() };
    if (apiId.value.trim()) body.api_id = Number(apiId.value.trim());
    if (apiHash.value.trim()) body.api_hash = apiHash.value.trim();
    if (label.value.trim()) body.label = label.value.trim();
    try {
      const a = await api.call('POST', '/accounts', { json: body, query: { verify: verify.checked } });
      session.value = '';
      apiHash.value = '';
      result.replaceChildren(h('p', { role: 'status' }, `Added ${a.label || a.id} (${a.status}).`));
      await load();
    } catch (err) {
      showProblem(form, err);
    }
  });
  return [section, form];
}

// ---- suppressions ----

function suppressionsPage() {
  const platform = h('select', { id: 's-platform' }, ['telegram', 'sandbox'].map((p) => h('option', { value: p }, p)));
  const list = h('div', { class: 'table-wrap' });
  let offset = 0;
  const section = h('section', { 'aria-labelledby': 'suppressions-title' },
    h('h2', { id: 'suppressions-title' }, 'Suppression list'),
    h('p', {}, 'People on this list are never contacted by any of your campaigns on that platform.'),
    h('p', { class: 'filters' }, h('label', { for: 's-platform' }, 'Platform '), platform),
    list);
  const load = async () => {
    const page = await api.get('/suppressions', { platform: platform.value, limit: SUPPRESSION_PAGE, offset });
    const rows = page.items.map((s) => h('tr', { 'data-identifier': s.identifier },
      h('th', { scope: 'row' }, s.identifier), h('td', {}, s.identifier_kind.replaceAll('_', ' ')), h('td', {}, s.reason), h('td', {}, when(s.created_at)),
      h('td', {}, h('button', {
        type: 'button', 'aria-label': `Remove ${s.identifier}`,
        onclick: async () => {
          try {
            await api.call('DELETE', '/suppressions', { query: { platform: platform.value, identifier: s.identifier } });
            announce(`${s.identifier} removed`);
            await load();
          } catch (err) {
            showProblem(section, err);
          }
        },
      }, 'Remove'))));
    list.replaceChildren(
      page.items.length ? h('table', { class: 'suppressions' },
        h('thead', {}, h('tr', {}, ['Person', 'Kind', 'Reason', 'Added', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)) : h('p', { class: 'empty' }, 'Nobody is suppressed on this platform.'),
      h('nav', { class: 'pager', 'aria-label': 'Suppression pages' },
        h('button', { type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - SUPPRESSION_PAGE); load(); } }, 'Previous'), ' ',
        h('button', { type: 'button', disabled: page.next_offset === null || page.next_offset === undefined, onclick: () => { offset = page.next_offset; load(); } }, 'Next')));
  };
  platform.addEventListener('change', () => { offset = 0; load().catch((e) => showProblem(section, e)); });
  load().catch((e) => showProblem(section, e));

  const people = h('textarea', { id: 's-people', name: 'identifiers', rows: 3, placeholder: '@someone_example' });
  const reason = h('input', { id: 's-reason', name: 'reason', placeholder: 'manual', maxlength: 255 });
  const add = h('form', { class: 'card', 'aria-labelledby': 'add-s-title', novalidate: true },
    h('h3', { id: 'add-s-title' }, 'Add people'),
    field('identifier', 'People, one per line', people),
    field('reason', 'Reason (optional)', reason),
    h('button', { type: 'submit' }, 'Add'));
  add.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(add);
    const lines = people.value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (!lines.length) {
      showProblem(add, { title: 'Nobody to add', errors: [{ field: 'identifier', message: 'write at least one person' }] });
      return;
    }
    const body = { identifier: lines[0], platform: platform.value };
    if (lines.length > 1) body.identifiers = lines.slice(1);
    if (reason.value.trim()) body.reason = reason.value.trim();
    try {
      const r = await api.post('/suppressions', body);
      people.value = '';
      announce(`${r.added} added to the suppression list`);
      await load();
    } catch (err) {
      showProblem(add, err);
    }
  });

  const file = h('input', { id: 's-file', name: 'file', type: 'file', accept: '.csv,.xlsx,.json,text/csv,application/json' });
  const uploadReport = h('div', {});
  const upload = h('form', { class: 'card', 'aria-labelledby': 'upload-s-title', novalidate: true },
    h('h3', { id: 'upload-s-title' }, 'Upload a list'),
    field('file', 'File (CSV, XLSX, JSON)', file),
    h('button', { type: 'submit' }, 'Upload'), uploadReport);
  upload.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(upload);
    if (!file.files[0]) {
      showProblem(upload, { title: 'No file', errors: [{ field: 'file', message: 'choose a file' }] });
      return;
    }
    const form = new FormData();
    form.append('file', file.files[0], file.files[0].name);
    form.append('platform', platform.value);
    if (reason.value.trim()) form.append('reason', reason.value.trim());
    try {
      const r = await api.call('POST', '/suppressions/file', { form });
      uploadReport.replaceChildren(h('p', { role: 'status' }, `${r.added} added.`), validationReport(r.report));
      await load();
    } catch (err) {
      showProblem(upload, err);
    }
  });
  return [section, h('div', { class: 'two' }, add, upload)];
}

// ---- router ----

const PAGES = [
  [/^#\/campaigns\/(\d+)$/, (m) => detailPage(m[1]), 'campaigns'],
  [/^#\/new$/, () => newCampaignPage(), 'new'],
  [/^#\/accounts$/, () => accountsPage(), 'accounts'],
  [/^#\/suppressions$/, () => suppressionsPage(), 'suppressions'],
  [/^#\/campaigns$/, () => campaignsPage(), 'campaigns'],
];

function route() {
  routeSerial += 1;
  clearTimeout(refreshTimer);
  takeTokenFromAddress();
  const signedIn = Boolean(api.token());
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('signout').hidden = !signedIn;
  document.title = 'Invite Service';
  if (!signedIn) {
    main().replaceChildren(...signInPage());
    return;
  }
  let found = PAGES.find(([re]) => re.test(location.hash));
  if (!found) {
    history.replaceState(null, '', '#/campaigns');
    found = PAGES[PAGES.length - 1];
  }
  const [re, build, nav] = found;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main().replaceChildren(...build(location.hash.match(re)));
  main().setAttribute('data-page', nav);
}

function start() {
  api.hooks.unauthorized = () => {
    api.setToken(null);
    announce('The token was refused: sign in again.');
    route();
  };
  document.getElementById('signout').addEventListener('click', () => {
    api.setToken(null);
    location.hash = '';
    route();
  });
  // The skip link moves focus without changing the page's address.
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    main().focus();
  });
  window.addEventListener('hashchange', route);
  route();
}

start();
