// livetwin chat client (docs/chat-protocol.md): one room over a WebSocket to the chat node on
// this page's host. The browser's session cookie signs it in on the handshake (the page never
// sees the token). It keeps the largest event id it has seen and reconnects with ?after= that id,
// so a dropped connection loses nothing within the room's history window. Everything a user
// typed (text, names, badges) is put into the page with textContent, never parsed as markup.
'use strict';

(function () {
  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 15000;

  function chatUrl(port, channel, after) {
    const scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    let url = scheme + window.location.hostname + ':' + port + '/chat/' + encodeURIComponent(channel);
    if (after > 0) url += '?after=' + after;
    return url;
  }

  function describeModes(modes) {
    if (!modes) return '';
    const on = [];
    if (modes.slow) on.push('slow mode: one message every ' + modes.slow + ' s');
    if (modes.subscribers_only) on.push('subscribers only');
    if (modes.followers_only) on.push('followers only');
    if (modes.emote_only) on.push('emote only');
    if (modes.unique) on.push('unique messages only');
    return on.join(' · ');
  }

  // options: {channel, port, list, maxMessages, onState(state, text), onWelcome(welcome),
  //           onError(frame), onMessages(messages), onModes(modes, text), onModeration(event)}
  // A moderator's or the broadcaster's list gets Delete / Time out / Ban buttons per message.
  function open(options) {
    const list = options.list;
    const maxMessages = options.maxMessages || 300;
    const noop = function () {};
    const onState = options.onState || noop;
    let lastId = 0;
    let socket = null;
    let closed = false;
    let delay = RECONNECT_MIN_MS;
    let failedOpens = 0;
    let me = null;               // {user, role} from welcome: moderators get per-message actions
    const stats = { connects: 0, reconnects: 0, received: 0, rendered: 0, resumedFrom: [] };

    function render(messages) {
      const fragment = document.createDocumentFragment();
      for (const m of messages) {
        const item = document.createElement('li');
        item.className = m.type === 'cheer' ? 'chat-message chat-cheer' : 'chat-message';
        item.dataset.id = String(m.id);
        if (m.type === 'cheer') item.dataset.bits = String(Number(m.bits) || 0);
        item.dataset.user = String(m.user || '').toLowerCase();
        for (const badge of (Array.isArray(m.badges) ? m.badges : [])) {
          const span = document.createElement('span');
          span.className = 'badge badge-' + String(badge).replace(/[^a-z]/g, '');
          span.textContent = String(badge);
          item.append(span, ' ');
        }
        const who = document.createElement('span');
        who.className = 'chat-user';
        who.textContent = String(m.user || '');
        const text = document.createElement('span');
        text.className = 'chat-text';
        text.textContent = m.type === 'cheer' ? 'cheered ' + m.bits + ' bits' + (m.text ? ': ' + m.text : '')
          : String(m.text || '');
        item.append(who, ': ', text);
        if (canModerate(m.user)) item.append(' ', actions(m.user));
        fragment.append(item);
      }
      const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
      list.append(fragment);
      let extra = list.childElementCount - maxMessages;
      while (extra > 0) { list.firstElementChild.remove(); extra -= 1; }
      if (atBottom) list.scrollTop = list.scrollHeight;
      stats.rendered += messages.length;
    }

    function canModerate(user) {
      return Boolean(me && (me.role === 'moderator' || me.role === 'broadcaster') && user &&
        String(user).toLowerCase() !== String(me.user).toLowerCase());
    }

    function actions(user) {
      const span = document.createElement('span');
      span.className = 'mod-actions';
      for (const [act, label] of [['delete', 'Delete'], ['timeout', 'Time out 10 min'], ['ban', 'Ban']]) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'mod';
        button.dataset.act = act;
        button.textContent = label;
        button.setAttribute('aria-label', label + ': ' + user);
        span.append(button);
      }
      return span;
    }

    // one listener for every message's moderation buttons
    list.addEventListener('click', function (event) {
      const button = event.target.closest('button.mod');
      if (!button) return;
      const item = button.closest('li');
      const user = item.querySelector('.chat-user').textContent;
      const act = button.dataset.act;
      if (act === 'delete') sendFrame({ type: 'delete', id: Number(item.dataset.id) });
      else if (act === 'timeout') sendFrame({ type: 'timeout', user: user, seconds: 600, reason: 'timed out from the chat panel' });
      else if (act === 'ban') sendFrame({ type: 'ban', user: user, reason: 'banned from the chat panel' });
    });

    function sendFrame(frame) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    }

    function hide(selector) {
      for (const item of list.querySelectorAll(selector)) item.remove();
    }

    function moderate(event) {
      const user = String(event.user || '').toLowerCase();
      if (event.action === 'delete') hide('li[data-id="' + Number(event.message_id) + '"]');
      else if ((event.action === 'ban' || event.action === 'timeout') && /^[a-z0-9_]+$/.test(user)) {
        hide('li[data-user="' + user + '"]');
      } else if (event.action === 'clear') {
        for (const item of Array.from(list.children)) {
          if (Number(item.dataset.id) < event.id) item.remove();
        }
      } else if (event.action === 'modes' && options.onModes) options.onModes(event.modes, describeModes(event.modes));
      if (options.onModeration) options.onModeration(event);
    }

    function seen(id) {
      if (typeof id === 'number' && id > lastId) lastId = id;
    }

    function onFrame(raw) {
      let frame;
      try { frame = JSON.parse(raw); } catch (err) { return; }
      switch (frame.type) {
        case 'welcome':
          failedOpens = 0;
          delay = RECONNECT_MIN_MS;
          me = frame.user ? { user: frame.user, role: frame.role } : null;
          onState('open', frame.user ? 'signed in as ' + frame.user : 'reading (not signed in)');
          if (options.onWelcome) options.onWelcome(frame);
          if (options.onModes) options.onModes(frame.modes, describeModes(frame.modes));
          break;
        case 'messages': {
          const fresh = (frame.messages || []).filter(function (m) { return m.id > lastId; });
          for (const m of fresh) seen(m.id);
          stats.received += fresh.length;
          if (fresh.length) {
            render(fresh);
            if (options.onMessages) options.onMessages(fresh);
          }
          break;
        }
        case 'cheer':
          if (frame.id > lastId) { seen(frame.id); render([frame]); if (options.onMessages) options.onMessages([frame]); }
          break;
        case 'moderation':
          if (frame.id > lastId) { seen(frame.id); moderate(frame); }
          break;
        case 'skipped':
          // too slow for the room: fetch what was skipped by resuming from before it
          lastId = Math.min(lastId, frame.from - 1);
          if (socket) socket.close();
          break;
        case 'error':
          if (options.onError) options.onError(frame);
          break;
        default:
          break;
      }
    }

    function connect() {
      if (closed) return;
      const after = failedOpens >= 3 ? 0 : lastId;  // a refused ?after= (room reset): rejoin fresh
      if (after) stats.resumedFrom.push(after);
      let opened = false;
      socket = new WebSocket(chatUrl(options.port, options.channel, after));
      socket.onopen = function () { opened = true; stats.connects += 1; };
      socket.onmessage = function (event) { onFrame(event.data); };
      socket.onclose = function () {
        socket = null;
        if (closed) return;
        if (!opened) failedOpens += 1;
        stats.reconnects += 1;
        onState('reconnecting', 'reconnecting in ' + Math.round(delay / 1000) + ' s…');
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      };
    }

    connect();
    return {
      stats: stats,
      lastId: function () { return lastId; },
      send: function (text) { return sendFrame({ type: 'send', text: text }); },
      // moderators and the broadcaster: {type: 'modes', slow: 30}, {type: 'delete', id}, ...
      moderate: function (frame) { return sendFrame(frame); },
      drop: function () { if (socket) socket.close(); },  // tests: the reconnect path
      close: function () { closed = true; if (socket) socket.close(); },
    };
  }

  window.LivetwinChat = { open: open, describeModes: describeModes };
})();
