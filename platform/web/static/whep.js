// WHEP playback (draft-ietf-wish-whep) for the viewer page: the lowest-delay delivery.
// POST an SDP offer to /whep/{channel}, play the answer's H.264/Opus, DELETE the session on
// leave. Every decoded frame is checked for the painted capture clock (clockcode.js) through
// requestVideoFrameCallback, so a test card's glass-to-glass delay shows on the page and in
// window.livetwinStats.webrtc.
'use strict';

(function () {
  const RETRY_MS = 2000;
  const LATENCY_KEEP = 2000;

  function percentile(values, q) {
    if (!values.length) return null;
    const sorted = values.slice().sort(function (a, b) { return a - b; });
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  function waitForIce(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(function (resolve) {
      const done = function () {
        if (pc.iceGatheringState === 'complete') {
          pc.removeEventListener('icegatheringstatechange', done);
          resolve();
        }
      };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, 2000);  // host candidates are enough on a LAN
    });
  }

  // Play `url` into `video`; `stats` gets the WebRTC readout. Returns {stop()}.
  function play(video, url, stats, onState) {
    const webrtc = { state: 'connecting', frames: 0, clockFrames: 0, latencies: [], latencyP50: null,
      latencyP95: null, session: null, retries: 0, width: null, height: null };
    stats.webrtc = webrtc;
    let pc = null;
    let stopped = false;
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });

    function onFrame(now, metadata) {
      if (stopped) return;
      webrtc.frames++;
      webrtc.width = metadata.width;
      webrtc.height = metadata.height;
      const shownAt = performance.timeOrigin + (metadata.expectedDisplayTime || now);
      const width = 260;
      const height = Math.max(30, Math.round(width * metadata.height / metadata.width));
      canvas.width = width;
      canvas.height = height;
      ctx.drawImage(video, 0, 0, width, height);
      const strip = window.livetwinClock.stripHeight(height);
      const image = ctx.getImageData(0, 0, width, height);
      const painted = window.livetwinClock.read(image);
      if (painted !== null && strip > 0) {
        webrtc.clockFrames++;
        webrtc.latencies.push(shownAt - painted);
        if (webrtc.latencies.length > LATENCY_KEEP) webrtc.latencies.shift();
        webrtc.latencyP50 = percentile(webrtc.latencies, 0.5);
        webrtc.latencyP95 = percentile(webrtc.latencies, 0.95);
      }
      video.requestVideoFrameCallback(onFrame);
    }

    function connect() {
      if (stopped) return;
      pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = function (event) {
        if (!video.srcObject) video.srcObject = new MediaStream();
        video.srcObject.addTrack(event.track);
      };
      pc.onconnectionstatechange = function () {
        webrtc.state = pc.connectionState;
        onState(pc.connectionState);
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') retry();
      };
      pc.createOffer()
        .then(function (offer) { return pc.setLocalDescription(offer); })
        .then(function () { return waitForIce(pc); })
        .then(function () {
          return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' },
            body: pc.localDescription.sdp });
        })
        .then(function (response) {
          if (response.status !== 201) {
            return response.text().then(function (text) { throw new Error(response.status + ': ' + text); });
          }
          webrtc.session = response.headers.get('Location');
          return response.text().then(function (answer) {
            return pc.setRemoteDescription({ type: 'answer', sdp: answer });
          });
        })
        .then(function () { video.play().catch(function () {}); })
        .catch(function (err) {
          webrtc.state = 'waiting';
          webrtc.lastError = String(err && err.message ? err.message : err);
          onState('waiting', webrtc.lastError);
          retry();
        });
    }

    function hangUp() {
      if (webrtc.session) {
        fetch(webrtc.session, { method: 'DELETE', keepalive: true }).catch(function () {});
        webrtc.session = null;
      }
      if (pc) { pc.onconnectionstatechange = null; pc.close(); pc = null; }
      if (video.srcObject) { video.srcObject = null; }
    }

    function retry() {
      hangUp();
      if (stopped) return;
      webrtc.retries++;
      setTimeout(connect, RETRY_MS);
    }

    video.requestVideoFrameCallback(onFrame);
    window.addEventListener('pagehide', hangUp);
    connect();
    return { stop: function () { stopped = true; hangUp(); } };
  }

  window.livetwinWhep = { play: play };
})();
