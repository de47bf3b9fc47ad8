// The wallet's state and the rules that change it, without I/O: the
// caller passes the time (Unix seconds) and persists what comes back.
// No function changes the state it is given; each returns a new one.
//
// The rules are the Go wallet's (wallet/spend.go, docs/protocol.md §7
// "Choosing tokens" and §9.1): contiguous spending, a segment bound to one
// vendor for good, one unsettled payment per vendor, caps per article and
// per site and day.

import { b64decode, b64encode, equalBytes } from './b64.js';
import { makeBinding } from './binding.js';
import { GENERIC_SCOPE, parseCertificate } from './certificate.js';
import { anchors, tokenAt } from './chain.js';
import { importSeed } from './crypto.js';
import { isId, isProductId } from './ids.js';
import { merklePath, merkleRoot } from './merkle.js';
import { paymentHeader } from './payment.js';

export const MAX_HISTORY = 1000;
/** How many unexpired grants the wallet keeps (keepReceipt): each is
 * about 700 bytes of the sealed state, written before every payment. */
export const MAX_RECEIPTS = 100;
// Distinct vendors one site may name in 24 hours (§9.1): each ties up a segment.
export const MAX_VENDORS_PER_SITE_DAY = 3;
// A certificate expiring within this many seconds is not spent: it could
// expire while the payment travels.
const EXPIRY_MARGIN = 60;
const DAY = 24 * 60 * 60;
const MAX_PRICE = 1024;
// Tokens of one bundle: deriving its anchors hashes each once (about 1 µs
// apiece), and its anchors are kept in the state. The agent sells at most
// 1,000,000 by default.
const MAX_BUNDLE_TOKENS = 1 << 21;
// History kinds that count toward a site's daily cap and vendor count.
const COUNTED = new Set(['paid', 'refused', 'refused-origin']);
const REFUSAL_KINDS = new Set(['refused-origin', 'refused-limit', 'refused-bank']);

export const DEFAULT_LIMITS = Object.freeze({ perArticle: 20, perSiteDay: 200, askNewSite: false, idleMinutes: 30 });

/** A payment to this vendor is unsettled: it must be sent again and settled first. */
export class PendingError extends Error {
  /** @param {string} vendor */
  constructor(vendor) {
    super(`an earlier payment to ${vendor} is still unsettled; it is sent again before anything else is spent there`);
    this.name = 'PendingError';
    this.vendor = vendor;
  }
}

/** No certificate can pay this price at this vendor. */
export class NoTokensError extends Error {
  constructor() {
    super('not enough tokens for this payment: buy more');
    this.name = 'NoTokensError';
  }
}

/**
 * @typedef {object} Pending
 * @property {number} id
 * @property {string} serial
 * @property {number} seg
 * @property {number} i
 * @property {number} p
 * @property {string} vendor
 * @property {string} product
 * @property {string} url
 * @property {string} host
 * @property {string} header the Authorization value, sent unchanged on every retry
 * @property {number} created
 */

/**
 * @param {{bank: string, user: string, username: string, seed: Uint8Array|string,
 *   keys: Map<string, Uint8Array>|Record<string, string>, unitValue: number, currency: string}} w
 *   seed raw or b64; keys raw by kid (a Map) or b64 by kid
 * @returns {any} a wallet holding no certificates
 */
export function newWallet({ bank, user, username, seed, keys, unitValue, currency }) {
  const seedB64 = seed instanceof Uint8Array ? b64encode(seed) : seed;
  if (typeof seedB64 !== 'string' || b64decode(seedB64).length !== 32) throw new Error('the user seed is 32 bytes');
  /** @type {Record<string, string>} */
  const keyMap = {};
  const entries = keys instanceof Map ? [...keys] : Object.entries(keys ?? {});
  for (const [kid, pub] of entries) {
    const raw = pub instanceof Uint8Array ? pub : b64decode(pub);
    if (!isId(kid) || raw.length !== 32) throw new Error(`agent key ${JSON.stringify(kid)} is not a 32-byte key`);
    keyMap[kid] = b64encode(raw);
  }
  return {
    v: 1, bank, user, username, seed: seedB64, keys: keyMap, unitValue, currency,
    certs: [], pending: [], history: [], limits: { ...DEFAULT_LIMITS }, sites: {}, seq: 0,
  };
}

/** @param {any} st @param {object} entry appends to the history, keeping the newest MAX_HISTORY */
function record(st, entry) {
  st.history.push(entry);
  if (st.history.length > MAX_HISTORY) st.history.splice(0, st.history.length - MAX_HISTORY);
}

/**
 * Takes a certificate bought from the bank, after checking that it is
 * made out to our key and that its K really generates its root.
 * @param {any} st
 * @param {{serial: string, certificate: string, secret: string, segments: number, segment_len: number}} bundle
 *   the agent's POST /v1/certificates answer
 * @param {Uint8Array} publicKey the wallet's Ed25519 public key
 * @param {{revokeHeld?: boolean, now?: number}} [opts] revokeHeld: stop spending every
 *   certificate held before (after a recovery the bank revoked them); now: the history's time
 * @returns {Promise<any>} the new state
 */
export async function addBundle(st, bundle, publicKey, { revokeHeld = false, now = Math.floor(Date.now() / 1000) } = {}) {
  const raw = b64decode(bundle.certificate);
  const c = parseCertificate(raw);
  if (typeof bundle.serial === 'string' && bundle.serial.toLowerCase() !== c.serial) throw new Error('the bundle names another certificate');
  if (!equalBytes(c.userKey, publicKey)) throw new Error('the certificate is made out to another key');
  const K = b64decode(bundle.secret);
  if (K.length !== 32) throw new Error('the certificate secret does not match the certificate');
  if (c.segments * c.segmentLen > MAX_BUNDLE_TOKENS) throw new Error(`a certificate of ${c.segments * c.segmentLen} tokens is more than this wallet holds (${MAX_BUNDLE_TOKENS})`);
  if (st.certs.some((x) => x.serial === c.serial)) throw new Error(`certificate ${c.serial} is held already`);
  const as = await anchors(K, c.segments, c.segmentLen);
  if (!equalBytes(await merkleRoot(as), c.root)) throw new Error('the certificate secret does not match the certificate');
  const out = structuredClone(st);
  if (revokeHeld) for (const held of out.certs) held.revoked = true;
  out.certs.push({
    serial: c.serial, raw: b64encode(raw), K: b64encode(K), segments: c.segments, segmentLen: c.segmentLen,
    expiresAt: c.expiresAt, scope: c.scope, anchors: as.map(b64encode), revoked: false, nextFresh: 0, segs: {},
  });
  record(out, { time: now, kind: 'bought', host: '', vendor: '', product: '', tokens: c.segments * c.segmentLen, note: c.serial });
  return out;
}

/**
 * The segment to pay price from at vendor: one bound to vendor with room,
 * in the certificate that expires first, lowest g first; else the next
 * fresh segment of the first certificate by expiry that has one.
 * @param {any} st
 * @param {string} vendor
 * @param {number} price
 * @param {number} now
 * @returns {{serial: string, seg: number, fresh: boolean}|null} null when nothing can pay
 */
export function choose(st, vendor, price, now) {
  const usable = st.certs
    .filter((c) => !c.revoked && now + EXPIRY_MARGIN < c.expiresAt && (c.scope === GENERIC_SCOPE || c.scope === vendor) && price <= c.segmentLen)
    .sort((a, b) => a.expiresAt - b.expiresAt); // stable: ties keep the order bought
  for (const c of usable) {
    for (const g of Object.keys(c.segs).map(Number).sort((a, b) => a - b)) {
      const seg = c.segs[g];
      if (seg.vendor === vendor && c.segmentLen - seg.spent >= price) return { serial: c.serial, seg: g, fresh: false };
    }
  }
  for (const c of usable) if (c.nextFresh < c.segments) return { serial: c.serial, seg: c.nextFresh, fresh: true };
  return null;
}

/**
 * Chooses tokens and builds the payment. The caller persists the new state
 * before sending pending.header, so that a lost answer is sent again
 * unchanged rather than paid twice.
 * @param {any} st
 * @param {{vendor: string, product: string, price: number, url: string, host: string}} req
 * @param {number} now
 * @returns {Promise<{state: any, pending: Pending}>}
 * @throws {PendingError} when a payment to vendor is unsettled
 * @throws {NoTokensError} when nothing can pay
 */
export async function reserve(st, { vendor, product, price, url, host }, now) {
  if (!isId(vendor)) throw new Error('invalid vendor id');
  if (!isProductId(product)) throw new Error('invalid product id');
  if (!Number.isInteger(price) || price < 1 || price > MAX_PRICE) throw new Error(`price must be 1..${MAX_PRICE} tokens`);
  if (st.pending.some((p) => p.vendor === vendor)) throw new PendingError(vendor);
  const choice = choose(st, vendor, price, now);
  if (!choice) throw new NoTokensError();
  const out = structuredClone(st);
  const c = out.certs.find((x) => x.serial === choice.serial);
  const g = choice.seg;
  if (choice.fresh) {
    // A generic certificate's segment is bound to the vendor by a signed
    // binding; a specific one needs none (and sends none).
    let bind = '';
    if (c.scope === GENERIC_SCOPE) {
      const { privateKey } = await importSeed(b64decode(out.seed));
      bind = b64encode(await makeBinding({ serial: c.serial, segment: g, time: now, vendor }, privateKey));
    }
    c.segs[g] = { vendor, spent: 0, bind };
    c.nextFresh = Math.max(c.nextFresh, g + 1);
  }
  const seg = c.segs[g];
  seg.spent += price;
  const as = c.anchors.map(b64decode);
  const header = paymentHeader({
    cert: b64decode(c.raw), seg: g, anchor: as[g], path: await merklePath(as, g),
    bind: seg.bind ? b64decode(seg.bind) : null, i: seg.spent, tok: await tokenAt(b64decode(c.K), g, seg.spent, c.segmentLen),
    p: price, vendor, product,
  });
  out.seq += 1;
  /** @type {Pending} */
  const pending = { id: out.seq, serial: c.serial, seg: g, i: seg.spent, p: price, vendor, product, url, host, header, created: now };
  out.pending.push(pending);
  return { state: out, pending: { ...pending } };
}

/**
 * Records how the vendor answered pending payment id.
 * @param {any} st
 * @param {number} id
 * @param {'paid'|'refused'|'replay'|'voided'} outcome paid: accepted; refused: nothing was
 *   spent, the tokens return to their segment (which stays bound to the vendor); replay: the
 *   vendor says they were spent already; voided: spent, and the bank credits their value back
 * @param {number} now
 * @param {string} [note]
 * @returns {any} the new state
 */
export function settle(st, id, outcome, now, note = '') {
  const idx = st.pending.findIndex((p) => p.id === id);
  if (idx < 0) throw new Error(`no pending payment ${id}`);
  const out = structuredClone(st);
  const [p] = out.pending.splice(idx, 1);
  let kind = 'refused';
  switch (outcome) {
    case 'paid':
      kind = 'paid';
      out.sites[p.host] = true;
      break;
    case 'refused': {
      // Only the segment's last payment can be given back: tokens are
      // spent in order, and later ones may be out already.
      const seg = out.certs.find((c) => c.serial === p.serial)?.segs[p.seg];
      if (seg && seg.spent === p.i) seg.spent -= p.p;
      break;
    }
    case 'replay':
      note ||= 'the vendor said the tokens were already spent';
      break;
    case 'voided':
      note = 'voided: the site did not serve the page; your bank credits the tokens’ value back' + (note ? ` (${note})` : '');
      break;
    default:
      throw new Error(`unknown outcome ${JSON.stringify(outcome)}`);
  }
  record(out, { time: now, kind, host: p.host, vendor: p.vendor, product: p.product, tokens: p.p, note });
  return out;
}

/**
 * keepReceipt remembers the grant a paid page came with until it expires:
 * should the browser lose its cookie (killed before it wrote it, or the
 * reader cleared it), the wallet shows the grant again rather than paying
 * a second time (receiptFor). The newest MAX_RECEIPTS are kept.
 * @param {any} st
 * @param {{origin: string, vendor: string, product: string, receipt: string, exp: number}} r
 * @param {number} now
 */
export function keepReceipt(st, r, now) {
  const out = structuredClone(st);
  const kept = (out.receipts ?? []).filter((/** @type {any} */ x) =>
    x.exp > now && !(x.origin === r.origin && x.vendor === r.vendor && x.product === r.product));
  if (r.exp > now) kept.push({ origin: r.origin, vendor: r.vendor, product: r.product, receipt: r.receipt, exp: r.exp });
  out.receipts = kept.slice(-MAX_RECEIPTS);
  return out;
}

/** Seconds before a kept grant is shown again: a 402 right after showing
 * it means the gateway refused it, and the page is paid as usual. */
export const RESHOW_RECEIPT = 60;

/**
 * receiptFor finds the unexpired grant kept for a challenge's product on
 * origin, if any, and notes that it is shown now.
 * @param {any} st @param {{origin: string, vendor: string, product: string}} q @param {number} now
 * @returns {{state: any, receipt: string} | null}
 */
export function receiptFor(st, q, now) {
  const i = (st.receipts ?? []).findIndex((/** @type {any} */ x) =>
    x.exp > now && x.origin === q.origin && x.vendor === q.vendor && x.product === q.product &&
    !(now - (x.shown ?? -Infinity) < RESHOW_RECEIPT));
  if (i < 0) return null;
  const out = structuredClone(st);
  out.receipts[i].shown = now;
  return { state: out, receipt: out.receipts[i].receipt };
}

/**
 * @param {any} st
 * @param {number} now
 * @returns {{tokens: number, money: number, currency: string}} what is left to spend in live
 *   certificates: fresh segments and what is left in bound ones
 */
export function balance(st, now) {
  let tokens = 0;
  for (const c of st.certs) {
    if (c.revoked || now >= c.expiresAt) continue;
    tokens += (c.segments - c.nextFresh) * c.segmentLen;
    for (const seg of Object.values(c.segs)) tokens += c.segmentLen - seg.spent;
  }
  return { tokens, money: tokens * st.unitValue, currency: st.currency };
}

/**
 * Checks a challenge against the reader's limits, before any origin check
 * or token choice. Payments made, refused by the vendor, unsettled, or
 * refused for the site's origin in the last 24 hours count.
 * @param {any} st
 * @param {{host: string, vendor: string, price: number}} req
 * @param {number} now
 * @returns {null|'too-many-vendors'|'per-article'|'per-site-day'|'new-site'} null when within
 *   limits. "too-many-vendors" comes first: it is a hard refusal, which no
 *   answer of the reader to the others may skip.
 */
export function checkLimits(st, { host, vendor, price }, now) {
  const since = now - DAY;
  let spent = 0;
  const vendors = new Set();
  for (const p of st.pending) {
    if (p.host === host) {
      spent += p.p;
      vendors.add(p.vendor);
    }
  }
  for (const e of st.history) {
    if (e.time > since && e.host === host && COUNTED.has(e.kind)) {
      spent += e.tokens;
      vendors.add(e.vendor);
    }
  }
  const limits = st.limits;
  if (!vendors.has(vendor) && vendors.size >= MAX_VENDORS_PER_SITE_DAY) return 'too-many-vendors';
  if (price > limits.perArticle) return 'per-article';
  if (limits.perSiteDay > 0 && spent + price > limits.perSiteDay) return 'per-site-day';
  if (limits.askNewSite && !st.sites[host]) return 'new-site';
  return null;
}

/**
 * Records a challenge the wallet refused. "refused-origin" (the vendor
 * did not publish the site) counts toward the site's cap and vendors;
 * "refused-limit" is the reader's record only.
 * @param {any} st
 * @param {{host: string, vendor: string, product: string, price: number, kind: string, note?: string}} r
 * @param {number} now
 * @returns {any} the new state
 */
export function recordRefusal(st, { host, vendor, product, price, kind, note = '' }, now) {
  if (!REFUSAL_KINDS.has(kind)) throw new Error(`a refusal is ${[...REFUSAL_KINDS].join(' or ')}, not ${JSON.stringify(kind)}`);
  const out = structuredClone(st);
  record(out, { time: now, kind, host, vendor, product, tokens: price, note });
  return out;
}

/**
 * @param {any} st
 * @param {number} [limit]
 * @returns {object[]} the newest limit history entries, newest first
 */
export function history(st, limit = 50) {
  const n = Math.max(0, Math.min(limit, MAX_HISTORY));
  return n === 0 ? [] : st.history.slice(-n).reverse();
}
