// livetwin landing page: keeps the server-rendered channel list fresh from /api/v1/streams.
'use strict';

(function () {
  const list = document.getElementById('channels');
  const empty = document.getElementById('empty');
  const REFRESH_MS = 5000;
  const NAME = /^[a-z0-9_]{3,25}$/;

  function describe(stream) {
    const parts = [];
    if (stream.width && stream.height) parts.push(stream.width + 'x' + stream.height);
    if (stream.fps) parts.push(stream.fps + ' fps');
    const up = Math.floor(stream.uptime_s || 0);
    parts.push('live for ' + Math.floor(up / 60) + ':' + String(up % 60).padStart(2, '0'));
    return parts.join(' · ');
  }

  function render(streams) {
    const items = streams
      .filter(function (s) { return NAME.test(s.channel); })
      .sort(function (a, b) { return a.channel < b.channel ? -1 : 1; })
      .map(function (stream) {
        const item = document.createElement('li');
        const link = document.createElement('a');
        link.href = '/watch/' + stream.channel;
        link.textContent = stream.channel;
        const meta = document.createElement('span');
        meta.className = 'meta';
        meta.textContent = describe(stream);
        item.append(link, ' ', meta);
        return item;
      });
    list.replaceChildren.apply(list, items);
    empty.hidden = items.length > 0;
  }

  function refresh() {
    fetch('/api/v1/streams', { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && Array.isArray(data.streams)) render(data.streams); })
      .catch(function () { /* keep the last list; try again on the next tick */ })
      .finally(function () { setTimeout(refresh, REFRESH_MS); });
  }

  setTimeout(refresh, REFRESH_MS);
})();
