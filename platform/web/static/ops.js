// livetwin ops page: every live stream (the public /api/v1/streams, each channel's viewer_count)
// and the origin's request rates and errors (this node's Prometheus /metrics, which /ops/metrics
// passes on to an admin). Rates are counter differences between two polls. Text only.
'use strict';

(function () {
  const node = document.body.dataset.node;
  const $ = function (id) { return document.getElementById(id); };
  const POLL_MS = 2000;
  const STREAMS_MAX = 200;
  const VIEWER_LOOKUPS_MAX = 50;
  const NAME = /^[a-z0-9_]{3,25}$/;
  const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ([-+0-9.eEaNInf]+)/;
  const state = { polls: 0, streams: [], requests: {}, previous: null };
  window.livetwinOps = state;

  function cell(text) { const td = document.createElement('td'); td.textContent = text; return td; }

  // Prometheus text exposition: name{label="v",...} value  ->  [{name, labels, value}]
  function parseMetrics(text) {
    const out = [];
    text.split('\n').forEach(function (line) {
      if (!line || line[0] === '#') return;
      const m = SAMPLE.exec(line);
      if (!m) return;
      const labels = {};
      (m[2] || '').replace(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g, function (_, k, v) { labels[k] = v; return ''; });
      out.push({ name: m[1], labels: labels, value: Number(m[3]) });
    });
    return out;
  }

  function health(s) {
    const t = s.transcode;
    if (!t) return s.fps > 0 ? 'ingesting, ' + s.fps + ' fps' : 'no media yet';
    const bits = [t.state];
    if (t.failure) bits.push('failure: ' + t.failure);
    bits.push(s.fps + ' fps in', Math.round(s.bitrate_kbps) + ' kbit/s');
    if (t.delay_p95_ms !== null) bits.push('delay p95 ' + Math.round(t.delay_p95_ms) + ' ms');
    if (t.shed && t.shed.length) bits.push('shed: ' + t.shed.join(', '));
    if (t.gaps && Object.keys(t.gaps).length) bits.push('gaps: ' + Object.keys(t.gaps).join(', '));
    if (t.restarts) bits.push(t.restarts + ' restarts');
    return bits.join(' · ');
  }

  function viewersOf(name) {
    return fetch('/api/v1/channels/' + name, { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (c) { return c && typeof c.viewer_count === 'number' ? c.viewer_count : null; })
      .catch(function () { return null; });
  }

  function renderStreams(streams, viewers) {
    const rows = streams.map(function (s, i) {
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      const link = document.createElement('a');
      link.href = '/watch/' + s.channel;
      link.textContent = s.channel;
      name.append(link);
      const rungs = s.transcode && Array.isArray(s.transcode.renditions) ? s.transcode.renditions.join(', ') : '–';
      const res = s.width && s.height ? ' ' + s.width + 'x' + s.height : '';
      tr.append(name, cell(node), cell(s.protocol + res), cell(rungs || '–'), cell(health(s)),
        cell(viewers[i] === null ? '–' : String(viewers[i])));
      return tr;
    });
    $('streams-body').replaceChildren.apply($('streams-body'), rows);
    $('streams-empty').hidden = rows.length > 0;
  }

  function renderOrigin(samples, at) {
    const totals = {};
    let held = null;
    let chat = null;
    samples.forEach(function (s) {
      if (s.name === 'livetwin_origin_requests_total') {
        const kind = s.labels.kind || 'other';
        const t = totals[kind] || (totals[kind] = { all: 0, errors: 0 });
        t.all += s.value;
        if (s.labels.status === '4xx' || s.labels.status === '5xx') t.errors += s.value;
      } else if (s.name === 'livetwin_origin_held_requests') held = s.value;
      else if (s.name === 'livetwin_chat_clients') chat = s.value;
    });
    const prev = state.previous;
    const dt = prev ? (at - prev.at) / 1000 : 0;
    const rows = Object.keys(totals).sort().map(function (kind) {
      const t = totals[kind];
      const p = prev && prev.totals[kind];
      const rate = function (now, before) { return p && dt > 0 ? ((now - before) / dt).toFixed(1) : '–'; };
      const tr = document.createElement('tr');
      tr.append(cell(kind), cell(rate(t.all, p ? p.all : 0)), cell(rate(t.errors, p ? p.errors : 0)),
        cell(String(t.all)), cell(String(t.errors)));
      return tr;
    });
    $('origin-body').replaceChildren.apply($('origin-body'), rows);
    $('o-held').textContent = held === null ? '–' : String(held);
    $('o-chat').textContent = chat === null ? '–' : String(chat);
    state.previous = { at: at, totals: totals };
    state.requests = totals;
  }

  function poll() {
    const at = Date.now();
    const streams = fetch('/api/v1/streams', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('/api/v1/streams: ' + r.status); return r.json(); })
      .then(function (data) {
        const list = (Array.isArray(data.streams) ? data.streams : [])
          .filter(function (s) { return NAME.test(s.channel); }).slice(0, STREAMS_MAX);
        return Promise.all(list.map(function (s, i) {
          return i < VIEWER_LOOKUPS_MAX ? viewersOf(s.channel) : Promise.resolve(null);
        })).then(function (viewers) { state.streams = list; renderStreams(list, viewers); });
      });
    const metrics = fetch('/ops/metrics', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('/ops/metrics: ' + r.status); return r.text(); })
      .then(function (text) { renderOrigin(parseMetrics(text), at); });
    Promise.allSettled([streams, metrics]).then(function (results) {
      const failed = results.filter(function (r) { return r.status === 'rejected'; })
        .map(function (r) { return r.reason.message; });
      $('ops-status').textContent = failed.length ? 'failed: ' + failed.join('; ') : 'updated ' + new Date().toLocaleTimeString();
      state.polls += 1;
      setTimeout(poll, POLL_MS);
    });
  }

  poll();
})();
