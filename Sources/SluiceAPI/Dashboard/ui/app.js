// Sluice's dashboard: plain JavaScript over the JSON API and its event stream (docs/dashboard.md).
// Every text from the server is put in the page as text (textContent, text nodes), never parsed as HTML.
'use strict';

const PHASES = ['Pending', 'Progressing', 'Paused', 'Promoting', 'Baking', 'Succeeded', 'RollingBack', 'RolledBack', 'Failed'];
const TERMINAL = ['Succeeded', 'RolledBack', 'Failed'];
const EVENT_TYPES = ['RolloutStarted', 'CanaryDeployed', 'StageStarted', 'TrafficShifted', 'StageCompleted',
  'CheckBreached', 'CheckRecovered', 'CheckNoData', 'ProviderError', 'Paused', 'Resumed', 'PromotionRequested',
  'Promoting', 'Promoted', 'BakeStarted', 'RollbackStarted', 'RolledBack', 'Superseded', 'Failed', 'DriftDetected',
  'DriftCorrected', 'EffectFailed', 'StablePromoted', 'StableRestored'];
const ONCALL_ROLES = ['oncall', 'release', 'admin'];

const state = { session: null, stream: null, refreshTimer: null, pollTimer: null, filters: { namespace: '', phase: '' } };

// ---- DOM helpers: elements are built, never parsed from strings.

function h(tag, props, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  append(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  append(node, children);
  return node;
}

function setProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = String(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

function byId(id) { return document.getElementById(id); }

// Replaces what `node` shows; null children (a section a role does not get) are left out.
function show(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

// ---- The API: cookies for reads, the session's CSRF token in a header for every change.

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const method = options.method || 'GET';
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (state.session) headers['X-CSRF-Token'] = state.session.csrf;
  }
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    const message = (body && body.error && body.error.message) || ('HTTP ' + response.status);
    if (response.status === 401 && !options.signingIn) showSignIn('Signed out: ' + message);
    throw new APIError(response.status, message);
  }
  return body;
}

// ---- Sign-in and sign-out.

function mayAct() { return !!state.session && ONCALL_ROLES.includes(state.session.role); }

function showSignIn(message) {
  state.session = null;
  stopStream();
  byId('signin').hidden = false;
  byId('view').hidden = true;
  byId('signout').hidden = true;
  byId('who').textContent = '';
  byId('signin-error').textContent = message || '';
  byId('token').focus();
}

function signedIn(session) {
  state.session = session;
  byId('signin').hidden = true;
  byId('view').hidden = false;
  byId('signout').hidden = false;
  byId('who').textContent = session.name + ' · ' + session.role;
  startStream();
  render();
}

async function signIn(event) {
  event.preventDefault();
  const input = byId('token');
  byId('signin-error').textContent = '';
  try {
    const session = await api('/v1/session', { method: 'POST', body: { token: input.value }, signingIn: true });
    input.value = '';
    signedIn(session);
  } catch (error) {
    input.value = '';
    byId('signin-error').textContent = error.status === 401 ? 'That token is not known to this server.' : error.message;
  }
}

async function signOut() {
  try { await api('/v1/session', { method: 'DELETE' }); } catch (_) { /* signed out either way */ }
  showSignIn('Signed out.');
}

// ---- Live updates from the event stream.

function startStream() {
  stopStream();
  // tail=1: from the newest event on (the stream resumes with Last-Event-ID after a drop).
  const stream = new EventSource('/v1/events?tail=1');
  state.stream = stream;
  const live = byId('live');
  stream.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
  stream.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off'; };
  for (const type of EVENT_TYPES) {
    stream.addEventListener(type, (message) => {
      let event = null;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      onEvent(event);
    });
  }
  // The hold left changes without events; a slow poll keeps it near.
  state.pollTimer = setInterval(() => scheduleRefresh(0), 10000);
}

function stopStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
  clearInterval(state.pollTimer);
  const live = byId('live');
  live.textContent = 'offline';
  live.className = 'live off';
}

function onEvent(event) {
  const route = currentRoute();
  if (route.page === 'rollout' && event.rollout === route.id) appendEvent(event);
  scheduleRefresh(150);
}

function scheduleRefresh(delay) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => refresh(), delay);
}

// ---- Routing: #/ (overview), #/rollouts/ID, #/strategies/NS/NAME (history).

function currentRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'rollouts' && parts.length === 2) return { page: 'rollout', id: parts[1] };
  if (parts[0] === 'strategies' && parts.length === 3) return { page: 'history', namespace: parts[1], name: parts[2] };
  return { page: 'overview' };
}

let renderedKey = '';

function render() {
  if (!state.session) return;
  const route = currentRoute();
  renderedKey = JSON.stringify(route);
  const view = byId('view');
  show(view, h('p', { class: 'loading', text: 'Loading…' }));
  refresh(true);
}

async function refresh(fresh) {
  if (!state.session) return;
  const route = currentRoute();
  const key = JSON.stringify(route);
  try {
    if (route.page === 'rollout') await showRollout(route.id, fresh);
    else if (route.page === 'history') await showHistory(route.namespace, route.name);
    else await showOverview();
  } catch (error) {
    if (error.status === 401) return;
    if (key !== renderedKey) return;
    show(byId('view'), h('p', { class: 'error', role: 'alert', text: 'Could not load: ' + error.message }));
  }
}

// ---- Formatting.

function percent(value) { return value === null || value === undefined ? '—' : value + '%'; }

function seconds(total) {
  if (total === null || total === undefined) return '—';
  const s = Math.max(0, Math.round(total));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(m / 60) + 'h' + String(m % 60).padStart(2, '0') + 'm';
}

function clock(time) { return time ? new Date(time).toLocaleTimeString([], { hour12: false }) : '—'; }
function dateTime(time) { return time ? new Date(time).toLocaleString([], { hour12: false }) : '—'; }
function number(value) {
  if (value === null || value === undefined) return '—';
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 0.001 || abs >= 100000) ? value.toExponential(2) : String(Math.round(value * 10000) / 10000);
}

function phaseBadge(phase, id) { return h('span', { class: 'phase phase-' + phase, id, text: phase }); }

/// The router's weight, and the wanted one when they differ (docs/api.md: every client marks a difference).
function weightText(rollout) {
  const router = rollout.router;
  if (!router || router.weight === null || router.weight === undefined) return '— (want ' + percent(rollout.weight) + ')';
  if (router.weight === rollout.weight && router.confirmed) return percent(router.weight);
  let text = percent(router.weight) + ' (want ' + percent(rollout.weight);
  if (!router.confirmed && router.unconfirmedSeconds !== undefined) text += ', router not confirming for ' + seconds(router.unconfirmedSeconds);
  return text + ')';
}

function weightNode(rollout, id) {
  const router = rollout.router || {};
  const observed = router.weight === null || router.weight === undefined ? '' : router.weight;
  return h('span', {
    class: 'weight' + (router.confirmed ? '' : ' unconfirmed'), id, 'data-observed': String(observed),
    'data-wanted': String(rollout.weight), 'data-confirmed': String(!!router.confirmed), text: weightText(rollout),
  });
}

// The time left in the stage's hold, or in the bake after promotion (the checks still watch the new version).
function holdText(rollout) {
  if (TERMINAL.includes(rollout.phase)) return '—';
  if (rollout.phase === 'Baking') return seconds(rollout.bakeRemainingSeconds) + ' of bake';
  return seconds(rollout.holdRemainingSeconds);
}

function stageText(rollout) {
  if (!rollout.stage) return '—';
  return (rollout.stage.index + 1) + '/' + rollout.stageCount + ' ' + rollout.stage.name;
}

// A check's last value against its threshold as a small bar: full at the threshold, red past it. A check without a
// threshold (a comparison with stable, or before its thresholds are known) fills by its verdict alone; no sample: empty.
function checkBar(check, limits) {
  const max = limits && limits.max, min = limits && limits.min;
  let fill = check.verdict ? 1 : 0;
  let label = check.name + ': ' + number(check.value);
  if (limits && limits.compare) label += ' (e-value of the comparison with stable)';
  if (max !== undefined && max !== null && check.value !== null && check.value !== undefined) {
    fill = max > 0 ? Math.min(Math.max(check.value / max, 0), 1) : (check.value > max ? 1 : 0);
    label += ' of max ' + number(max);
  } else if (min !== undefined && min !== null && check.value !== null && check.value !== undefined) {
    // A ratio with a floor below 1 (availability ≥ 0.999): the bar is the shortfall from 1 against the one allowed.
    const ratio = min > 0 && min < 1 && check.value >= 0 && check.value <= 1;
    fill = ratio ? (1 - check.value) / (1 - min) : (check.value <= 0 ? 1 : min / check.value);
    fill = Math.min(Math.max(fill, 0), 1);
    label += ' (min ' + number(min) + ')';
  }
  if (check.verdict) label += ', ' + check.verdict;
  const verdict = check.verdict || 'none';
  const near = verdict === 'pass' && fill >= 0.8 && ((max !== undefined && max !== null) || (min !== undefined && min !== null));
  const bar = h('span', { class: 'bar-fill ' + (near ? 'near' : 'v-' + verdict) });
  bar.style.width = Math.round(fill * 100) + '%';
  return h('span', { class: 'check', title: label, 'data-check': check.name },
    h('span', { class: 'check-name', text: check.name }),
    h('span', { class: 'bar', role: 'img', 'aria-label': label }, bar));
}

// ---- Overview: every strategy with its active or last rollout.

async function showOverview() {
  const [strategies, list] = await Promise.all([api('/v1/strategies'), api('/v1/rollouts?limit=500')]);
  const latest = new Map();
  for (const rollout of list.rollouts) if (!latest.has(rollout.strategy)) latest.set(rollout.strategy, rollout);
  const limits = new Map();
  await Promise.all([...latest.values()].map(async (rollout) => {
    try {
      const samples = await api('/v1/rollouts/' + encodeURIComponent(rollout.id) + '/samples');
      limits.set(rollout.id, new Map(samples.checks.map((c) => [c.name, c])));
    } catch (_) { /* the bars show the verdict alone */ }
  }));
  if (currentRoute().page !== 'overview') return;

  const namespaces = [...new Set(strategies.strategies.map((s) => s.namespace))].sort();
  const { namespace, phase } = state.filters;
  const rows = strategies.strategies.filter((s) => {
    const rollout = latest.get(s.namespace + '/' + s.name);
    if (namespace && s.namespace !== namespace) return false;
    if (phase === 'none') return !rollout;
    if (phase === 'active') return rollout && !TERMINAL.includes(rollout.phase);
    if (phase) return rollout && rollout.phase === phase;
    return true;
  });

  const namespaceSelect = h('select', { id: 'filter-namespace', onchange: (e) => { state.filters.namespace = e.target.value; refresh(); } },
    h('option', { value: '', text: 'All namespaces' }), namespaces.map((n) => h('option', { value: n, text: n })));
  namespaceSelect.value = namespace;
  const phaseSelect = h('select', { id: 'filter-phase', onchange: (e) => { state.filters.phase = e.target.value; refresh(); } },
    h('option', { value: '', text: 'All phases' }), h('option', { value: 'active', text: 'Active' }),
    PHASES.map((p) => h('option', { value: p, text: p })), h('option', { value: 'none', text: 'No rollout yet' }));
  phaseSelect.value = phase;

  const table = h('table', { id: 'overview', class: 'cards' },
    h('caption', { class: 'visually-hidden', text: 'Strategies and their active or last rollout' }),
    h('thead', {}, h('tr', {}, ['Strategy', 'Version', 'Phase', 'Stage', 'Traffic to canary', 'Hold left', 'Checks']
      .map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, rows.map((s) => overviewRow(s, latest.get(s.namespace + '/' + s.name), limits))));

  const focused = document.activeElement && document.activeElement.id;
  show(byId('view'),
    h('h1', { text: 'Rollouts' }),
    h('div', { class: 'filters' },
      h('label', { for: 'filter-namespace', text: 'Namespace' }), namespaceSelect,
      h('label', { for: 'filter-phase', text: 'Phase' }), phaseSelect),
    rows.length ? table : h('p', { class: 'empty', text: 'No strategy matches.' }));
  if (focused && byId(focused)) byId(focused).focus();
}

function overviewRow(strategy, rollout, limits) {
  const key = strategy.namespace + '/' + strategy.name;
  const history = h('a', { href: '#/strategies/' + encodeURIComponent(strategy.namespace) + '/' + encodeURIComponent(strategy.name), text: key });
  if (!rollout) {
    return h('tr', { 'data-strategy': key },
      h('td', { 'data-label': 'Strategy' }, history), h('td', { 'data-label': 'Version', colspan: 6, class: 'muted', text: 'no rollout yet' }));
  }
  const checkLimits = limits.get(rollout.id);
  return h('tr', { 'data-strategy': key, 'data-rollout': rollout.id },
    h('td', { 'data-label': 'Strategy' }, history),
    h('td', { 'data-label': 'Version' }, h('a', { href: '#/rollouts/' + encodeURIComponent(rollout.id), text: rollout.version })),
    h('td', { 'data-label': 'Phase' }, phaseBadge(rollout.phase)),
    h('td', { 'data-label': 'Stage', class: 'stage', text: stageText(rollout) }),
    h('td', { 'data-label': 'Traffic' }, weightNode(rollout)),
    h('td', { 'data-label': 'Hold left', text: holdText(rollout) }),
    h('td', { 'data-label': 'Checks', class: 'checks' },
      rollout.checks.map((c) => checkBar(c, checkLimits && checkLimits.get(c.name)))));
}

// ---- One rollout: summary, actions, stage timeline, a chart per check, commands, the live event log.

const rolloutView = { id: null, seqs: new Set() };

async function showRollout(id, fresh) {
  const path = '/v1/rollouts/' + encodeURIComponent(id);
  const rollout = await api(path);
  const [strategy, samples, events] = await Promise.all([
    api('/v1/strategies/' + encodeURIComponent(rollout.namespace) + '/' + encodeURIComponent(rollout.name)).catch(() => null),
    api(path + '/samples'),
    api('/v1/events?rollout=' + encodeURIComponent(id) + '&limit=10000'),
  ]);
  const route = currentRoute();
  if (route.page !== 'rollout' || route.id !== id) return;
  const dialogOpen = byId('rollback-dialog').open;

  const view = byId('view');
  const focused = document.activeElement && document.activeElement.id;
  show(view,
    h('p', { class: 'crumbs' }, h('a', { href: '#/', text: 'Overview' }), ' / ',
      h('a', { href: '#/strategies/' + encodeURIComponent(rollout.namespace) + '/' + encodeURIComponent(rollout.name), text: rollout.strategy })),
    h('h1', {}, rollout.strategy + ' → ' + rollout.version, ' ', phaseBadge(rollout.phase, 'r-phase')),
    summary(rollout),
    actions(rollout),
    h('h2', { text: 'Stages' }), timeline(rollout, strategy, events.events),
    h('h2', { text: 'Checks' }), charts(samples),
    h('h2', { text: 'Commands' }), commands(events.events),
    h('h2', { text: 'Events' }), h('ol', { id: 'event-log', class: 'log', reversed: true })
  );
  rolloutView.id = id;
  rolloutView.seqs = new Set();
  for (const event of events.events) appendEvent(event);
  if (focused && byId(focused)) byId(focused).focus();
  if (dialogOpen) byId('rollback-reason').focus();
}

function summary(rollout) {
  const rows = [
    ['Stage', h('span', { id: 'r-stage', text: stageText(rollout) })],
    ['Traffic to canary', weightNode(rollout, 'r-weight')],
    [rollout.phase === 'Baking' ? 'Bake left' : 'Hold left', h('span', { id: 'r-hold', text: holdText(rollout) })],
    ['Rollout', rollout.id],
    ['Started', dateTime(rollout.createdAt)],
    ['Updated', dateTime(rollout.updatedAt)],
  ];
  if (rollout.pausedBecause) rows.push(['Paused', rollout.pausedBecause]);
  if (rollout.endReason) rows.push(['Ended', h('span', { id: 'r-end', text: rollout.endReason })]);
  if (rollout.router && rollout.router.failure) rows.push(['Router', rollout.router.failure]);
  return h('dl', { class: 'summary' }, rows.map(([term, value]) => [h('dt', { text: term }), h('dd', {}, value)]));
}

function actions(rollout) {
  if (!mayAct() || TERMINAL.includes(rollout.phase)) return null;
  const buttons = [];
  const command = (name, body) => async () => {
    byId('action-error').textContent = '';
    try {
      await api('/v1/rollouts/' + encodeURIComponent(rollout.id) + '/' + name, { method: 'POST', body });
      scheduleRefresh(0);
    } catch (error) {
      byId('action-error').textContent = name + ' refused: ' + error.message;
    }
  };
  if (rollout.phase === 'Progressing') buttons.push(h('button', { id: 'action-pause', type: 'button', onclick: command('pause', {}), text: 'Pause' }));
  if (rollout.phase === 'Paused') buttons.push(h('button', { id: 'action-resume', type: 'button', onclick: command('resume', {}), text: 'Resume' }));
  if (rollout.phase === 'Progressing' || rollout.phase === 'Paused') {
    buttons.push(h('button', { id: 'action-promote', type: 'button', onclick: command('promote', {}), text: 'Promote to next stage' }));
  }
  if (rollout.phase !== 'RollingBack') {
    buttons.push(h('button', { id: 'action-rollback', type: 'button', class: 'danger', onclick: () => openRollback(rollout), text: 'Roll back…' }));
  }
  return h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, buttons,
    h('p', { id: 'action-error', class: 'error', role: 'alert' }));
}

function openRollback(rollout) {
  const dialog = byId('rollback-dialog');
  dialog.dataset.rollout = rollout.id;
  byId('rollback-what').textContent = 'Send all traffic of ' + rollout.strategy + ' back to stable and end the rollout of '
    + rollout.version + '.';
  byId('rollback-reason').value = '';
  byId('rollback-error').textContent = '';
  dialog.showModal();
  byId('rollback-reason').focus();
}

async function confirmRollback(event) {
  event.preventDefault();
  const dialog = byId('rollback-dialog');
  const reason = byId('rollback-reason').value.trim();
  if (!reason) {
    byId('rollback-error').textContent = 'Say why: the reason goes into the event log.';
    return;
  }
  try {
    await api('/v1/rollouts/' + encodeURIComponent(dialog.dataset.rollout) + '/rollback', { method: 'POST', body: { reason } });
    dialog.close();
    scheduleRefresh(0);
  } catch (error) {
    byId('rollback-error').textContent = 'Rollback refused: ' + error.message;
  }
}

// The stages as planned (the first stage's start plus the holds before each) against when each really started.
function timeline(rollout, strategy, events) {
  const starts = new Map();
  for (const event of events) {
    if (event.type === 'StageStarted' && event.stage !== undefined && event.stage !== null && !starts.has(event.stage)) {
      starts.set(event.stage, Date.parse(event.time));
    }
  }
  const stages = strategy && strategy.revision === rollout.revision ? strategy.stages : null;
  if (!stages) {
    return h('p', { class: 'muted', text: 'The stages of revision ' + rollout.revision + ' are no longer the strategy\'s latest.' });
  }
  const origin = starts.has(0) ? starts.get(0) : Date.parse(rollout.createdAt);
  const last = events.length ? Date.parse(events[events.length - 1].time) : origin;
  const end = TERMINAL.includes(rollout.phase) ? last : Math.max(last, Date.now());
  let plannedAt = 0;
  const rows = stages.map((stage, index) => {
    const planned = plannedAt;
    plannedAt += (stage.holdSeconds || 0) * 1000;
    const actual = starts.has(index) ? starts.get(index) - origin : null;
    const nextStart = starts.has(index + 1) ? starts.get(index + 1) - origin : (actual === null ? null : end - origin);
    return { stage, index, planned, plannedEnd: plannedAt, actual, actualEnd: nextStart };
  });
  const span = Math.max(plannedAt, ...rows.map((r) => r.actualEnd || 0), 1);
  const width = 1000, rowHeight = 22, left = 130;
  const scale = (ms) => left + (ms / span) * (width - left - 10);
  const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + (rows.length * rowHeight + 8), class: 'timeline', role: 'img',
    'aria-label': 'Stage timeline: planned (light) against actual (dark)' },
  rows.map((r, i) => {
    const y = 4 + i * rowHeight;
    return [
      svg('text', { x: 4, y: y + 14, class: 'label' }, (r.index + 1) + ' ' + r.stage.name),
      svg('rect', { x: scale(r.planned), y, width: Math.max(scale(r.plannedEnd) - scale(r.planned), 2), height: 8, class: 'planned' }),
      r.actual === null ? null : svg('rect', { x: scale(r.actual), y: y + 9, width: Math.max(scale(r.actualEnd) - scale(r.actual), 2), height: 8,
        class: 'actual' + (rollout.stage && rollout.stage.index === r.index && !TERMINAL.includes(rollout.phase) ? ' current' : '') }),
    ];
  }));
  const offset = (ms) => (ms === null ? '—' : '+' + seconds(ms / 1000));
  const table = h('table', { id: 'timeline', class: 'cards' },
    h('thead', {}, h('tr', {}, ['Stage', 'Weight', 'Hold', 'Planned start', 'Started', 'Took'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-stage': r.index, 'data-started': r.actual === null ? 'false' : 'true',
      class: rollout.stage && rollout.stage.index === r.index ? 'current' : '' },
    h('td', { 'data-label': 'Stage', text: (r.index + 1) + ' ' + r.stage.name }),
    h('td', { 'data-label': 'Weight', text: percent(r.stage.weight) }),
    h('td', { 'data-label': 'Hold', text: r.stage.pause ? 'waits for promote' : seconds(r.stage.holdSeconds) }),
    h('td', { 'data-label': 'Planned', text: offset(r.planned) }),
    h('td', { 'data-label': 'Started', text: offset(r.actual) }),
    h('td', { 'data-label': 'Took', text: r.actual === null ? '—' : seconds((r.actualEnd - r.actual) / 1000) })))));
  return h('div', { class: 'stages' }, chart, table);
}

// A chart per check: its samples over time against the threshold (dashed), breaches in red.
function charts(samples) {
  if (!samples.checks.length) return h('p', { class: 'muted', text: 'This strategy has no checks.' });
  return h('div', { class: 'charts' }, samples.checks.map(chart));
}

function chart(check) {
  const points = check.samples.filter((s) => s.value !== null && s.value !== undefined);
  const threshold = check.max !== undefined && check.max !== null ? check.max : check.min;
  const values = points.map((p) => p.value).concat(threshold === undefined || threshold === null ? [] : [threshold]);
  const low = Math.min(0, ...values), high = Math.max(...values, low + 1e-9) * 1.1 || 1;
  const times = check.samples.map((s) => Date.parse(s.time));
  const first = Math.min(...times), last = Math.max(...times, first + 1);
  const width = 320, height = 120, pad = 6;
  const x = (t) => pad + ((t - first) / (last - first)) * (width - 2 * pad);
  const y = (v) => height - pad - ((v - low) / (high - low)) * (height - 2 * pad);
  const last1 = check.samples[check.samples.length - 1];
  let caption = check.name + ': ' + (last1 ? number(last1.value) + ' (' + last1.verdict + ')' : 'no samples yet');
  if (check.max !== undefined && check.max !== null) caption += ', max ' + number(check.max);
  if (check.min !== undefined && check.min !== null) caption += ', min ' + number(check.min);
  if (check.compare) caption += ', comparison (' + check.compare + ') e-values';
  const plot = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'chart', role: 'img', 'aria-label': caption },
    svg('rect', { x: 0, y: 0, width, height, class: 'frame' }),
    threshold === undefined || threshold === null ? null : svg('line', { x1: pad, x2: width - pad, y1: y(threshold), y2: y(threshold), class: 'threshold' }),
    points.length > 1 ? svg('polyline', { points: points.map((p) => x(Date.parse(p.time)).toFixed(1) + ',' + y(p.value).toFixed(1)).join(' '), class: 'line' }) : null,
    check.samples.map((s) => s.value === null || s.value === undefined
      ? svg('line', { x1: x(Date.parse(s.time)), x2: x(Date.parse(s.time)), y1: pad, y2: height - pad, class: 'nodata' })
      : svg('circle', { cx: x(Date.parse(s.time)).toFixed(1), cy: y(s.value).toFixed(1), r: 2.5, class: 'dot v-' + s.verdict },
        svg('title', {}, clock(s.time) + ' ' + number(s.value) + ' ' + s.verdict))));
  const evidence = last1 && (last1.explanation || last1.reason);
  return h('figure', { class: 'check-chart', 'data-check': check.name }, plot,
    h('figcaption', {}, caption, evidence ? h('span', { class: 'evidence', text: evidence }) : null));
}

function commands(events) {
  const done = events.filter((e) => e.actor && e.actor !== 'controller');
  if (!done.length) return h('p', { class: 'muted', id: 'commands', text: 'No command yet: everything so far was the controller.' });
  return h('ul', { id: 'commands', class: 'log' }, done.map((e) => h('li', {},
    h('time', { datetime: e.time, text: clock(e.time) }), ' ', h('strong', { class: 'actor', text: e.actor }), ' ',
    h('span', { class: 'type', text: e.type }), e.reason ? h('span', { class: 'muted', text: ' (' + e.reason + ')' }) : null,
    ': ', h('span', { class: 'message', text: e.message }))));
}

function appendEvent(event) {
  const log = byId('event-log');
  if (!log || rolloutView.seqs.has(event.seq)) return;
  rolloutView.seqs.add(event.seq);
  const detail = [];
  if (event.stage !== undefined && event.stage !== null) detail.push('stage ' + (event.stage + 1));
  if (event.weight !== undefined && event.weight !== null) detail.push(event.weight + '%');
  const item = h('li', { 'data-seq': event.seq, class: 'event t-' + event.type },
    h('time', { datetime: event.time, text: clock(event.time) }), ' ',
    h('span', { class: 'type', text: event.type }), ' ',
    detail.length ? h('span', { class: 'muted', text: '(' + detail.join(', ') + ') ' }) : null,
    h('span', { class: 'actor', text: event.actor }), ' ',
    h('span', { class: 'message', text: event.message }),
    event.reason ? h('span', { class: 'reason', text: ' — ' + event.reason }) : null);
  log.insertBefore(item, log.firstChild);
}

// ---- History: a strategy's past rollouts with their verdicts and durations.

async function showHistory(namespace, name) {
  const key = namespace + '/' + name;
  const list = await api('/v1/rollouts?limit=500&strategy=' + encodeURIComponent(key));
  const route = currentRoute();
  if (route.page !== 'history' || route.namespace !== namespace || route.name !== name) return;
  const rows = list.rollouts.map((r) => {
    const ended = TERMINAL.includes(r.phase);
    const duration = ((ended ? Date.parse(r.updatedAt) : Date.now()) - Date.parse(r.createdAt)) / 1000;
    return h('tr', { 'data-rollout': r.id },
      h('td', { 'data-label': 'Version' }, h('a', { href: '#/rollouts/' + encodeURIComponent(r.id), text: r.version })),
      h('td', { 'data-label': 'Verdict' }, phaseBadge(r.phase)),
      h('td', { 'data-label': 'Started', text: dateTime(r.createdAt) }),
      h('td', { 'data-label': 'Duration', text: seconds(duration) + (ended ? '' : ' so far') }),
      h('td', { 'data-label': 'Why it ended', text: r.endReason || '' }));
  });
  show(byId('view'),
    h('p', { class: 'crumbs' }, h('a', { href: '#/', text: 'Overview' })),
    h('h1', { text: 'History of ' + key }),
    rows.length
      ? h('table', { id: 'history', class: 'cards' },
        h('thead', {}, h('tr', {}, ['Version', 'Verdict', 'Started', 'Duration', 'Why it ended'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, rows))
      : h('p', { class: 'empty', text: 'No rollout of this strategy yet.' }));
}

// ---- Start: the session cookie, if any, else the sign-in form.

document.addEventListener('DOMContentLoaded', async () => {
  byId('signin-form').addEventListener('submit', signIn);
  byId('signout').addEventListener('click', signOut);
  byId('rollback-form').addEventListener('submit', confirmRollback);
  byId('rollback-cancel').addEventListener('click', () => byId('rollback-dialog').close());
  window.addEventListener('hashchange', render);
  try {
    signedIn(await api('/v1/session', { signingIn: true }));
  } catch (_) {
    showSignIn('');
  }
});
