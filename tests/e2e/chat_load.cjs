// The viewer page's chat under load, in headless Chromium: opens /watch/{channel}, records
// every long task (Long Tasks API: main-thread tasks over 50 ms) from the moment its chat is
// connected, says "ready" on stdout, and once --messages messages arrived (or --timeout s
// passed) reports "done" with what it received and every long task since "ready".
//
//   node chat_load.cjs --web-root platform/web --url http://127.0.0.1:PORT/watch/NAME \
//        --messages 1000 --timeout 120 [--chromium /usr/bin/chromium]
'use strict';

const path = require('node:path');

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event: event, wall: Date.now() }, fields || {})) + '\n');
}

async function main() {
  const args = { chromium: '/usr/bin/chromium', messages: '1000', timeout: '120' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = argv[i + 1];
  const { chromium } = require(path.resolve(args.webRoot, 'node_modules', 'playwright-core'));
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-sync'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (err) => emit('pageerror', { message: err.message }));
    await page.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) window.__longTasks.push({ start: entry.startTime, duration: entry.duration });
      }).observe({ type: 'longtask', buffered: true });
    });
    await page.goto(args.url);
    await page.waitForFunction(() => window.livetwinChat && window.livetwinChat.stats.connects >= 1, null, { timeout: 20000 });
    await page.waitForTimeout(1000);
    const readyAt = await page.evaluate(() => performance.now());
    emit('ready');
    const wanted = Number(args.messages);
    await page.waitForFunction((n) => window.livetwinChat.stats.received >= n, wanted,
      { timeout: Number(args.timeout) * 1000, polling: 500 }).catch(() => {});
    const result = await page.evaluate((since) => ({
      received: window.livetwinChat.stats.received,
      rendered: window.livetwinChat.stats.rendered,
      inList: document.querySelectorAll('#chat-list li').length,
      longTasks: window.__longTasks.filter((t) => t.start >= since),
      seconds: (performance.now() - since) / 1000,
    }), readyAt);
    emit('done', result);
  } finally {
    await browser.close();
  }
}

main().catch((err) => { emit('done', { error: String(err && err.stack || err) }); process.exit(1); });
