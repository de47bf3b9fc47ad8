// Paying as the reader reads. A top-level navigation answered 402 with a
// PayWord challenge is checked (the bank, the limits, the vendor's sites as
// the bank publishes them), paid from the wallet, journalled, and sent on
// the page's own next request: a declarativeNetRequest session rule adds
// the Authorization header to that one URL in that one tab, and the tab is
// sent there again. The answer to that request settles the payment and
// removes the rule. A payment whose answer was lost stays in the journal and
// is sent again, with the same bytes, before anything else is spent at that
// vendor (the gateway answers a repeat with the same grant).

import {b64decode, b64encode, hex} from './lib/b64.js';
import {sha256} from './lib/crypto.js';
import {canonicalOrigin, openKeys, openOrigins} from './lib/payword.js';
import * as W from './lib/wallet.js';
import {Bank} from './bank.js';
import * as store from './store.js';

const now = () => Math.floor(Date.now() / 1000);

/** How many payments' timings are kept, for the popup and the tests. */
const maxTimings = 50;

/**
 * @typedef {{realm?: string, vendor: string, price: number, product: string, agent?: string}} Challenge
 * @typedef {{id: string, tabId: number, url: string, host: string, challenge: Challenge, reason: string, created: number}} Ask
 */

// Session records (chrome.storage.session: gone with the browser).
// inflight: pending id → {tabId, url, rule}: a payment on its way in a tab.
// asks: id → Ask. declined: "tabId url" → expiry (ms). tabcost: tabId → tokens.

/** @param {string} name */
async function sessionMap(name) {
  return (await chrome.storage.session.get(name))[name] ?? {};
}

/** @param {string} name @param {object} value */
async function setSessionMap(name, value) {
  await chrome.storage.session.set({[name]: value});
}

/**
 * dropRecords removes the records of a session map that drop selects.
 * @param {string} name @param {(key: string, value: any) => boolean} drop
 * @returns {Promise<[string, any][]>} the records removed
 */
async function dropRecords(name, drop) {
  const m = await sessionMap(name);
  const gone = Object.entries(m).filter(([k, v]) => drop(k, v));
  for (const [k] of gone) delete m[k];
  if (gone.length) await setSessionMap(name, m);
  return gone;
}

/**
 * on402 handles a top-level navigation answered 402.
 * @param {number} tabId @param {string} url @param {Challenge} challenge
 * @param {string} requestId the 402's request, which the paid one cancels
 */
export function on402(tabId, url, challenge, requestId) {
  return store.serialize(async () => {
    const started = performance.now();
    const declined = await sessionMap('declined');
    const dkey = tabId + ' ' + url;
    if (declined[dkey] > Date.now()) {
      delete declined[dkey];
      await setSessionMap('declined', declined);
      return; // the reader said no: the paywall's page stays
    }
    const st = await store.current();
    if (!st) return askReader(tabId, url, challenge, 'locked');
    return decide(st, tabId, url, challenge, false, started, requestId);
  });
}

/**
 * decide checks a challenge and pays it, or asks the reader first.
 * confirmed: the reader said yes to this very payment.
 * @param {any} st @param {number} tabId @param {string} url @param {Challenge} ch
 * @param {boolean} confirmed @param {number} started @param {string} replaced
 */
async function decide(st, tabId, url, ch, confirmed, started, replaced) {
  const host = new URL(url).host;
  const t = now();
  const refusal = (/** @type {string} */ kind, /** @type {string} */ why) =>
    refuse(st, tabId, {url, host, vendor: ch.vendor, product: ch.product, price: ch.price, kind}, why);
  if (!sameBank(ch.agent, st.bank)) return refusal('refused-bank', 'the paywall names another bank than yours');
  const origin = canonicalOrigin(url);
  // Bought before, and the browser lost the grant's cookie (killed before
  // it wrote it, or cleared): the wallet's copy opens the page. Shown at
  // most once a minute, so that a grant the gateway refuses is paid anew.
  const kept = origin ? W.receiptFor(st, {origin, vendor: ch.vendor, product: ch.product}, t) : null;
  if (kept) {
    await store.save(kept.state);
    try {
      await keepGrant(url, kept.receipt);
      return chrome.tabs.update(tabId, {url});
    } catch {
      st = kept.state; // not a grant after all: pay as usual
    }
  }
  const over = W.checkLimits(st, {host, vendor: ch.vendor, price: ch.price}, t);
  if (over === 'too-many-vendors') return refusal('refused-limit', 'this site named too many vendors today');
  if (over && !confirmed) return askReader(tabId, url, ch, over);
  if (!origin || !(await vendorOrigins(st, ch.vendor)).includes(origin)) {
    return refusal('refused-origin', `${origin ?? url} is not a site of ${ch.vendor} as your bank publishes them`);
  }
  if (st.pending.some((/** @type {any} */ p) => p.vendor === ch.vendor)) {
    const mine = st.pending.filter((/** @type {any} */ p) => p.url === url).map((/** @type {any} */ p) => p.id);
    /** @type {Map<number, string>} */
    const outcomes = new Map();
    st = await resend(st, ch.vendor, outcomes);
    if (st.pending.some((/** @type {any} */ p) => p.vendor === ch.vendor)) return badge(tabId, '…');
    // A payment sent again may have bought this very page: its grant
    // cookie now opens it.
    if (mine.some((id) => outcomes.get(id) === 'paid')) return chrome.tabs.update(tabId, {url});
  }
  const work = performance.now();
  let reserved;
  try {
    reserved = await W.reserve(st, {vendor: ch.vendor, product: ch.product, price: ch.price, url, host}, t);
  } catch (e) {
    if (e instanceof W.NoTokensError) return askReader(tabId, url, ch, 'no-tokens');
    throw e;
  }
  const chosen = performance.now() - work;
  await store.save(reserved.state); // the journal: on disk before the payment leaves
  const worked = performance.now() - work;
  const p = reserved.pending;
  const rule = ruleId(p.id);
  await chrome.declarativeNetRequest.updateSessionRules({
    removeRuleIds: [rule],
    addRules: [{
      id: rule, priority: 1,
      action: {type: 'modifyHeaders', requestHeaders: [{header: 'Authorization', operation: 'set', value: p.header}]},
      condition: {regexFilter: '^' + escapeRegExp(url) + '$', resourceTypes: ['main_frame'], tabIds: [tabId]},
    }],
  });
  const inflight = await sessionMap('inflight');
  inflight[p.id] = {tabId, url, rule, replaced};
  await setSessionMap('inflight', inflight);
  await chrome.tabs.update(tabId, {url});
  await timing(worked, chosen, performance.now() - started);
}

/**
 * onAnswer settles a payment carried by the navigation that got this
 * answer, if any. Returns whether it was one.
 * @param {number} tabId @param {string} url @param {number} status
 * @param {Map<string,string>} headers lower-case names
 */
export function onAnswer(tabId, url, status, headers) {
  return store.serialize(async () => {
    const id = await takeInflight(tabId, url, '');
    if (id === undefined) return false;
    const st = await store.current();
    if (!st) return true; // locked meanwhile: the journal keeps it for the unlock
    const outcome = classify(status, headers);
    await settle(st, Number(id), outcome, tabId, said(status, headers), headers.get('payment-receipt') ?? '');
    return true;
  });
}

/**
 * onLost: the navigation carrying a payment failed (the reader stopped it,
 * the connection broke). The payment is sent again by the worker itself.
 * The 402's own navigation, cancelled by the paid one, is no loss.
 * @param {number} tabId @param {string} url @param {string} requestId
 */
export function onLost(tabId, url, requestId) {
  return store.serialize(async () => {
    if ((await takeInflight(tabId, url, requestId)) === undefined) return;
    const st = await store.current();
    if (st) await resend(st);
  });
}

/**
 * takeInflight ends the journey of the payment on its way to url in the
 * tab (not one whose 402 was the request `replaced`): its rule goes.
 * @param {number} tabId @param {string} url @param {string} replaced
 * @returns {Promise<string|undefined>} the pending payment's id
 */
async function takeInflight(tabId, url, replaced) {
  const [hit] = await dropInflight((f) => f.tabId === tabId && f.url === url && (!replaced || f.replaced !== replaced));
  return hit;
}

/**
 * dropInflight ends the journeys that match: their records and header
 * rules go. @param {(f: any) => boolean} match @returns {Promise<string[]>} their ids
 */
async function dropInflight(match) {
  const gone = await dropRecords('inflight', (_, f) => match(f));
  if (gone.length) await chrome.declarativeNetRequest.updateSessionRules({removeRuleIds: gone.map(([, f]) => f.rule)});
  return gone.map(([k]) => k);
}

/**
 * classify reads what the gateway did with a payment (docs/protocol.md §7,
 * "The vendor's answer").
 * @param {number} status @param {Map<string,string>} headers
 * @returns {'paid'|'refused'|'replay'|'voided'|'retry'}
 */
export function classify(status, headers) {
  const code = headers.get('payment-error') ?? '';
  if (code === 'unavailable' || code === 'crl_stale') return 'retry';
  if (status >= 200 && status < 300 && headers.has('payment-receipt')) return 'paid';
  if (code === 'replay') return 'replay';
  if (code === 'voided') return 'voided';
  if (code) return 'refused';
  return 'retry'; // no word on the payment: it did not arrive, or the answer was not the gateway's
}

/**
 * said is the gateway's word on a payment, for the history.
 * @param {number} status @param {{get(name: string): string|null|undefined}} headers
 */
function said(status, headers) {
  const code = headers.get('payment-error');
  return code ? `${status} ${code}` : String(status);
}

/**
 * settle records a payment's outcome; 'retry' leaves it in the journal.
 * @param {any} st @param {number} id @param {string} outcome @param {number} [tabId]
 * @param {string} [note] @param {string} [receipt] the grant a paid answer came with
 */
async function settle(st, id, outcome, tabId, note = '', receipt = '') {
  if (outcome === 'retry') return st;
  const p = st.pending.find((/** @type {any} */ q) => q.id === id);
  if (!p) return st;
  let next = W.settle(st, id, outcome, now(), note) ?? st;
  const claims = outcome === 'paid' ? grantClaims(receipt) : null;
  const origin = canonicalOrigin(p.url);
  if (claims && origin) {
    next = W.keepReceipt(next, {origin, vendor: p.vendor, product: p.product, receipt, exp: Number(claims.exp)}, now());
  }
  await store.save(next);
  if (outcome === 'paid' && tabId !== undefined && tabId >= 0) {
    const cost = await sessionMap('tabcost');
    cost[tabId] = (cost[tabId] ?? 0) + p.p;
    await setSessionMap('tabcost', cost);
    await badge(tabId, String(cost[tabId]));
  }
  return next;
}

/**
 * resend sends journalled payments again (all, or one vendor's) from the
 * worker and settles those that got an answer, noting each one's outcome
 * by its id in outcomes.
 * @param {any} st @param {string} [vendor] @param {Map<number, string>} [outcomes]
 */
export async function resend(st, vendor, outcomes) {
  for (const p of [...st.pending]) {
    if (vendor !== undefined && p.vendor !== vendor) continue;
    let outcome = 'retry';
    let note = '';
    let receipt = '';
    try {
      // Without the reader's cookies, so that the answer speaks of this
      // payment alone: with a grant the gateway would not look at it.
      const resp = await send(p);
      // A redirect's header is hidden (opaque): the answer was no success,
      // and the tokens may have been spent; they are kept as spent.
      outcome = resp.type === 'opaqueredirect' ? 'voided' : classify(resp.status, resp.headers);
      note = resp.type === 'opaqueredirect' ? 'redirected' : said(resp.status, resp.headers);
      // Paid: the browser never saw the answer's grant cookie; the wallet
      // sets it from the receipt, so that the page opens without paying.
      if (outcome === 'paid') {
        receipt = resp.headers.get('payment-receipt') ?? '';
        await keepGrant(p.url, receipt).catch((e) => {
          note += '; the grant cookie was not kept: ' + e.message;
        });
      }
    } catch {
      // unreachable: it stays in the journal
    }
    outcomes?.set(p.id, outcome);
    st = await settle(st, p.id, outcome, undefined, note, receipt);
  }
  return st;
}

/**
 * send sends a journalled payment from the worker, and drops the page.
 * @param {any} p
 */
async function send(p) {
  const resp = await fetch(p.url, {
    headers: {Authorization: p.header, Accept: 'text/html'}, credentials: 'omit', cache: 'no-store', redirect: 'manual',
  });
  await resp.body?.cancel();
  return resp;
}

/**
 * keepGrant sets the grant cookie the gateway would have set with the
 * receipt (docs/protocol.md §7 "The vendor's answer"): HttpOnly, Lax, the
 * grant's lifetime, the product's path (a prefix's without its slash).
 * @param {string} url @param {string} receipt the grant (a JWT)
 */
async function keepGrant(url, receipt) {
  const claims = grantClaims(receipt);
  if (!claims) throw new Error('no grant in the answer');
  const product = String(claims.product ?? '');
  const u = new URL(url);
  let name = 'hw_grant';
  if (product.includes('?')) name += '_' + hex((await sha256(new TextEncoder().encode(product))).slice(0, 8));
  let path = u.pathname;
  const prefix = product.replace(/\/+$/, '');
  if (claims.scope === 'prefix' && path.toLowerCase().startsWith(prefix.toLowerCase())) path = prefix || '/';
  await chrome.cookies.set({url, name, value: receipt, path, httpOnly: true, sameSite: 'lax',
    secure: u.protocol === 'https:', expirationDate: Number(claims.exp)});
}

/**
 * grantClaims reads a grant's claims (not its signature: the gateway that
 * made it checks that), or null if it is not one.
 * @param {string} receipt @returns {any}
 */
function grantClaims(receipt) {
  const parts = receipt.split('.');
  if (parts.length !== 3 || receipt.length > 4096) return null;
  try {
    const claims = JSON.parse(new TextDecoder().decode(b64decode(parts[1])));
    return claims && typeof claims === 'object' && Number.isSafeInteger(claims.exp) ? claims : null;
  } catch {
    return null;
  }
}

/** resendAll is the worker's start, or an unlock: the journal first. */
export function resendAll() {
  return store.serialize(async () => {
    const st = await store.current();
    if (st && st.pending.length) await resend(st);
  });
}

/**
 * refuse records a payment the wallet would not make; nothing was spent.
 * @param {any} st @param {number} tabId @param {any} what @param {string} why
 */
async function refuse(st, tabId, what, why) {
  await store.save(W.recordRefusal(st, {...what, note: why}, now()) ?? st);
  const refused = await sessionMap('refused');
  refused[tabId] = what.url;
  await setSessionMap('refused', refused);
  await badge(tabId, '!');
  await chrome.action.setTitle({tabId, title: 'Hashwall did not pay: ' + why});
}

/**
 * askReader shows the reader the extension's own question page in the tab.
 * @param {number} tabId @param {string} url @param {Challenge} challenge @param {string} reason
 */
async function askReader(tabId, url, challenge, reason) {
  const asks = await sessionMap('asks');
  for (const [k, a] of Object.entries(asks)) {
    if (Date.now() - a.created > 3600000) delete asks[k];
  }
  const id = crypto.randomUUID();
  /** @type {Ask} */
  const ask = {id, tabId, url, host: new URL(url).host, challenge, reason, created: Date.now()};
  asks[id] = ask;
  await setSessionMap('asks', asks);
  // In the query, not the fragment: a question that follows another in the
  // same tab (unlocked, then over a limit) must load a new page.
  await chrome.tabs.update(tabId, {url: chrome.runtime.getURL('ask.html') + '?id=' + id});
}

/** @param {string} id */
export async function getAsk(id) {
  return (await sessionMap('asks'))[id] ?? null;
}

/**
 * answer is the reader's yes or no to a question.
 * @param {string} id @param {boolean} yes
 */
export function answer(id, yes) {
  return store.serialize(async () => {
    const asks = await sessionMap('asks');
    const ask = asks[id];
    if (!ask) throw new Error('this question has expired: open the article again');
    delete asks[id];
    await setSessionMap('asks', asks);
    if (!yes) {
      const declined = await sessionMap('declined');
      for (const [k, until] of Object.entries(declined)) {
        if (until <= Date.now()) delete declined[k];
      }
      declined[ask.tabId + ' ' + ask.url] = Date.now() + 60000;
      await setSessionMap('declined', declined);
      await chrome.tabs.update(ask.tabId, {url: ask.url});
      return;
    }
    const st = await store.current({touch: true});
    if (!st) throw new Error('the wallet is locked');
    await decide(st, ask.tabId, ask.url, ask.challenge, ask.reason !== 'locked', performance.now(), '');
  });
}

/**
 * vendorOrigins: the vendor's sites as the wallet's own bank publishes
 * them, verified with the bank's pinned keys; cached in memory.
 * @param {any} st @param {string} vendor @returns {Promise<string[]>}
 */
async function vendorOrigins(st, vendor) {
  const hit = originCache.get(vendor);
  if (hit && hit.until > Date.now()) return hit.origins;
  const doc = await new Bank(st.bank).origins(vendor);
  /** @type {string[]} */
  let origins = [];
  let ttl = 60000; // an unknown vendor is asked again in a minute
  if (doc) {
    let keys = pinned(st);
    try {
      origins = await openOrigins(doc, keys, vendor, now());
    } catch (e) {
      if (!(typeof doc.kid === 'string' && !keys.has(doc.kid))) throw e;
      keys = await refreshKeys(st);
      origins = await openOrigins(doc, keys, vendor, now());
    }
    ttl = 300000;
  }
  if (originCache.size >= 256) originCache.delete(originCache.keys().next().value);
  originCache.set(vendor, {origins, until: Date.now() + ttl});
  return origins;
}

/** @type {Map<string, {origins: string[], until: number}>} */
const originCache = new Map();
let keysFetched = 0;

/** @param {any} st @returns {Map<string, Uint8Array>} */
function pinned(st) {
  return new Map(Object.entries(st.keys).map(([kid, k]) => [kid, b64decode(/** @type {string} */ (k))]));
}

/**
 * refreshKeys learns the bank's new keys from an announcement signed by a
 * key already pinned, at most every 10 minutes; a pinned key never changes.
 * @param {any} st
 */
async function refreshKeys(st) {
  const keys = pinned(st);
  if (Date.now() - keysFetched < 600000) return keys;
  keysFetched = Date.now();
  const got = await new Bank(st.bank).keys();
  const learned = await openKeys(got.signed, keys, {bootstrap: false});
  // In place: the caller goes on with this state and saves it again.
  for (const [kid, k] of learned) {
    if (!(kid in st.keys)) st.keys[kid] = b64encode(k);
  }
  await store.save(st);
  return pinned(st);
}

/** @param {string|undefined} agent @param {string} bank */
export function sameBank(agent, bank) {
  if (!agent) return false;
  return agent.replace(/\/+$/, '') === bank;
}

/** @param {number} id */
function ruleId(id) {
  return (id % 1000000000) + 1;
}

/** @param {string} s */
function escapeRegExp(s) {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** @param {number} tabId @param {string} text */
async function badge(tabId, text) {
  if (tabId < 0) return;
  try {
    await chrome.action.setBadgeBackgroundColor({tabId, color: text === '!' ? '#b3261e' : '#1d5c96'});
    await chrome.action.setBadgeText({tabId, text});
  } catch {
    // the tab is gone
  }
}

/**
 * timing keeps what a payment took in this worker: its own work (choosing
 * tokens, hashing, signing, journalling) and all of it from the 402 to the
 * tab's next request (the checks and the rule included).
 * @param {number} work @param {number} chosen the work before journalling @param {number} total
 */
async function timing(work, chosen, total) {
  const {timings = []} = await chrome.storage.session.get('timings');
  const ms = (/** @type {number} */ x) => Math.round(x * 10) / 10;
  timings.push({work: ms(work), chosen: ms(chosen), total: ms(total)});
  await chrome.storage.session.set({timings: timings.slice(-maxTimings)});
}

/**
 * showCost puts the tab's cost back on the badge: Chromium clears a tab's
 * badge when the tab moves to another page. A page the wallet refused to
 * pay keeps its '!'.
 * @param {number} tabId @param {string|undefined} url
 */
export async function showCost(tabId, url) {
  const refused = (await sessionMap('refused'))[tabId];
  if (refused && refused === url) return badge(tabId, '!');
  const cost = (await sessionMap('tabcost'))[tabId];
  if (cost) await badge(tabId, String(cost));
}

/** @param {number} tabId */
export function forgetTab(tabId) {
  return store.serialize(async () => {
    // A payment on its way in the closed tab stays in the journal; its
    // header rule and the tab's records go with the tab.
    if ((await dropInflight((f) => f.tabId === tabId)).length) {
      // Sent now, it settles as soon as the gateway answers (the same
      // grant if the closed tab's request had reached it).
      const st = await store.current();
      if (st) await resend(st);
    }
    await dropRecords('tabcost', (k) => k === String(tabId));
    await dropRecords('refused', (k) => k === String(tabId));
    await dropRecords('asks', (_, a) => a.tabId === tabId);
    await dropRecords('declined', (k) => k.startsWith(tabId + ' '));
  });
}
