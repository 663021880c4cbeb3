// The accounting connector's console: a static page that uses only the connector's public API (/v1),
// with the bearer token it was handed in the URL fragment (#token=…), kept in memory only.
//
// Plain ES module, no build step. Every text from the API is put in the page with textContent (never
// as HTML). The host context (/console/host-context.json, same token) says what a host product page
// knows itself: its company entities and their VAT rates, where to authorize Exact Online, and the
// sandboxes' test credentials.

const POLL_MS = 1000;
const PURPOSES = [
  ['outgoing_invoices', 'Outgoing invoices'],
  ['outgoing_credit_notes', 'Outgoing credit notes'],
  ['incoming_invoices', 'Incoming invoices'],
  ['incoming_credit_notes', 'Incoming credit notes'],
];
const PREFERRED_JOURNAL_TYPE = {
  outgoing_invoices: 'sales',
  outgoing_credit_notes: 'sales_credit',
  incoming_invoices: 'purchase',
  incoming_credit_notes: 'purchase_credit',
};
const TOOL_LABELS = { exact: 'Exact Online', octopus: 'Octopus', yuki: 'Yuki' };

const state = {
  token: null,
  claims: {},
  context: { entities: [], tools: {}, sandbox: {} },
  connected: new Map(), // entity_id -> EntityView
  limit: 4,
  selected: null, // entity id
  integration: null, // IntegrationView of the selected entity (null: not connected)
  toolData: null, // {journals, vatCodes, ledgerAccounts}
  history: null,
  run: null, // RunDetails of the opened run
  openRunId: null,
  notifications: [],
  connectTool: null,
  pollTimer: null,
  polling: false,
};

// ------------------------------------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const $ = (selector, root = document) => root.querySelector(selector);

async function api(method, path, body) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${state.token}` };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  const text = response.status === 204 ? '' : await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 200) };
    }
  }
  if (!response.ok) {
    if (response.status === 401) showSignIn('The token was refused (missing, invalid or expired): paste a new one.');
    throw new ApiError(response.status, data);
  }
  return data;
}

function announce(text) {
  const status = $('#status');
  status.textContent = '';
  // A new text node each time, so screen readers announce a repeated message too.
  window.setTimeout(() => { status.textContent = text; }, 30);
}

function errorText(error) {
  if (error instanceof ApiError) {
    const fields = (error.body.errors || []).map((e) => `${e.field}: ${e.reason}`);
    const running = error.body.run_id ? ` (running sync ${error.body.run_id})` : '';
    return [`${error.message}${running}`, ...fields];
  }
  return [error && error.message ? error.message : String(error)];
}

function showError(error, where) {
  const lines = errorText(error);
  const target = where || $('#alert');
  target.replaceChildren(h('p', { text: lines[0] }), lines.length > 1 ? h('ul', {}, lines.slice(1).map((l) => h('li', { text: l }))) : null);
  target.hidden = false;
}

function clearError(where) {
  const target = where || $('#alert');
  target.replaceChildren();
  target.hidden = true;
}

function formatTime(value) {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

function slug(text) {
  return String(text || '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function badge(text, kind) {
  return h('span', { class: `badge badge-${slug(kind || text)}`, text });
}

function decodeClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, '=')));
  } catch {
    return {};
  }
}

function randomState() {
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function hostEntity(entityId) {
  return state.context.entities.find((e) => e.entity_id === entityId) || null;
}

function entityName(entityId) {
  const host = hostEntity(entityId);
  const connected = state.connected.get(entityId);
  return (host && host.name) || (connected && connected.name) || entityId;
}

function anyRunning() {
  return [...state.connected.values()].some((e) => e.running_sync_id);
}

// --------------------------------------------------------------------------------------- sign-in

function takeTokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get('token');
  if (token) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return token;
}

function showSignIn(message) {
  state.token = null;
  stopPolling();
  $('#layout').hidden = true;
  $('#token-panel').hidden = false;
  $('#sync-all').disabled = true;
  if (message) showError(new Error(message));
  $('#token-input').focus();
}

async function signIn(token) {
  state.token = token;
  state.claims = decodeClaims(token);
  const rights = (state.claims.rights || []).join(', ');
  $('#who').textContent = `Signed in as ${state.claims.email || state.claims.sub || 'unknown user'}${rights ? ` (rights: ${rights})` : ''}`;
  $('#token-panel').hidden = true;
  $('#layout').hidden = false;
  clearError();
  await loadAll();
}

// ----------------------------------------------------------------------------------------- loading

async function loadAll() {
  try {
    const [context, entities, notifications] = await Promise.all([
      api('GET', '/console/host-context.json'),
      api('GET', '/v1/entities'),
      api('GET', '/v1/notifications'),
    ]);
    state.context = context;
    applyEntities(entities);
    state.notifications = notifications.notifications;
    renderEntities();
    renderNotifications();
    if (state.selected) await selectEntity(state.selected, { keepRun: true });
    schedulePoll();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
  }
}

function applyEntities(list) {
  state.connected = new Map(list.entities.map((e) => [e.entity_id, e]));
  state.limit = list.limit;
}

async function refreshEntities() {
  applyEntities(await api('GET', '/v1/entities'));
  renderEntities();
}

async function refreshNotifications() {
  state.notifications = (await api('GET', '/v1/notifications')).notifications;
  renderNotifications();
}

// ---------------------------------------------------------------------------------------- entities

function entityStatus(entityId) {
  const view = state.connected.get(entityId);
  return view ? view.status : 'Not connected';
}

function renderEntities() {
  const rows = [];
  const ids = state.context.entities.map((e) => e.entity_id);
  for (const id of state.connected.keys()) if (!ids.includes(id)) ids.push(id);
  for (const id of ids) {
    const view = state.connected.get(id);
    const name = entityName(id);
    const status = entityStatus(id);
    const running = Boolean(view && view.running_sync_id);
    const canSync = Boolean(view && view.status === 'Connected' && !running);
    rows.push(h('tr', { class: id === state.selected ? 'selected' : null, 'data-entity': id },
      h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', 'aria-label': `Open ${name}`, 'aria-current': id === state.selected ? 'true' : null, onclick: () => selectEntity(id) }, name)),
      h('td', { text: view ? TOOL_LABELS[view.tool] || view.tool : '—' }),
      h('td', {}, badge(status), running ? h('span', { class: 'running-note' }, ' ', badge('Sync running', 'running')) : null),
      h('td', {}, h('button', { type: 'button', class: 'small', 'data-action': 'sync', 'aria-label': `Sync ${name}`, disabled: !canSync, onclick: () => startSync(id) }, 'Sync')),
    ));
  }
  $('#entities tbody').replaceChildren(...rows);
  const connectedCount = [...state.connected.values()].length;
  $('#entities-limit').textContent = `${connectedCount} of at most ${state.limit} company entities have an integration.`;
  const anyConnected = [...state.connected.values()].some((e) => e.status === 'Connected');
  const syncAll = $('#sync-all');
  syncAll.disabled = !anyConnected || anyRunning();
  syncAll.title = anyRunning() ? 'A sync is running' : (anyConnected ? '' : 'No company entity is connected yet');
  updateEntityHeader();
}

async function selectEntity(entityId, { keepRun = false } = {}) {
  const changed = state.selected !== entityId;
  state.selected = entityId;
  if (changed && !keepRun) {
    state.run = null;
    state.openRunId = null;
  }
  state.integration = null;
  state.toolData = null;
  state.history = null;
  renderEntities();
  try {
    if (state.connected.has(entityId)) {
      state.integration = await api('GET', `/v1/entities/${entityId}/integration`);
      await loadToolData();
      state.history = await api('GET', `/v1/entities/${entityId}/syncs`);
    }
    state.connectTool = (state.integration && state.integration.tool) || (hostEntity(entityId) || {}).suggested_tool || 'exact';
    renderEntityPanel();
    if (state.openRunId) await openRun(state.openRunId, { focus: false });
    if (changed) $('#entity-title').focus();
  } catch (error) {
    showError(error);
  }
}

async function loadToolData() {
  const id = state.selected;
  if (!state.integration || state.integration.status === 'Connecting') {
    state.toolData = null;
    return;
  }
  const [journals, vatCodes, ledgerAccounts] = await Promise.all([
    api('GET', `/v1/entities/${id}/tool/journals`),
    api('GET', `/v1/entities/${id}/tool/vat-codes`),
    api('GET', `/v1/entities/${id}/tool/ledger-accounts`),
  ]);
  state.toolData = { journals: journals.items, vatCodes: vatCodes.items, ledgerAccounts: ledgerAccounts.items };
}

function updateEntityHeader() {
  const title = $('#entity-title');
  if (!state.selected) return;
  const status = entityStatus(state.selected);
  title.replaceChildren(entityName(state.selected), ' ', badge(status));
  title.setAttribute('tabindex', '-1');
  const button = $('#sync-one');
  if (button) {
    const view = state.connected.get(state.selected);
    const running = Boolean(view && view.running_sync_id);
    button.disabled = !(view && view.status === 'Connected') || running;
    $('#sync-note').textContent = running
      ? 'A sync of this company entity is running: the buttons come back when it ends.'
      : (view && view.status === 'Connected' ? '' : 'Finish the setup first (status Connected).');
  }
}

function renderEntityPanel() {
  $('#entity-intro').hidden = true;
  const host = hostEntity(state.selected) || {};
  const integration = state.integration;
  const facts = [];
  if (integration) {
    const conn = integration.connection || {};
    const where = conn.division ? `division ${conn.division}` : conn.dossier_id ? `dossier ${conn.dossier_id}` : conn.administration_id ? `administration ${conn.administration_id}` : '';
    facts.push(`${TOOL_LABELS[integration.tool]}${where ? `, ${where}` : ''}`);
    if (integration.missing && integration.missing.length) facts.push(`still missing: ${integration.missing.join(', ')}`);
  } else {
    facts.push('No integration yet: connect an accounting tool below.');
  }
  if (host.documents) facts.push(`${host.documents} booked documents in the host product`);
  $('#entity-body').replaceChildren(
    h('p', { class: 'facts', text: facts.join(' · ') }),
    h('section', { 'aria-labelledby': 'setup-title', id: 'setup' }, h('h3', { id: 'setup-title', text: 'Setup' }), renderSteps()),
    h('section', { 'aria-labelledby': 'sync-title', id: 'sync-section' },
      h('h3', { id: 'sync-title', text: 'Synchronisation' }),
      h('div', { class: 'sync-bar' },
        h('button', { type: 'button', id: 'sync-one', onclick: () => startSync(state.selected) }, 'Sync now'),
        h('span', { id: 'sync-note', class: 'hint' })),
      h('div', { id: 'history' })),
    h('section', { id: 'run', 'aria-live': 'polite' }),
  );
  renderHistory();
  updateEntityHeader();
}

// ------------------------------------------------------------------------------------------- setup

function stepDone() {
  const i = state.integration;
  const rates = (hostEntity(state.selected) || {}).vat_rates || [];
  const covers = (links) => rates.every((r) => links.some((l) => l.vat_rate_id === r.id));
  return {
    connect: Boolean(i && i.status !== 'Connecting'),
    details: Boolean(i && i.start_date && i.missing.length === 0),
    vat: Boolean(i && i.vat_code_links.length && covers(i.vat_code_links)),
    ledger: Boolean(i && i.ledger_account_links.length && covers(i.ledger_account_links)),
    discounts: Boolean(i && i.discount_accounts.length),
  };
}

function step(key, number, title, done, open, body, stateText) {
  return h('details', { class: 'step', id: `step-${key}`, open },
    h('summary', {}, h('span', { class: 'step-title', text: `${number}. ${title}` }), ' ',
      h('span', { class: `step-state ${done ? 'done' : 'todo'}`, text: stateText || (done ? 'Done' : 'To do') })),
    h('div', { class: 'step-body' }, body));
}

function renderSteps() {
  const done = stepDone();
  const order = ['connect', 'details', 'vat', 'ledger', 'discounts'];
  const firstOpen = order.find((k) => !done[k]);
  const i = state.integration;
  return h('div', { class: 'steps' },
    step('connect', 1, 'Connect', done.connect, firstOpen === 'connect', connectForm(), i ? i.status : 'Not connected'),
    step('details', 2, 'Integration details: start date and journals', done.details, firstOpen === 'details', detailsForm()),
    step('vat', 3, 'Link VAT codes', done.vat, firstOpen === 'vat', linksForm('vat')),
    step('ledger', 4, 'Ledger accounts per VAT rate', done.ledger, firstOpen === 'ledger', linksForm('ledger')),
    step('discounts', 5, 'Accounts for discounts', done.discounts, firstOpen === 'discounts', discountsForm()),
    step('auto', 6, 'Automatic sync', Boolean(i && i.auto_sync), false, autoSyncForm(), i && i.auto_sync ? 'On' : 'Off'),
  );
}

function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint`, text: hint }) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hintEl);
}

function formError() {
  return h('div', { class: 'form-error', role: 'alert', hidden: true });
}

async function submitStep(form, action, message) {
  const errorBox = $('.form-error', form);
  clearError(errorBox);
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    await action();
    await refreshEntities();
    state.integration = await api('GET', `/v1/entities/${state.selected}/integration`);
    await loadToolData();
    state.history = await api('GET', `/v1/entities/${state.selected}/syncs`);
    renderEntityPanel();
    announce(`${message} Status: ${state.integration.status}.`);
    const next = document.querySelector('#setup details[open] summary');
    (next || $('#entity-title')).focus();
  } catch (error) {
    showError(error, errorBox);
    buttons.forEach((b) => { b.disabled = false; });
  } finally {
    form.removeAttribute('aria-busy');
  }
}

function sandboxSetup(tool) {
  return (state.context.sandbox || {})[tool] || null;
}

function connectForm() {
  const host = hostEntity(state.selected) || {};
  const tool = state.connectTool || 'exact';
  const toolSelect = h('select', { id: 'connect-tool', name: 'tool' },
    Object.entries(TOOL_LABELS).map(([value, label]) => h('option', { value, selected: value === tool }, label)));
  toolSelect.addEventListener('change', () => {
    state.connectTool = toolSelect.value;
    const form = $('#connect-form');
    form.replaceWith(connectForm());
    $('#connect-tool').focus();
  });
  const name = h('input', { id: 'connect-name', name: 'name', type: 'text', required: true, maxlength: 200, value: (state.integration && state.integration.name) || host.name || '' });
  const fields = [];
  if (tool === 'exact') {
    fields.push(field('Division', h('input', { id: 'connect-division', name: 'division', type: 'number', min: 1, required: true, value: (state.integration && state.integration.connection.division) || '' }), 'The Exact Online company (division) number to book in.'));
  } else if (tool === 'octopus') {
    fields.push(field('User', h('input', { id: 'connect-user', name: 'user', type: 'text', autocomplete: 'off', required: true })));
    fields.push(field('Password', h('input', { id: 'connect-password', name: 'password', type: 'password', autocomplete: 'off', required: true })));
    fields.push(field('Dossier id', h('input', { id: 'connect-dossier', name: 'dossier_id', type: 'number', min: 1, required: true, value: (state.integration && state.integration.connection.dossier_id) || '' })));
  } else {
    fields.push(field('Web-service access key', h('input', { id: 'connect-key', name: 'access_key', type: 'password', autocomplete: 'off', required: true })));
    fields.push(field('Administration id', h('input', { id: 'connect-administration', name: 'administration_id', type: 'text', required: true, value: (state.integration && state.integration.connection.administration_id) || '' })));
    fields.push(field('Domain id (optional)', h('input', { id: 'connect-domain', name: 'domain_id', type: 'text', value: (state.integration && state.integration.connection.domain_id) || '' })));
  }
  const sandbox = sandboxSetup(tool);
  const fill = sandbox ? h('button', { type: 'button', class: 'secondary', onclick: () => fillConnect(tool) }, 'Fill in the sandbox’s test credentials') : null;
  const submitLabel = tool === 'exact' ? 'Connect with Exact Online' : `Connect ${TOOL_LABELS[tool]}`;
  const form = h('form', { id: 'connect-form', novalidate: true },
    field('Accounting tool', toolSelect),
    field('Name', name, 'The company entity’s name as the tool shows it.'),
    fields,
    formError(),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'connect-submit' }, submitLabel), fill),
    tool === 'exact' ? h('p', { class: 'hint', text: 'Opens Exact Online in a new window to authorize the connector; the window closes itself.' }) : null,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    submitStep(form, () => connect(tool, form), `${TOOL_LABELS[tool]} connected.`);
  });
  return form;
}

function fillConnect(tool) {
  const sandbox = sandboxSetup(tool);
  if (!sandbox) return;
  const values = sandbox.connect;
  const set = (id, value) => { const el = document.getElementById(id); if (el && value !== undefined && value !== null) el.value = value; };
  set('connect-division', values.division);
  set('connect-user', values.user);
  set('connect-password', values.password);
  set('connect-dossier', values.dossier_id);
  set('connect-key', values.access_key);
  set('connect-administration', values.administration_id);
  set('connect-domain', values.domain_id);
  announce('Filled in the sandbox’s test credentials.');
}

function exactAuthorize() {
  const exact = state.context.tools.exact || {};
  return new Promise((resolve, reject) => {
    if (!exact.authorize_url) {
      reject(new Error('The host context names no Exact Online authorization address.'));
      return;
    }
    const expected = randomState();
    const redirectUri = new URL('/console/exact-callback.html', window.location.origin).href;
    const url = new URL(exact.authorize_url);
    url.search = new URLSearchParams({ client_id: exact.client_id, redirect_uri: redirectUri, response_type: 'code', state: expected }).toString();
    const popup = window.open(url.href, 'exact-authorize', 'popup,width=560,height=680');
    if (!popup) {
      reject(new Error('The browser blocked the Exact Online window: allow pop-ups for this page and try again.'));
      return;
    }
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      window.removeEventListener('message', onMessage);
      window.clearInterval(watch);
      fn(value);
    };
    function onMessage(event) {
      if (event.origin !== window.location.origin || !event.data || event.data.type !== 'exact-authorization') return;
      if (event.data.state !== expected) return;
      if (event.data.error || !event.data.code) finish(reject, new Error(`Exact Online did not authorize the connector (${event.data.error || 'no code'}).`));
      else finish(resolve, { code: event.data.code, redirectUri });
    }
    window.addEventListener('message', onMessage);
    const watch = window.setInterval(() => {
      if (popup.closed) window.setTimeout(() => finish(reject, new Error('The Exact Online window was closed before it authorized the connector.')), 1000);
    }, 500);
  });
}

async function connect(tool, form) {
  const value = (name) => form.elements[name] ? form.elements[name].value.trim() : '';
  const body = { tool, name: value('name') };
  if (tool === 'exact') {
    const { code, redirectUri } = await exactAuthorize();
    Object.assign(body, { code, redirect_uri: redirectUri, division: Number(value('division')) });
  } else if (tool === 'octopus') {
    Object.assign(body, { user: value('user'), password: form.elements.password.value, dossier_id: Number(value('dossier_id')) });
  } else {
    Object.assign(body, { access_key: form.elements.access_key.value, administration_id: value('administration_id') });
    if (value('domain_id')) body.domain_id = value('domain_id');
  }
  await api('PUT', `/v1/entities/${state.selected}/integration`, body);
}

function needs(condition, text) {
  return condition ? null : h('p', { class: 'hint', text });
}

function journalSelect(purpose, label, current, journals) {
  const accepted = journals.filter((j) => !j.blocked && j.accepted_for.includes(purpose));
  let chosen = current;
  if (!chosen && purpose.startsWith('outgoing')) {
    const preferred = accepted.find((j) => j.type === PREFERRED_JOURNAL_TYPE[purpose]) || accepted[0];
    chosen = preferred ? preferred.code : '';
  }
  const select = h('select', { id: `journal-${purpose}`, name: purpose },
    h('option', { value: '', selected: !chosen }, '— not set —'),
    accepted.map((j) => h('option', { value: j.code, selected: j.code === chosen }, `${j.code} — ${j.description} (${j.type.replace('_', ' ')})`)));
  return field(label, select);
}

function detailsForm() {
  const i = state.integration;
  const ready = Boolean(i && state.toolData);
  const host = hostEntity(state.selected) || {};
  const suggested = host.first_document_date ? `${host.first_document_date.slice(0, 4)}-01-01` : '';
  const journals = ready ? state.toolData.journals : [];
  const form = h('form', { id: 'details-form', novalidate: true },
    needs(ready, 'Connect first.'),
    h('fieldset', { disabled: !ready },
      h('legend', { class: 'visually-hidden', text: 'Start date and journals' }),
      field('Start date', h('input', { id: 'details-start', name: 'start_date', type: 'date', required: true, min: '2000-01-01', max: '2099-12-31', value: (i && i.start_date) || suggested }), 'Documents dated before it are not synced.'),
      h('div', { class: 'grid2' }, PURPOSES.map(([purpose, label]) => journalSelect(purpose, `Journal for ${label.toLowerCase()}`, i && i.journals[purpose], journals))),
      formError(),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save details'))),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const journalsBody = {};
    for (const [purpose] of PURPOSES) journalsBody[purpose] = form.elements[purpose].value || null;
    submitStep(form, () => api('PUT', `/v1/entities/${state.selected}/integration/details`, { start_date: form.elements.start_date.value, journals: journalsBody }), 'Integration details saved.');
  });
  return form;
}

const LINKS = {
  vat: {
    title: 'VAT code',
    path: 'vat-code-links',
    current: (i) => i.vat_code_links.map((l) => [l.vat_rate_id, l.vat_code]),
    options: (data) => data.vatCodes.filter((c) => !c.blocked && c.usage !== 'purchase').map((c) => [c.code, `${c.code} — ${c.description} (${Number(c.percentage)}%)`]),
    sandbox: (s) => s.vat_codes,
    body: (links) => ({ links: links.map(([id, code]) => ({ vat_rate_id: id, vat_code: code })) }),
    saved: 'VAT-code links saved.',
  },
  ledger: {
    title: 'Ledger account',
    path: 'ledger-account-links',
    current: (i) => i.ledger_account_links.map((l) => [l.vat_rate_id, l.ledger_account]),
    options: (data) => data.ledgerAccounts.filter((a) => !a.blocked).map((a) => [a.code, `${a.code} — ${a.description}`]),
    sandbox: (s) => s.ledger_accounts,
    body: (links, form) => ({ links: links.map(([id, account]) => ({ vat_rate_id: id, ledger_account: account })), fill_existing_lines: form.elements.fill_existing_lines.checked }),
    saved: 'Ledger accounts per VAT rate saved.',
  },
};

function linksForm(kind) {
  const spec = LINKS[kind];
  const i = state.integration;
  const ready = Boolean(i && i.start_date && state.toolData);
  const rates = (hostEntity(state.selected) || {}).vat_rates || [];
  const current = new Map(ready ? spec.current(i) : []);
  const options = ready ? spec.options(state.toolData) : [];
  const rows = rates.map((rate) => {
    const id = `${kind}-${rate.id}`;
    const select = h('select', { id, name: rate.id, 'data-rate': rate.description },
      h('option', { value: '', selected: !current.get(rate.id) }, '— not linked —'),
      options.map(([value, label]) => h('option', { value, selected: value === current.get(rate.id) }, label)));
    return h('tr', {}, h('th', { scope: 'row' }, h('label', { for: id, text: `${rate.description}${rate.category ? ` (${rate.category})` : ''}` })), h('td', {}, select));
  });
  const sandbox = sandboxSetup(i ? i.tool : '');
  const form = h('form', { id: `${kind}-form`, novalidate: true },
    needs(ready, 'Save the integration details first.'),
    h('fieldset', { disabled: !ready },
      h('legend', { class: 'visually-hidden', text: `${spec.title} per host VAT rate` }),
      h('table', { class: 'links' },
        h('caption', { class: 'visually-hidden', text: `${spec.title} per host VAT rate` }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Host VAT rate' }), h('th', { scope: 'col', text: spec.title }))),
        h('tbody', {}, rows)),
      kind === 'ledger' ? h('div', { class: 'check' },
        h('input', { type: 'checkbox', id: 'fill-existing', name: 'fill_existing_lines', checked: Boolean(i && i.fill_existing_lines) }),
        h('label', { for: 'fill-existing', text: 'Set ledger accounts for existing invoice lines without a ledger account' })) : null,
      formError(),
      h('div', { class: 'actions' },
        h('button', { type: 'submit' }, 'Save links'),
        sandbox ? h('button', { type: 'button', class: 'secondary', onclick: () => fillLinks(kind, form) }, 'Fill in the sandbox’s set-up') : null)),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const links = rates.map((r) => [r.id, form.elements[r.id].value]).filter(([, v]) => v);
    submitStep(form, () => api('PUT', `/v1/entities/${state.selected}/integration/${spec.path}`, spec.body(links, form)), spec.saved);
  });
  return form;
}

function fillLinks(kind, form) {
  const sandbox = sandboxSetup(state.integration.tool);
  const values = LINKS[kind].sandbox(sandbox) || {};
  let count = 0;
  for (const [rateId, value] of Object.entries(values)) {
    const select = form.elements[rateId];
    if (select && [...select.options].some((o) => o.value === value)) {
      select.value = value;
      count += 1;
    }
  }
  announce(`Filled in ${count} links from the sandbox’s set-up; review them and save.`);
}

function discountsForm() {
  const i = state.integration;
  const ready = Boolean(i && i.start_date && state.toolData);
  const rates = (hostEntity(state.selected) || {}).vat_rates || [];
  const current = new Map(ready ? i.discount_accounts.map((a) => [a.vat_rate_id, a.ledger_account]) : []);
  const options = ready ? state.toolData.ledgerAccounts.filter((a) => !a.blocked) : [];
  const row = (rateId, label, emptyText) => {
    const id = `discount-${rateId === '*' ? 'all' : rateId}`;
    return h('tr', {}, h('th', { scope: 'row' }, h('label', { for: id, text: label })),
      h('td', {}, h('select', { id, name: rateId },
        h('option', { value: '', selected: !current.get(rateId) }, emptyText),
        options.map((a) => h('option', { value: a.code, selected: a.code === current.get(rateId) }, `${a.code} — ${a.description}`)))));
  };
  const sandbox = sandboxSetup(i ? i.tool : '');
  const form = h('form', { id: 'discounts-form', novalidate: true },
    needs(ready, 'Save the integration details first.'),
    h('fieldset', { disabled: !ready },
      h('legend', { class: 'visually-hidden', text: 'Ledger accounts for document discounts' }),
      h('table', { class: 'links' },
        h('caption', { class: 'visually-hidden', text: 'Ledger account for document discounts per host VAT rate' }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Discounts at' }), h('th', { scope: 'col', text: 'Ledger account' }))),
        h('tbody', {}, row('*', 'Every VAT rate', '— none —'), rates.map((r) => row(r.id, r.description, '— as every VAT rate —')))),
      formError(),
      h('div', { class: 'actions' },
        h('button', { type: 'submit' }, 'Save discount accounts'),
        sandbox ? h('button', { type: 'button', class: 'secondary', onclick: () => {
          for (const [rateId, account] of Object.entries(sandbox.discount_accounts || {})) if (form.elements[rateId]) form.elements[rateId].value = account;
          announce('Filled in the sandbox’s discount account; review it and save.');
        } }, 'Fill in the sandbox’s set-up') : null)),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const accounts = ['*', ...rates.map((r) => r.id)].map((id) => [id, form.elements[id].value]).filter(([, v]) => v)
      .map(([id, account]) => ({ vat_rate_id: id, ledger_account: account }));
    submitStep(form, () => api('PUT', `/v1/entities/${state.selected}/integration/discount-accounts`, { accounts }), 'Accounts for discounts saved.');
  });
  return form;
}

function autoSyncForm() {
  const i = state.integration;
  const ready = Boolean(i && i.status === 'Connected');
  const form = h('form', { id: 'auto-form', novalidate: true },
    needs(ready, 'Automatic sync can be turned on once the integration is Connected.'),
    h('fieldset', { disabled: !ready },
      h('legend', { class: 'visually-hidden', text: 'Automatic sync' }),
      h('div', { class: 'check' },
        h('input', { type: 'checkbox', id: 'auto-sync', name: 'auto_sync', checked: Boolean(i && i.auto_sync) }),
        h('label', { for: 'auto-sync', text: 'Sync automatically every night' })),
      formError(),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'))),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const on = form.elements.auto_sync.checked;
    submitStep(form, () => api('PUT', `/v1/entities/${state.selected}/integration/synchronisation`, { auto_sync: on }), `Automatic sync turned ${on ? 'on' : 'off'}.`);
  });
  return form;
}

// ------------------------------------------------------------------------------------------- syncs

function totals(run) {
  const sum = (key) => run.components.reduce((n, c) => n + (c[key] || 0), 0);
  return { synced: sum('synced'), already: sum('already_synced'), skipped: sum('skipped'), flagged: sum('flagged') };
}

function renderHistory() {
  const target = $('#history');
  if (!target) return;
  if (!state.integration) {
    target.replaceChildren(h('p', { class: 'hint', text: 'No integration yet.' }));
    return;
  }
  const runs = (state.history && state.history.runs) || [];
  if (!runs.length) {
    target.replaceChildren(h('p', { class: 'hint', text: 'No sync yet.' }));
    return;
  }
  target.replaceChildren(h('table', { class: 'history' },
    h('caption', { text: 'Sync history: the last 7 days and the latest successful sync' }),
    h('thead', {}, h('tr', {}, ['Started', 'Trigger', 'Status', 'Synced', 'Already synced', 'Skipped', 'Flagged', ''].map((t) => h('th', { scope: 'col' }, t || h('span', { class: 'visually-hidden', text: 'Details' }))))),
    h('tbody', {}, runs.map((run) => {
      const t = totals(run);
      return h('tr', { 'data-run': run.run_id, class: run.run_id === state.openRunId ? 'selected' : null },
        h('td', { text: formatTime(run.started_at) }),
        h('td', { text: run.trigger }),
        h('td', {}, badge(run.status)),
        h('td', { class: 'num', text: t.synced }),
        h('td', { class: 'num', text: t.already }),
        h('td', { class: 'num', text: t.skipped }),
        h('td', { class: 'num', text: t.flagged }),
        h('td', {}, h('button', { type: 'button', class: 'small', 'data-action': 'open-run', 'aria-label': `Open the sync started ${formatTime(run.started_at)}`, onclick: () => openRun(run.run_id) }, 'Open')));
    }))));
}

async function startSync(entityId) {
  clearError();
  try {
    const started = await api('POST', `/v1/entities/${entityId}/syncs`);
    const view = state.connected.get(entityId);
    if (view) view.running_sync_id = started.run_id;
    announce(`Sync of ${entityName(entityId)} started.`);
    if (state.selected !== entityId) await selectEntity(entityId);
    state.openRunId = started.run_id;
    renderEntities();
    await pollOnce();
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.body.run_id) {
      announce(`A sync of ${entityName(entityId)} is already running.`);
      state.openRunId = error.body.run_id;
      await pollOnce();
    } else {
      showError(error);
    }
  } finally {
    schedulePoll();
  }
}

async function startAll() {
  clearError();
  const button = $('#sync-all');
  button.disabled = true;
  try {
    const result = await api('POST', '/v1/syncs');
    for (const r of [...result.started, ...result.busy]) {
      const view = state.connected.get(r.entity_id);
      if (view) view.running_sync_id = r.run_id;
    }
    const names = (list) => list.map((r) => entityName(r.entity_id)).join(', ');
    announce(`Started: ${names(result.started) || 'none'}${result.busy.length ? `; already running: ${names(result.busy)}` : ''}.`);
    if (state.selected) {
      const mine = [...result.started, ...result.busy].find((r) => r.entity_id === state.selected);
      if (mine) state.openRunId = mine.run_id;
    }
    renderEntities();
    await pollOnce();
  } catch (error) {
    showError(error);
  } finally {
    schedulePoll();
  }
}

async function openRun(runId, { focus = true } = {}) {
  state.openRunId = runId;
  try {
    state.run = await api('GET', `/v1/syncs/${runId}`);
    if (state.run.run.entity_id !== state.selected) {
      await selectEntity(state.run.run.entity_id, { keepRun: true });
      return;
    }
    renderHistory();
    renderRun();
    if (focus) $('#run-title').focus();
  } catch (error) {
    showError(error);
  }
}

function renderRun() {
  const target = $('#run');
  if (!target) return;
  const details = state.run;
  if (!details || details.run.run_id !== state.openRunId) {
    target.replaceChildren();
    return;
  }
  const run = details.run;
  const openRows = new Set([...target.querySelectorAll('[aria-expanded="true"]')].map((b) => b.dataset.detail));
  const componentLabel = Object.fromEntries(run.components.map((c) => [c.name, c.label]));
  const rows = [];
  // Skipped first, then flagged documents, then flagged relations (customers, suppliers).
  const rank = (d) => (d.outcome === 'skipped' ? 0 : (d.subject_type === 'company' || d.subject_type === 'contact' || /customers|suppliers/.test(d.component)) ? 2 : 1);
  const ordered = details.details.map((d, i) => [d, i]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([d]) => d);
  ordered.forEach((d, index) => {
    const key = `${d.component}:${d.id}`;
    const open = openRows.has(key);
    const panelId = `detail-${index}`;
    const label = d.number || d.id;
    rows.push(h('tr', { class: 'detail-row', 'data-outcome': d.outcome },
      h('th', { scope: 'row', text: label }),
      h('td', { text: componentLabel[d.component] || d.component }),
      h('td', {}, badge(d.outcome.replace('_', ' '), d.outcome)),
      h('td', { class: 'booking', text: d.booking_number || '—' }),
      h('td', { class: 'issue' }, h('span', { class: 'clamp', text: d.reason || d.flag || '' })),
      h('td', {}, h('button', { type: 'button', class: 'small', 'aria-expanded': String(open), 'aria-controls': panelId, 'data-detail': key, 'aria-label': `View details of ${label}`, onclick: (event) => toggleDetail(event.currentTarget) }, 'View details'))));
    const subject = d.subject_type && d.subject_id ? `${d.subject_type} ${d.subject_id}` : d.id;
    rows.push(h('tr', { class: 'detail-panel', id: panelId, hidden: !open },
      h('td', { colspan: 6 }, h('dl', {},
        d.reason ? [h('dt', { text: 'Reason' }), h('dd', { text: d.reason })] : null,
        d.hint ? [h('dt', { text: 'How to fix' }), h('dd', { text: d.hint })] : null,
        d.flag ? [h('dt', { text: 'Warning' }), h('dd', { text: d.flag })] : null,
        d.booking_number ? [h('dt', { text: 'Booking number' }), h('dd', { text: d.booking_number })] : null,
        h('dt', { text: 'Open in the host product' }), h('dd', {}, h('code', { text: subject })),
        d.subject_id && d.subject_id !== d.id ? [h('dt', { text: 'Document id' }), h('dd', {}, h('code', { text: d.id }))] : null))));
  });
  target.replaceChildren(
    h('h3', { id: 'run-title', tabindex: '-1' }, `Sync of ${formatTime(run.started_at)} `, badge(run.status)),
    h('dl', { class: 'run-facts' },
      h('dt', { text: 'Trigger' }), h('dd', { text: run.trigger }),
      h('dt', { text: 'Started by' }), h('dd', { text: run.started_by || '—' }),
      h('dt', { text: 'Finished' }), h('dd', { text: formatTime(run.finished_at) }),
      h('dt', { text: 'Run id' }), h('dd', {}, h('code', { text: run.run_id })),
      run.error ? [h('dt', { text: 'Error' }), h('dd', { text: run.error })] : null),
    h('table', { class: 'components' },
      h('caption', { text: 'Components, in the order they run' }),
      h('thead', {}, h('tr', {}, ['Component', 'Status', 'Total', 'Synced', 'Already synced', 'Skipped', 'Flagged'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, run.components.map((c) => h('tr', {},
        h('th', { scope: 'row', text: c.label }),
        h('td', {}, badge(c.status), c.error ? h('span', { class: 'hint', text: ` ${c.error}` }) : null),
        h('td', { class: 'num', text: c.total ?? '—' }),
        h('td', { class: 'num', text: c.synced }),
        h('td', { class: 'num', text: c.already_synced }),
        h('td', { class: 'num', text: c.skipped }),
        h('td', { class: 'num', text: c.flagged }))))),
    h('h4', { text: `Skipped and flagged documents and relations (${details.details.length})` }),
    details.details.length
      ? h('table', { class: 'details' },
        h('caption', { class: 'visually-hidden', text: 'Skipped and flagged documents and relations' }),
        h('thead', {}, h('tr', {}, ['Document', 'Component', 'Outcome', 'Booking number', 'Issue', ''].map((t) => h('th', { scope: 'col' }, t || h('span', { class: 'visually-hidden', text: 'Details' }))))),
        h('tbody', {}, rows))
      : h('p', { class: 'hint', text: run.status === 'Running' ? 'The sync is still running.' : 'Nothing was skipped or flagged.' }),
  );
}

function toggleDetail(button) {
  const panel = document.getElementById(button.getAttribute('aria-controls'));
  const open = button.getAttribute('aria-expanded') !== 'true';
  button.setAttribute('aria-expanded', String(open));
  button.textContent = open ? 'Hide details' : 'View details';
  panel.hidden = !open;
}

// -------------------------------------------------------------------------------------------- polling

function needsPolling() {
  return anyRunning() || Boolean(state.run && state.run.run.status === 'Running') || Boolean(state.openRunId && !state.run);
}

function schedulePoll() {
  if (state.pollTimer || !state.token) return;
  if (!needsPolling()) return;
  state.pollTimer = window.setTimeout(async () => {
    state.pollTimer = null;
    await pollOnce();
    schedulePoll();
  }, POLL_MS);
}

function stopPolling() {
  if (state.pollTimer) window.clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

async function pollOnce() {
  if (state.polling) return;
  state.polling = true;
  try {
    const wasRunning = new Set([...state.connected.values()].filter((e) => e.running_sync_id).map((e) => e.entity_id));
    await refreshEntities();
    if (state.selected && state.connected.has(state.selected)) {
      state.history = await api('GET', `/v1/entities/${state.selected}/syncs`);
      renderHistory();
    }
    if (state.openRunId) {
      const before = state.run && state.run.run.run_id === state.openRunId ? state.run.run.status : null;
      state.run = await api('GET', `/v1/syncs/${state.openRunId}`);
      renderRun();
      if (before === 'Running' && state.run.run.status !== 'Running') announce(`Sync finished: ${state.run.run.status}.`);
    }
    const finished = [...wasRunning].filter((id) => !(state.connected.get(id) || {}).running_sync_id);
    if (finished.length) await refreshNotifications();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
  } finally {
    state.polling = false;
  }
}

// -------------------------------------------------------------------------------------- notifications

function renderNotifications() {
  const list = $('#notifications');
  const unread = state.notifications.filter((n) => !n.read).length;
  $('#notifications-title').textContent = unread ? `Notifications (${unread} unread)` : 'Notifications';
  if (!state.notifications.length) {
    list.replaceChildren(h('li', { class: 'hint', text: 'No notifications yet: a manual sync notifies the user who started it.' }));
    return;
  }
  list.replaceChildren(...state.notifications.map((n) => h('li', { class: n.read ? 'read' : 'unread' },
    h('p', { class: 'n-title' }, n.read ? null : h('span', { class: 'visually-hidden', text: 'Unread: ' }), n.title),
    h('p', { class: 'n-time', text: formatTime(n.created_at) }),
    h('p', { class: 'n-body', text: n.body.split('\n').filter((line) => line.trim() && !line.startsWith('Details:') && line !== n.title).join('\n') }),
    h('div', { class: 'actions' },
      n.run_id ? h('button', { type: 'button', class: 'small secondary', onclick: () => openRun(n.run_id) }, 'Open the sync') : null,
      n.read ? null : h('button', { type: 'button', class: 'small secondary', onclick: () => markRead(n.id) }, 'Mark as read')))));
}

async function markRead(id) {
  try {
    await api('PUT', `/v1/notifications/${id}/read`);
    await refreshNotifications();
    announce('Notification marked as read.');
  } catch (error) {
    showError(error);
  }
}

// ------------------------------------------------------------------------------------------------ start

function main() {
  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#token-input');
    const token = input.value.trim();
    input.value = '';
    if (token) signIn(token);
  });
  $('#sync-all').addEventListener('click', startAll);
  $('#refresh').addEventListener('click', () => { if (state.token) loadAll(); });
  const token = takeTokenFromFragment();
  if (token) signIn(token);
  else showSignIn();
}

main();
