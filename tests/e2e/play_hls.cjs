// Drive headless Chromium through playwright-core: open a livetwin viewer page, play for a
// while and report window.livetwinStats as JSON lines on stdout (one "sample" a second, then
// "done"). Page console output and page errors go to stderr. Used by test_browser_playback.py.
//
//   node play_hls.cjs --web-root platform/web --url http://127.0.0.1:PORT/watch/demo \
//        --seconds 60 [--chromium /usr/bin/chromium] [--startup-timeout 25] [--screenshot out.png]
//        [--throttle-at S --throttle-for S --throttle-kbps K]   (Chromium's network emulation)
//        [--actions '[{"at": 10, "js": "document.getElementById(\'live\').click()"}]']
// --actions: page expressions evaluated once each, `at` seconds after playback started.
//        [--token API_TOKEN]   (signed in as that viewer: the token is the page's session cookie)
//        [--clock tests/e2e/clockcode.js] [--bare http://127.0.0.1:PORT/hls/demo/master.m3u8]
//
// --clock reads the capture clock painted into every decoded frame (requestVideoFrameCallback,
// canvas getImageData, clockcode.js) and reports glass-to-glass per displayed frame: "done"
// then carries clock.samples, [display epoch ms, glass-to-glass ms] pairs. --bare plays the URL
// in a page of our origin holding only hls.js with `lowLatencyMode: true`, as a third-party page
// would, instead of --url's viewer page. Every /hls/ answer of 400 or more is reported
// (httpErrors), and so is every hls.js error event (bare page: livetwinStats.errorLog).
'use strict';

const path = require('node:path');

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium', seconds: 60, startupTimeout: 25 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (argv[i + 1] === undefined) throw new Error('missing value for ' + argv[i]);
    args[key] = argv[i + 1];
  }
  for (const required of ['webRoot', 'url']) {
    if (!args[required]) throw new Error('--' + required.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()) + ' is required');
  }
  args.seconds = Number(args.seconds);
  if (args.clock) args.clockSource = require('node:fs').readFileSync(args.clock, 'utf8');
  args.startupTimeout = Number(args.startupTimeout);
  args.throttleAt = args.throttleAt === undefined ? null : Number(args.throttleAt);
  args.throttleFor = Number(args.throttleFor || 0);
  args.throttleKbps = Number(args.throttleKbps || 0);
  args.actions = JSON.parse(args.actions || '[]');
  return args;
}

// Played in the page when --clock is given: glass-to-glass of every displayed frame.
function clockProbe() {
  const out = window.livetwinClockProbe = { frames: 0, read: 0, samples: [] };
  function attach(video) {
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const reader = window.livetwinClockcode;
    function onFrame(now, meta) {
      out.frames += 1;
      const width = 208;  // 8 px per code column
      const height = Math.max(30, Math.round(width * meta.height / Math.max(1, meta.width)));
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
      }
      ctx.drawImage(video, 0, 0, width, height);
      const strip = reader.stripHeight(height);
      const painted = reader.read(ctx.getImageData(0, 0, width, strip).data, width, height, 4);
      if (painted !== null) {
        const shown = performance.timeOrigin + meta.expectedDisplayTime;
        out.read += 1;
        out.samples.push([Math.round(shown), Math.round(shown - painted)]);
      }
      video.requestVideoFrameCallback(onFrame);
    }
    video.requestVideoFrameCallback(onFrame);
  }
  function find() {
    const video = document.querySelector('video');
    if (video) attach(video);
    else setTimeout(find, 50);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', find);
  else find();
}

// The bare page: hls.js with only lowLatencyMode, and the few stats the test reads.
function barePage(src) {
  document.body.innerHTML = '<video id="video" muted playsinline style="width:640px"></video>';
  const video = document.getElementById('video');
  const stats = window.livetwinStats = {
    engine: 'hls.js', hlsVersion: Hls.version, firstPlayingAt: null, startupMs: null, currentTime: 0,
    errors: 0, fatalErrors: 0, errorLog: [], stalls: 0, bufferStalledErrors: 0, levels: [],
    levelSwitches: 0, latency: null, pdtLatency: null, bufferAhead: null, currentHeight: null,
  };
  const started = Date.now();
  const hls = new Hls({ lowLatencyMode: true });
  hls.on(Hls.Events.MANIFEST_PARSED, (event, data) => {
    stats.levels = data.levels.map((l, i) => ({ index: i, height: l.height, bitrate: l.bitrate }));
    video.play();
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (event, data) => {
    stats.levelSwitches += 1;
    stats.currentHeight = hls.levels[data.level] ? hls.levels[data.level].height : null;
  });
  hls.on(Hls.Events.ERROR, (event, data) => {
    stats.errors += 1;
    if (data.fatal) stats.fatalErrors += 1;
    if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) stats.bufferStalledErrors += 1;
    stats.errorLog.push({ at: Math.round(performance.now()), type: data.type, details: data.details,
      fatal: data.fatal });
  });
  video.addEventListener('playing', () => {
    if (stats.firstPlayingAt === null) {
      stats.firstPlayingAt = Date.now();
      stats.startupMs = stats.firstPlayingAt - started;
    }
  });
  video.addEventListener('waiting', () => { if (stats.firstPlayingAt !== null) stats.stalls += 1; });
  setInterval(() => {
    stats.currentTime = video.currentTime;
    stats.latency = hls.latency;
    const date = hls.playingDate;
    stats.pdtLatency = date ? (Date.now() - date.getTime()) / 1000 : null;
  }, 250);
  hls.loadSource(src);
  hls.attachMedia(video);
}

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event: event, wall: Date.now() }, fields)) + '\n');
}

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
];

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { chromium } = require(path.resolve(args.webRoot, 'node_modules', 'playwright-core'));
  const browser = await chromium.launch({
    executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS,
  });
  try {
    emit('browser', { version: browser.version() });
    const page = await browser.newPage();
    if (args.token) {
      // what logging in leaves behind: the HttpOnly session cookie (the page never sees the token)
      await page.context().addCookies([{ name: 'livetwin_session', value: args.token,
        url: new URL(args.url).origin, httpOnly: true, sameSite: 'Strict' }]);
    }
    page.on('console', (msg) => process.stderr.write('[page ' + msg.type() + '] ' + msg.text() + '\n'));
    page.on('pageerror', (err) => {
      process.stderr.write('[page error] ' + err.message + '\n');
      emit('pageerror', { message: err.message });
    });
    const httpErrors = [];
    page.on('response', (response) => {
      if (response.url().includes('/hls/') && response.status() >= 400) {
        httpErrors.push({ status: response.status(), url: response.url().replace(/^.*\/hls\//, '') });
      }
    });
    page.on('requestfailed', (request) => {
      // net::ERR_ABORTED is hls.js cancelling its own request (a level switch): not an answer
      const failure = request.failure() && request.failure().errorText;
      if (request.url().includes('/hls/') && failure !== 'net::ERR_ABORTED') {
        httpErrors.push({ status: 0, url: request.url().replace(/^.*\/hls\//, ''), failure: failure });
      }
    });
    if (args.clockSource) {
      await page.addInitScript({ content: args.clockSource });
      await page.addInitScript(clockProbe);
    }
    const codecs = await page.evaluate(() => ({
      mse: typeof MediaSource !== 'undefined',
      h264: typeof MediaSource !== 'undefined' &&
        MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
      nativeHls: document.createElement('video').canPlayType('application/vnd.apple.mpegurl'),
    }));
    emit('capabilities', codecs);
    await page.goto(args.url, { waitUntil: 'load' });
    if (args.bare) {
      await page.addScriptTag({ url: '/vendor/hls.js' });
      await page.evaluate(barePage, args.bare);
    }
    try {
      await page.waitForFunction(() => window.livetwinStats && window.livetwinStats.firstPlayingAt !== null,
        null, { timeout: args.startupTimeout * 1000, polling: 100 });
    } catch (err) {
      emit('done', { ok: false, reason: 'playback did not start within ' + args.startupTimeout + ' s',
        stats: await page.evaluate(() => window.livetwinStats) });
      return 1;
    }
    emit('started', { stats: await page.evaluate(() => window.livetwinStats) });
    const startedAt = Date.now();
    const deadline = startedAt + args.seconds * 1000;
    const cdp = args.throttleAt === null ? null : await page.context().newCDPSession(page);
    let throttle = 'off';
    async function network(kbps) {
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false, latency: 0, uploadThroughput: -1,
        downloadThroughput: kbps > 0 ? kbps * 1000 / 8 : -1,
      });
    }
    if (cdp) await cdp.send('Network.enable');
    const actions = args.actions.slice();
    while (Date.now() < deadline) {
      await page.waitForTimeout(Math.min(1000, deadline - Date.now()));
      const elapsed = (Date.now() - startedAt) / 1000;
      if (cdp && throttle === 'off' && elapsed >= args.throttleAt) {
        await network(args.throttleKbps);
        throttle = 'on';
        emit('throttle', { kbps: args.throttleKbps });
      } else if (cdp && throttle === 'on' && elapsed >= args.throttleAt + args.throttleFor) {
        await network(0);
        throttle = 'done';
        emit('throttle', { kbps: null });
      }
      while (actions.length && Date.now() - startedAt >= actions[0].at * 1000) {
        const action = actions.shift();
        emit('action', { js: action.js, result: await page.evaluate(action.js) });
      }
      emit('sample', { stats: await page.evaluate(() => window.livetwinStats) });
    }
    const final = await page.evaluate(() => window.livetwinStats);
    const clock = await page.evaluate(() => window.livetwinClockProbe || null);
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    emit('done', { ok: true, stats: final, clock: clock, httpErrors: httpErrors });
    return 0;
  } finally {
    await browser.close();
  }
}

main().then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write('play_hls: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  emit('done', { ok: false, reason: String(err && err.message ? err.message : err) });
  process.exitCode = 2;
});
