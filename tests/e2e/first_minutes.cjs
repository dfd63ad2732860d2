// A streamer's and a viewer's first minutes on livetwin, in headless Chromium (playwright-core):
// the streamer signs up, creates a channel and copies its key; the test (Python) publishes with
// ffmpeg and says so on stdin; a second browser context (phone-sized) signs up, watches, plays
// and chats; the streamer's dashboard shows the viewer and the message. On the way it tries XSS
// payloads in the channel title and chat, the chat's reconnect with resume and its rate-limit
// answer, runs axe-core on every page (--axe) and saves screenshots at desktop and phone size.
// Steps are reported as JSON lines on stdout ("key" asks for a publish; "done" carries results).
//
//   node first_minutes.cjs --web-root platform/web --base http://127.0.0.1:PORT --channel NAME \
//        --out reports/out/web [--axe path/to/axe.min.js] [--chromium /usr/bin/chromium]
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const readline = require('node:readline');

const XSS_TITLE = 'Launch <img src=x onerror="window.__xss=(window.__xss||0)+1"> <script>window.__xss=1</script>';
const XSS_CHAT = ['<img src=x onerror="window.__xss=(window.__xss||0)+1">', '<script>window.__xss=1</script>'];
const HELLO = 'hello from the viewer';
const PASSWORD = 'correct horse battery staple';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
];

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    args[key] = argv[i + 1];
  }
  for (const required of ['webRoot', 'base', 'channel', 'out']) {
    if (!args[required]) throw new Error('--' + required + ' is required');
  }
  return args;
}

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event: event, wall: Date.now() }, fields || {})) + '\n');
}

const stdinLines = readline.createInterface({ input: process.stdin });
const waiting = [];
stdinLines.on('line', (line) => { const next = waiting.shift(); if (next) next(line.trim()); });
function nextLine() { return new Promise((resolve) => waiting.push(resolve)); }

function watchPage(page, who, problems) {
  page.on('console', (msg) => process.stderr.write('[' + who + ' ' + msg.type() + '] ' + msg.text() + '\n'));
  page.on('pageerror', (err) => { problems.push(who + ': ' + err.message); });
  page.on('dialog', (dialog) => { problems.push(who + ': a dialog opened: ' + dialog.message()); dialog.dismiss(); });
}

const overflows = [];  // pages wider than the screen: [name, size, scrollWidth, widest element]

async function shoot(page, out, name) {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(150);
    const wide = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      if (document.documentElement.scrollWidth <= width) return null;
      const culprits = Array.from(document.querySelectorAll('body *'))
        .filter((el) => el.getBoundingClientRect().right > width + 1)
        .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className ? '.' + String(el.className).split(' ')[0] : ''));
      return [document.documentElement.scrollWidth, culprits.slice(0, 5)];
    });
    if (wide) overflows.push([name, size].concat(wide));
    await page.screenshot({ path: path.join(out, name + '-' + size + '.png'), fullPage: true });
  }
}

async function signUp(page, base, username, next) {
  await page.goto(base + '/signup' + (next ? '?next=' + next : ''));
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

async function axeCheck(browser, base, cookies, axePath, urls) {
  // axe is injected as a script, which the pages' CSP forbids: this context alone bypasses it
  const context = await browser.newContext({ bypassCSP: true, viewport: DESKTOP });
  await context.addCookies(cookies);
  const page = await context.newPage();
  const results = {};
  for (const url of urls) {
    await page.goto(base + url, { waitUntil: 'load' });
    await page.waitForTimeout(500);
    await page.addScriptTag({ path: axePath });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length,
        help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
    results[url] = violations;
  }
  await context.close();
  return results;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const base = args.base;
  const channel = args.channel;
  fs.mkdirSync(args.out, { recursive: true });
  const { chromium } = require(path.resolve(args.webRoot, 'node_modules', 'playwright-core'));
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS });
  const problems = [];
  const result = { problems: problems };
  try {
    // 1. the streamer signs up, creates a channel, reveals and copies the key
    const streamer = await browser.newContext({ viewport: DESKTOP });
    await streamer.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const dash = await streamer.newPage();
    watchPage(dash, 'streamer', problems);
    await signUp(dash, base, 'streamer_one', null);
    result.afterSignup = new URL(dash.url()).pathname;
    await dash.waitForSelector('#create:not([hidden])');
    result.cookies = (await streamer.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
    result.scriptSeesSession = await dash.evaluate(() => document.cookie.includes('livetwin_session'));
    await dash.fill('#channel-name', channel);
    await dash.fill('#channel-title', XSS_TITLE);
    await dash.click('#create-form button[type=submit]');
    await dash.waitForSelector('#channel:not([hidden])');
    await dash.click('#reveal-key');
    result.revealedType = await dash.getAttribute('#stream-key', 'type');
    const shown = await dash.inputValue('#stream-key');
    await dash.click('#copy-key');
    await dash.waitForFunction(() => window.livetwinDashboard.copied > 0);
    const key = await dash.evaluate(() => navigator.clipboard.readText());
    result.copiedMatches = key === shown && key.startsWith('live_');
    result.rtmpFull = await dash.textContent('#rtmp-full');
    emit('key', { key: key });

    // 2. the test publishes with ffmpeg, then says "published"
    const line = await nextLine();
    if (line !== 'published') throw new Error('expected "published" on stdin, got ' + JSON.stringify(line));
    await dash.waitForFunction(() => document.getElementById('live-state').textContent === 'LIVE', null, { timeout: 30000 });
    await dash.waitForFunction(() => window.livetwinDashboard.health && window.livetwinDashboard.health.fps > 0,
      null, { timeout: 30000 });
    const polls0 = await dash.evaluate(() => window.livetwinDashboard.polls);
    await dash.waitForTimeout(3000);
    result.pollsIn3s = (await dash.evaluate(() => window.livetwinDashboard.polls)) - polls0;

    // 3. the landing page lists the channel
    const landing = await streamer.newPage();
    watchPage(landing, 'landing', problems);
    await landing.goto(base + '/');
    result.landingLists = await landing.locator('#channels a[href="/watch/' + channel + '"]').count();
    // its thumbnail: made from a keyframe within seconds; the page's refresh (5 s) picks it up
    const thumb = '#channels a[href="/watch/' + channel + '"] img.thumb';
    await landing.waitForFunction((sel) => { const img = document.querySelector(sel); return img && img.complete && img.naturalWidth > 0; },
      thumb, { timeout: 20000 });
    result.landingThumb = await landing.$eval(thumb, (img) => [img.naturalWidth, img.naturalHeight, img.getAttribute('src')]);
    await shoot(landing, args.out, 'landing');
    await landing.close();

    // 4. a viewer on a phone signs up, watches, plays and chats
    const viewer = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    const watch = await viewer.newPage();
    watchPage(watch, 'viewer', problems);
    await signUp(watch, base, 'viewer_one', '/watch/' + channel);
    result.viewerLandedOn = new URL(watch.url()).pathname;
    await watch.waitForFunction(() => window.livetwinStats && window.livetwinStats.state === 'playing',
      null, { timeout: 45000 });
    await watch.waitForSelector('#chat-input:not([disabled])', { timeout: 15000 });
    await watch.fill('#chat-input', HELLO);
    await watch.press('#chat-input', 'Enter');  // from the keyboard
    for (const payload of XSS_CHAT) {
      await watch.fill('#chat-input', payload);
      await watch.click('#chat-send');
      await watch.waitForTimeout(300);
    }
    await watch.waitForFunction((n) => document.querySelectorAll('#chat-list li').length >= n, XSS_CHAT.length + 1,
      { timeout: 15000 });
    await watch.waitForFunction(() => document.getElementById('stream-title').textContent.startsWith('Launch'),
      null, { timeout: 15000 });

    // 5. the dashboard shows one viewer and the message
    await dash.waitForFunction((text) => Array.from(document.querySelectorAll('#chat-list .chat-text'))
      .some((el) => el.textContent === text), HELLO, { timeout: 15000 });
    await dash.waitForFunction(() => document.getElementById('h-viewers').textContent === '1', null, { timeout: 15000 });
    result.dashboardViewers = await dash.textContent('#h-viewers');
    await dash.waitForFunction((n) => document.querySelectorAll('#chat-list li').length >= n, XSS_CHAT.length + 1,
      { timeout: 15000 });
    await dash.waitForTimeout(1200);  // one more poll: the rate panel counts what arrived
    result.dashboardChatRate = await dash.textContent('#h-chat-rate');
    result.health = await dash.evaluate(() => ({
      bitrate: document.getElementById('h-bitrate').textContent, fps: document.getElementById('h-fps').textContent,
      gop: document.getElementById('h-gop').textContent, delay: document.getElementById('h-delay').textContent }));
    await watch.waitForFunction(() => document.getElementById('viewer-count').textContent === '1', null,
      { timeout: 15000 });
    result.watchViewers = await watch.textContent('#viewer-count');

    // XSS: nothing ran, every payload is text
    const xss = async (page) => page.evaluate((payloads) => ({
      ran: window.__xss === undefined ? 0 : window.__xss,
      imgs: document.querySelectorAll('#chat-list img, #stream-title img, #channel-title-view img, #chat-list script').length,
      texts: payloads.map((p) => Array.from(document.querySelectorAll('#chat-list .chat-text')).some((el) => el.textContent === p)),
    }), XSS_CHAT);
    result.xssWatch = await xss(watch);
    result.xssWatch.title = await watch.textContent('#stream-title');
    result.xssDashboard = await xss(dash);
    result.xssDashboard.title = await dash.textContent('#channel-title-view');

    // resume: a dropped chat connection comes back with ?after= and shows nothing twice
    await watch.evaluate(() => window.livetwinChat.drop());
    await watch.waitForFunction(() => window.livetwinChat.stats.connects >= 2, null, { timeout: 15000 });
    await watch.waitForTimeout(500);
    result.resumedFrom = await watch.evaluate(() => window.livetwinChat.stats.resumedFrom);
    result.helloCopies = await watch.evaluate((text) => Array.from(document.querySelectorAll('#chat-list .chat-text'))
      .filter((el) => el.textContent === text).length, HELLO);

    await shoot(watch, args.out, 'watch');
    await shoot(dash, args.out, 'dashboard');

    // the server's rate limit, shown under the input (20 messages in 30 s for a viewer)
    await watch.setViewportSize(PHONE);
    await watch.waitForSelector('#chat-input:not([disabled])', { timeout: 15000 });
    for (let i = 0; i < 20; i += 1) {
      await watch.evaluate((n) => window.livetwinChat.send('message number ' + n), i);
      await watch.waitForTimeout(120);
    }
    await watch.waitForFunction(() => /messages in/.test(document.getElementById('chat-error').textContent),
      null, { timeout: 10000 });
    result.rateLimitShown = await watch.textContent('#chat-error');
    await shoot(watch, args.out, 'watch-rate-limited');

    // moderation from the dashboard: the streamer deletes a message and turns slow mode on;
    // the viewer's page hides the message and shows the mode (and offers no mod buttons)
    result.viewerModButtons = await watch.locator('#chat-list button.mod').count();
    await dash.evaluate((text) => {
      const item = Array.from(document.querySelectorAll('#chat-list li'))
        .find((li) => li.querySelector('.chat-text').textContent === text);
      item.dataset.target = '1';
    }, XSS_CHAT[0]);
    await dash.click('#chat-list li[data-target="1"] button.mod[data-act="delete"]');
    await watch.waitForFunction((text) => !Array.from(document.querySelectorAll('#chat-list .chat-text'))
      .some((el) => el.textContent === text), XSS_CHAT[0], { timeout: 10000 });
    result.deletedOnViewer = true;
    await dash.selectOption('#slow-mode', '30');
    await watch.waitForFunction(() => /slow mode/.test(document.getElementById('chat-modes').textContent), null,
      { timeout: 10000 });
    result.viewerModes = await watch.textContent('#chat-modes');
    await shoot(dash, args.out, 'dashboard-moderating');

    // keyboard only: log in from a fresh context with Tab and Enter
    const keyboard = await browser.newContext({ viewport: DESKTOP });
    const login = await keyboard.newPage();
    watchPage(login, 'keyboard', problems);
    await login.goto(base + '/login');
    await shoot(login, args.out, 'login');
    let tabs = 0;
    while (tabs < 12 && !(await login.evaluate(() => document.activeElement && document.activeElement.id === 'username'))) {
      await login.keyboard.press('Tab');
      tabs += 1;
    }
    await login.keyboard.type('viewer_one');
    await login.keyboard.press('Tab');
    await login.keyboard.type(PASSWORD);
    await Promise.all([login.waitForNavigation(), login.keyboard.press('Enter')]);
    result.keyboardLogin = new URL(login.url()).pathname;
    await login.goto(base + '/signup');
    await login.fill('#username', 'x');
    await login.fill('#password', 'short');
    await Promise.all([login.waitForNavigation(), login.click('button[type=submit]')]);
    result.fieldErrors = {
      username: await login.textContent('#username-error'), password: await login.textContent('#password-error') };
    await shoot(login, args.out, 'signup-errors');
    await keyboard.close();

    if (args.axe) {
      const cookies = await streamer.cookies();
      result.axe = await axeCheck(browser, base, cookies, args.axe,
        ['/', '/signup', '/login', '/dashboard', '/watch/' + channel, '/studio/' + channel]);
    }
    result.overflows = overflows;
    result.ok = true;
  } catch (err) {
    result.ok = false;
    result.error = String(err && err.stack || err);
  } finally {
    emit('done', result);
    stdinLines.close();
    await browser.close();
  }
}

main().catch((err) => { emit('done', { ok: false, error: String(err && err.stack || err) }); process.exit(1); });
