// livetwin viewer page: the money panel under the chat (docs/commerce.md). A signed-in viewer
// sees their bits, buys a pack with a card (the provider charges; the bits arrive only when its
// signed webhook books the payment, so the panel polls the wallet until the purchase settles),
// cheers bits into the chat (the cheer itself comes back through the chat socket, to every
// viewer) and subscribes. Every money-moving request carries an Idempotency-Key that is kept
// until a definite answer arrives, so pressing again after a network failure cannot charge or
// cheer twice; and the page's CSRF token (the session is an HttpOnly cookie, docs/security.md).
// The server's refusals (too few bits, declined card, rate limits, signed out) are shown as text.
'use strict';

(function () {
  const body = document.body;
  const channel = body.dataset.channel;
  const csrf = body.dataset.csrf || '';
  const ui = {
    balance: document.getElementById('bits-balance'),
    status: document.getElementById('money-status'),
    error: document.getElementById('money-error'),
    signin: document.getElementById('money-signin'),
    cheerForm: document.getElementById('cheer-form'),
    cheerBits: document.getElementById('cheer-bits'),
    cheerMessage: document.getElementById('cheer-message'),
    cheerSend: document.getElementById('cheer-send'),
    buyForm: document.getElementById('buy-form'),
    pack: document.getElementById('buy-pack'),
    card: document.getElementById('buy-card'),
    buySend: document.getElementById('buy-send'),
    tier: document.getElementById('sub-tier'),
    subscribe: document.getElementById('subscribe'),
  };
  if (!ui.balance) return;
  const SETTLE_POLL_MS = 500;
  const SETTLE_MAX_POLLS = 120;            // a minute; pending cards settle later: say so
  const pendingKeys = {};                  // intent name -> key awaiting a definite answer
  const money = { bits: null, offers: null, lastError: '', cheers: 0, purchases: 0 };
  window.livetwinMoney = money;            // tests/e2e read the panel's state here

  function formatPrice(minor, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency }).format(minor / 100);
    } catch (err) {
      return (minor / 100).toFixed(2) + ' ' + currency;
    }
  }

  function showError(text) {
    money.lastError = text;
    ui.error.textContent = text;
  }

  function explain(status, answer, retryAfter) {
    if (status === 401) return 'you are signed out: log in again to use bits';
    if (status === 429) return String(answer.message || 'too many requests') + ' (wait ' + (retryAfter || '?') + ' s)';
    if (status === 403 && answer.error === 'csrf_failed') return 'this page is stale: reload it and try again';
    return String(answer.message || answer.error || ('the server answered ' + status));
  }

  function key(intent) {
    if (!pendingKeys[intent]) {
      pendingKeys[intent] = intent + '-' + (window.crypto && crypto.randomUUID ? crypto.randomUUID()
        : String(Date.now()) + Math.random().toString(16).slice(2));
    }
    return pendingKeys[intent];
  }

  // A money-moving POST. Resolves {status, answer} on any HTTP answer; a 5xx or a network failure
  // keeps the key so the next press retries the same operation (docs/commerce.md).
  async function moneyCall(intent, path, payload) {
    const headers = { 'Content-Type': 'application/json', 'Idempotency-Key': key(intent) };
    if (csrf) headers['X-CSRF-Token'] = csrf;
    let response;
    try {
      response = await fetch('/api/v1' + path, {
        method: 'POST', headers: headers, credentials: 'same-origin', body: JSON.stringify(payload),
      });
    } catch (err) {
      return { status: 0, answer: { message: 'network error; press again to retry the same request' } };
    }
    let answer = {};
    try { answer = await response.json(); } catch (err) { answer = {}; }
    if (response.status < 500) delete pendingKeys[intent];
    return { status: response.status, answer: answer, retryAfter: response.headers.get('Retry-After') };
  }

  async function readWallet() {
    const response = await fetch('/api/v1/me/wallet', { cache: 'no-store', credentials: 'same-origin' });
    if (response.status === 401) return null;
    if (!response.ok) throw new Error('the wallet answered ' + response.status);
    return response.json();
  }

  function showWallet(wallet) {
    money.bits = wallet.bits;
    ui.balance.textContent = String(wallet.bits);
  }

  function fillOffers(offers) {
    money.offers = offers;
    ui.pack.replaceChildren();
    for (const pack of offers.bit_packs) {
      const option = document.createElement('option');
      option.value = String(pack.bits);
      option.textContent = pack.bits + ' bits · ' + formatPrice(pack.price, offers.currency);
      ui.pack.append(option);
    }
    ui.tier.replaceChildren();
    for (const tier of offers.tiers) {
      const option = document.createElement('option');
      option.value = String(tier.tier);
      option.textContent = 'tier ' + tier.tier + ' · ' + formatPrice(tier.price, offers.currency) + '/month';
      ui.tier.append(option);
    }
    ui.cheerBits.max = String(offers.max_cheer_bits);
  }

  function signedOut() {
    ui.cheerForm.hidden = true;
    ui.buyForm.hidden = true;
    ui.signin.hidden = false;
    ui.balance.textContent = '–';
    money.bits = null;
  }

  async function refresh() {
    let wallet;
    try {
      wallet = await readWallet();
    } catch (err) {
      ui.status.textContent = 'bits are not available right now';
      return;
    }
    if (wallet === null) { signedOut(); return; }
    ui.signin.hidden = true;
    ui.cheerForm.hidden = false;
    ui.buyForm.hidden = false;
    if (!money.offers) fillOffers(wallet.offers);
    showWallet(wallet);
    await showSubscription();
  }

  async function showSubscription() {
    const response = await fetch('/api/v1/channels/' + encodeURIComponent(channel) + '/subscription',
      { cache: 'no-store', credentials: 'same-origin' });
    if (response.status !== 200) { ui.subscribe.disabled = false; return; }
    const sub = await response.json();
    const active = sub.state === 'active' || sub.state === 'canceling';
    ui.subscribe.disabled = active;
    ui.subscribe.textContent = active ? 'Subscribed (tier ' + sub.tier + ')' : 'Subscribe';
    money.subscription = sub.state;
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // The charge was accepted; the bits arrive with the provider's succeeded webhook.
  async function awaitSettled(intentId) {
    for (let i = 0; i < SETTLE_MAX_POLLS; i += 1) {
      await sleep(SETTLE_POLL_MS);
      const wallet = await readWallet().catch(function () { return undefined; });
      if (wallet === null) { signedOut(); return; }
      if (!wallet) continue;
      showWallet(wallet);
      const purchase = (wallet.purchases || []).find(function (p) { return p.id === intentId; });
      if (purchase && purchase.status === 'succeeded') {
        ui.status.textContent = 'payment succeeded: ' + purchase.bits + ' bits added';
        money.purchases += 1;
        return;
      }
      if (purchase && purchase.status !== 'processing' && purchase.status !== 'succeeded') {
        ui.status.textContent = '';
        showError('the payment did not go through (' + purchase.status + ')');
        return;
      }
    }
    ui.status.textContent = 'the payment is still processing; the bits will appear when it settles';
  }

  ui.buyForm.addEventListener('submit', async function (event) {
    event.preventDefault();
    const card = ui.card.value.replace(/[\s-]/g, '');
    if (!/^[0-9]{12,19}$/.test(card)) { showError('enter a card number (12 to 19 digits)'); return; }
    showError('');
    ui.buySend.disabled = true;
    ui.status.textContent = 'charging your card…';
    try {
      const result = await moneyCall('buy', '/me/bits', { bits: Number(ui.pack.value), card: card });
      if (result.status === 202) {
        ui.status.textContent = 'payment processing…';
        await awaitSettled(result.answer.payment_intent.id);
      } else {
        ui.status.textContent = '';
        if (result.status === 401) signedOut();
        showError(explain(result.status, result.answer, result.retryAfter));
      }
    } finally {
      ui.buySend.disabled = false;
    }
  });

  ui.cheerForm.addEventListener('submit', async function (event) {
    event.preventDefault();
    const text = ui.cheerBits.value.trim();
    const bits = Number(text);
    if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(bits) || bits < 1) {
      showError('cheer a whole number of bits, at least 1');
      return;
    }
    if (money.offers && bits > money.offers.max_cheer_bits) {
      showError('one cheer carries at most ' + money.offers.max_cheer_bits + ' bits');
      return;
    }
    showError('');
    ui.cheerSend.disabled = true;
    try {
      const result = await moneyCall('cheer', '/channels/' + encodeURIComponent(channel) + '/cheers',
        { bits: bits, message: ui.cheerMessage.value.trim() });
      if (result.status === 201) {
        money.cheers += 1;
        showWallet(result.answer.wallet);
        ui.cheerMessage.value = '';
        ui.status.textContent = 'you cheered ' + bits + ' bits';
      } else {
        if (result.status === 401) signedOut();
        showError(explain(result.status, result.answer, result.retryAfter));
      }
    } finally {
      ui.cheerSend.disabled = false;
    }
  });

  ui.subscribe.addEventListener('click', async function () {
    const card = ui.card.value.replace(/[\s-]/g, '');
    if (!/^[0-9]{12,19}$/.test(card)) { showError('enter a card number to subscribe'); return; }
    showError('');
    ui.subscribe.disabled = true;
    ui.status.textContent = 'subscribing…';
    const result = await moneyCall('subscribe', '/channels/' + encodeURIComponent(channel) + '/subscriptions',
      { tier: Number(ui.tier.value), card: card });
    if (result.status !== 202) {
      ui.status.textContent = '';
      ui.subscribe.disabled = false;
      if (result.status === 401) signedOut();
      showError(explain(result.status, result.answer, result.retryAfter));
      return;
    }
    // active once the provider's webhook books the first charge
    for (let i = 0; i < SETTLE_MAX_POLLS && money.subscription !== 'active'; i += 1) {
      await sleep(SETTLE_POLL_MS);
      await showSubscription().catch(function () {});
    }
    ui.status.textContent = money.subscription === 'active' ? 'you are subscribed'
      : 'the subscription starts when the payment settles';
  });

  refresh();
})();
