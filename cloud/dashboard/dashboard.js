// The fleet dashboard: renders /api/state, then each state /api/events sends (server-sent
// events, about once a second). No framework and no build step; every value from the fleet
// goes into the page as text, never as markup.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
let state = null;
let operator = null;  // set once logged in (HTTP digest: the browser asks for the password)

function el(tag, attrs, ...children) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4))
                                   : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {}))
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const str = (v) => (typeof v === 'string' ? v : '');
const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

function bytes(n) {
  if (n === null) return '–';
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}
// The server's clock when a state says it (/api/state), else this browser's.
function now() { return state && num(state.now_ms) !== null ? state.now_ms : Date.now(); }
function ago(ms) {
  if (ms === null) return '–';
  const s = Math.max(0, Math.round((now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}
function hours(h) {
  if (h === null) return '–';
  return h >= 48 ? (h / 24).toFixed(1) + ' days' : h.toFixed(1) + ' h';
}
// A "12 s ago" cell, kept current by the timer at the end.
const agoCell = (ms) => el('td', { class: 'muted ago', 'data-ms': ms }, ago(ms));
// Puts `children` in `box`, keeping each element that is already there unchanged (a button
// under the pointer, an image already loaded).
function update(box, children) {
  const old = [...box.children];
  box.replaceChildren(...children.map((c, i) => (old[i] && old[i].isEqualNode(c) ? old[i] : c)));
}
const badge = (s, text) => el('span', { class: 'badge ' + (s || 'unknown') }, text || s || 'unknown');

function renderNodes(nodes) {
  const body = document.querySelector('#nodes tbody');
  const rows = [];
  const counts = {};
  for (const n of nodes) {
    const st = str(n.state) || 'unknown';
    counts[st] = (counts[st] || 0) + 1;
    const spool = n.spool && typeof n.spool === 'object' ? n.spool : {};
    const energy = n.energy && typeof n.energy === 'object' ? n.energy : {};
    const charge = num(energy.charge_pct);
    rows.push(el('tr', { 'data-node': str(n.node), 'data-state': st },
      el('td', {}, str(n.node)), el('td', {}, badge(st)), el('td', {}, str(n.tier)),
      el('td', { class: 'muted' }, str(n.version)), el('td', {}, str(n.pipeline) || '–'),
      el('td', { class: 'mono' }, str(n.part_hash) || '–'),
      el('td', { class: 'num' }, num(spool.frames) === null ? '–'
          : num(spool.frames) + ' frames, ' + bytes(num(spool.bytes))),
      el('td', { class: 'num' }, charge === null ? '–' : charge.toFixed(0) + ' %'),
      el('td', { class: 'num' }, num(n.cpu_percent) === null ? '–' : num(n.cpu_percent) + ' %'),
      el('td', { class: 'num' }, bytes(num(n.rss_bytes))),
      agoCell(num(n.last_seen_ms)),
      el('td', {}, operator && st === 'offline' ? forgetButton(str(n.node)) : null)));
  }
  update(body, rows);
  document.getElementById('no-nodes').hidden = nodes.length > 0;
  const c = document.getElementById('counts');
  c.replaceChildren(...Object.keys(counts).sort().map((k) => el('span', {}, counts[k] + ' ' + k)));
}

// A node's battery from the pipeline's solar spec: hours without sun at the model's draw.
function batteryWh(pipelines, node) {
  for (const p of pipelines)
    for (const n of p.nodes || [])
      if (n.name === node && n.solar && num(n.solar.battery_wh) !== null) return n.solar.battery_wh;
  return null;
}

function renderEnergy(nodes, pipelines) {
  const body = document.querySelector('#energy tbody');
  const rows = [];
  for (const n of nodes) {
    if (str(n.tier) !== 'edge') continue;
    const e = n.energy && typeof n.energy === 'object' ? n.energy : {};
    const draw = num(e.watts), harvest = num(e.harvest_w), charge = num(e.charge_pct);
    const wh = batteryWh(pipelines, str(n.node));
    const left = wh !== null && draw && charge !== null ? (wh * charge / 100) / draw : null;
    const balance = draw !== null && harvest !== null ? harvest - draw : null;
    let measured = '–';
    if (Array.isArray(n.power_supplies)) {
      const parts = n.power_supplies.filter((p) => p && typeof p === 'object').map((p) =>
        str(p.name) + ': ' + (num(p.capacity_percent) !== null ? p.capacity_percent + ' % ' : '') +
        (num(p.power_w) !== null ? p.power_w.toFixed(2) + ' W ' : '') + str(p.status));
      if (parts.length) measured = parts.join('; ');
    }
    rows.push(el('tr', { 'data-node': str(n.node) },
      el('td', {}, str(n.node)), el('td', {}, str(e.mode) || '–'),
      el('td', { class: 'num' }, charge === null ? '–' : charge.toFixed(1) + ' %'),
      el('td', { class: 'muted' }, str(e.source) + (str(e.note) ? ' (' + str(e.note) + ')' : '')),
      el('td', { class: 'num' }, draw === null ? '–' : draw.toFixed(2) + ' W'),
      el('td', { class: 'num' }, harvest === null ? '–' : harvest.toFixed(2) + ' W'),
      el('td', { class: 'num ' + (balance === null ? '' : balance >= 0 ? 'good' : 'bad') },
         balance === null ? '–' : (balance >= 0 ? '+' : '') + balance.toFixed(2) + ' W'),
      el('td', { class: 'num' }, hours(left)), el('td', { class: 'muted' }, measured)));
  }
  update(body, rows);
}

// The pipeline's graph: edge nodes on the left, cloud nodes on the right, each node a row
// holding its copies of the stages; links between nodes in blue with the bytes/s they carry.
function graph(p) {
  const W = 150, H = 40, PAD = 12, GAP = 26, ROW = H + 46, TOP = 10, COLGAP = 170;
  const perNode = {};
  (p.copies || []).forEach((c) => { (perNode[c.node] = perNode[c.node] || []).push(c); });
  const nodes = p.nodes || [];
  const label = (n) => n.name + ' · ' + n.tier + (n.device ? ' · ' + n.device : '') + ' · ' +
      (str(n.state) || 'unknown') + (n.part_hash ? (n.running ? ' · running' : ' · not running') : '');
  const width = (name) => {
    const k = Math.max(1, (perNode[name] || []).length);
    const n = nodes.find((x) => x.name === name);
    return Math.max(2 * PAD + k * W + (k - 1) * GAP, n ? label(n).length * 7 + 16 : 0);
  };
  const leftW = Math.max(200, ...nodes.filter((n) => n.tier !== 'cloud').map((n) => width(n.name)));
  const rightW = Math.max(200, ...nodes.filter((n) => n.tier === 'cloud').map((n) => width(n.name)));
  const at = {}, pos = [];
  let yl = TOP, yr = TOP;
  for (const n of nodes) {
    const cloud = n.tier === 'cloud';
    at[n.name] = { x: cloud ? 10 + leftW + COLGAP : 10, y: cloud ? yr : yl };
    if (cloud) yr += ROW + 12; else yl += ROW + 12;
  }
  const svg = el('svg:svg', { class: 'graph', 'data-pipeline': p.pipeline });
  const slot = {};
  (p.copies || []).forEach((c, i) => {
    const k = slot[c.node] = (slot[c.node] || 0) + 1;
    const a = at[c.node] || { x: 10, y: TOP };
    pos[i] = { x: a.x + PAD + (k - 1) * (W + GAP), y: a.y + 30 };
  });
  for (const n of nodes) {
    const a = at[n.name];
    const g = el('svg:g', { class: 'node ' + (str(n.state) || 'unknown'), 'data-node': n.name });
    g.append(el('svg:rect', { x: a.x, y: a.y, width: width(n.name), height: ROW, rx: 6 }),
      el('svg:text', { x: a.x + 8, y: a.y + 17 }, label(n)));
    svg.append(g);
  }
  const byStage = {};
  (p.stages || []).forEach((s) => { byStage[s.id] = s; });
  const edges = el('svg:g', {}), labels = el('svg:g', {});
  const placed = {};  // node -> label heights used at its border
  for (const e of p.edges || []) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const bend = Math.max(30, Math.abs(x2 - x1) / 2);
    const d = `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
    edges.append(el('svg:path', { d, class: 'edge' + (e.link ? ' link' : ''), 'data-link': e.link || null,
                                  'marker-end': 'url(#arrow)' }));
    if (e.link) {
      const rate = num(e.bytes_per_s);
      // Where the edge leaves its sender's node: edges that fan in to one receiver would
      // overlap further on, and the sender's other stages sit before that.
      const from = p.copies[e.from].node;
      const xl = at[from] ? at[from].x + width(from) + 4 : x1 + 8;
      const t = Math.min(1, Math.max(0, (xl - x1) / Math.max(1, x2 - x1)));
      let yl = y1 + (y2 - y1) * t * t * (3 - 2 * t);  // the curve's y there, near enough
      const used = placed[from] = placed[from] || [];
      while (used.some((u) => Math.abs(u - yl) < 13)) yl += 13;  // two links of one node
      used.push(yl);
      labels.append(el('svg:text', { class: 'rate', x: xl, y: yl - 5, 'data-link': e.link,
        'data-from': p.copies[e.from].node }, (rate === null ? '…' : bytes(rate) + '/s')));
    }
  }
  const defs = el('svg:defs', {}, el('svg:marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, el('svg:path', { d: 'M0,0 L10,5 L0,10 z', fill: '#59606b' })));
  svg.prepend(defs);
  svg.append(edges);
  (p.copies || []).forEach((c, i) => {
    const s = byStage[c.stage] || {};
    const node = nodes.find((n) => n.name === c.node) || {};
    const g = el('svg:g', { class: 'copy' + (node.running ? ' running' : ''), 'data-stage': c.stage, 'data-node': c.node });
    g.append(el('svg:rect', { x: pos[i].x, y: pos[i].y, width: W, height: H, rx: 4 }),
      el('svg:text', { x: pos[i].x + 8, y: pos[i].y + 17 }, c.stage),
      el('svg:text', { class: 'op', x: pos[i].x + 8, y: pos[i].y + 32 }, str(s.op)));
    svg.append(g);
  });
  svg.append(labels);
  const w = 20 + leftW + COLGAP + rightW, h = Math.max(yl, yr) + 4;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', w);
  return svg;
}

// A version is the deployment's time in milliseconds (edgeflow deploy); any number may come.
function deployedAt(version) {
  const d = new Date(num(version) === null ? NaN : version);
  return isFinite(d.getTime()) ? ' (deployed ' + d.toISOString().slice(0, 19).replace('T', ' ') + ' UTC)' : '';
}

function renderPipelines(pipelines) {
  const box = document.getElementById('pipelines');
  const shown = [];
  for (const p of pipelines) {
    const links = (p.links || []).map((l) => l.name + ' ' + (num(l.bytes_per_s) === null ? '…' : bytes(l.bytes_per_s) + '/s'));
    shown.push(el('div', { class: 'pipeline', 'data-pipeline': str(p.pipeline) },
      el('h3', {}, str(p.pipeline) + ' ', el('span', { class: 'muted' },
        'version ' + p.version + deployedAt(p.version) +
        ' from ' + str(p.file) + ', signed by ' + str(p.signer))),
      p.error ? el('pre', { class: 'bad' }, str(p.error)) : graph(p),
      links.length ? el('p', { class: 'muted' }, 'links: ' + links.join(' · ')) : null));
  }
  update(box, shown);
  document.getElementById('no-pipelines').hidden = pipelines.length > 0;
}

function renderMotion(events) {
  const box = document.getElementById('motion');
  const cards = [];
  for (const m of events) {
    const when = str(m.end) || str(m.start);
    cards.push(el('div', { class: 'card', 'data-event': str(m.key) },
      m.snapshot ? el('img', { src: str(m.snapshot), alt: 'snapshot of ' + str(m.key), loading: 'lazy' }) : null,
      el('div', {}, el('b', {}, str(m.origin)), ' event ' + m.event_id + ' ', str(m.event) === 'end' ? badge('waiting', 'ended') : badge('working', 'moving')),
      el('div', { class: 'muted' }, when.replace('T', ' ').slice(0, 19) +
        (num(m.duration_s) !== null ? ' · ' + m.duration_s.toFixed(1) + ' s' : '') +
        (num(m.peak_area) !== null ? ' · peak ' + m.peak_area + ' px' : ''))));
  }
  update(box, cards);
  document.getElementById('no-motion').hidden = events.length > 0;
}

function renderTasks(tasks) {
  const body = document.querySelector('#tasks tbody');
  const rows = [];
  for (const t of tasks) {
    const status = str(t.status);
    const consensus = num(t.contributors) === null ? str(t.last_event) || '–'
        : t.winners + ' of ' + t.contributors + ' contributions agree';
    rows.push(el('tr', { 'data-task': str(t.task) },
      el('td', { class: 'mono', title: str(t.task) }, str(t.task).slice(0, 14) + '…'),
      el('td', {}, str(t.pipeline)), el('td', {}, str(t.app) || '–'),
      el('td', { class: status === 'COMPLETED' ? 'good' : status === 'FAILED' ? 'bad' : '' }, status || '–'),
      el('td', { class: 'num' }, num(t.trust) === null ? '–' : t.trust),
      el('td', {}, consensus + (str(t.cause) ? ' (' + str(t.cause) + ')' : '')),
      el('td', { class: 'num' }, Array.isArray(t.workers) ? t.workers.length : '–'),
      agoCell(num(t.updated_ms))));
  }
  update(body, rows);
  document.getElementById('no-tasks').hidden = tasks.length > 0;
}

function render(s) {
  state = s;
  const nodes = Array.isArray(s.nodes) ? s.nodes : [];
  const pipelines = Array.isArray(s.pipelines) ? s.pipelines : [];
  renderNodes(nodes);
  renderPipelines(pipelines);
  renderEnergy(nodes, pipelines);
  renderMotion(Array.isArray(s.motion) ? s.motion : []);
  renderTasks(Array.isArray(s.tasks) ? s.tasks : []);
  document.body.dataset.updated = String(s.now_ms);
}

// An operator's action: POST with the header the server asks of every action.
async function act(path) {
  const r = await fetch(path, { method: 'POST', headers: { 'X-Edgeflow-Action': '1' } });
  const text = await r.text();
  if (!r.ok) throw new Error(text.trim() || r.status + ' ' + r.statusText);
  return JSON.parse(text);
}
function say(text) { document.getElementById('message').textContent = text; }

function forgetButton(node) {
  const b = el('button', { 'data-forget': node, title: 'remove this offline node from the registry' }, 'forget');
  b.onclick = () => act('/api/nodes/' + encodeURIComponent(node) + '/forget')
    .then(() => say('forgot ' + node)).catch((e) => say(e.message));
  return b;
}

document.getElementById('login').onclick = () => act('/api/login').then((j) => {
  operator = str(j.operator);
  document.body.dataset.operator = operator;
  const b = document.getElementById('login');
  b.textContent = 'operator ' + operator;
  b.disabled = true;
  say('');
  if (state) render(state);
}).catch((e) => say(e.message));

function connect() {
  const live = document.getElementById('live');
  const events = new EventSource('/api/events');
  events.onopen = () => { live.textContent = 'live'; live.classList.remove('off'); };
  events.onmessage = (m) => { try { render(JSON.parse(m.data)); } catch (e) { console.error(e); } };
  // The browser reconnects by itself (retry: 2 s), except after an answer that is not a
  // stream (503: too many pages open): then try again in 5 s.
  events.onerror = () => {
    live.textContent = 'reconnecting';
    live.classList.add('off');
    if (events.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
  };
}

// `/?once`: the state at load time only, no live updates (for a screenshot, a printout).
const once = new URLSearchParams(location.search).has('once');
fetch('/api/state').then((r) => r.json()).then(render).catch((e) => console.error(e))
  .finally(() => { if (!once) connect(); else { const l = document.getElementById('live'); l.textContent = 'snapshot'; l.classList.remove('off'); } });

// Ages move on between states (a node gone quiet gets no new status).
setInterval(() => {
  for (const td of document.querySelectorAll('td.ago'))
    td.textContent = ago(td.dataset.ms === 'null' || td.dataset.ms === undefined ? null : Number(td.dataset.ms));
}, 5000);
