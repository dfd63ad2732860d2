// Drive headless Chromium through playwright-core: open a livetwin viewer page, play for a
// while and report window.livetwinStats as JSON lines on stdout (one "sample" a second, then
// "done"). Page console output and page errors go to stderr. Used by test_browser_playback.py.
//
//   node play_hls.cjs --web-root platform/web --url http://127.0.0.1:PORT/watch/demo \
//        --seconds 60 [--chromium /usr/bin/chromium] [--startup-timeout 25] [--screenshot out.png]
//        [--throttle-at S --throttle-for S --throttle-kbps K]   (Chromium's network emulation)
//        [--actions '[{"at": 10, "js": "document.getElementById(\'live\').click()"}]']
// --actions: page expressions evaluated once each, `at` seconds after playback started.
//        [--token API_TOKEN]   (signed in as that viewer: the page finds it in localStorage)
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
  args.startupTimeout = Number(args.startupTimeout);
  args.throttleAt = args.throttleAt === undefined ? null : Number(args.throttleAt);
  args.throttleFor = Number(args.throttleFor || 0);
  args.throttleKbps = Number(args.throttleKbps || 0);
  args.actions = JSON.parse(args.actions || '[]');
  return args;
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
      await page.addInitScript((token) => window.localStorage.setItem('livetwin.token', token), args.token);
    }
    page.on('console', (msg) => process.stderr.write('[page ' + msg.type() + '] ' + msg.text() + '\n'));
    page.on('pageerror', (err) => {
      process.stderr.write('[page error] ' + err.message + '\n');
      emit('pageerror', { message: err.message });
    });
    const codecs = await page.evaluate(() => ({
      mse: typeof MediaSource !== 'undefined',
      h264: typeof MediaSource !== 'undefined' &&
        MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
      nativeHls: document.createElement('video').canPlayType('application/vnd.apple.mpegurl'),
    }));
    emit('capabilities', codecs);
    await page.goto(args.url, { waitUntil: 'load' });
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
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    emit('done', { ok: true, stats: final });
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
