// The wallet's service worker: it watches top-level navigations for 402
// answers and pays them (pay.js), and answers the extension's own pages.
// Listeners are registered synchronously at the top, as a worker that
// Chromium stopped is started again by the event it missed.

import {parseChallenges} from './lib/payword.js';
import * as account from './account.js';
import * as pay from './pay.js';
import * as store from './store.js';

const pages = {urls: ['http://*/*', 'https://*/*'], types: /** @type {chrome.webRequest.ResourceType[]} */ (['main_frame'])};

chrome.webRequest.onHeadersReceived.addListener((d) => {
  // Only the tab's own top frame: never an iframe, a subresource, or a
  // request of the extension itself (tabId -1).
  if (d.tabId < 0 || d.frameId !== 0) return;
  const headers = new Map((d.responseHeaders ?? []).map((h) => [h.name.toLowerCase(), h.value ?? '']));
  const challenges = (d.responseHeaders ?? [])
    .filter((h) => h.name.toLowerCase() === 'www-authenticate')
    .map((h) => h.value ?? '');
  pay.onAnswer(d.tabId, d.url, d.statusCode, headers).then((carried) => {
    if (carried || d.statusCode !== 402) return;
    const ch = parseChallenges(challenges);
    if (ch) return pay.on402(d.tabId, d.url, ch, d.requestId);
  }).catch((e) => console.warn('hashwall: payment:', e.message));
}, pages, ['responseHeaders']);

chrome.webRequest.onErrorOccurred.addListener((d) => {
  if (d.tabId < 0 || d.frameId !== 0) return;
  pay.onLost(d.tabId, d.url, d.requestId).catch((e) => console.warn('hashwall: lost answer:', e.message));
}, pages);

chrome.tabs.onUpdated.addListener((tabId, info, tab) => {
  if (info.status) pay.showCost(tabId, tab.url).catch(() => {});
});

chrome.tabs.onRemoved.addListener((tabId) => {
  pay.forgetTab(tabId).catch(() => {});
});

// The idle lock also holds while no page is paid or opened.
chrome.alarms.create('idle-lock', {periodInMinutes: 1});
chrome.alarms.onAlarm.addListener(() => {
  store.current().catch(() => {});
});

/** @type {Record<string, (msg: any, sender: chrome.runtime.MessageSender) => Promise<any>>} */
const ops = {
  status: (m) => account.status(m.tabId),
  setup: (m) => account.setup(m),
  unlock: async (m) => {
    const t = performance.now();
    await store.unlock(String(m.password ?? ''));
    const ms = performance.now() - t;
    pay.resendAll().catch(() => {});
    return {ms};
  },
  lock: () => store.lock(),
  buy: (m) => account.buy(m.tokens, m.password),
  limits: (m) => account.setLimits(m),
  ask: async (m) => {
    const ask = await pay.getAsk(String(m.id));
    if (!ask) throw new Error('this question has expired: open the article again');
    return {ask, status: await account.status(undefined)};
  },
  answer: (m) => pay.answer(String(m.id), Boolean(m.yes)),
};

chrome.runtime.onMessage.addListener((msg, sender, reply) => {
  // Only the extension's own pages talk to it: it has no content scripts
  // and declares no externally_connectable, and this checks it again.
  if (sender.id !== chrome.runtime.id || !sender.url?.startsWith(chrome.runtime.getURL(''))) return false;
  const op = ops[msg?.op];
  if (!op) return false;
  op(msg, sender).then(
    (result) => reply({ok: true, result}),
    (e) => reply({ok: false, error: e?.message ?? String(e), code: e?.code ?? ''}),
  );
  return true;
});

// A worker started while the wallet is unlocked sends the journal first.
pay.resendAll().catch(() => {});
