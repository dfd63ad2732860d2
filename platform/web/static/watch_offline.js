// livetwin viewer page, the channel off air: while the API says the channel is not live the page
// lists its past broadcasts (the DVR's GET /api/v1/channels/{name}/videos, newest first), each a
// link to its playback (/watch/{name}?vod={id}); once the channel is live the list goes away.
// Every value goes in as text; ids and URLs are checked before they become a link.
'use strict';

(function () {
  const body = document.body;
  const channel = body.dataset.channel;
  const section = document.getElementById('offline');
  const list = document.getElementById('past-broadcasts');
  const heading = document.getElementById('past-heading');
  const empty = document.getElementById('past-empty');
  const ID = /^[0-9]{1,18}$/;
  const CHECK_MS = 5000;
  const RELOAD_MS = 10000;
  const SHOWN_MAX = 20;
  const state = { loads: 0, shown: 0, live: null };
  window.livetwinOffline = state;
  if (body.dataset.vod) return;  // playing a past broadcast: the banner links back to live
  let loadedAt = 0;

  function duration(seconds) {
    const whole = Math.round(seconds || 0);
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, '0');
    return h ? h + ':' + String(m).padStart(2, '0') + ':' + s : m + ':' + s;
  }

  function render(videos) {
    const items = videos
      .filter(function (v) { return v && typeof v.id === 'string' && ID.test(v.id) && v.ended_at !== null; })
      .slice(0, SHOWN_MAX)
      .map(function (v) {
        const item = document.createElement('li');
        const link = document.createElement('a');
        link.href = '/watch/' + encodeURIComponent(channel) + '?vod=' + v.id;
        const started = new Date(Number(v.started_at) * 1000);
        link.textContent = isNaN(started.getTime()) ? 'broadcast ' + v.id : started.toLocaleString();
        const meta = document.createElement('span');
        meta.className = 'meta';
        meta.textContent = ' · ' + duration(v.duration_s);
        item.append(link, meta);
        return item;
      });
    list.replaceChildren.apply(list, items);
    heading.hidden = items.length === 0;
    empty.hidden = items.length > 0;
    state.shown = items.length;
  }

  function load() {
    loadedAt = Date.now();
    state.loads += 1;
    fetch(body.dataset.videos, { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : { videos: [] }; })
      .then(function (data) { render(data && Array.isArray(data.videos) ? data.videos : []); })
      .catch(function () { /* keep what is shown; the next check tries again */ });
  }

  // Off air is what the API says (GET /api/v1/channels/{name}: live), not the player's state:
  // the origin may still hold the end of a stream that has just stopped.
  function check() {
    fetch('/api/v1/channels/' + encodeURIComponent(channel), { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : { live: false }; })
      .then(function (view) {
        state.live = Boolean(view && view.live);
        section.hidden = state.live;
        if (!state.live && Date.now() - loadedAt > RELOAD_MS) load();
      })
      .catch(function () { /* the next check tries again */ })
      .finally(function () { setTimeout(check, CHECK_MS); });
  }

  check();
})();
