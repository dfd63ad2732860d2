// livetwin dashboard, money: start an ad break in the live stream (POST
// /api/v1/channels/{name}/ad-breaks, the commerce API) and see the channel's earnings (GET
// .../earnings: unpaid per currency, active subscribers, latest payouts), refreshed every 10 s.
// It waits for dashboard.js to know the channel; the session cookie and X-CSRF-Token
// authenticate, as for the rest of the page. window.livetwinMoney is its state, for tests/e2e.
'use strict';

(function () {
  const $ = function (id) { return document.getElementById(id); };
  const csrf = document.body.dataset.csrf;
  const REFRESH_MS = 10000;
  const WAIT_MS = 500;
  const state = { channel: null, earnings: null, adBreaks: [], refreshes: 0 };
  window.livetwinMoney = state;

  function api(method, path, payload) {
    const init = { method: method, credentials: 'same-origin', cache: 'no-store', headers: {} };
    if (method !== 'GET') init.headers['X-CSRF-Token'] = csrf;
    if (payload !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    return fetch('/api/v1/channels/' + encodeURIComponent(state.channel) + path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data,
                 retryAfter: response.headers.get('Retry-After') };
      });
    });
  }

  // amounts are integers in the currency's minor unit (cents); unknown codes show as they are
  function money(amount, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency }).format(amount / 100);
    } catch (e) {
      return String(amount) + ' ' + String(currency);
    }
  }

  function showEarnings(data) {
    state.earnings = data;
    const unpaid = data.unpaid && typeof data.unpaid === 'object' ? data.unpaid : {};
    const amounts = Object.keys(unpaid).map(function (c) { return money(Number(unpaid[c]), c); });
    $('earn-unpaid').textContent = amounts.length ? amounts.join(', ') : 'nothing yet';
    $('earn-subs').textContent = String(Number(data.active_subscribers) || 0);
    const payouts = (Array.isArray(data.payouts) ? data.payouts : []).map(function (p) {
      const li = document.createElement('li');
      li.textContent = String(p.period) + ': ' + money(Number(p.amount), p.currency);
      return li;
    });
    $('payouts').replaceChildren.apply($('payouts'), payouts);
    $('payouts-none').hidden = payouts.length > 0;
  }

  function refresh() {
    api('GET', '/earnings').then(function (result) {
      if (result.ok) showEarnings(result.data);
    }).catch(function () {}).finally(function () {
      state.refreshes += 1;
      setTimeout(refresh, REFRESH_MS);
    });
  }

  $('ad-form').addEventListener('submit', function (event) {
    event.preventDefault();
    const button = $('ad-start');
    button.disabled = true;
    const seconds = Number($('ad-duration').value);
    api('POST', '/ad-breaks', { duration_s: seconds }).then(function (result) {
      if (result.ok) {
        state.adBreaks.push(result.data);
        const starts = new Date(Number(result.data.starts_at) * 1000);
        $('ad-result').textContent = 'Ad break of ' + result.data.duration_s + ' s starts at ' +
          starts.toLocaleTimeString() + ' (the next segment boundary).';
      } else {
        const wait = result.status === 429 && result.retryAfter ? ' (try again in ' + result.retryAfter + ' s)' : '';
        $('ad-result').textContent = (result.data.message || 'failed (' + result.status + ')') + wait;
      }
    }).catch(function () {
      $('ad-result').textContent = 'the server did not answer; try again';
    }).finally(function () { button.disabled = false; });
  });

  function waitForChannel() {
    const dash = window.livetwinDashboard;
    if (dash && dash.channel) {
      state.channel = dash.channel;
      $('money').hidden = false;
      refresh();
      return;
    }
    setTimeout(waitForChannel, WAIT_MS);
  }

  waitForChannel();
})();
