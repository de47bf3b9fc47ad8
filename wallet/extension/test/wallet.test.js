// The wallet's rules: choosing, reserving and settling payments, limits,
// and the bundles it accepts. Certificates are signed here with the vector
// agent key, for the vector user key.

import assert from 'node:assert/strict';
import test from 'node:test';
import { b64decode, b64encode, equalBytes, hex } from '../lib/b64.js';
import { verify } from '../lib/crypto.js';
import { anchors, hashN, merkleRoot, parseBinding, parseCertificate, verifyPath } from '../lib/payword.js';
import {
  MAX_HISTORY, MAX_RECEIPTS, RESHOW_RECEIPT, NoTokensError, PendingError, addBundle, balance, checkLimits, choose, history,
  keepReceipt, newWallet, receiptFor, recordRefusal, reserve, settle,
} from '../lib/wallet.js';
import { agentKey, signCertificate, userKey } from './helpers.js';

const NOW = 1796083200;
const PAGE = { product: '/articles/x', url: 'https://news.example.com/articles/x', host: 'news.example.com' };

let serialCount = 0;

/**
 * A bundle as the agent's POST /v1/certificates answers it.
 * @param {{S?: number, m?: number, scope?: string, expiresAt?: number, userPub?: Uint8Array, K?: Uint8Array, rootK?: Uint8Array}} o
 *   rootK: the K whose root the certificate carries (another than K: a lying bundle)
 */
async function bundle({ S = 4, m = 8, scope = '*', expiresAt = NOW + 30 * 86400, userPub, K, rootK } = {}) {
  K ??= globalThis.crypto.getRandomValues(new Uint8Array(32));
  const serial = hex(Uint8Array.of(++serialCount, ...new Uint8Array(15)));
  const root = await merkleRoot(await anchors(rootK ?? K, S, m));
  const raw = await signCertificate({
    serial, issuedAt: NOW - 3600, expiresAt, segments: S, segmentLen: m, unitValue: 2, userKey: userPub ?? (await userKey()).publicKey,
    root, kid: 'agent-2026', userId: 'u:alice', scope, currency: 'EUR',
  }, (await agentKey()).privateKey);
  return { serial, certificate: b64encode(raw), secret: b64encode(K), segments: S, segment_len: m, tokens: S * m, cost: 2 * S * m, currency: 'EUR', expires_at: expiresAt };
}

async function wallet(...bundles) {
  const user = await userKey();
  let st = newWallet({ bank: 'http://127.0.0.1:8491', user: 'u:alice', username: 'alice', seed: new Uint8Array(32).map((_, i) => 0x41 + i), keys: new Map([['agent-2026', (await agentKey()).publicKey]]), unitValue: 2, currency: 'EUR' });
  for (const b of bundles) st = await addBundle(st, b, user.publicKey, { now: NOW });
  return st;
}

/** @returns {any} the payment JSON of an Authorization header */
function payment(header) {
  assert.match(header, /^PayWord [A-Za-z0-9_-]+$/);
  return JSON.parse(new TextDecoder().decode(b64decode(header.slice('PayWord '.length))));
}

async function pay(st, vendor, price, now = NOW) {
  const r = await reserve(st, { vendor, price, ...PAGE }, now);
  return { ...r, json: payment(r.pending.header) };
}

test('addBundle keeps a good certificate and refuses lying ones', async () => {
  const b = await bundle();
  const st = await wallet(b);
  assert.equal(st.certs.length, 1);
  assert.equal(st.certs[0].anchors.length, 4);
  assert.equal(st.history[0].kind, 'bought');
  assert.equal(st.history[0].tokens, 32);
  const user = await userKey();
  await assert.rejects(addBundle(st, b, user.publicKey), /held already/);
  await assert.rejects(addBundle(st, await bundle({ rootK: new Uint8Array(32) }), user.publicKey), /secret does not match/);
  await assert.rejects(addBundle(st, { ...b, secret: b64encode(new Uint8Array(31)) }, user.publicKey), /secret does not match/);
  await assert.rejects(addBundle(st, await bundle({ userPub: new Uint8Array(32).fill(5) }), user.publicKey), /another key/);
  await assert.rejects(addBundle(st, { ...b, serial: 'ff'.repeat(16) }, user.publicKey), /another certificate/);
  const again = await addBundle(st, await bundle(), user.publicKey, { revokeHeld: true });
  assert.deepEqual(again.certs.map((c) => c.revoked), [true, false]);
  assert.equal(st.certs[0].revoked, false, 'the input state is not changed');
});

test('contiguous spending: each payment verifies against the certificate and the last one', async () => {
  let st = await wallet(await bundle());
  const cert = parseCertificate(b64decode(st.certs[0].raw));
  const user = await userKey();
  let prevI = 0;
  let prevTok = b64decode(st.certs[0].anchors[0]);
  for (const price of [3, 2, 1, 2]) {
    const before = structuredClone(st);
    const { state, pending, json } = await pay(st, 'daily-planet', price);
    assert.deepEqual(st, before, 'reserve does not change its input');
    assert.equal(json.seg, 0);
    assert.equal(json.i, prevI + price, 'i grows by the price');
    assert.equal(json.p, price);
    assert.equal(pending.i, json.i);
    const tok = b64decode(json.tok);
    assert.ok(equalBytes(await hashN(tok, price), prevTok), 'H^p(tok) is the previous token');
    assert.ok(await verifyPath(b64decode(json.anchor), 0, cert.segments, b64decode(json.path), cert.root));
    const bind = parseBinding(b64decode(json.bind));
    assert.deepEqual([bind.serial, bind.segment, bind.vendor, bind.time], [cert.serial, 0, 'daily-planet', NOW]);
    assert.ok(await verify(user.publicKey, bind.signature, bind.signed));
    st = settle(state, pending.id, 'paid', NOW);
    prevI = json.i;
    prevTok = tok;
  }
  assert.equal(st.pending.length, 0);
  assert.equal(st.sites['news.example.com'], true);
  assert.deepEqual(history(st, 2).map((e) => [e.kind, e.tokens]), [['paid', 2], ['paid', 1]]);
  // 8 - 8 = 0 left in segment 0: the next payment binds segment 1.
  const { json } = await pay(st, 'daily-planet', 1);
  assert.deepEqual([json.seg, json.i], [1, 1]);
});

test('a segment is never bound to two vendors', async () => {
  let st = await wallet(await bundle({ S: 4, m: 8 }));
  const segOf = {};
  for (const [vendor, price] of [['a', 5], ['b', 2], ['a', 2], ['b', 6], ['a', 3], ['c', 1]]) {
    const { state, pending, json } = await pay(st, vendor, price);
    st = settle(state, pending.id, 'paid', NOW);
    segOf[json.seg] ??= vendor;
    assert.equal(segOf[json.seg], vendor, `segment ${json.seg} paid ${vendor}`);
    assert.equal(parseBinding(b64decode(st.certs[0].segs[json.seg].bind)).vendor, segOf[json.seg]);
  }
  // a: 5+2 in 0, then 3 does not fit (1 left): a fresh segment 2; b: 2+6 in 1; c: 3.
  assert.deepEqual(segOf, { 0: 'a', 1: 'b', 2: 'a', 3: 'c' });
  assert.equal(choose(st, 'd', 1, NOW), null, 'no fresh segment left for a fourth vendor');
  assert.deepEqual(choose(st, 'a', 1, NOW), { serial: st.certs[0].serial, seg: 0, fresh: false }, 'the lowest g with room');
  await assert.rejects(pay(st, 'd', 1), NoTokensError);
});

test('refused returns the tokens, replay and voided do not', async () => {
  let st = await wallet(await bundle());
  let r = await pay(st, 'v', 3);
  st = settle(r.state, r.pending.id, 'refused', NOW, 'refused with status 403');
  assert.equal(st.certs[0].segs[0].spent, 0);
  assert.equal(st.history.at(-1).kind, 'refused');
  r = await pay(st, 'v', 3);
  assert.equal(r.json.i, 3, 'the same tokens again');
  assert.equal(r.json.bind, payment((await pay(st, 'v', 1)).pending.header).bind, 'the segment keeps its binding');
  st = settle(r.state, r.pending.id, 'replay', NOW);
  assert.equal(st.certs[0].segs[0].spent, 3);
  assert.match(st.history.at(-1).note, /already spent/);
  r = await pay(st, 'v', 2);
  assert.equal(r.json.i, 5);
  st = settle(r.state, r.pending.id, 'voided', NOW);
  assert.equal(st.certs[0].segs[0].spent, 5);
  assert.match(st.history.at(-1).note, /^voided/);
  assert.throws(() => settle(st, 999, 'paid', NOW), /no pending payment/);
  r = await pay(st, 'v', 1);
  assert.throws(() => settle(r.state, r.pending.id, 'lost', NOW), /unknown outcome/);
});

test('a pending payment blocks its vendor only', async () => {
  let st = await wallet(await bundle());
  const a = await pay(st, 'a', 2);
  st = a.state;
  await assert.rejects(pay(st, 'a', 1), PendingError);
  const b = await pay(st, 'b', 1);
  assert.equal(b.json.seg, 1);
  st = settle(b.state, b.pending.id, 'paid', NOW);
  st = settle(st, a.pending.id, 'paid', NOW);
  assert.equal((await pay(st, 'a', 1)).json.i, 3);
});

test('choose: which certificates may pay', async () => {
  const late = await bundle({ expiresAt: NOW + 86400 * 60 });
  const soon = await bundle({ expiresAt: NOW + 86400 });
  const dying = await bundle({ expiresAt: NOW + 60 });
  const specific = await bundle({ scope: 'only-me', expiresAt: NOW + 3600 });
  const short = await bundle({ m: 2, expiresAt: NOW + 600 });
  let st = await wallet(late, soon, dying, specific, short);
  assert.equal(choose(st, 'x', 1, NOW).serial, short.serial, 'the certificate expiring first');
  assert.equal(choose(st, 'x', 3, NOW).serial, soon.serial, 'm below the price, and within a minute of expiry, are skipped');
  assert.equal(choose(st, 'only-me', 3, NOW).serial, specific.serial, 'a specific certificate pays its vendor');
  st = { ...st, certs: st.certs.map((c) => ({ ...c, revoked: c.serial === soon.serial })) };
  assert.equal(choose(st, 'x', 3, NOW).serial, late.serial, 'revoked is skipped');
  assert.equal(choose(st, 'x', 9, NOW), null, 'no m fits');
  const r = await pay(st, 'only-me', 3);
  assert.equal(r.json.cert, specific.certificate);
  assert.equal('bind' in r.json, false, 'a specific certificate sends no binding');
  assert.equal(r.state.certs.find((c) => c.serial === specific.serial).segs[0].bind, '');
});

test('balance', async () => {
  let st = await wallet(await bundle({ S: 4, m: 8 }), await bundle({ S: 2, m: 8, expiresAt: NOW + 100 }));
  assert.deepEqual(balance(st, NOW), { tokens: 48, money: 96, currency: 'EUR' });
  const r = await pay(st, 'v', 3);
  st = settle(r.state, r.pending.id, 'paid', NOW);
  assert.equal(balance(st, NOW).tokens, 45);
  assert.equal(balance(st, NOW + 100).tokens, 32, 'the expired certificate, which paid first, counts nothing');
});

test('limits: each reason', async () => {
  let st = await wallet(await bundle({ S: 8, m: 8 }));
  st = { ...st, limits: { perArticle: 5, perSiteDay: 10, askNewSite: false, idleMinutes: 30 } };
  const host = 'news.example.com';
  assert.equal(checkLimits(st, { host, vendor: 'a', price: 5 }, NOW), null);
  assert.equal(checkLimits(st, { host, vendor: 'a', price: 6 }, NOW), 'per-article');
  for (const vendor of ['a', 'b']) {
    const r = await pay(st, vendor, 3);
    st = settle(r.state, r.pending.id, vendor === 'a' ? 'paid' : 'refused', NOW);
  }
  assert.equal(checkLimits(st, { host, vendor: 'a', price: 4 }, NOW), null, '3 + 3 + 4');
  assert.equal(checkLimits(st, { host, vendor: 'a', price: 5 }, NOW), 'per-site-day', 'refused payments count');
  assert.equal(checkLimits(st, { host: 'other.example', vendor: 'a', price: 5 }, NOW), null, 'per site');
  assert.equal(checkLimits(st, { host, vendor: 'a', price: 5 }, NOW + 86400), null, 'a day later');
  st = recordRefusal(st, { host, vendor: 'c', product: '/x', price: 1, kind: 'refused-origin' }, NOW);
  assert.equal(checkLimits(st, { host, vendor: 'd', price: 1 }, NOW), 'too-many-vendors', 'a fourth vendor');
  assert.equal(checkLimits(st, { host, vendor: 'd', price: 9 }, NOW), 'too-many-vendors', 'before the askable reasons');
  assert.equal(checkLimits(st, { host, vendor: 'c', price: 4 }, NOW), 'per-site-day', 'a known vendor: 3 + 3 + 1 + 4 > 10');
  const limited = recordRefusal(st, { host: 'h2', vendor: 'e', product: '/x', price: 9, kind: 'refused-limit' }, NOW);
  assert.equal(checkLimits(limited, { host: 'h2', vendor: 'f', price: 5 }, NOW), null, 'refused-limit does not count');
  const tight = { ...st, limits: { ...st.limits, perSiteDay: 4 } };
  const pending = await pay(tight, 'a', 3, NOW);
  assert.equal(checkLimits(tight, { host, vendor: 'a', price: 2 }, NOW + 86400), null);
  assert.equal(checkLimits(pending.state, { host, vendor: 'a', price: 2 }, NOW + 86400), 'per-site-day', 'unsettled payments count, whatever their age');
  st = { ...st, limits: { ...st.limits, askNewSite: true } };
  assert.equal(checkLimits(st, { host: 'new.example', vendor: 'a', price: 1 }, NOW), 'new-site');
  assert.equal(checkLimits(st, { host, vendor: 'a', price: 1 }, NOW), null, 'paid there before');
  assert.throws(() => recordRefusal(st, { host, vendor: 'a', product: '/x', price: 1, kind: 'paid' }, NOW), /refusal is/);
});

test('history is bounded and newest first', async () => {
  let st = await wallet();
  for (let k = 0; k < MAX_HISTORY + 5; k++) st = recordRefusal(st, { host: 'h', vendor: 'v', product: '/p', price: 1, kind: 'refused-limit', note: String(k) }, NOW + k);
  assert.equal(st.history.length, MAX_HISTORY);
  assert.deepEqual(history(st, 3).map((e) => e.note), [String(MAX_HISTORY + 4), String(MAX_HISTORY + 3), String(MAX_HISTORY + 2)]);
  assert.equal(history(st, 5000).length, MAX_HISTORY);
});

test('reserve refuses bad requests', async () => {
  const st = await wallet(await bundle());
  for (const [name, req] of Object.entries({
    'bad vendor': { vendor: 'a b', price: 1 }, 'bad product': { vendor: 'a', price: 1, product: '/a b' },
    'price 0': { vendor: 'a', price: 0 }, 'price 1025': { vendor: 'a', price: 1025 }, 'price 1.5': { vendor: 'a', price: 1.5 },
  })) await assert.rejects(reserve(st, { ...PAGE, ...req }, NOW), Error, name);
});

test('a kept grant is shown again at most once a minute, until it expires, and the newest are kept', () => {
  const page = { origin: 'https://news.example.com', vendor: 'daily-planet', product: '/articles/x' };
  let st = { receipts: [] };
  st = keepReceipt(st, { ...page, receipt: 'a.b.c', exp: NOW + 600 }, NOW);
  assert.equal(receiptFor(st, { ...page, vendor: 'other' }, NOW), null, 'another vendor');
  assert.equal(receiptFor(st, { ...page, origin: 'https://evil.example' }, NOW), null, 'another site');
  assert.equal(receiptFor(st, page, NOW + 600), null, 'expired');
  const got = receiptFor(st, page, NOW);
  assert.equal(got?.receipt, 'a.b.c');
  assert.equal(receiptFor(got.state, page, NOW + RESHOW_RECEIPT - 1), null, 'shown again at once');
  assert.equal(receiptFor(got.state, page, NOW + RESHOW_RECEIPT)?.receipt, 'a.b.c', 'shown again a minute later');
  assert.equal(st.receipts[0].shown, undefined, 'the state given is not changed');

  // A newer grant for the same page replaces the old; expired ones go.
  st = keepReceipt(st, { ...page, product: '/old', receipt: 'o.l.d', exp: NOW + 1 }, NOW);
  st = keepReceipt(st, { ...page, receipt: 'n.e.w', exp: NOW + 120 }, NOW + 5);
  assert.deepEqual(st.receipts.map((r) => r.receipt), ['n.e.w']);
  for (let i = 0; i < MAX_RECEIPTS + 10; i++) st = keepReceipt(st, { ...page, product: `/p/${i}`, receipt: `r.${i}.x`, exp: NOW + 999 }, NOW);
  assert.equal(st.receipts.length, MAX_RECEIPTS);
  assert.equal(st.receipts.at(-1).product, `/p/${MAX_RECEIPTS + 9}`);
});
