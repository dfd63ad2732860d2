// livetwin viewer page: the chat panel beside the player, the live viewer count and the title.
// The chat client is chat.js; the server's refusals (rate limits, slow mode, bans) are shown
// under the input with how long to wait. window.livetwinChat exposes the client for tests/e2e.
'use strict';

(function () {
  const body = document.body;
  const channel = body.dataset.channel;
  const port = Number(body.dataset.chatPort || 0);
  const ui = {
    list: document.getElementById('chat-list'),
    status: document.getElementById('chat-status'),
    modes: document.getElementById('chat-modes'),
    form: document.getElementById('chat-form'),
    input: document.getElementById('chat-input'),
    send: document.getElementById('chat-send'),
    error: document.getElementById('chat-error'),
    signin: document.getElementById('chat-signin'),
    viewers: document.getElementById('viewer-count'),
    title: document.getElementById('stream-title'),
  };
  const CHANNEL_REFRESH_MS = 5000;
  const MAX_TEXT = 500;
  let blockedUntil = 0;
  let errorTimer = null;

  function showError(text, retryMs) {
    ui.error.textContent = text;
    clearTimeout(errorTimer);
    if (retryMs) {
      blockedUntil = Date.now() + retryMs;
      errorTimer = setTimeout(function () { ui.error.textContent = ''; }, retryMs);
    }
  }

  function refreshChannel() {
    fetch('/api/v1/channels/' + encodeURIComponent(channel), { cache: 'no-store', credentials: 'same-origin' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        ui.viewers.textContent = data.viewer_count === null || data.viewer_count === undefined
          ? '–' : String(data.viewer_count);
        ui.title.textContent = data.title ? data.title : data.name;
        document.title = (data.title ? data.title + ' · ' : '') + data.name + ' · livetwin';
      })
      .catch(function () {})
      .finally(function () { setTimeout(refreshChannel, CHANNEL_REFRESH_MS); });
  }
  refreshChannel();

  if (!port) {
    ui.status.textContent = 'chat is not available on this server';
    return;
  }

  const chat = window.LivetwinChat.open({
    channel: channel,
    port: port,
    list: ui.list,
    onState: function (state, text) {
      ui.status.textContent = text;
      if (state !== 'open') { ui.input.disabled = true; ui.send.disabled = true; }
    },
    onWelcome: function (welcome) {
      const signedIn = Boolean(welcome.user);
      ui.input.disabled = !signedIn;
      ui.send.disabled = !signedIn;
      ui.signin.hidden = signedIn;
    },
    onModes: function (modes, text) { ui.modes.textContent = text; },
    onError: function (frame) {
      const wait = frame.retry_after_ms ? ' (wait ' + Math.ceil(frame.retry_after_ms / 1000) + ' s)' : '';
      showError(String(frame.message || frame.code) + wait, frame.retry_after_ms || 0);
    },
  });
  window.livetwinChat = chat;

  ui.form.addEventListener('submit', function (event) {
    event.preventDefault();
    const text = ui.input.value.trim();
    if (!text) { showError('type a message first'); return; }
    if (text.length > MAX_TEXT) { showError('at most ' + MAX_TEXT + ' characters'); return; }
    if (Date.now() < blockedUntil) {
      showError('slow down: wait ' + Math.ceil((blockedUntil - Date.now()) / 1000) + ' s');
      return;
    }
    if (chat.send(text)) {
      ui.input.value = '';
      ui.error.textContent = '';
    } else {
      showError('not connected; reconnecting…');
    }
  });
})();
