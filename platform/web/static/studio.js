// The studio: publish the camera, the screen or a clock test card over WHIP (RFC 9725) to
// /whip/{channel} with the stream key as the bearer token. window.livetwinStudio holds the
// state for people and for tests/e2e; livetwinStudio.start({source, key[, width, height]}) is the
// Go Live button (width and height size the test card).
'use strict';

(function () {
  const body = document.body;
  const channel = body.dataset.channel;
  const ui = {
    source: document.getElementById('source'),
    key: document.getElementById('stream-key'),
    go: document.getElementById('go-live'),
    stop: document.getElementById('stop'),
    status: document.getElementById('status'),
    preview: document.getElementById('preview'),
  };
  const state = { state: 'idle', session: null, error: null, source: null, framesPainted: 0 };
  window.livetwinStudio = state;
  let pc = null;
  let media = null;
  let painter = null;

  function setStatus(value, text) {
    state.state = value;
    ui.status.textContent = text || value;
  }

  // A 1280x720 test card with the capture clock painted in at the top of every frame.
  function clockCard(fps, width, height) {
    const canvas = document.createElement('canvas');
    canvas.width = width || 1280;
    canvas.height = height || 720;
    const ctx = canvas.getContext('2d');
    let n = 0;
    painter = setInterval(function () {
      ctx.fillStyle = '#404850';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.fillStyle = 'hsl(' + (n * 3 % 360) + ', 70%, 55%)';
      ctx.fillRect((n * 8) % canvas.width, canvas.height * 0.4, canvas.height / 6, canvas.height / 6);
      ctx.fillStyle = '#ffffff';
      ctx.font = Math.round(canvas.height / 15) + 'px sans-serif';
      ctx.fillText(channel + ' · ' + new Date().toISOString().slice(11, 23), 40, canvas.height * 0.9);
      window.livetwinClock.paint(ctx, canvas.width, canvas.height, Date.now());
      state.framesPainted = ++n;
    }, 1000 / fps);
    return Promise.resolve(canvas.captureStream(fps));
  }

  function capture(source, options) {
    if (source === 'clock') return clockCard(30, options && options.width, options && options.height);
    if (source === 'screen') return navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: true });
    return navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 30 }, audio: true });
  }

  function waitForIce() {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(function (resolve) {
      pc.addEventListener('icegatheringstatechange', function () {
        if (pc.iceGatheringState === 'complete') resolve();
      });
      setTimeout(resolve, 2000);
    });
  }

  function start(options) {
    const source = (options && options.source) || ui.source.value;
    const key = (options && options.key) || ui.key.value.trim();
    if (!key) { setStatus('idle', 'enter your stream key'); return Promise.resolve(false); }
    state.source = source;
    setStatus('starting', 'starting ' + source + '…');
    return capture(source, options).then(function (stream) {
      media = stream;
      ui.preview.srcObject = stream;
      pc = new RTCPeerConnection();
      pc.onconnectionstatechange = function () {
        if (pc.connectionState === 'connected') setStatus('live', 'LIVE');
        if (pc.connectionState === 'failed') setStatus('failed', 'connection failed');
      };
      stream.getTracks().forEach(function (track) {
        const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
        if (track.kind === 'video') {
          // H.264 only (the ladder's codec), and keep the resolution: the transcoder's
          // configuration is fixed when the stream starts
          const h264 = RTCRtpSender.getCapabilities('video').codecs.filter(function (c) {
            return c.mimeType === 'video/H264' || c.mimeType === 'video/rtx';
          });
          transceiver.setCodecPreferences(h264);
          const parameters = transceiver.sender.getParameters();
          parameters.degradationPreference = 'maintain-resolution';
          transceiver.sender.setParameters(parameters).catch(function () {});
        }
      });
      return pc.createOffer();
    }).then(function (offer) { return pc.setLocalDescription(offer); })
      .then(waitForIce)
      .then(function () {
        return fetch('/whip/' + encodeURIComponent(channel), {
          method: 'POST', body: pc.localDescription.sdp,
          headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + key },
        });
      })
      .then(function (response) {
        return response.text().then(function (text) {
          if (response.status !== 201) throw new Error(response.status + ': ' + text.trim());
          state.session = response.headers.get('Location');
          return pc.setRemoteDescription({ type: 'answer', sdp: text });
        });
      })
      .then(function () { setStatus('connecting', 'connecting…'); ui.go.disabled = true; ui.stop.disabled = false; return true; })
      .catch(function (err) {
        state.error = String(err && err.message ? err.message : err);
        stop();
        setStatus('failed', state.error);
        return false;
      });
  }

  function stop() {
    if (state.session) {
      fetch(state.session, { method: 'DELETE', keepalive: true }).catch(function () {});
      state.session = null;
    }
    if (painter) { clearInterval(painter); painter = null; }
    if (pc) { pc.close(); pc = null; }
    if (media) { media.getTracks().forEach(function (t) { t.stop(); }); media = null; }
    ui.preview.srcObject = null;
    ui.go.disabled = false;
    ui.stop.disabled = true;
    setStatus('idle', 'offline');
  }

  state.start = start;
  state.stop = stop;
  ui.go.addEventListener('click', function () { start(); });
  ui.stop.addEventListener('click', stop);
  window.addEventListener('pagehide', stop);
})();
