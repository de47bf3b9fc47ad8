// The reader's account at the bank: setting the wallet up (a new account,
// an existing one, or a restore after losing the browser), buying tokens,
// limits, and what the popup shows.

import {b64decode, b64encode} from './lib/b64.js';
import {importSeed, newSeed} from './lib/crypto.js';
import {openKeys, parseCertificate} from './lib/payword.js';
import * as W from './lib/wallet.js';
import {Bank, BankError, isTrustedChannel, normalizeBank} from './bank.js';
import * as store from './store.js';

const now = () => Math.floor(Date.now() / 1000);

/** Tokens one purchase may ask for (the agent's own maximum is 1,000,000). */
const maxBuy = 100000;

/**
 * setup creates the wallet: log in (or register) at the bank, pin its keys,
 * make the wallet's key, restore or buy, and seal it all under the password.
 * @param {{bank: string, username: string, password: string, mode: 'register'|'login'|'restore', tokens: number}} f
 * @returns {Promise<{message: string}>}
 */
export async function setup(f) {
  if (await store.meta()) throw new Error('this browser already has a wallet');
  const base = normalizeBank(f.bank);
  if (!f.username || !f.password) throw new Error('enter your username and password');
  const tokens = bounded(f.tokens, 0, maxBuy, 'the number of tokens');
  if (!isTrustedChannel(base)) throw new Error('use your bank’s https address: its keys cannot be trusted over plain http');
  const bank = new Bank(base);
  const announced = await bank.keys();
  const keys = await openKeys(announced.signed, null, {bootstrap: true});
  if (f.mode === 'register') await bank.register(f.username, f.password);
  const session = await bank.login(f.username, f.password);
  bank.token = session.token;
  const seed = newSeed();
  const {publicKey} = await importSeed(seed);
  const pk = b64encode(publicKey);
  let st = W.newWallet({bank: base, user: session.user, username: f.username, seed: b64encode(seed),
    keys: Object.fromEntries([...keys].map(([kid, k]) => [kid, b64encode(k)])), unitValue: 1, currency: 'EUR'});
  st.session = {token: session.token, expires: session.expires_at};
  const said = [];
  if (f.mode === 'restore') {
    const rec = await bank.recover(pk);
    if (rec.bundle) st = await W.addBundle(st, rec.bundle, publicKey, {revokeHeld: true});
    said.push('Your old wallet’s certificates are revoked.');
    if (rec.pending_credit) {
      said.push(`${rec.pending_credit} minor units come back to your bank balance at ${new Date(rec.credit_at * 1000).toLocaleTimeString()}.`);
    }
  }
  if (tokens > 0) {
    try {
      st = await W.addBundle(st, await bank.buy(tokens, pk, 'ext-' + crypto.randomUUID()), publicKey, {revokeHeld: false});
      said.push(`Bought ${tokens} tokens.`);
    } catch (e) {
      if (!(e instanceof BankError)) throw e;
      said.push(`No tokens bought: ${e.message}.`);
    }
  }
  fixCurrency(st);
  await store.create(f.password, st);
  return {message: said.join(' ') || 'Your wallet is ready.'};
}

/**
 * buy buys tokens from the reader's bank balance.
 * @param {number} n @param {string} [password] to log in again when the session expired
 */
export function buy(n, password) {
  const tokens = bounded(n, 1, maxBuy, 'the number of tokens');
  return store.serialize(async () => {
    let st = await store.current({touch: true});
    if (!st) throw new Error('the wallet is locked');
    const bank = new Bank(st.bank, st.session?.token);
    if (!st.session || st.session.expires - now() < 60) {
      if (!password) throw new BankError('log in again: enter your password', 'login_needed', 401);
      const s = await bank.login(st.username, password);
      bank.token = s.token;
      st = {...st, session: {token: s.token, expires: s.expires_at}};
    }
    const {publicKey} = await importSeed(b64decode(st.seed));
    let bundle;
    try {
      bundle = await bank.buy(tokens, b64encode(publicKey), 'ext-' + crypto.randomUUID());
    } catch (e) {
      if (e instanceof BankError && e.status === 401) {
        await store.save({...st, session: null});
        throw new BankError('log in again: enter your password', 'login_needed', 401);
      }
      throw e;
    }
    st = await W.addBundle(st, bundle, publicKey, {revokeHeld: false});
    fixCurrency(st);
    await store.save(st);
    return {message: `Bought ${bundle.tokens} tokens.`};
  });
}

/**
 * setLimits changes the reader's limits.
 * @param {{perArticle: number, perSiteDay: number, askNewSite: boolean, idleMinutes: number}} l
 */
export function setLimits(l) {
  const limits = {
    perArticle: bounded(l.perArticle, 1, 1024, 'the limit per article'),
    perSiteDay: bounded(l.perSiteDay, 1, 100000, 'the daily limit per site'),
    askNewSite: Boolean(l.askNewSite),
    idleMinutes: bounded(l.idleMinutes, 1, 1440, 'the idle time'),
  };
  return store.serialize(async () => {
    const st = await store.current({touch: true});
    if (!st) throw new Error('the wallet is locked');
    await store.save({...st, limits});
    return {message: 'Limits saved.'};
  });
}

/**
 * status is what the popup shows.
 * @param {number|undefined} tabId the reader's current tab
 */
export async function status(tabId) {
  const m = await store.meta();
  if (!m) return {setup: false};
  const st = await store.current();
  if (!st) return {setup: true, locked: true, bank: m.bank, username: m.username};
  const {timings = [], tabcost = {}} = await chrome.storage.session.get(['timings', 'tabcost']);
  return {
    setup: true, locked: false, bank: st.bank, username: st.username,
    balance: W.balance(st, now()), unitValue: st.unitValue, currency: st.currency,
    history: W.history(st, 50), limits: st.limits, pending: st.pending.length,
    tabCost: tabId === undefined ? 0 : tabcost[tabId] ?? 0, timings,
  };
}

/** The certificates' unit value and currency are the wallet's money. @param {any} st */
function fixCurrency(st) {
  const c = st.certs[st.certs.length - 1];
  if (!c) return;
  const cert = parseCertificate(b64decode(c.raw));
  st.unitValue = cert.unitValue;
  st.currency = cert.currency;
}

/** @param {unknown} n @param {number} lo @param {number} hi @param {string} what */
function bounded(n, lo, hi, what) {
  const v = Number(n);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${what} must be a whole number from ${lo} to ${hi}`);
  return v;
}
