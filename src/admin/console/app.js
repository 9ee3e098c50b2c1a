'use strict';
/* Sluice web console: a small hash-routed single-page app over the admin JSON API (/api/...).
 * Plain ES2020, no dependencies, works offline.
 * Safety rule: text from the API only reaches the DOM as Text nodes / textContent (via h()).
 * innerHTML is never used. */

// ------------------------------------------------------------------ DOM helpers

/** Create an element. attrs: plain attributes, plus `test` (data-test), `class`,
 *  `on<event>` listeners, and `value`/`checked` (set as properties after the children). */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  const props = {};
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'test') el.dataset.test = v;
    else if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked') props[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  Object.assign(el, props);
  return el;
}

const $ = (sel) => document.querySelector(sel);
const enc = encodeURIComponent;
const main = $('#main');
const muted = (text) => h('span', { class: 'muted' }, text);
const tag = (text, cls = '', title) => h('span', { class: 'tag ' + cls, title }, text);

/** A table. Column names ending in '#' are numeric (right aligned). */
function table(test, cols, rows, empty = 'Nothing here yet') {
  return h('table', { class: 'tbl', test },
    h('thead', {}, h('tr', {}, cols.map((c) =>
      h('th', { class: c.endsWith('#') ? 'num' : null }, c.replace(/#$/, ''))))),
    h('tbody', {}, rows.length ? rows
      : h('tr', { class: 'empty' }, h('td', { colspan: cols.length }, empty))));
}
const num = (v, test) => h('td', { class: 'num', test }, v == null ? '–' : String(v));

/** Key/value table: pairs of [label, value]. */
const kv = (pairs) => h('table', { class: 'kv' },
  pairs.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))));

const card = (title, ...kids) => h('section', { class: 'card' }, title && h('h2', {}, title), kids);

function pageHead(title, sub, ...actions) {
  return h('div', { class: 'phead' },
    h('h1', {}, sub && h('span', { class: 'muted' }, sub + ' '), title),
    h('div', { class: 'actions' }, actions));
}

const field = (label, input, hint) => h('label', { class: 'field' },
  h('span', { class: 'lbl' }, label), input, hint && h('small', { class: 'muted' }, hint));

// ------------------------------------------------------------------ formatting

const fmtInt = (n) => (n == null ? '–' : Number(n).toLocaleString('en-US'));
const trimNum = (x) => String(+x.toFixed(Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2));

function fmtBytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  n = Number(n);
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? trimNum(n) : String(Math.round(n))) + ' ' + units[i];
}

/** Compact number for chart axes: 950, 1.2k, 3.4M. */
function fmtNum(n) {
  const a = Math.abs(n);
  if (a >= 1e9) return trimNum(n / 1e9) + 'G';
  if (a >= 1e6) return trimNum(n / 1e6) + 'M';
  if (a >= 1e4) return trimNum(n / 1e3) + 'k';
  return trimNum(n);
}

function fmtDuration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s %= 86400;
  const hh = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  return d ? `${d}d ${hh}h ${m}m` : hh ? `${hh}h ${m}m ${s}s` : m ? `${m}m ${s}s` : `${s}s`;
}

const fmtTime = (ms) => (ms == null || ms < 0 ? '–' : new Date(ms).toISOString());
// <input type=datetime-local> works in local time without a zone.
const toLocalInput = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 19);
const fromLocalInput = (v) => (v ? new Date(v).getTime() : NaN);

/** "t[0,1], u[3]" from [{topic, partition}] or [{topic, partitions}]. */
function fmtAssign(list) {
  const m = new Map();
  for (const x of list || []) {
    const ps = m.get(x.topic) || [];
    ps.push(...(x.partitions || [x.partition]));
    m.set(x.topic, ps);
  }
  return [...m].map(([t, ps]) => `${t}[${ps.sort((a, b) => a - b).join(',')}]`).join(', ');
}

// ------------------------------------------------------------------ API + messages

class ApiError extends Error {
  constructor(name, message) { super(message); this.name = name; }
}

async function api(path, method = 'GET', body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api' + path, opts);
  } catch (_) {
    setConn(false);
    throw new ApiError('NETWORK_ERROR', 'cannot reach the Sluice admin API');
  }
  setConn(true);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!res.ok) {
    throw new ApiError((data && data.error) || 'HTTP_' + res.status,
      (data && data.message) || text.slice(0, 200) || res.statusText);
  }
  if (data == null) throw new ApiError('BAD_RESPONSE', `invalid JSON from ${path}`);
  return data;
}

const setConn = (ok) => $('#conn').classList.toggle('down', !ok);

// One message slot above the page: an error (data-test=error) or a notice (data-test=notice).
const msgBox = $('#msgs');
let errSource = null; // 'poll' errors clear themselves when the next poll succeeds
let flash = null; // notice to show after the next route change

function showMsg(kind, text) {
  msgBox.replaceChildren(h('div', { class: 'msg ' + kind, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { test: kind }, text),
    h('button', { class: 'close', 'aria-label': 'Dismiss', onclick: () => clearMsgs() }, '×')));
}
function showError(e, source = 'action') {
  const text = e instanceof ApiError ? `${e.name}: ${e.message}` : String((e && e.message) || e);
  showMsg('error', text);
  errSource = source;
}
function showNotice(text) { showMsg('notice', text); errSource = null; }
function clearMsgs(source) {
  if (source && errSource !== source) return;
  msgBox.replaceChildren();
  errSource = null;
}

/** Run a user action: disables the button, shows the returned notice text or the error. */
async function act(btn, fn) {
  if (btn) btn.disabled = true;
  clearMsgs();
  try {
    const msg = await fn();
    if (msg) showNotice(msg);
  } catch (e) {
    showError(e);
  } finally {
    if (btn) btn.disabled = false;
  }
}

/** A form whose submit runs `onSubmit(form)` through act(). Browser validation is off. */
function form(cls, onSubmit, ...kids) {
  const f = h('form', { class: 'form ' + cls, novalidate: true }, kids);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    act(f.querySelector('[type=submit]'), () => onSubmit(f));
  });
  return f;
}

/** Parse an integer input, throwing a readable error. */
function intOf(input, what, min = 0, allowEmpty = false) {
  const s = input.value.trim();
  if (s === '' && allowEmpty) return null;
  if (!/^-?\d+$/.test(s) || Number(s) < min) {
    throw new Error(`${what} must be ${min === -Infinity ? 'an integer' : 'an integer ≥ ' + min}`);
  }
  return Number(s);
}

function navigate(hash, notice) {
  flash = notice || null;
  if (location.hash === hash) route(); else location.hash = hash;
}

// ------------------------------------------------------------------ header

const hdr = { version: $('[data-test=version]'), cluster: $('[data-test=cluster-id]'), uptime: $('[data-test=uptime]') };
let uptimeBase = null; // [uptime_ms, performance.now() when received]

function setHeader(o) {
  hdr.version.textContent = o.version;
  hdr.cluster.textContent = o.cluster_id;
  uptimeBase = [o.uptime_ms, performance.now()];
  tickUptime();
}
function tickUptime() {
  if (uptimeBase) hdr.uptime.textContent = fmtDuration(uptimeBase[0] + performance.now() - uptimeBase[1]);
}
const refreshHeader = () => api('/overview').then(setHeader, () => {});

// ------------------------------------------------------------------ line chart

const COLORS = ['#2f6fde', '#e8743b', '#19a979', '#945ecf', '#d64e8a', '#13a4b4'];
const POINTS = 120;

/** Smallest "nice" number >= v whose quarters are also readable (binary: in KiB/MiB steps). */
function niceCeil(v, binary = false) {
  if (!(v > 0)) return 1;
  if (binary && v >= 1024) {
    const k = 1024 ** Math.floor(Math.log(v) / Math.log(1024));
    return niceCeil(v / k) * k;
  }
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * e >= v * (1 - 1e-9)) return m * e;
  return 10 * e;
}

/** A live line chart: push([v0, v1, ...]) appends one point per series (null = gap)
 *  and redraws. Keeps the last POINTS points. fmt formats y values with their unit.
 *  A series is a name or {name, color, dash}. */
function lineChart(test, title, series, fmt, minTop = 0, binary = false) {
  const canvas = h('canvas', { test, class: 'chart' });
  const styles = series.map((s, i) => ({ color: COLORS[i % COLORS.length], dash: false, ...(typeof s === 'string' ? { name: s } : s) }));
  const data = styles.map(() => []);
  const latest = styles.map(() => h('b', {}, '–'));
  const legend = h('div', { class: 'legend' }, styles.map((st, i) => {
    const sw = h('i', { class: st.dash ? 'dash' : null });
    sw.style.borderColor = st.color;
    return h('span', {}, sw, st.name + ' ', latest[i]);
  }));

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const ht = canvas.clientHeight;
    if (!w || !ht) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(ht * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(ht * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, ht);
    const L = 74, R = 10, T = 8, B = 18, pw = w - L - R, ph = ht - T - B;
    let max = minTop;
    for (const s of data) for (const v of s) if (v != null && v > max) max = v;
    const top = niceCeil(max, binary);
    const X = (i, len) => L + (pw * (POINTS - len + i)) / (POINTS - 1);
    const Y = (v) => T + ph - (ph * Math.min(v, top)) / top;

    // grid + y labels
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = Math.round(Y((top * i) / 4)) + 0.5;
      g.strokeStyle = i ? '#eceef2' : '#c3c8d0';
      g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke();
      g.fillStyle = '#6b7280';
      g.fillText(fmt((top * i) / 4), L - 6, y);
    }
    // x labels
    g.textBaseline = 'top';
    for (const [i, label, align] of [[0, '-2m', 'left'], [60, '-1m', 'center'], [POINTS - 1, 'now', 'right']]) {
      g.textAlign = align;
      g.fillText(label, X(i, POINTS), T + ph + 4);
    }
    // series: lines broken at nulls, isolated points drawn as dots
    g.lineWidth = 1.5;
    g.lineJoin = 'round';
    data.forEach((s, si) => {
      g.strokeStyle = g.fillStyle = styles[si].color;
      g.setLineDash(styles[si].dash ? [5, 3] : []);
      g.beginPath();
      s.forEach((v, i) => {
        if (v == null) return;
        const x = X(i, s.length), y = Y(v);
        if (i > 0 && s[i - 1] != null) g.lineTo(x, y); else g.moveTo(x, y);
        if ((i === 0 || s[i - 1] == null) && (i === s.length - 1 || s[i + 1] == null)) {
          g.fillRect(x - 1.5, y - 1.5, 3, 3);
        }
      });
      g.stroke();
    });
    g.setLineDash([]);
  }

  new ResizeObserver(draw).observe(canvas);
  return {
    el: h('div', { class: 'card chart-card' }, h('h2', {}, title), legend, canvas),
    push(values) {
      values.forEach((v, i) => {
        const s = data[i];
        s.push(v == null || !isFinite(v) ? null : v);
        if (s.length > POINTS) s.shift();
        latest[i].textContent = v == null ? '–' : fmt(v);
      });
      draw();
    },
  };
}

// ------------------------------------------------------------------ router

const routes = [
  [/^\/$/, 'overview', pageOverview],
  [/^\/topics$/, 'topics', pageTopics],
  [/^\/topics\/(.+)$/, 'topics', pageTopic],
  [/^\/messages$/, 'messages', pageMessages],
  [/^\/groups$/, 'groups', pageGroups],
  [/^\/groups\/(.+)$/, 'groups', pageGroup],
  [/^\/transactions$/, 'transactions', pageTransactions],
  [/^\/clients$/, 'clients', pageClients],
];
let current = null; // context of the page on screen

/** Per-page context: polling timers stop and late async results are ignored after leaving. */
function makeCtx() {
  const timers = new Set();
  const ctx = {
    alive: true,
    loaded() { if (ctx.alive) main.dataset.loaded = 'true'; },
    /** Call fn now and then every `ms` (no overlap). Errors are shown and cleared on recovery. */
    poll(ms, fn) {
      const tick = async () => {
        const start = performance.now();
        try {
          await fn();
          if (ctx.alive) clearMsgs('poll');
        } catch (e) {
          if (ctx.alive) { showError(e, 'poll'); ctx.loaded(); }
        }
        if (ctx.alive) timers.add(setTimeout(tick, Math.max(100, ms - (performance.now() - start))));
      };
      tick();
    },
    stop() { ctx.alive = false; timers.forEach(clearTimeout); },
  };
  return ctx;
}

function route() {
  if (current) current.stop();
  const raw = location.hash.replace(/^#/, '') || '/';
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const query = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
  let match = null;
  let page = null;
  let section = '';
  for (const [re, sec, fn] of routes) {
    match = re.exec(path);
    if (match) { page = fn; section = sec; break; }
  }
  document.querySelectorAll('nav.side a').forEach((a) =>
    a.classList.toggle('active', a.dataset.test === 'nav-' + section));
  main.replaceChildren();
  main.dataset.loaded = 'false';
  clearMsgs();
  if (flash) { showNotice(flash); flash = null; }
  const ctx = (current = makeCtx());
  if (!page) {
    main.append(pageHead('Not found'), muted('No page at ' + path));
    ctx.loaded();
    return;
  }
  const args = match.slice(1).map((s) => { try { return decodeURIComponent(s); } catch (_) { return s; } });
  Promise.resolve()
    .then(() => page(ctx, query, ...args))
    .catch((e) => { if (ctx.alive) { showError(e); ctx.loaded(); } });
}

// ------------------------------------------------------------------ page: overview

async function pageOverview(ctx) {
  const stat = {};
  const tile = (key, label, unit, test) => h('div', { class: 'stat' },
    h('div', { class: 'stat-l' }, label),
    h('div', {}, (stat[key] = h('span', { class: 'stat-v', test }, '–')),
      unit && h('span', { class: 'stat-u' }, ' ' + unit)));
  const tiles = h('div', { class: 'stats' },
    tile('rate', 'Messages in', 'msg/s', 'stat-messages-rate'), tile('topics', 'Topics', null, 'stat-topics'),
    tile('parts', 'Partitions', null, 'stat-partitions'), tile('conns', 'Connections'),
    tile('log', 'Log size'), tile('disk', 'Disk available'));
  stat.rate.textContent = '0';
  const charts = [
    lineChart('chart-messages', 'Messages in', ['messages'], (v) => fmtNum(v) + '/s', 4),
    lineChart('chart-bytes', 'Bytes in / out', ['in', 'out'], (v) => fmtBytes(v) + '/s', 1024, true),
    lineChart('chart-latency', 'Request latency (previous second)',
      ['produce', 'fetch'].flatMap((kind) => ['p50', 'p99', 'p99.9'].map((p, i) =>
        ({ name: `${kind} ${p}`, color: COLORS[i], dash: kind === 'fetch' }))),
      (v) => fmtNum(v) + ' ms', 1),
  ];
  const info = h('div', { class: 'grid2' });
  main.append(pageHead('Overview'), tiles, h('div', { class: 'charts' }, charts.map((c) => c.el)), info);

  let prev = null; // previous totals sample, for client-side rates
  ctx.poll(1000, async () => {
    const o = await api('/overview');
    if (!ctx.alive) return;
    const now = performance.now();
    const t = o.totals || {};
    setHeader(o);
    if (prev) {
      const dt = (now - prev.at) / 1000;
      const rate = (k) => (dt > 0 ? Math.max(0, (t[k] || 0) - (prev.t[k] || 0)) / dt : 0);
      const m = rate('messages_in');
      charts[0].push([m]);
      charts[1].push([rate('bytes_in'), rate('bytes_out')]);
      stat.rate.textContent = trimNum(m);
    }
    prev = { at: now, t };
    const lat = o.latency_ms || {};
    const q = (x) => (x ? [x.p50, x.p99, x.p999] : [null, null, null]); // null = no requests: gap
    charts[2].push([...q(lat.produce), ...q(lat.fetch)]);

    const shards = o.shards || [];
    const disk = o.disk || {};
    stat.topics.textContent = String(o.topics);
    stat.parts.textContent = String(o.partitions);
    stat.conns.textContent = String(shards.reduce((a, s) => a + (s.connections || 0), 0));
    stat.log.textContent = fmtBytes(o.log_bytes);
    stat.disk.textContent = disk.available_bytes == null ? '–' : fmtBytes(disk.available_bytes);

    const used = disk.total_bytes ? 1 - disk.available_bytes / disk.total_bytes : null;
    info.replaceChildren(
      card('Node', kv([
        ['Version', o.version], ['Node id', String(o.node_id)], ['Cluster id', h('span', { class: 'mono' }, o.cluster_id)],
        ['Uptime', fmtDuration(o.uptime_ms)], ['Data dir', h('span', { class: 'mono' }, o.data_dir)],
        ['Listeners', (o.listeners || []).map((l) => h('div', { class: 'mono' }, `${l.name} ${l.address}`))],
        ['Admin', h('span', { class: 'mono' }, o.admin_address)],
        ['Log bytes', fmtBytes(o.log_bytes)],
        ['Disk', used == null ? '–' : h('div', {},
          `${fmtBytes(disk.available_bytes)} free of ${fmtBytes(disk.total_bytes)} (${(used * 100).toFixed(1)}% used)`,
          bar(used))],
      ])),
      h('div', {},
        card('Shards', table('shards', ['Shard#', 'Partitions#', 'Connections#', 'Busy#', 'Log size#'],
          shards.map((s) => h('tr', { 'data-shard': s.id },
            num(s.id), num(s.partitions), num(s.connections),
            h('td', { class: 'num' }, bar(s.busy_ratio), ((s.busy_ratio || 0) * 100).toFixed(1) + '%'),
            num(fmtBytes(s.log_bytes)))), 'No shards')),
        card('Request totals', kv([
          ['Messages in', fmtInt(t.messages_in)], ['Bytes in / out', `${fmtBytes(t.bytes_in)} / ${fmtBytes(t.bytes_out)}`],
          ['Produce requests', `${fmtInt(t.produce_requests)} (${fmtInt(t.failed_produce_requests)} failed)`],
          ['Fetch requests', `${fmtInt(t.fetch_requests)} (${fmtInt(t.failed_fetch_requests)} failed)`],
        ]))));
    ctx.loaded();
  });
}

/** Small horizontal usage bar for a 0..1 ratio. */
function bar(ratio) {
  const fill = h('i');
  fill.style.width = Math.max(0, Math.min(1, ratio || 0)) * 100 + '%';
  return h('span', { class: 'bar' }, fill);
}

// ------------------------------------------------------------------ page: topics

async function pageTopics(ctx) {
  const box = h('div');
  const load = async () => {
    const { topics } = await api('/topics');
    if (!ctx.alive) return;
    box.replaceChildren(table('topics', ['Name', 'Partitions#', 'Messages#', 'Size#'],
      topics.sort((a, b) => a.name.localeCompare(b.name)).map((t) => h('tr', { test: 'topic-row', 'data-topic': t.name },
        h('td', {}, h('a', { href: '#/topics/' + enc(t.name) }, t.name), t.internal && tag('internal')),
        num(t.partitions), num(fmtInt(t.messages)), num(fmtBytes(t.size_bytes)))), 'No topics yet'));
  };

  const name = h('input', { test: 'create-name', placeholder: 'my-topic', autocomplete: 'off' });
  const parts = h('input', { test: 'create-partitions', type: 'number', min: 1, value: '1' });
  const cfgs = h('textarea', { test: 'create-configs', rows: 4, placeholder: 'retention.ms=86400000\ncleanup.policy=compact' });
  const create = form('create', async () => {
    const n = name.value.trim();
    if (!n) throw new Error('topic name is required');
    const body = { name: n, partitions: intOf(parts, 'partitions', 1), configs: parseConfigs(cfgs.value) };
    await api('/topics', 'POST', body);
    name.value = '';
    cfgs.value = '';
    await load();
    return `Created topic ${n}`;
  }, field('Name', name), field('Partitions', parts), field('Configs', cfgs, 'optional, one key=value per line'),
  h('button', { type: 'submit', test: 'create-submit', class: 'primary' }, 'Create topic'));

  const refresh = h('button', { onclick: () => act(refresh, load) }, 'Refresh');
  main.append(pageHead('Topics', null, refresh),
    h('div', { class: 'split' }, card(null, box), card('Create topic', create)));
  await load();
  ctx.loaded();
}

/** "key=value" lines → object. Blank lines and #comments are ignored. */
function parseConfigs(text) {
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i <= 0) throw new Error(`config line must be key=value: "${line}"`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

// ------------------------------------------------------------------ page: topic detail

async function pageTopic(ctx, _query, name) {
  const path = '/topics/' + enc(name);
  const partsBox = h('div');
  const cfgBox = h('div');
  const names = h('datalist', { id: 'config-names' });

  const resetCfg = (cfg, btn) => act(btn, async () => {
    await api(path + '/configs', 'POST', { set: {}, delete: [cfg] });
    await load();
    return `Reset ${cfg} to its default`;
  });

  async function load() {
    const t = await api(path);
    if (!ctx.alive) return;
    const ps = t.partitions || [];
    partsBox.replaceChildren(table('partitions',
      ['Partition#', 'Shard#', 'Log start#', 'High watermark#', 'Log end#', 'Last stable#', 'Size#', 'Segments#', ''],
      ps.map((p) => h('tr', { test: 'partition-row', 'data-partition': p.partition },
        num(p.partition), num(p.shard), num(p.log_start_offset), num(p.high_watermark), num(p.log_end_offset),
        num(p.last_stable_offset), num(fmtBytes(p.size_bytes)), num(p.segments),
        h('td', {}, h('a', {
          href: `#/messages?topic=${enc(name)}&partition=${p.partition}&offset=${p.log_start_offset}`,
        }, 'browse'))))));
    const cfgs = (t.configs || []).sort((a, b) => a.name.localeCompare(b.name));
    cfgBox.replaceChildren(table('configs', ['Name', 'Value', 'Source', ''], cfgs.map((c) => {
      const reset = c.source !== 'DEFAULT_CONFIG' && !c.read_only &&
        h('button', { class: 'small', test: 'config-reset', onclick: (e) => resetCfg(c.name, e.currentTarget) }, 'reset to default');
      return h('tr', { test: 'config-row', 'data-config': c.name },
        h('td', { class: 'mono' }, c.name),
        h('td', { class: 'mono', test: 'config-value' },
          c.sensitive ? muted('(sensitive)') : c.value == null ? muted('null') : c.value),
        h('td', {}, tag(c.source, c.source === 'DYNAMIC_TOPIC_CONFIG' ? 'blue' : ''), c.read_only && tag('read-only')),
        h('td', {}, reset));
    }), 'No configs'));
    names.replaceChildren(...cfgs.filter((c) => !c.read_only).map((c) => h('option', { value: c.name })));
  }

  const an = h('input', { test: 'alter-name', list: 'config-names', placeholder: 'retention.ms', autocomplete: 'off' });
  const av = h('input', { test: 'alter-value', placeholder: 'value', autocomplete: 'off' });
  const alter = form('inline', async () => {
    const k = an.value.trim();
    if (!k) throw new Error('config name is required');
    await api(path + '/configs', 'POST', { set: { [k]: av.value }, delete: [] });
    await load();
    return `Set ${k}=${av.value}`;
  }, field('Name', an), field('Value', av), names,
  h('button', { type: 'submit', test: 'alter-submit', class: 'primary' }, 'Set'));

  const dp = h('input', { test: 'delete-records-partition', type: 'number', min: 0, value: '0' });
  const dOff = h('input', { test: 'delete-records-offset', type: 'number', min: 0, placeholder: 'high watermark' });
  const delRecords = form('inline', async () => {
    const partition = intOf(dp, 'partition');
    const offset = intOf(dOff, 'offset', 0, true) ?? -1;
    const r = await api(path + '/delete-records', 'POST', { partition, offset });
    await load();
    return `Deleted records of partition ${partition} before ${offset < 0 ? 'the high watermark' : 'offset ' + offset}` +
      `; log start is now ${r.low_watermark}`;
  }, field('Partition', dp), field('Before offset', dOff, 'empty = up to the high watermark'),
  h('button', { type: 'submit', test: 'delete-records-submit', class: 'danger' }, 'Delete records'));

  const delTopic = h('button', {
    class: 'danger', test: 'delete-topic',
    onclick: () => {
      if (!confirm(`Delete topic "${name}" and all of its data?`)) return;
      act(delTopic, async () => {
        await api(path, 'DELETE');
        navigate('#/topics', `Deleted topic ${name}`);
      });
    },
  }, 'Delete topic');

  main.append(
    pageHead(name, 'Topic', h('a', { class: 'btn', href: `#/messages?topic=${enc(name)}&partition=0&from=earliest` }, 'Browse messages'), delTopic),
    card('Partitions', partsBox),
    h('div', { class: 'split' }, card('Configuration', cfgBox),
      h('div', {}, card('Alter config', alter), card('Delete records', delRecords))));
  await load();
  ctx.loaded();
}

// ------------------------------------------------------------------ page: messages

let hexMode = false; // "show hex" survives paging

/** Render a {text, hex} value. JSON objects/arrays are pretty-printed when `pretty`. */
function renderData(d, hex, pretty) {
  if (d == null) return muted('null');
  if (hex || d.text == null) {
    return d.hex ? h('span', { class: 'hex mono', title: d.text == null ? 'binary, shown as hex' : 'hex' }, d.hex) : muted('(empty)');
  }
  if (d.text === '') return muted('(empty)');
  const t = d.text.trim();
  if (pretty && (t.startsWith('{') || t.startsWith('['))) {
    try { return h('pre', { class: 'json' }, JSON.stringify(JSON.parse(t), null, 2)); } catch (_) { /* plain text */ }
  }
  return h('span', { class: 'text' }, d.text);
}

async function pageMessages(ctx, q) {
  const { topics } = await api('/topics');
  const names = topics.map((t) => t.name).sort();
  const topic = q.get('topic') || names[0] || '';
  if (topic && !names.includes(topic)) names.unshift(topic);
  const mode = q.has('offset') ? 'offset' : q.has('timestamp') ? 'timestamp' : q.get('from') === 'latest' ? 'latest' : 'earliest';

  const tSel = h('select', { test: 'msg-topic', value: topic }, names.map((n) => h('option', { value: n }, n)));
  const pIn = h('input', { test: 'msg-partition', type: 'number', min: 0, value: q.get('partition') || '0' });
  const mSel = h('select', { test: 'msg-mode', value: mode },
    ['offset', 'timestamp', 'earliest', 'latest'].map((m) => h('option', { value: m }, m)));
  const oIn = h('input', { test: 'msg-offset', type: 'number', min: 0, value: q.get('offset') || '', placeholder: 'offset',
    oninput: () => { mSel.value = 'offset'; } });
  const tsIn = h('input', { test: 'msg-timestamp', type: 'datetime-local', step: 1,
    value: q.has('timestamp') ? toLocalInput(Number(q.get('timestamp'))) : '',
    oninput: () => { mSel.value = 'timestamp'; } });
  const lIn = h('input', { test: 'msg-limit', type: 'number', min: 1, max: 1000, value: q.get('limit') || '50' });
  const hex = h('input', { type: 'checkbox', test: 'msg-hex', checked: hexMode,
    onchange: () => { hexMode = hex.checked; if (res) renderRecords(); } });

  const go = (params) => navigate('#/messages?' + new URLSearchParams(params));
  const f = form('inline', async () => {
    if (!tSel.value) throw new Error('no topic selected');
    const p = { topic: tSel.value, partition: intOf(pIn, 'partition'), limit: intOf(lIn, 'limit', 1) };
    const m = mSel.value;
    if (m === 'offset') p.offset = intOf(oIn, 'offset');
    else if (m === 'timestamp') {
      p.timestamp = fromLocalInput(tsIn.value);
      if (isNaN(p.timestamp)) throw new Error('pick a start time');
    } else p.from = m;
    go(p);
  }, field('Topic', tSel), field('Partition', pIn), field('Start', mSel), field('Offset', oIn),
  field('Timestamp', tsIn), field('Limit', lIn),
  h('button', { type: 'submit', test: 'msg-load', class: 'primary' }, 'Load'),
  h('label', { class: 'check' }, hex, 'show hex'));

  const box = h('div');
  main.append(pageHead('Messages'), card(null, f), box);
  let res = null;
  const limit = Number(q.get('limit')) || 50;
  const base = { topic, partition: q.get('partition') || '0', limit };

  function renderRecords() {
    const recs = res.records || [];
    const first = recs.length ? recs[0].offset : res.next_offset;
    const older = h('button', { test: 'msg-older', disabled: first <= res.log_start_offset,
      onclick: () => go({ ...base, offset: Math.max(res.log_start_offset, first - limit) }) }, '← Older');
    const newer = h('button', { test: 'msg-newer', onclick: () => go({ ...base, offset: res.next_offset }) }, 'Newer →');
    const rows = recs.map((r) => (r.control
      ? h('tr', { test: 'marker-row', class: 'marker ' + String(r.control).toLowerCase(), 'data-offset': r.offset },
        h('td', { class: 'num mono' }, String(r.offset)), h('td', { class: 'mono' }, fmtTime(r.timestamp)),
        h('td', { colspan: 3 }, `transaction marker: ${r.control} (producer ${r.producer_id})`))
      : h('tr', { test: 'record-row', 'data-offset': r.offset },
        h('td', { class: 'num mono' }, String(r.offset),
          r.transactional && tag('txn', 'blue', `transactional, producer ${r.producer_id} epoch ${r.producer_epoch}`)),
        h('td', { class: 'mono nowrap', test: 'record-timestamp', title: r.timestamp_type }, fmtTime(r.timestamp)),
        h('td', { class: 'cell-key', test: 'record-key' }, renderData(r.key, hexMode, false)),
        h('td', { class: 'cell-value', test: 'record-value' }, renderData(r.value, hexMode, true)),
        h('td', { class: 'cell-headers', test: 'record-headers' }, (r.headers || []).map((x) =>
          h('div', { class: 'hdr' }, h('span', { class: 'hk' }, x.key), '=', renderData(x.value, hexMode, false)))))));
    const span = recs.length ? `offsets ${recs[0].offset}–${recs[recs.length - 1].offset}` : 'no records';
    box.replaceChildren(card(null,
      h('div', { class: 'rec-bar' },
        h('span', { class: 'muted' }, `${res.topic} / ${res.partition} · log start ${res.log_start_offset} · ` +
          `high watermark ${res.high_watermark} · last stable ${res.last_stable_offset} · ${span}`),
        h('div', { class: 'actions' }, older, newer)),
      table('records', ['Offset#', 'Timestamp', 'Key', 'Value', 'Headers'], rows, 'No records in this range')));
  }

  if (q.get('topic')) {
    const qs = new URLSearchParams({ limit: String(limit) });
    if (mode === 'offset') qs.set('offset', q.get('offset'));
    else if (mode === 'timestamp') qs.set('timestamp', q.get('timestamp'));
    else qs.set('from', mode);
    res = await api(`/topics/${enc(topic)}/partitions/${enc(base.partition)}/records?${qs}`);
    if (!ctx.alive) return;
    renderRecords();
  } else {
    box.append(card(null, muted(names.length ? 'Choose a topic and partition, then Load.' : 'There are no topics yet.')));
  }
  ctx.loaded();
}

// ------------------------------------------------------------------ page: groups

async function pageGroups(ctx) {
  const box = h('div');
  main.append(pageHead('Consumer groups'), card(null, box));
  ctx.poll(2000, async () => {
    const { groups } = await api('/groups');
    if (!ctx.alive) return;
    box.replaceChildren(table('groups', ['Group', 'State', 'Protocol type', 'Protocol', 'Members#', 'Total lag#'],
      groups.sort((a, b) => a.group_id.localeCompare(b.group_id)).map((g) => h('tr', { test: 'group-row', 'data-group': g.group_id },
        h('td', {}, h('a', { href: '#/groups/' + enc(g.group_id) }, g.group_id)),
        h('td', {}, stateTag(g.state)), h('td', {}, g.protocol_type || '–'), h('td', {}, g.protocol || '–'),
        num(g.members), num(g.total_lag, 'group-lag'))), 'No consumer groups'));
    ctx.loaded();
  });
}

const STATE_COLORS = { Stable: 'green', Ongoing: 'blue', Empty: '', Dead: 'red', PrepareRebalance: 'amber',
  CompletingRebalance: 'amber', PrepareCommit: 'amber', PrepareAbort: 'amber', CompleteAbort: 'red' };
const stateTag = (s) => tag(s || '–', STATE_COLORS[s] || '');

// ------------------------------------------------------------------ page: group detail

async function pageGroup(ctx, _query, id) {
  const path = '/groups/' + enc(id);
  const state = h('span', { test: 'group-state', class: 'stat-v' }, '–');
  const lag = h('span', { test: 'total-lag', class: 'stat-v' }, '–');
  const proto = h('span', { class: 'stat-v' }, '–');
  const nMembers = h('span', { class: 'stat-v' }, '–');
  const chart = lineChart('chart-lag', 'Total lag', ['lag'], fmtNum, 4);
  const membersBox = h('div');
  const offsetsBox = h('div');

  const del = h('button', {
    class: 'danger', test: 'delete-group', disabled: true, title: 'only groups without members can be deleted',
    onclick: () => {
      if (!confirm(`Delete consumer group "${id}" and its committed offsets?`)) return;
      act(del, async () => {
        await api(path, 'DELETE');
        navigate('#/groups', `Deleted group ${id}`);
      });
    },
  }, 'Delete group');

  // reset-offsets form; the topic list fills in as group data arrives
  const rTopic = h('select', { test: 'reset-topic' }, h('option', { value: '' }, 'all topics of the group'));
  const rParts = h('input', { test: 'reset-partitions', placeholder: 'all, or e.g. 0,1,2', autocomplete: 'off' });
  const rVal = h('input', { test: 'reset-value', autocomplete: 'off' });
  const hints = { earliest: 'not used', latest: 'not used', offset: 'offset', timestamp: 'ms since epoch or 2024-01-31T12:00', shift: '+/- records, e.g. -100' };
  const rMode = h('select', { test: 'reset-mode', value: 'earliest', onchange: () => { rVal.placeholder = hints[rMode.value]; } },
    Object.keys(hints).map((m) => h('option', { value: m }, m === 'shift' ? 'shift-by' : m)));
  rVal.placeholder = hints.earliest;
  const result = h('div');
  const reset = form('inline', async () => {
    const mode = rMode.value;
    let value = null;
    if (mode === 'offset') value = intOf(rVal, 'offset');
    else if (mode === 'shift') value = intOf(rVal, 'shift', -Infinity);
    else if (mode === 'timestamp') {
      const s = rVal.value.trim();
      value = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
      if (isNaN(value)) throw new Error('timestamp: ms since epoch or a date like 2024-01-31T12:00');
    }
    let partitions = null;
    if (rParts.value.trim()) {
      partitions = rParts.value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        if (!/^\d+$/.test(s)) throw new Error(`bad partition "${s}"`);
        return Number(s);
      });
    }
    const r = await api(path + '/reset-offsets', 'POST', { topic: rTopic.value || null, partitions, mode, value });
    const offs = r.offsets || [];
    result.replaceChildren(table('reset-result', ['Topic', 'Partition#', 'New offset#'],
      offs.map((o) => h('tr', {}, h('td', {}, o.topic), num(o.partition), num(o.offset)))));
    return `Reset ${offs.length} offset${offs.length === 1 ? '' : 's'} (${mode})`;
  }, field('Topic', rTopic), field('Partitions', rParts), field('Mode', rMode), field('Value', rVal),
  h('button', { type: 'submit', test: 'reset-submit', class: 'primary' }, 'Reset offsets'));

  let allTopics = [];
  api('/topics').then((r) => { allTopics = r.topics.map((t) => t.name); }, () => {});
  let optsKey = '';
  function updateTopicOptions(g) {
    const mine = [...new Set([...(g.offsets || []).map((o) => o.topic),
      ...(g.members || []).flatMap((m) => (m.assignments || []).map((a) => a.topic))])].sort();
    const other = allTopics.filter((t) => !mine.includes(t)).sort();
    const key = JSON.stringify([mine, other]);
    if (key === optsKey) return; // keep the user's selection stable
    optsKey = key;
    const keep = rTopic.value;
    rTopic.replaceChildren(h('option', { value: '' }, 'all topics of the group'),
      mine.map((t) => h('option', { value: t }, t)),
      other.length ? h('optgroup', { label: 'other topics' }, other.map((t) => h('option', { value: t }, t))) : null);
    rTopic.value = keep;
  }

  const tileOf = (label, el) => h('div', { class: 'stat' }, h('div', { class: 'stat-l' }, label), el);
  main.append(pageHead(id, 'Consumer group', del),
    h('div', { class: 'stats' }, tileOf('State', state), tileOf('Protocol', proto), tileOf('Members', nMembers), tileOf('Total lag', lag)),
    h('div', { class: 'split' }, chart.el, card('Reset offsets', reset, result)),
    card('Members', membersBox), card('Committed offsets', offsetsBox));

  ctx.poll(1000, async () => {
    const g = await api(path);
    if (!ctx.alive) return;
    state.replaceChildren(stateTag(g.state));
    state.title = g.state;
    proto.textContent = [g.protocol_type, g.protocol].filter(Boolean).join(' / ') || '–';
    nMembers.textContent = String((g.members || []).length);
    lag.textContent = String(g.total_lag ?? '–');
    del.disabled = !(g.state === 'Empty' || g.state === 'Dead');
    chart.push([g.total_lag]);
    membersBox.replaceChildren(table('members', ['Member id', 'Instance id', 'Client id', 'Host', 'Assigned partitions'],
      (g.members || []).map((m) => h('tr', { test: 'member-row', 'data-member': m.member_id },
        h('td', { class: 'mono' }, m.member_id), h('td', {}, m.group_instance_id == null ? muted('–') : m.group_instance_id),
        h('td', {}, m.client_id), h('td', { class: 'mono' }, m.client_host),
        h('td', { class: 'mono' }, fmtAssign(m.assignments) || muted('none')))), 'No members'));
    offsetsBox.replaceChildren(table('group-offsets', ['Topic', 'Partition#', 'Committed#', 'Log end#', 'Lag#', 'Metadata'],
      (g.offsets || []).map((o) => h('tr', { test: 'offset-row', 'data-topic': o.topic, 'data-partition': o.partition },
        h('td', {}, h('a', { href: '#/topics/' + enc(o.topic) }, o.topic)), num(o.partition),
        num(o.committed_offset, 'offset-committed'), num(o.log_end_offset, 'offset-end'), num(o.lag, 'offset-lag'),
        h('td', { class: 'mono' }, o.metadata || ''))), 'No committed offsets'));
    updateTopicOptions(g);
    ctx.loaded();
  });
}

// ------------------------------------------------------------------ page: transactions

async function pageTransactions(ctx) {
  const txBox = h('div');
  const prodBox = h('div');
  main.append(pageHead('Transactions'), card('Transactional ids', txBox), card('Producers by partition', prodBox));
  ctx.poll(2000, async () => {
    const r = await api('/transactions');
    if (!ctx.alive) return;
    txBox.replaceChildren(table('transactions', ['Transactional id', 'State', 'Producer id#', 'Epoch#', 'Timeout', 'Partitions'],
      (r.transactions || []).map((t) => h('tr', { test: 'txn-row', 'data-txn': t.transactional_id },
        h('td', { class: 'mono' }, t.transactional_id), h('td', {}, stateTag(t.state)),
        num(t.producer_id), num(t.producer_epoch), h('td', {}, fmtDuration(t.timeout_ms).replace(/ 0s$/, '')),
        h('td', { class: 'mono' }, fmtAssign(t.partitions) || muted('none')))), 'No transactional producers'));
    prodBox.replaceChildren(table('producers',
      ['Topic', 'Partition#', 'Producer id#', 'Epoch#', 'Last sequence#', 'Last timestamp', 'Current txn start#'],
      (r.producers || []).map((p) => h('tr', { test: 'producer-row', 'data-topic': p.topic, 'data-partition': p.partition },
        h('td', {}, h('a', { href: '#/topics/' + enc(p.topic) }, p.topic)), num(p.partition), num(p.producer_id),
        num(p.producer_epoch), num(p.last_sequence), h('td', { class: 'mono' }, fmtTime(p.last_timestamp)),
        num(p.current_txn_start_offset < 0 ? '–' : p.current_txn_start_offset))), 'No idempotent producer state'));
    ctx.loaded();
  });
}

// ------------------------------------------------------------------ page: clients (telemetry)

async function pageClients(ctx) {
  const subBox = h('div');
  const clientBox = h('div');
  main.append(pageHead('Clients'), card('Client metrics subscriptions', subBox), card('Clients pushing metrics (KIP-714)', clientBox));
  ctx.poll(5000, async () => {
    const r = await api('/clients');
    if (!ctx.alive) return;
    subBox.replaceChildren(table('subscriptions', ['Name', 'Metrics', 'Interval', 'Match'],
      (r.subscriptions || []).map((s) => h('tr', { test: 'subscription-row', 'data-subscription': s.name },
        h('td', { class: 'mono' }, s.name), h('td', { class: 'mono' }, s.configs.metrics || muted('none')),
        h('td', {}, s.configs['interval.ms'] ? fmtDuration(Number(s.configs['interval.ms'])) : muted('default')),
        h('td', { class: 'mono' }, s.configs.match || muted('every client')))),
      'No subscription: create one with kafka-configs.sh --entity-type client-metrics'));
    clientBox.replaceChildren(...(r.clients || []).map((c) => h('div', { test: 'client', 'data-client-id': c.client_id },
      h('h3', {}, c.client_id || muted('(no client id)'), ' ', h('span', { class: 'mono muted' }, c.client_instance_id)),
      h('p', {}, `${c.software_name} ${c.software_version} from ${c.source_address}, every ${fmtDuration(c.push_interval_ms)}, `,
        `${c.pushes} pushes`, c.terminating ? ', closed' : ''),
      table('client-metrics', ['Metric', 'Attributes', 'Value#'],
        (c.metrics || []).map((m) => h('tr', { test: 'client-metric-row', 'data-metric': m.name },
          h('td', { class: 'mono' }, m.name), h('td', { class: 'mono' }, m.attributes || ''), num(m.value))),
        'Nothing pushed yet'))));
    if (!(r.clients || []).length) clientBox.replaceChildren(muted('No client has asked for telemetry subscriptions'));
    ctx.loaded();
  });
}

// ------------------------------------------------------------------ boot

window.addEventListener('hashchange', route);
setInterval(tickUptime, 1000);
setInterval(refreshHeader, 15000);
refreshHeader();
route();
