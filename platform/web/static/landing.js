// livetwin landing page: keeps the server-rendered channel list (most viewers first, with each
// channel's thumbnail) fresh from /live-now.json. Every value goes in as text or a checked URL.
'use strict';

(function () {
  const list = document.getElementById('channels');
  const empty = document.getElementById('empty');
  const REFRESH_MS = 5000;
  const NAME = /^[a-z0-9_]{3,25}$/;
  const THUMB = /^\/thumbnails\/[a-z0-9_]{3,25}\.jpg\?g=[0-9]{1,12}$/;

  function describe(entry) {
    const parts = [];
    if (typeof entry.viewers === 'number') parts.push(entry.viewers + ' watching');
    if (entry.width && entry.height) parts.push(entry.width + 'x' + entry.height);
    if (entry.fps) parts.push(entry.fps + ' fps');
    const up = Math.floor(entry.uptime_s || 0);
    parts.push('live for ' + Math.floor(up / 60) + ':' + String(up % 60).padStart(2, '0'));
    return parts.join(' · ');
  }

  function thumbnail(entry) {
    if (typeof entry.thumbnail === 'string' && THUMB.test(entry.thumbnail)) {
      const img = document.createElement('img');
      img.className = 'thumb';
      img.src = entry.thumbnail;
      img.alt = '';
      img.width = 320;
      img.height = 180;
      return img;
    }
    const none = document.createElement('span');
    none.className = 'thumb none';
    none.setAttribute('aria-hidden', 'true');
    return none;
  }

  function render(channels) {
    const items = channels
      .filter(function (c) { return NAME.test(c.channel); })
      .map(function (entry) {
        const item = document.createElement('li');
        const link = document.createElement('a');
        link.href = '/watch/' + entry.channel;
        const name = document.createElement('span');
        name.className = 'name';
        name.textContent = entry.channel;
        link.append(thumbnail(entry), name);
        const meta = document.createElement('span');
        meta.className = 'meta';
        meta.textContent = describe(entry);
        item.append(link, ' ', meta);
        return item;
      });
    list.replaceChildren.apply(list, items);
    empty.hidden = items.length > 0;
  }

  function refresh() {
    fetch('/live-now.json', { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && Array.isArray(data.channels)) render(data.channels); })
      .catch(function () { /* keep the last list; try again on the next tick */ })
      .finally(function () { setTimeout(refresh, REFRESH_MS); });
  }

  setTimeout(refresh, REFRESH_MS);
})();
