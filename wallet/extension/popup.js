// The popup: balance, this tab's cost, buying, history, limits, lock.
import {$, call, money, onSubmit, say, when} from './ui.js';

/** @type {number|undefined} */
let tabId;

async function render() {
  const tabs = await chrome.tabs.query({active: true, currentWindow: true});
  tabId = tabs[0]?.id;
  const s = await call('status', {tabId});
  $('view-new').hidden = s.setup;
  $('view-locked').hidden = !s.setup || !s.locked;
  $('view-open').hidden = !s.setup || s.locked;
  $('lock').hidden = !s.setup || s.locked;
  if (!s.setup) return;
  const who = `${s.username} at ${s.bank}`;
  if (s.locked) {
    $('locked-who').textContent = who;
    $('password').focus();
    return;
  }
  $('open-who').textContent = who;
  $('balance-tokens').textContent = String(s.balance.tokens);
  $('balance-money').textContent = money(s.balance.tokens, s.unitValue, s.currency);
  $('tab-cost').textContent = `${s.tabCost} token${s.tabCost === 1 ? '' : 's'}`;
  $('pending').textContent = s.pending ? `${s.pending} payment${s.pending === 1 ? '' : 's'} awaiting an answer.` : '';
  const list = $('history');
  list.replaceChildren(...s.history.map((/** @type {any} */ h) => entry(h, s)));
  $('history-empty').hidden = s.history.length > 0;
  const l = s.limits;
  if (document.activeElement?.closest('#limits-form') == null) {
    $('per-article').value = l.perArticle;
    $('per-site-day').value = l.perSiteDay;
    $('ask-new-site').checked = l.askNewSite;
    $('idle-minutes').value = l.idleMinutes;
  }
}

/** @param {any} h @param {any} s */
function entry(h, s) {
  const li = document.createElement('li');
  const refused = h.kind.startsWith('refused');
  li.className = refused ? 'refused' : h.kind;
  const what = document.createElement('span');
  what.className = 'what';
  const labels = /** @type {Record<string,string>} */ ({bought: 'Bought tokens', recovered: 'Restored', returned: 'Returned'});
  what.textContent = labels[h.kind] ?? `${h.host ?? ''}${h.product ?? ''}`;
  what.title = h.note || what.textContent;
  const tokens = document.createElement('span');
  tokens.className = 'tokens';
  const sign = h.kind === 'paid' ? '−' : h.kind === 'bought' ? '+' : '';
  tokens.textContent = refused ? 'not paid' : `${sign}${h.tokens ?? 0}`;
  const sub = document.createElement('span');
  sub.className = 'sub';
  sub.textContent = `${when(h.time)} · ${h.kind === 'paid' ? money(h.tokens ?? 0, s.unitValue, s.currency) : h.note || h.kind}`;
  li.append(what, tokens, sub);
  return li;
}

/**
 * act: a form of the popup; what fn says shows, and the popup is drawn again.
 * @param {HTMLFormElement} form @param {() => Promise<string|void>} fn
 */
function act(form, fn) {
  onSubmit(form, async () => {
    say('message', '');
    try {
      const said = await fn();
      if (said) say('message', said);
      await render();
    } catch (err) {
      if (/** @type {any} */ (err).code === 'login_needed') $('buy-login').hidden = false;
      throw err;
    }
  });
}

act($('unlock-form'), async () => {
  await call('unlock', {password: $('password').value});
  $('password').value = '';
});
act($('buy-form'), async () => {
  const r = await call('buy', {tokens: Number($('buy-tokens').value), password: $('buy-password').value || undefined});
  $('buy-password').value = '';
  $('buy-login').hidden = true;
  return r.message;
});
act($('limits-form'), async () => {
  const r = await call('limits', {
    perArticle: Number($('per-article').value), perSiteDay: Number($('per-site-day').value),
    askNewSite: $('ask-new-site').checked, idleMinutes: Number($('idle-minutes').value),
  });
  return r.message;
});
$('lock').addEventListener('click', async () => {
  await call('lock');
  await render();
});
$('open-setup').addEventListener('click', () => {
  chrome.tabs.create({url: chrome.runtime.getURL('welcome.html')});
  window.close();
});

render().catch((e) => say('error', e.message));
