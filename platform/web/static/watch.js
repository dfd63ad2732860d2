// livetwin viewer: LL-HLS through hls.js (MSE), Safari's native HLS where MSE is missing, or
// WebRTC over WHEP (whep.js) for the lowest delay (?engine=webrtc, the Delivery menu).
// Rewind: the seek bar spans the channel's DVR window; a position behind the live edge plays the
// DVR playlist (segments, from disk), "go live" returns to the low-latency playlist, and a pause
// resumes where it paused even after the live playlist has moved past it.
// window.livetwinStats is the player's health as plain data, for people and for tests/e2e.
'use strict';

(function () {
  const body = document.body;
  const liveSrc = body.dataset.src;
  const dvrSrc = body.dataset.dvrSrc;
  const videosUrl = body.dataset.videos;
  const video = document.getElementById('video');
  const ui = {
    live: document.getElementById('live'),
    seek: document.getElementById('seek'),
    behind: document.getElementById('behind'),
    quality: document.getElementById('quality'),
    status: document.getElementById('status'),
    latency: document.getElementById('latency'),
    pdt: document.getElementById('pdt-latency'),
    rate: document.getElementById('rate'),
    level: document.getElementById('level'),
    stalls: document.getElementById('stalls'),
    errors: document.getElementById('errors'),
    delivery: document.getElementById('delivery'),
    g2g: document.getElementById('g2g'),
  };
  const OFFLINE_RETRY_MS = 3000;
  const ERROR_LOG_MAX = 20;
  // "at the live edge" = within this much of the target latency
  const LIVE_SLACK_S = 1.5;
  // A blocking playlist reload or preload-hinted part normally answers within one part (~1/3 s);
  // much longer means the origin had nothing new, which tells a server-side stall from ours.
  const SLOW_LOAD_MS = 1500;
  // A seek (or a resume) closer to live than this goes back to the low-latency playlist.
  const LIVE_JOIN_S = 8;
  const WINDOW_REFRESH_MS = 5000;
  // Farther than this behind the target latency, for this long: jump back to live.
  const FAR_BEHIND_S = 2;
  const FAR_BEHIND_MS = 2000;

  const stats = {
    engine: null,            // 'hls.js' | 'native' | 'webrtc' | null
    hlsVersion: null,
    state: 'starting',       // starting | offline | loading | playing | waiting | paused | ended | failed
    startedAt: Date.now(),
    firstPlayingAt: null,    // ms since epoch of the first 'playing' event
    startupMs: null,
    playingTime: 0,          // seconds of wall clock spent actually playing
    currentTime: 0,
    stalls: 0,               // 'waiting' events after playback first started
    bufferStalledErrors: 0,  // hls.js BUFFER_STALLED_ERROR
    errors: 0,
    fatalErrors: 0,
    // logs below: `at` is performance.now() in ms, the clock hls.js stamps its loads with
    errorLog: [],            // last ERROR_LOG_MAX {at, type, details, fatal}
    mediaLog: [],            // last ERROR_LOG_MAX {at, event, currentTime, buffered}: why it stalled
    slowLoads: [],           // last ERROR_LOG_MAX loads slower than SLOW_LOAD_MS {at, url, ms}
    stallLoads: [],          // per stall: the loads just before it and up to its end
    loads: 0,
    autoLevel: true,
    currentLevel: -1,
    currentHeight: null,
    levels: [],              // [{index, width, height, bitrate}]
    levelSwitches: 0,
    latency: null,           // seconds from playhead to live edge (hls.latency)
    targetLatency: null,     // hls.targetLatency (PART-HOLD-BACK in low-latency mode)
    pdtLatency: null,        // Date.now() - playhead's PROGRAM-DATE-TIME: packager -> screen
    bufferAhead: null,       // seconds buffered past the playhead: the margin before a stall
    playbackRate: 1,
    maxLiveSyncPlaybackRate: null,  // the catch-up rate hls.js may play at to regain the edge
    liveResyncs: 0,          // jumps back to live after falling too far behind to catch up
    droppedFrames: 0,
    totalFrames: 0,
    mode: 'live',            // 'live' (low-latency playlist) | 'dvr' (rewound, DVR playlist)
    behindLive: null,        // seconds the playhead is behind live (now - its PROGRAM-DATE-TIME)
    dvrWindow: null,         // {start, end}: epoch seconds the DVR holds, from the videos API
    modeSwitches: 0,
    adBreaks: 0,             // interstitials that started
    adAssetLists: [],        // [{id, assets}] per asset list loaded: 0 assets for a subscriber
    adAssetsStarted: 0,      // creatives that started playing
    adImpressions: 0,        // impressions reported to the platform
  };
  window.livetwinStats = stats;

  // The signed-in viewer is known by the session cookie (HttpOnly: this page never sees the
  // token), which same-origin requests carry: the ad break's asset list is per viewer (a
  // subscriber's list is empty). A POST carries the page's CSRF token (docs/security.md).
  const csrfToken = body.dataset.csrf || '';

  function reportImpression(eventId, creative) {
    const match = /^ad-(\d+)$/.exec(eventId || '');
    if (!match) return;
    const headers = { 'Content-Type': 'application/json' };
    if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
    fetch('/api/v1/ad-breaks/' + match[1] + '/impressions', {
      method: 'POST', headers: headers, body: JSON.stringify({ creative: creative }),
    }).then(function (response) {
      if (response.ok) stats.adImpressions += 1;
    }).catch(function () {});
  }

  let hls = null;
  let playing = false;
  let streamEnded = false;     // the playlist carries EXT-X-ENDLIST
  let waitingAtEndSince = null;
  let lastTick = performance.now();
  let mode = 'live';
  let dvrStartAt = null;       // epoch s the DVR playback should start at
  let dvrAligned = false;      // the DVR start was corrected from the playhead's date
  let pausedAt = null;         // epoch s of the playhead when the viewer paused
  let switching = false;       // tearing one engine down for another: ignore its events
  let joiningLive = false;     // back from a rewind, not yet at the live edge
  let dragging = false;        // the viewer is moving the seek bar
  let src = liveSrc;
  let farBehindSince = null;

  function setStatus(state, text) {
    stats.state = state;
    ui.status.textContent = text;
  }

  function logError(type, details, fatal) {
    stats.errors += 1;
    if (fatal) stats.fatalErrors += 1;
    stats.errorLog.push({ at: Math.round(performance.now()), type: type, details: details, fatal: fatal });
    if (stats.errorLog.length > ERROR_LOG_MAX) stats.errorLog.shift();
  }

  function bufferedRanges() {
    const ranges = [];
    for (let i = 0; i < video.buffered.length; i += 1) {
      ranges.push([+video.buffered.start(i).toFixed(3), +video.buffered.end(i).toFixed(3)]);
    }
    return ranges;
  }

  const recentLoads = [];    // the last RECENT_LOADS_MAX loads {at, url, ms}
  const RECENT_LOADS_MAX = 40;
  let stallFrom = null;
  function logMedia(event) {
    const at = Math.round(performance.now());
    if (event.type === 'waiting' && stats.firstPlayingAt !== null && stallFrom === null) {
      stallFrom = at;
    } else if (event.type === 'playing' && stallFrom !== null) {
      const from = stallFrom;
      stats.stallLoads.push({ from: from, to: at,
        loads: recentLoads.filter(function (load) { return load.at + load.ms >= from - 3000; }) });
      if (stats.stallLoads.length > 5) stats.stallLoads.shift();
      stallFrom = null;
    }
    stats.mediaLog.push({ at: at, event: event.type,
      currentTime: +video.currentTime.toFixed(3), buffered: bufferedRanges() });
    if (stats.mediaLog.length > ERROR_LOG_MAX) stats.mediaLog.shift();
  }

  ['playing', 'waiting', 'seeking', 'seeked', 'stalled', 'pause', 'ended'].forEach(function (type) {
    video.addEventListener(type, logMedia);
  });

  // -- media element events (both engines) -----------------------------------------------------

  video.addEventListener('playing', function () {
    playing = true;
    if (stats.firstPlayingAt === null) {
      stats.firstPlayingAt = Date.now();
      stats.startupMs = stats.firstPlayingAt - stats.startedAt;
    }
    setStatus('playing', 'playing');
  });
  video.addEventListener('waiting', function () {
    playing = false;
    if (stats.firstPlayingAt !== null) stats.stalls += 1;
    setStatus('waiting', 'buffering…');
  });
  video.addEventListener('pause', function () {
    playing = false;
    setStatus('paused', 'paused');
    // (a pause that tearing an engine down causes finds no media loaded: not the viewer's)
    if (!switching && hls && hls.playingDate && video.readyState >= 2) {
      pausedAt = hls.playingDate.getTime() / 1000;
    }
  });
  video.addEventListener('play', function () {
    // Resume where it paused: the live playlist keeps only the edge, so a long pause continues
    // from the DVR instead of jumping (or racing at 1.1x) to live.
    const at = pausedAt;
    pausedAt = null;
    if (at === null || switching || mode !== 'live') return;
    const target = stats.targetLatency !== null ? stats.targetLatency : 3;
    if (Date.now() / 1000 - at > target + LIVE_SLACK_S + 1) seekTo(at);
  });
  function onStreamEnded() {
    if (stats.state === 'ended') return;
    playing = false;
    setStatus('ended', 'the stream has ended');
    teardown();
    mode = stats.mode = 'live';
    src = liveSrc;
    // The origin keeps serving the ended stream (with EXT-X-ENDLIST) for a while, so reloading
    // the playlist would replay it; wait until the channel is live again instead.
    setTimeout(waitUntilLive, OFFLINE_RETRY_MS);
  }
  video.addEventListener('ended', onStreamEnded);
  video.addEventListener('error', function () {
    // hls.js reports its own errors; this is the native engine (or a decode failure).
    if (stats.engine === 'native') {
      const err = video.error;
      logError('mediaError', err ? 'code ' + err.code + ': ' + err.message : 'unknown', true);
      setStatus('failed', 'playback failed; retrying');
      teardown();
      setTimeout(start, OFFLINE_RETRY_MS);
    }
  });

  // -- quality selector ------------------------------------------------------------------------

  function levelLabel(level) {
    const kbps = Math.round(level.bitrate / 1000);
    return (level.height ? level.height + 'p · ' : '') + kbps + ' kbps';
  }

  function fillQuality(levels) {
    const select = ui.quality;
    while (select.options.length > 1) select.remove(1);
    stats.levels = levels.map(function (level, index) {
      const option = document.createElement('option');
      option.value = String(index);
      option.textContent = levelLabel(level);
      select.appendChild(option);
      return { index: index, width: level.width, height: level.height, bitrate: level.bitrate };
    });
    select.value = '-1';
    select.disabled = levels.length < 2;
  }

  ui.quality.addEventListener('change', function () {
    if (!hls) return;
    const index = parseInt(ui.quality.value, 10);
    // nextLevel switches at the next fragment boundary without flushing the buffer (no stall);
    // -1 hands the choice back to ABR.
    hls.nextLevel = index;
    stats.autoLevel = index === -1;
  });

  ui.live.addEventListener('click', goLive);

  function goLive() {
    if (mode !== 'live') {
      switchMode('live');
      return;
    }
    if (hls && hls.liveSyncPosition !== null) {
      video.currentTime = hls.liveSyncPosition;
    } else if (video.seekable.length) {
      video.currentTime = Math.max(video.seekable.end(video.seekable.length - 1) - 3, 0);
    }
    video.play().catch(function () {});
  }

  // -- rewind ----------------------------------------------------------------------------------

  function switchMode(next) {
    switching = true;
    mode = next;
    stats.mode = next;
    stats.modeSwitches += 1;
    src = next === 'live' ? liveSrc : dvrSrc;
    joiningLive = next === 'live';
    teardown();
    stats.latency = stats.pdtLatency = stats.behindLive = null;
    setStatus('loading', next === 'live' ? 'back to live…' : 'rewinding…');
    switching = false;
    startHlsJs();
  }

  // Play from wall-clock time `at` (epoch seconds): within the DVR playlist already loaded by
  // seeking in it, else by loading the DVR playlist there; near live, the low-latency playlist.
  function seekTo(at) {
    if (Date.now() / 1000 - at < LIVE_JOIN_S) {
      goLive();
      return;
    }
    if (mode === 'dvr' && hls && hls.playingDate && video.seekable.length) {
      const target = video.currentTime + at - hls.playingDate.getTime() / 1000;
      if (target >= video.seekable.start(0) && target <= video.seekable.end(video.seekable.length - 1)) {
        video.currentTime = target;
        video.play().catch(function () {});
        return;
      }
    }
    dvrStartAt = at;
    dvrAligned = false;
    switchMode('dvr');
  }

  function refreshWindow() {
    fetch(videosUrl, { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        const videos = data && Array.isArray(data.videos) ? data.videos : [];
        const current = videos.length && videos[0].ended_at === null ? videos[0] : null;
        stats.dvrWindow = current
          ? { start: current.started_at, end: current.started_at + current.duration_s } : null;
      })
      .catch(function () {});
  }

  ui.seek.addEventListener('input', function () { dragging = true; });
  ui.seek.addEventListener('change', function () {
    dragging = false;
    if (stats.dvrWindow) seekTo(stats.dvrWindow.start + Number(ui.seek.value));
  });

  function clock(seconds) {
    const whole = Math.round(seconds);
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const sec = String(whole % 60).padStart(2, '0');
    return h ? h + ':' + String(m).padStart(2, '0') + ':' + sec : m + ':' + sec;
  }

  function showPosition(atEdge) {
    const win = stats.dvrWindow;
    const nowS = Date.now() / 1000;
    ui.seek.disabled = !win;
    if (win && !dragging) {
      ui.seek.max = String(Math.max(Math.round(nowS - win.start), 0));
      const playhead = stats.behindLive !== null ? nowS - stats.behindLive : nowS;
      ui.seek.value = String(Math.round(playhead - win.start));
    }
    ui.behind.textContent = atEdge || stats.behindLive === null ? ''
      : clock(stats.behindLive) + ' behind live';
  }

  document.addEventListener('visibilitychange', function () {
    // A hidden tab gets throttled; come back to the edge rather than crawl back at 1.1x.
    if (document.visibilityState === 'visible' && hls && stats.latency !== null &&
        stats.targetLatency !== null && stats.latency > stats.targetLatency + 6 &&
        hls.liveSyncPosition !== null) {
      video.currentTime = hls.liveSyncPosition;
    }
  });

  // -- engines ---------------------------------------------------------------------------------

  function startHlsJs() {
    stats.engine = 'hls.js';
    stats.hlsVersion = Hls.version;
    const rewound = mode === 'dvr';
    hls = new Hls({
      debug: new URLSearchParams(window.location.search).get('debug') === '1',
      lowLatencyMode: !rewound,
      // rewound: start at the wall-clock time asked for, counted from the DVR window's start
      // (the first segment of the DVR playlist); corrected from the playhead's date once playing
      startPosition: rewound && stats.dvrWindow && dvrStartAt !== null
        ? Math.max(dvrStartAt - stats.dvrWindow.start, 0) : -1,
      // liveSyncDuration/liveSyncDurationCount are deliberately unset: in low-latency mode
      // hls.js then targets the playlist's PART-HOLD-BACK (RFC 8216bis 4.4.3.8), which the
      // packager sets to 3 x PART-TARGET, so the server decides how close to the edge to play.
      // Catch up by playing up to 50 % fast, never by seeking: drift after a level switch or a
      // stall is recovered within seconds (at 1.1 a second of drift took ten to win back).
      // Rewound (DVR), the viewer chose the position: no catch-up.
      maxLiveSyncPlaybackRate: rewound ? 1 : 1.5,
      // A stall moves the target back by a part, not hls.js's default second per stall (kept
      // for the rest of the session, up to TARGETDURATION); catch-up then holds it there.
      liveSyncOnStallIncrease: 0.2,
      liveDurationInfinity: true,
      backBufferLength: 30,            // bounded memory on long sessions
      maxBufferLength: 10,
      enableWorker: true,
    });
    hls.on(Hls.Events.ASSET_LIST_LOADED, function (event, data) {
      stats.adAssetLists.push({ id: data.event.identifier,
        assets: (data.assetListResponse.ASSETS || []).length });
    });
    hls.on(Hls.Events.INTERSTITIAL_STARTED, function () { stats.adBreaks += 1; });
    hls.on(Hls.Events.INTERSTITIAL_ASSET_STARTED, function (event, data) {
      stats.adAssetsStarted += 1;
      reportImpression(data.event.identifier, data.assetListIndex);
    });
    stats.maxLiveSyncPlaybackRate = hls.config.maxLiveSyncPlaybackRate;
    hls.on(Hls.Events.MANIFEST_PARSED, function (event, data) {
      fillQuality(data.levels);
      setStatus('loading', 'loading…');
      video.play().catch(function () {
        setStatus('paused', 'press play to start');
      });
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, function (event, data) {
      stats.levelSwitches += 1;
      stats.currentLevel = data.level;
      const level = hls.levels[data.level];
      stats.currentHeight = level ? level.height : null;
      stats.autoLevel = hls.autoLevelEnabled;
      ui.quality.options[0].textContent = level ? 'Auto (' + level.height + 'p)' : 'Auto';
    });
    function timeLoad(url, loadStats) {
      stats.loads += 1;
      if (!loadStats || !loadStats.loading) return;
      const ms = loadStats.loading.end - loadStats.loading.start;
      recentLoads.push({ at: Math.round(loadStats.loading.start),
        url: url.replace(/^.*\/hls\//, ''), ms: Math.round(ms) });
      if (recentLoads.length > RECENT_LOADS_MAX) recentLoads.shift();
      if (ms < SLOW_LOAD_MS) return;
      stats.slowLoads.push({ at: Math.round(loadStats.loading.start), url: url.replace(/^.*\/hls\//, ''),
        ms: Math.round(ms) });
      if (stats.slowLoads.length > ERROR_LOG_MAX) stats.slowLoads.shift();
    }
    hls.on(Hls.Events.FRAG_LOADED, function (event, data) {
      const unit = data.part || data.frag;
      timeLoad(unit.url, unit.stats);
    });
    hls.on(Hls.Events.LEVEL_LOADED, function (event, data) {
      timeLoad(data.details.url, data.stats);
      // EXT-X-ENDLIST: the publisher has stopped (RFC 8216bis 4.4.3.4)
      if (!data.details.live) streamEnded = true;
    });
    hls.on(Hls.Events.ERROR, function (event, data) {
      if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) stats.bufferStalledErrors += 1;
      logError(data.type, data.details, data.fatal);
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        setStatus('waiting', 'recovering from a media error…');
        hls.recoverMediaError();
        return;
      }
      setStatus('failed', 'stream unavailable (' + data.details + '); retrying');
      teardown();
      setTimeout(start, OFFLINE_RETRY_MS);
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  }

  video.addEventListener('playing', function () {
    if (joiningLive && hls && hls.liveSyncPosition !== null) {
      // back from a rewind: start at the live edge, wherever the new engine began
      joiningLive = false;
      if (hls.liveSyncPosition - video.currentTime > LIVE_SLACK_S) video.currentTime = hls.liveSyncPosition;
    }
    if (mode !== 'dvr' || dvrAligned || !hls || !hls.playingDate || dvrStartAt === null) return;
    dvrAligned = true;
    const drift = dvrStartAt - hls.playingDate.getTime() / 1000;
    if (Math.abs(drift) > 1.5) video.currentTime += drift;
  });

  function startNative() {
    stats.engine = 'native';
    video.src = src;
    setStatus('loading', 'loading…');
    video.play().catch(function () {
      setStatus('paused', 'press play to start');
    });
  }

  function teardown() {
    playing = false;
    streamEnded = false;
    waitingAtEndSince = null;
    if (hls) {
      hls.destroy();
      hls = null;
    } else if (stats.engine === 'native') {
      video.removeAttribute('src');
      video.load();
    }
  }

  function waitUntilLive() {
    fetch('/api/v1/streams', { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        const live = data && Array.isArray(data.streams) &&
          data.streams.some(function (stream) { return stream.channel === body.dataset.channel; });
        if (live) {
          start();
        } else {
          setTimeout(waitUntilLive, OFFLINE_RETRY_MS);
        }
      })
      .catch(function () { setTimeout(waitUntilLive, OFFLINE_RETRY_MS); });
  }

  function startWebRtc() {
    stats.engine = 'webrtc';
    setStatus('loading', 'connecting over WebRTC…');
    // ?rendition=360p30 pins one rendition; by default the server picks and follows REMB
    const rendition = new URLSearchParams(window.location.search).get('rendition');
    const url = '/whep/' + encodeURIComponent(body.dataset.channel) +
      (rendition ? '/' + encodeURIComponent(rendition) : '');
    window.livetwinWhep.play(video, url, stats,
      function (state, detail) {
        if (state === 'connected') setStatus('loading', 'connected');
        else if (state === 'waiting') setStatus('offline', 'waiting for the channel: ' + (detail || ''));
      });
  }

  const engine = new URLSearchParams(window.location.search).get('engine');
  if (ui.delivery) {
    ui.delivery.value = engine === 'webrtc' ? 'webrtc' : 'hls';
    ui.delivery.addEventListener('change', function () {
      const params = new URLSearchParams(window.location.search);
      if (ui.delivery.value === 'webrtc') params.set('engine', 'webrtc'); else params.delete('engine');
      window.location.search = params.toString();
    });
  }

  function start() {
    if (engine === 'webrtc' && window.livetwinWhep) {
      startWebRtc();
      return;
    }
    // Ask for the multivariant playlist first so an offline channel shows as offline instead
    // of as a fatal player error.
    fetch(src, { cache: 'no-store' }).then(function (response) {
      if (!response.ok) {
        setStatus('offline', 'offline: waiting for the channel to go live');
        setTimeout(start, OFFLINE_RETRY_MS);
        return;
      }
      // ?engine=native forces the browser's own HLS player (what Safari/iOS without MSE get)
      const forced = new URLSearchParams(window.location.search).get('engine');
      if (forced !== 'native' && typeof Hls !== 'undefined' && Hls.isSupported()) {
        startHlsJs();
      } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
        startNative();
      } else {
        setStatus('failed', typeof Hls === 'undefined'
          ? 'the player library (hls.js) failed to load'
          : 'this browser can play neither MSE nor native HLS');
      }
    }, function () {
      setStatus('offline', 'cannot reach the server; retrying');
      setTimeout(start, OFFLINE_RETRY_MS);
    });
  }

  // -- readout ---------------------------------------------------------------------------------

  function fmt(seconds) {
    return seconds === null || !isFinite(seconds) ? '–' : seconds.toFixed(2) + ' s';
  }

  // hls.js plays fast to catch up only within TARGETDURATION of its target (farther it takes
  // for DVR); a stall that left the viewer farther behind would keep it there for good. After
  // FAR_BEHIND_MS that far behind, jump to the live sync position instead.
  function resyncIfFarBehind(now) {
    const far = hls && playing && !video.paused && stats.latency !== null && stats.targetLatency !== null &&
      stats.latency > stats.targetLatency + FAR_BEHIND_S && hls.liveSyncPosition !== null;
    if (!far) {
      farBehindSince = null;
      return;
    }
    if (farBehindSince === null) farBehindSince = now;
    if (now - farBehindSince < FAR_BEHIND_MS) return;
    farBehindSince = null;
    stats.liveResyncs += 1;
    video.currentTime = hls.liveSyncPosition;
  }

  function sample() {
    const now = performance.now();
    if (playing && !video.paused) stats.playingTime += (now - lastTick) / 1000;
    lastTick = now;
    stats.currentTime = video.currentTime;
    stats.playbackRate = video.playbackRate;
    if (typeof video.getVideoPlaybackQuality === 'function') {
      const quality = video.getVideoPlaybackQuality();
      stats.droppedFrames = quality.droppedVideoFrames;
      stats.totalFrames = quality.totalVideoFrames;
    }
    if (hls) {
      const latency = hls.latency;
      stats.latency = isFinite(latency) && hls.levels.length ? latency : null;
      stats.targetLatency = hls.targetLatency;
      const date = hls.playingDate;
      stats.pdtLatency = date ? (Date.now() - date.getTime()) / 1000 : null;
    } else if (stats.engine === 'native' && video.seekable.length) {
      stats.latency = video.seekable.end(video.seekable.length - 1) - video.currentTime;
      const startDate = typeof video.getStartDate === 'function' ? video.getStartDate() : null;
      stats.pdtLatency = startDate && !isNaN(startDate.getTime())
        ? (Date.now() - (startDate.getTime() + video.currentTime * 1000)) / 1000 : null;
    }
    // Some endings leave the element waiting a few ms short of the buffered end instead of
    // firing 'ended' (no endOfStream); once the playlist has ended, that is the end.
    const bufferedEnd = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0;
    stats.bufferAhead = video.buffered.length ? Math.max(bufferedEnd - video.currentTime, 0) : null;
    if (streamEnded && stats.state === 'waiting' && bufferedEnd - video.currentTime < 0.5) {
      if (waitingAtEndSince === null) waitingAtEndSince = now;
      if (now - waitingAtEndSince > 2000) onStreamEnded();
    } else {
      waitingAtEndSince = null;
    }
    stats.behindLive = stats.pdtLatency;
    if (mode === 'live' && !joiningLive && !switching) resyncIfFarBehind(now);
    const target = stats.targetLatency !== null ? stats.targetLatency : 3;
    const atEdge = mode === 'live' && playing && stats.latency !== null &&
      stats.latency <= target + LIVE_SLACK_S;
    ui.live.classList.toggle('at-edge', atEdge);
    showPosition(atEdge);
    ui.live.textContent = atEdge ? 'LIVE' : 'GO LIVE';
    ui.latency.textContent = fmt(stats.latency) +
      (stats.targetLatency !== null ? ' (target ' + fmt(stats.targetLatency) + ')' : '');
    ui.pdt.textContent = fmt(stats.pdtLatency);
    ui.rate.textContent = stats.playbackRate.toFixed(2) + '×';
    ui.level.textContent = stats.currentHeight !== null
      ? stats.currentHeight + 'p' + (stats.autoLevel ? ' (auto)' : '') : '–';
    ui.stalls.textContent = String(stats.stalls);
    ui.errors.textContent = stats.errors + ' (' + stats.fatalErrors + ')';
    if (ui.g2g && stats.webrtc && stats.webrtc.latencyP50 !== null) {
      ui.g2g.textContent = 'p50 ' + Math.round(stats.webrtc.latencyP50) + ' ms, p95 ' +
        Math.round(stats.webrtc.latencyP95) + ' ms';
    }
  }

  setInterval(sample, 250);
  setInterval(refreshWindow, WINDOW_REFRESH_MS);
  refreshWindow();
  start();
})();
