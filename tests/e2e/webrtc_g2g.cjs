// Glass to glass over WebRTC in headless Chromium, driven through playwright-core:
// the studio page publishes a clock test card (canvas.captureStream) over WHIP, the viewer page
// plays the channel over WHEP and reads the painted clock from every decoded frame
// (requestVideoFrameCallback + canvas), then a third page plays the same channel over LL-HLS in
// hls.js and reads the clock the same way. JSON lines on stdout; used by test_webrtc_browser.py.
//
//   node webrtc_g2g.cjs --web-root platform/web --base http://127.0.0.1:PORT --channel demo \
//        --key KEY [--seconds 30] [--hls-seconds 20] [--chromium /usr/bin/chromium]
'use strict';

const path = require('node:path');

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium', seconds: 30, hlsSeconds: 20, width: 640, height: 360 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    args[key] = argv[i + 1];
  }
  for (const name of ['seconds', 'hlsSeconds', 'width', 'height']) args[name] = Number(args[name]);
  return args;
}

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event: event, wall: Date.now() }, fields)) + '\n');
}

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

// Read the painted clock from every frame the page's <video> presents (HLS page).
function installClockReader() {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const probe = { frames: 0, latencies: [] };
  window.livetwinProbe = probe;
  function onFrame(now, metadata) {
    probe.frames++;
    canvas.width = 260;
    canvas.height = Math.max(30, Math.round(260 * metadata.height / metadata.width));
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const ms = window.livetwinClock.read(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (ms !== null) probe.latencies.push(performance.timeOrigin + (metadata.expectedDisplayTime || now) - ms);
    video.requestVideoFrameCallback(onFrame);
  }
  video.requestVideoFrameCallback(onFrame);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { chromium } = require(path.resolve(args.webRoot, 'node_modules', 'playwright-core'));
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS });
  try {
    emit('browser', { version: browser.version() });
    const log = (name) => (msg) => process.stderr.write('[' + name + ' ' + msg.type() + '] ' + msg.text() + '\n');
    const studio = await browser.newPage();
    studio.on('console', log('studio'));
    studio.on('pageerror', (err) => emit('pageerror', { page: 'studio', message: err.message }));
    await studio.goto(args.base + '/studio/' + args.channel, { waitUntil: 'load' });
    const started = await studio.evaluate((o) => window.livetwinStudio.start(o),
      { source: 'clock', key: args.key, width: args.width, height: args.height });
    if (!started) {
      emit('done', { ok: false, reason: 'WHIP publish failed', studio: await studio.evaluate(() => window.livetwinStudio) });
      return 1;
    }
    await studio.waitForFunction(() => window.livetwinStudio.state === 'live', null, { timeout: 20000 });
    emit('publishing', { studio: await studio.evaluate(() => ({ state: window.livetwinStudio.state, session: window.livetwinStudio.session })) });

    const viewer = await browser.newPage();
    viewer.on('console', log('whep'));
    viewer.on('pageerror', (err) => emit('pageerror', { page: 'whep', message: err.message }));
    await viewer.goto(args.base + '/watch/' + args.channel + '?engine=webrtc', { waitUntil: 'load' });
    const t0 = Date.now();
    await viewer.waitForFunction(() => window.livetwinStats.webrtc && window.livetwinStats.webrtc.clockFrames > 0,
      null, { timeout: 60000, polling: 100 });
    emit('whep-first-frame', { ms: Date.now() - t0 });
    await viewer.waitForTimeout(3000);  // settle, then measure from a clean slate
    await viewer.evaluate(() => { window.livetwinStats.webrtc.latencies.length = 0; });
    const startFrames = await viewer.evaluate(() => window.livetwinStats.webrtc.frames);
    const deadline = Date.now() + args.seconds * 1000;
    while (Date.now() < deadline) {
      await viewer.waitForTimeout(Math.min(1000, deadline - Date.now()));
      emit('whep-sample', { webrtc: await viewer.evaluate(() => {
        const w = window.livetwinStats.webrtc;
        return { state: w.state, frames: w.frames, clockFrames: w.clockFrames, p50: w.latencyP50, p95: w.latencyP95, width: w.width, height: w.height };
      }) });
    }
    const whep = await viewer.evaluate(() => {
      const w = window.livetwinStats.webrtc;
      const q = window.livetwinStats;
      return { latencies: w.latencies.slice(), frames: w.frames, clockFrames: w.clockFrames, width: w.width,
        height: w.height, retries: w.retries, droppedFrames: q.droppedFrames, totalFrames: q.totalFrames };
    });
    whep.framesInWindow = whep.frames - startFrames;
    emit('whep', whep);
    await viewer.close();

    const hls = await browser.newPage();
    hls.on('console', log('hls'));
    hls.on('pageerror', (err) => emit('pageerror', { page: 'hls', message: err.message }));
    await hls.goto(args.base + '/watch/' + args.channel, { waitUntil: 'load' });
    await hls.evaluate(installClockReader);
    await hls.waitForFunction(() => window.livetwinStats.firstPlayingAt !== null, null, { timeout: 30000, polling: 100 });
    await hls.waitForTimeout(args.hlsSeconds * 1000);
    emit('hls', await hls.evaluate(() => ({ stats: { engine: window.livetwinStats.engine, stalls: window.livetwinStats.stalls,
      fatalErrors: window.livetwinStats.fatalErrors, currentTime: window.livetwinStats.currentTime,
      latency: window.livetwinStats.latency, levels: window.livetwinStats.levels.length },
    frames: window.livetwinProbe.frames, latencies: window.livetwinProbe.latencies.slice(-600) })));
    await studio.evaluate(() => window.livetwinStudio.stop());
    emit('done', { ok: true });
    return 0;
  } finally {
    await browser.close();
  }
}

main().then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write('webrtc_g2g: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  emit('done', { ok: false, reason: String(err && err.message ? err.message : err) });
  process.exitCode = 2;
});
