// The pages after the first minutes, in headless Chromium (playwright-core): the streamer's
// dashboard starts an ad break and shows earnings; an offline channel's watch page lists its past
// broadcasts and plays one; the admin's /ops page shows the live stream and the origin's request
// rates, while a streamer gets 403. axe-core on every page (--axe), screenshots at desktop and
// phone size. The test (Python) has made the accounts, channels and streams; one JSON line
// ("done") on stdout carries the results.
//
//   node more_pages.cjs --web-root platform/web --base http://127.0.0.1:PORT --out DIR \
//        --live CHANNEL --past CHANNEL --streamer NAME --admin NAME --password P \
//        [--axe path/to/axe.min.js] [--chromium /usr/bin/chromium]
'use strict';

const path = require('node:path');
const fs = require('node:fs');

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
  for (const required of ['webRoot', 'base', 'out', 'live', 'past', 'streamer', 'admin', 'password']) {
    if (!args[required]) throw new Error('--' + required + ' is required');
  }
  return args;
}

function watchPage(page, who, problems) {
  page.on('console', (msg) => process.stderr.write('[' + who + ' ' + msg.type() + '] ' + msg.text() + '\n'));
  page.on('pageerror', (err) => { problems.push(who + ': ' + err.message); });
  page.on('dialog', (dialog) => { problems.push(who + ': a dialog opened: ' + dialog.message()); dialog.dismiss(); });
}

const overflows = [];

async function shoot(page, out, name) {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(150);
    const wide = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      return document.documentElement.scrollWidth <= width ? null : document.documentElement.scrollWidth;
    });
    if (wide) overflows.push([name, size, wide]);
    await page.screenshot({ path: path.join(out, name + '-' + size + '.png'), fullPage: true });
  }
}

async function logIn(page, base, username, password, next) {
  await page.goto(base + '/login?next=' + next);
  await page.fill('#username', username);
  await page.fill('#password', password);
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
    await page.waitForTimeout(2500);  // the offline list, the money section and /ops fill in
    await page.addScriptTag({ path: axePath });
    results[url] = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length,
        help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
  }
  await context.close();
  return results;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const base = args.base;
  fs.mkdirSync(args.out, { recursive: true });
  const { chromium } = require(path.resolve(args.webRoot, 'node_modules', 'playwright-core'));
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS });
  const problems = [];
  const result = { problems: problems };
  try {
    // 1. the streamer: ad break and earnings on the dashboard; /ops is not theirs
    const streamer = await browser.newContext({ viewport: DESKTOP });
    const dash = await streamer.newPage();
    watchPage(dash, 'streamer', problems);
    await logIn(dash, base, args.streamer, args.password, '/dashboard');
    await dash.waitForSelector('#money:not([hidden])');
    await dash.waitForFunction(() => window.livetwinMoney.earnings !== null, null, { timeout: 15000 });
    result.unpaid = await dash.textContent('#earn-unpaid');
    result.subscribers = await dash.textContent('#earn-subs');
    await dash.selectOption('#ad-duration', '30');
    await dash.focus('#ad-start');
    await dash.keyboard.press('Enter');  // from the keyboard
    await dash.waitForFunction(() => window.livetwinMoney.adBreaks.length === 1, null, { timeout: 15000 });
    result.adBreak = await dash.evaluate(() => window.livetwinMoney.adBreaks[0]);
    result.adShown = await dash.textContent('#ad-result');
    await dash.click('#ad-start');  // a second one at once: the cooldown answers
    await dash.waitForFunction(() => /try again/.test(document.getElementById('ad-result').textContent), null, { timeout: 15000 });
    result.adRefused = await dash.textContent('#ad-result');
    await shoot(dash, args.out, 'dashboard-money');
    const opsRefused = await dash.goto(base + '/ops');
    result.streamerOpsStatus = opsRefused.status();
    const streamerCookies = await streamer.cookies();

    // 2. anyone: the offline channel lists its past broadcasts and plays one
    const viewer = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    const watch = await viewer.newPage();
    watchPage(watch, 'viewer', problems);
    await watch.goto(base + '/watch/' + args.past);
    await watch.waitForSelector('#offline:not([hidden]) #past-broadcasts li a', { timeout: 20000 });
    result.pastListed = await watch.locator('#past-broadcasts li a').count();
    result.offlineHeading = await watch.textContent('#offline-heading');
    await shoot(watch, args.out, 'watch-offline');
    await Promise.all([watch.waitForNavigation(), watch.click('#past-broadcasts li a')]);
    result.vodUrl = new URL(watch.url()).search;
    await watch.waitForFunction(() => window.livetwinStats && window.livetwinStats.state === 'playing',
      null, { timeout: 30000 });
    await watch.waitForFunction(() => document.getElementById('video').currentTime > 1, null, { timeout: 20000 });
    result.vodPlayed = await watch.evaluate(() => document.getElementById('video').currentTime);
    result.vodBanner = await watch.isVisible('#vod-banner');
    result.vodOfflineHidden = await watch.isHidden('#offline');
    await shoot(watch, args.out, 'watch-vod');

    // 3. the admin: /ops shows the live stream and the origin's rates
    const admin = await browser.newContext({ viewport: DESKTOP });
    const ops = await admin.newPage();
    watchPage(ops, 'admin', problems);
    await logIn(ops, base, args.admin, args.password, '/ops');
    result.adminLandedOn = new URL(ops.url()).pathname;
    await ops.waitForFunction((live) => window.livetwinOps && window.livetwinOps.polls >= 3 &&
      window.livetwinOps.streams.some((s) => s.channel === live), args.live, { timeout: 20000 });
    result.opsRow = await ops.$$eval('#streams-body tr', (rows, live) => {
      const row = rows.find((r) => r.cells[0].textContent === live);
      return row ? Array.from(row.cells).map((c) => c.textContent) : null;
    }, args.live);
    result.opsOrigin = await ops.$$eval('#origin-body tr', (rows) => rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
    result.opsStatus = await ops.textContent('#ops-status');
    await shoot(ops, args.out, 'ops');
    const adminCookies = await admin.cookies();

    if (args.axe) {
      result.axe = Object.assign(
        await axeCheck(browser, base, streamerCookies, args.axe, ['/dashboard', '/watch/' + args.past, result.vodPage = '/watch/' + args.past + result.vodUrl]),
        await axeCheck(browser, base, adminCookies, args.axe, ['/ops']));
    }
    result.overflows = overflows;
    result.ok = true;
  } catch (err) {
    result.ok = false;
    result.error = String(err && err.stack || err);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(Object.assign({ event: 'done' }, result)) + '\n');
}

main();
