// livetwin streamer dashboard: create a channel, reveal/copy/rotate its stream key, where to
// publish (RTMP, SRT, WHIP, OBS), the stream's ingest health every second, viewers and chat.
// It talks to /api/v1 with the session cookie; every state-changing call carries the page's
// CSRF token in X-CSRF-Token (docs/security.md). A stream key lives only in this page's memory:
// the API shows it once (creation, rotation), so a reload shows it no more.
// window.livetwinDashboard is the page's state as plain data, for tests/e2e.
'use strict';

(function () {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const $ = function (id) { return document.getElementById(id); };
  const POLL_MS = 1000;
  const HISTORY = 60;           // samples kept per graph: one minute at one a second
  const ROTATE_CONFIRM_MS = 5000;

  const state = {
    channel: null, key: null, live: false, viewers: null, health: null, polls: 0,
    chatMessages: [], chatRatePerMin: 0, copied: 0, modes: null,
  };
  window.livetwinDashboard = state;
  const series = { bitrate: [], fps: [], delay: [] };
  const recent = [];            // samples at which the keyframe count changed
  const GOP_WINDOW = 8;
  let chat = null;
  let rotateArmedUntil = 0;

  function notice(text) { $('notice').textContent = text; }

  function api(method, path, payload) {
    const init = { method: method, credentials: 'same-origin', cache: 'no-store', headers: {} };
    if (method !== 'GET') init.headers['X-CSRF-Token'] = csrf;
    if (payload !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    return fetch('/api/v1' + path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function publishViews() {
    const key = state.key;
    const shown = key || '<stream key>';
    $('rtmp-url').textContent = body.dataset.rtmp;
    $('rtmp-full').textContent = body.dataset.rtmp + '/' + shown;
    $('srt-url').textContent = body.dataset.srt
      ? body.dataset.srt + '?streamid=#!::r=live/' + shown + ',m=publish' : 'not enabled on this server';
    $('whip-url').textContent = body.dataset.whip + (state.channel || '');
    $('stream-key').value = key || '';
    $('stream-key').placeholder = key ? '' : 'hidden: rotate for a new key';
    $('reveal-key').disabled = !key;
    $('copy-key').disabled = !key;
  }

  function showChannel(view, key) {
    state.channel = view.name;
    if (key) state.key = key;
    $('create').hidden = true;
    $('channel').hidden = false;
    $('channel-name-view').textContent = view.name;
    $('channel-title-view').textContent = view.title || '(no title)';
    $('watch-link').href = '/watch/' + encodeURIComponent(view.name);
    publishViews();
    startChat(view.name);
    poll();
  }

  function fieldErrors(result) {
    for (const id of ['name-error', 'title-error']) $(id).textContent = '';
    const field = result.data.field;
    const message = result.data.message || ('failed (' + result.status + ')');
    if (field === 'name' || field === 'title') {
      $(field + '-error').textContent = message;
      $('channel-' + field).setAttribute('aria-invalid', 'true');
      $('channel-' + field).focus();
    } else {
      notice(message);
    }
  }

  $('create-form').addEventListener('submit', function (event) {
    event.preventDefault();
    const payload = { name: $('channel-name').value.trim() };
    const title = $('channel-title').value.trim();
    if (title) payload.title = title;
    api('POST', '/channels', payload).then(function (result) {
      if (!result.ok) { fieldErrors(result); return; }
      notice('Channel created. Copy your stream key now: it is shown only this once.');
      showChannel(result.data, result.data.stream_key);
    }).catch(function () { notice('the server did not answer; try again'); });
  });

  $('reveal-key').addEventListener('click', function () {
    const input = $('stream-key');
    const reveal = input.type === 'password';
    input.type = reveal ? 'text' : 'password';
    this.textContent = reveal ? 'Hide' : 'Reveal';
    this.setAttribute('aria-pressed', String(reveal));
  });

  $('copy-key').addEventListener('click', function () {
    if (!state.key) return;
    const done = function () { state.copied += 1; notice('Stream key copied.'); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(state.key).then(done, function () { notice('copy failed: select the key and copy it'); });
    } else {
      notice('copying needs https or localhost: reveal the key and copy it by hand');
    }
  });

  $('rotate-key').addEventListener('click', function () {
    const button = this;
    if (Date.now() > rotateArmedUntil) {
      rotateArmedUntil = Date.now() + ROTATE_CONFIRM_MS;
      button.textContent = 'Confirm rotate';
      notice('Rotating cuts a live publisher and the old key stops working. Click again to rotate.');
      setTimeout(function () { button.textContent = 'Rotate'; }, ROTATE_CONFIRM_MS);
      return;
    }
    rotateArmedUntil = 0;
    button.textContent = 'Rotate';
    api('POST', '/channels/' + encodeURIComponent(state.channel) + '/stream-key').then(function (result) {
      if (!result.ok) { notice(result.data.message || 'rotation failed'); return; }
      state.key = result.data.stream_key;
      publishViews();
      notice('New stream key made; the old one no longer works. Copy the new one now.');
    });
  });

  function spark(canvas, values) {
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const finite = values.filter(function (v) { return Number.isFinite(v); });
    if (finite.length < 2) return;
    const top = Math.max.apply(null, finite) || 1;
    ctx.strokeStyle = '#9147ff';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    values.forEach(function (v, i) {
      const x = (i / (HISTORY - 1)) * canvas.width;
      const y = canvas.height - 2 - ((Number.isFinite(v) ? v : 0) / top) * (canvas.height - 4);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }

  function push(name, value) {
    series[name].push(value);
    if (series[name].length > HISTORY) series[name].shift();
  }

  function showHealth(view) {
    state.live = view.live;
    state.viewers = view.viewer_count;
    state.health = view.stream;
    $('live-state').textContent = view.live ? 'LIVE' : 'offline';
    $('live-state').className = view.live ? 'pill live' : 'pill';
    $('h-viewers').textContent = view.viewer_count === null ? '–' : String(view.viewer_count);
    const s = view.stream;
    if (!s) {
      for (const id of ['h-bitrate', 'h-fps', 'h-gop', 'h-res', 'h-dropped', 'h-delay', 'h-shed', 'h-encoder']) {
        $(id).textContent = '–';
      }
      recent.length = 0;
      return;
    }
    $('h-bitrate').textContent = s.bitrate_kbps.toFixed(0) + ' kbit/s';
    $('h-fps').textContent = s.fps.toFixed(1) + ' fps';
    $('h-res').textContent = s.width && s.height ? s.width + 'x' + s.height : '–';
    // keyframe interval: frames per keyframe between the first and the last of the recent
    // samples at which the keyframe count changed (one poll's difference would say 1 s, a poll
    // sees at most one keyframe); each sample lags its keyframe by under a poll, so over
    // several keyframes the error shrinks to a few frames
    const last = recent[recent.length - 1];
    if (!last || s.keyframes !== last.keys) {
      recent.push({ frames: s.video_frames, keys: s.keyframes });
      if (recent.length > GOP_WINDOW) recent.shift();
    }
    const first = recent[0];
    const newest = recent[recent.length - 1];
    if (newest.keys > first.keys && s.fps > 0) {
      const frames = (newest.frames - first.frames) / (newest.keys - first.keys);
      $('h-gop').textContent = (frames / s.fps).toFixed(1) + ' s';
    } else if (s.keyframes > 0 && s.fps > 0) {
      $('h-gop').textContent = (s.video_frames / s.keyframes / s.fps).toFixed(1) + ' s (average)';
    }
    const t = s.transcode;
    $('h-dropped').textContent = t ? String(t.frames_dropped_late) : '–';
    $('h-delay').textContent = t && t.delay_p50_ms !== null
      ? t.delay_p50_ms.toFixed(0) + ' / ' + (t.delay_p95_ms || 0).toFixed(0) + ' ms' : '–';
    $('h-shed').textContent = t ? (t.shed.length ? t.shed.join(', ') : 'none') : '–';
    $('h-encoder').textContent = t && t.encoder ? t.encoder + (t.preset ? ' (' + t.preset + ')' : '') : '–';
    push('bitrate', s.bitrate_kbps);
    push('fps', s.fps);
    push('delay', t && t.delay_p95_ms !== null ? t.delay_p95_ms : NaN);
    spark($('g-bitrate'), series.bitrate);
    spark($('g-fps'), series.fps);
    spark($('g-delay'), series.delay);
  }

  function chatRate() {
    const since = Date.now() - 60000;
    state.chatMessages = state.chatMessages.filter(function (m) { return m.sent_at >= since; });
    state.chatRatePerMin = state.chatMessages.length;
    $('h-chat-rate').textContent = state.chatRatePerMin + ' messages in the last minute';
  }

  function poll() {
    if (!state.channel) return;
    api('GET', '/channels/' + encodeURIComponent(state.channel)).then(function (result) {
      if (result.ok) { state.polls += 1; showHealth(result.data); }
    }).catch(function () {}).finally(function () {
      chatRate();
      setTimeout(poll, POLL_MS);
    });
  }

  function startChat(name) {
    const port = Number(body.dataset.chatPort || 0);
    if (!port || chat) return;
    chat = window.LivetwinChat.open({
      channel: name,
      port: port,
      list: $('chat-list'),
      maxMessages: 100,
      onState: function (s, text) { $('chat-status').textContent = text; },
      onModes: function (modes, text) {
        state.modes = modes;
        $('modes-view').textContent = text || 'no restrictions';
        if (modes) {
          $('slow-mode').value = String(modes.slow || 0);
          $('subs-only').checked = Boolean(modes.subscribers_only);
        }
      },
      onError: function (frame) { notice('chat: ' + (frame.message || frame.code)); },
      onMessages: function (messages) {
        for (const m of messages) state.chatMessages.push({ sent_at: m.sent_at, user: m.user, text: m.text });
        if (state.chatMessages.length > 5000) state.chatMessages.splice(0, state.chatMessages.length - 5000);
      },
    });
  }

  // room modes: the broadcaster sets them over the chat socket like a moderator would
  $('slow-mode').addEventListener('change', function () {
    if (chat) chat.moderate({ type: 'modes', slow: Number(this.value) });
  });
  $('subs-only').addEventListener('change', function () {
    if (chat) chat.moderate({ type: 'modes', subscribers_only: this.checked });
  });

  api('GET', '/sessions/current').then(function (result) {
    if (!result.ok) { window.location.assign('/login?next=/dashboard'); return; }
    const names = result.data.channels || [];
    if (!names.length) {
      $('create').hidden = false;
      $('channel-name').focus();
      return;
    }
    api('GET', '/channels/' + encodeURIComponent(names[0])).then(function (channel) {
      if (channel.ok) showChannel(channel.data, null);
    });
  }).catch(function () { notice('the server did not answer; reload to try again'); });
})();
