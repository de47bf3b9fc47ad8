// The wallet at rest and unlocked. At rest it is one AES-GCM blob in
// chrome.storage.local under a key derived from the reader's password
// (PBKDF2-SHA256, 600,000 iterations); only the bank's address and the
// username sit beside it in clear, for the unlock screen. Unlocked, the raw
// key lives in chrome.storage.session (memory only, trusted contexts only,
// gone when the browser closes) and the opened state in this worker's
// memory. Every change is sealed and written before it is acted on.

import {b64decode, b64encode} from './lib/b64.js';
import {deriveKey, open, seal} from './lib/vault.js';

export const iterations = 600000;

/** @typedef {{bank: string, username: string, salt: string, iterations: number}} Meta */

/** @type {{state: any, key: Uint8Array} | null} */
let cache = null;

let queue = Promise.resolve();

/**
 * serialize runs fn after every change queued before it: the wallet's
 * changes never interleave (two tabs paying at once).
 * @template T @param {() => Promise<T>} fn @returns {Promise<T>}
 */
export function serialize(fn) {
  const run = queue.then(fn);
  queue = run.catch(() => {});
  return run;
}

/** @returns {Promise<Meta | null>} */
export async function meta() {
  return (await chrome.storage.local.get('meta')).meta ?? null;
}

/**
 * create seals a new wallet under password and leaves it unlocked.
 * @param {string} password @param {any} state
 */
export async function create(password, state) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await deriveKey(password, salt, iterations);
  const vault = await seal(key, state);
  /** @type {Meta} */
  const m = {bank: state.bank, username: state.username, salt: b64encode(salt), iterations};
  await chrome.storage.local.set({meta: m, vault});
  await remember(key, state);
}

/**
 * unlock opens the wallet with password; throws on a wrong one.
 * @param {string} password @returns {Promise<any>} the state
 */
export async function unlock(password) {
  const m = await meta();
  if (!m) throw new Error('there is no wallet to unlock: set one up first');
  const {vault} = await chrome.storage.local.get('vault');
  const key = await deriveKey(password, b64decode(m.salt), m.iterations);
  const state = await open(key, vault);
  await remember(key, state);
  return state;
}

/** @param {Uint8Array} key @param {any} state */
async function remember(key, state) {
  cache = {state, key};
  await chrome.storage.session.set({unlock: {key: b64encode(key), lastUsed: Date.now(), idleMinutes: state.limits.idleMinutes}});
}

export async function lock() {
  cache = null;
  await chrome.storage.session.remove('unlock');
}

/**
 * current is the unlocked state, or null when locked (never unlocked in
 * this browser session, locked by the reader, or idle too long).
 * @param {{touch?: boolean}} [opts] touch: count this as the reader's use
 */
export async function current(opts = {}) {
  const {unlock: u} = await chrome.storage.session.get('unlock');
  if (!u) {
    cache = null;
    return null;
  }
  if (Date.now() - u.lastUsed > u.idleMinutes * 60000) {
    await lock();
    return null;
  }
  if (!cache) {
    const key = b64decode(u.key);
    const {vault} = await chrome.storage.local.get('vault');
    cache = {state: await open(key, vault), key};
  }
  if (opts.touch) await chrome.storage.session.set({unlock: {...u, lastUsed: Date.now()}});
  return cache.state;
}

/**
 * save seals state and writes it; it is the wallet's state once the write
 * has returned, and not before.
 * @param {any} state
 */
export async function save(state) {
  if (!cache) throw new Error('the wallet is locked');
  const vault = await seal(cache.key, state);
  await chrome.storage.local.set({vault});
  const idleChanged = state.limits.idleMinutes !== cache.state.limits.idleMinutes;
  cache.state = state;
  if (idleChanged) {
    const {unlock: u} = await chrome.storage.session.get('unlock');
    if (u) await chrome.storage.session.set({unlock: {...u, idleMinutes: state.limits.idleMinutes}});
  }
}
