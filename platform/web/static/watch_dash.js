// livetwin viewer, DASH flavour (?player=dash): LL-DASH through dash.js (the DASH-IF reference
// player) from the same CMAF segments the LL-HLS page plays. window.livetwinStats carries the
// same fields as watch.js's, so tests/e2e drive both pages alike.
'use strict';

(function () {
  const body = document.body;
  const src = body.dataset.src;
  const video = document.getElementById('video');
  const ui = {
    live: document.getElementById('live'),
    quality: document.getElementById('quality'),
    status: document.getElementById('status'),
    latency: document.getElementById('latency'),
    pdt: document.getElementById('pdt-latency'),
    rate: document.getElementById('rate'),
    level: document.getElementById('level'),
    stalls: document.getElementById('stalls'),
    errors: document.getElementById('errors'),
  };
  const OFFLINE_RETRY_MS = 3000;
  const ERROR_LOG_MAX = 20;

  const stats = {
    engine: 'dash.js',
    dashVersion: null,
    state: 'starting',
    startedAt: Date.now(),
    firstPlayingAt: null,
    startupMs: null,
    playingTime: 0,
    currentTime: 0,
    stalls: 0,
    bufferStalledErrors: 0,
    errors: 0,
    fatalErrors: 0,
    errorLog: [],
    mediaLog: [],
    slowLoads: [],
    stallLoads: [],
    loads: 0,
    lowLatency: null,        // dash.js runs its low-latency mode (availabilityTimeComplete=false)
    autoLevel: true,
    currentLevel: -1,
    currentHeight: null,
    heightsPlayed: [],       // every rendered video height, in order of first appearance
    representationsPlayed: [], // every rendered video Representation@id, likewise
    levels: [],
    levelSwitches: 0,
    latency: null,           // player.getCurrentLiveLatency(): wall clock minus playhead
    targetLatency: null,     // player.getTargetLiveDelay() (ServiceDescription Latency@target)
    pdtLatency: null,
    bufferAhead: null,
    playbackRate: 1,
    droppedFrames: 0,
    totalFrames: 0,
    hlsVersion: null,
  };
  window.livetwinStats = stats;

  let player = null;
  let lastTick = performance.now();

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

  ['playing', 'waiting', 'seeking', 'seeked', 'stalled', 'pause', 'ended'].forEach(function (type) {
    video.addEventListener(type, function (event) {
      stats.mediaLog.push({ at: Math.round(performance.now()), event: event.type,
        currentTime: +video.currentTime.toFixed(3), buffered: bufferedRanges() });
      if (stats.mediaLog.length > ERROR_LOG_MAX) stats.mediaLog.shift();
    });
  });

  video.addEventListener('playing', function () {
    if (stats.firstPlayingAt === null) {
      stats.firstPlayingAt = Date.now();
      stats.startupMs = stats.firstPlayingAt - stats.startedAt;
    }
    setStatus('playing', 'playing');
  });
  video.addEventListener('waiting', function () {
    if (stats.firstPlayingAt !== null) stats.stalls += 1;
    setStatus('waiting', 'buffering…');
  });

  function representationHeight(rep) {
    return rep ? (rep.height || null) : null;
  }

  function fillQuality() {
    const reps = player.getRepresentationsByType ? player.getRepresentationsByType('video') : [];
    stats.levels = reps.map(function (rep, index) {
      return { index: index, width: rep.width, height: rep.height, bitrate: rep.bandwidth };
    });
    ui.quality.innerHTML = '<option value="-1">Auto</option>';
    reps.forEach(function (rep, index) {
      const option = document.createElement('option');
      option.value = String(index);
      option.textContent = rep.height + 'p';
      ui.quality.appendChild(option);
    });
    ui.quality.disabled = reps.length < 2;
  }

  ui.quality.addEventListener('change', function () {
    const index = Number(ui.quality.value);
    stats.autoLevel = index < 0;
    player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: index < 0 } } } });
    if (index >= 0) player.setRepresentationForTypeByIndex('video', index, true);
  });

  ui.live.addEventListener('click', function () {
    if (player) player.seekToOriginalLive ? player.seekToOriginalLive() : player.seek(player.duration());
    video.play().catch(function () {});
  });

  function start() {
    const events = dashjs.MediaPlayer.events;
    player = dashjs.MediaPlayer().create();
    stats.dashVersion = player.getVersion();
    player.updateSettings({
      debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
      streaming: {
        // the MPD's ServiceDescription sets the target latency; catch up by playback rate
        delay: { useSuggestedPresentationDelay: true },
        liveCatchup: { enabled: true, maxDrift: 3, playbackRate: { min: -0.04, max: 0.04 } },
        buffer: { fastSwitchEnabled: true },
        utcSynchronization: { enabled: true },
        retryAttempts: { MPD: 10, MediaSegment: 5 },
        // Our representations are muxed (video + AAC in one CMAF track set, as LL-HLS serves
        // them): the Media Capabilities path cannot parse a two-codec string, while
        // MediaSource.isTypeSupported (the fallback) checks it exactly.
        capabilities: { useMediaCapabilitiesApi: false },
        // Chunked low-latency downloads last as long as the segment is being produced, so a
        // "slow" download is normal: throughput (measured per CMAF chunk) picks the rung, and
        // nothing is abandoned half way. BOLA's buffer model does not fit a ~1.5 s buffer.
        abr: {
          rules: {
            throughputRule: { active: false },
            bolaRule: { active: false },
            l2ARule: { active: true },
            abandonRequestsRule: { active: false },
          },
        },
      },
    });
    player.on(events.STREAM_INITIALIZED, function () {
      fillQuality();
      stats.lowLatency = player.getLowLatencyModeEnabled ? player.getLowLatencyModeEnabled() : null;
    });
    player.on(events.QUALITY_CHANGE_RENDERED, function (event) {
      if (event.mediaType !== 'video') return;
      const rep = event.newRepresentation || (player.getCurrentRepresentationForType &&
        player.getCurrentRepresentationForType('video'));
      const height = representationHeight(rep);
      if (stats.currentLevel !== -1 && rep && rep.id !== stats.currentLevel) stats.levelSwitches += 1;
      stats.currentLevel = rep ? rep.id : -1;
      stats.currentHeight = height;
      if (height !== null && stats.heightsPlayed.indexOf(height) < 0) stats.heightsPlayed.push(height);
      if (rep && rep.id && stats.representationsPlayed.indexOf(rep.id) < 0) {
        stats.representationsPlayed.push(rep.id);
      }
    });
    player.on(events.FRAGMENT_LOADING_COMPLETED, function () { stats.loads += 1; });
    player.on(events.PLAYBACK_ENDED, function () { setStatus('ended', 'the stream has ended'); });
    player.on(events.ERROR, function (event) {
      const error = event.error || {};
      logError('dash', String(error.code || '') + ' ' + String(error.message || ''), true);
      setStatus('failed', 'stream unavailable; retrying');
      player.reset();
      setTimeout(start, OFFLINE_RETRY_MS);
    });
    player.initialize(video, src, true);
    setStatus('loading', 'loading…');
  }

  function fmt(seconds) {
    return seconds === null || seconds === undefined || !isFinite(seconds) ? '–' : seconds.toFixed(2) + ' s';
  }

  function sample() {
    const now = performance.now();
    if (!video.paused && stats.state === 'playing') stats.playingTime += (now - lastTick) / 1000;
    lastTick = now;
    stats.currentTime = video.currentTime;
    stats.playbackRate = video.playbackRate;
    if (player && player.isReady && player.isReady()) {
      const latency = player.getCurrentLiveLatency();
      stats.latency = isFinite(latency) && latency > 0 ? latency : null;
      const target = player.getTargetLiveDelay ? player.getTargetLiveDelay() : NaN;
      stats.targetLatency = isFinite(target) ? target : null;
      const ahead = player.getBufferLength ? player.getBufferLength('video') : NaN;
      stats.bufferAhead = isFinite(ahead) ? ahead : null;
    }
    if (video.getVideoPlaybackQuality) {
      const quality = video.getVideoPlaybackQuality();
      stats.droppedFrames = quality.droppedVideoFrames;
      stats.totalFrames = quality.totalVideoFrames;
    }
    ui.latency.textContent = fmt(stats.latency);
    ui.rate.textContent = stats.playbackRate.toFixed(2) + '×';
    ui.level.textContent = stats.currentHeight ? stats.currentHeight + 'p' : '–';
    ui.stalls.textContent = String(stats.stalls);
    ui.errors.textContent = stats.errors + ' (' + stats.fatalErrors + ')';
  }

  setInterval(sample, 250);
  start();
})();
