// Every vector of docs/protocol.md §10, read from the document at test time.

import assert from 'node:assert/strict';
import test from 'node:test';
import { b64decode, b64encode, hex, unhex } from '../lib/b64.js';
import { importSeed, sha256 } from '../lib/crypto.js';
import {
  anchors, canonicalOrigin, hashN, makeBinding, merklePath, merkleRoot, openKeys, openSigned, parseBinding,
  parseCertificate, parseChallenge, paymentHeader, paymentJSON, segmentTop, tokenAt, verifyCertificate, verifyPath,
} from '../lib/payword.js';
import { sha256Sync } from '../lib/sha256.js';
import { vectors } from './helpers.js';

const V = vectors();
const K = unhex(V.k_hex);
const S = 5;
const m = 8;
const NOW = 1796083200;
const agentKeys = new Map([['agent-2026', b64decode(V.agent_public)]]);

test('seeds give the vector public keys (PKCS#8 wrapping)', async () => {
  assert.equal(b64encode((await importSeed(unhex(V.user_seed_hex))).publicKey), V.user_public);
  assert.equal(b64encode((await importSeed(unhex(V.agent_seed_hex))).publicKey), V.agent_public);
});

test('segment tops, chain of segment 2, anchors', async () => {
  for (let g = 0; g < S; g++) assert.equal(b64encode(await segmentTop(K, g)), V.segment_tops[g]);
  for (let i = 0; i <= m; i++) assert.equal(b64encode(await tokenAt(K, 2, i, m)), V.chain_of_segment_2[i], `w[2][${i}]`);
  assert.deepEqual((await anchors(K, S, m)).map(b64encode), V.anchors);
  const top = b64decode(V.segment_tops[2]);
  assert.equal(b64encode(await hashN(top, 5)), V.chain_of_segment_2[3]);
});

test('Merkle root, path of segment 2, and its verification', async () => {
  const as = V.anchors.map(b64decode);
  assert.equal(b64encode(await merkleRoot(as)), V.merkle_root);
  const path = await merklePath(as, 2);
  assert.equal(b64encode(path), b64encode(Uint8Array.from(V.merkle_path_of_segment_2.flatMap((n) => [...b64decode(n)]))));
  const root = b64decode(V.merkle_root);
  assert.equal(await verifyPath(as[2], 2, S, path, root), true);
  for (let g = 0; g < S; g++) assert.equal(await verifyPath(as[g], g, S, await merklePath(as, g), root), true, `leaf ${g}`);
  assert.equal(await verifyPath(as[1], 2, S, path, root), false, 'another anchor');
  assert.equal(await verifyPath(as[2], 3, S, path, root), false, 'another index');
  assert.equal(await verifyPath(as[2], 2, S, path.subarray(0, 64), root), false, 'a node short');
  assert.equal(await verifyPath(as[2], 2, S, new Uint8Array([...path, ...path.subarray(0, 32)]), root), false, 'a node too many');
  assert.equal(await verifyPath(as[2], 2, S, path.subarray(0, 95), root), false, 'not whole nodes');
  assert.equal(await verifyPath(as[2], 2, S, new Uint8Array(21 * 32), root), false, 'over 20 nodes');
  assert.equal(await verifyPath(as[0], 0, 1, new Uint8Array(0), await merkleRoot([as[0]])), true, 'S = 1');
});

test('certificate parses to its fields and verifies', async () => {
  const raw = b64decode(V.certificate);
  const c = parseCertificate(raw);
  const f = V.certificate_fields;
  assert.equal(c.serial, f.serial);
  assert.equal(c.issuedAt, f.issued_at);
  assert.equal(c.expiresAt, f.expires_at);
  assert.equal(c.segments, f.segments);
  assert.equal(c.segmentLen, f.segment_len);
  assert.equal(c.unitValue, f.unit_value);
  assert.equal(c.currency, f.currency);
  assert.equal(c.scope, f.scope);
  assert.equal(c.userId, f.user_id);
  assert.equal(c.kid, f.kid);
  assert.equal(b64encode(c.userKey), V.user_public);
  assert.equal(b64encode(c.root), V.merkle_root);
  assert.equal(c.signed.length + c.signature.length, raw.length);
  await verifyCertificate(c, agentKeys, NOW);
});

test('binding of segment 2 to daily-planet', async () => {
  const { privateKey } = await importSeed(unhex(V.user_seed_hex));
  const b = await makeBinding({ serial: V.certificate_fields.serial, segment: 2, time: NOW, vendor: 'daily-planet' }, privateKey);
  assert.equal(b64encode(b), V.binding_of_segment_2_to_daily_planet);
  const p = parseBinding(b);
  assert.deepEqual([p.serial, p.segment, p.time, p.vendor], [V.certificate_fields.serial, 2, NOW, 'daily-planet']);
});

test('payment JSON and header, byte for byte', () => {
  const pay = {
    cert: b64decode(V.certificate),
    seg: 2,
    anchor: b64decode(V.anchors[2]),
    path: Uint8Array.from(V.merkle_path_of_segment_2.flatMap((n) => [...b64decode(n)])),
    bind: b64decode(V.binding_of_segment_2_to_daily_planet),
    i: 3,
    tok: b64decode(V.chain_of_segment_2[3]),
    p: 2,
    vendor: 'daily-planet',
    product: '/articles/moon-landing',
  };
  assert.equal(paymentJSON(pay), V.payment_json);
  assert.equal(paymentHeader(pay), V.payment_header);
  assert.equal(paymentJSON({ ...pay, product: '/tags/<b>&"q"\\' }), V.payment_json_of_product_with_escapes);
  // What the vendor checks: H^3(tok) = a[2].
  assert.equal(b64encode(sha256Sync(sha256Sync(sha256Sync(pay.tok)))), V.anchors[2]);
});

test('challenge header', () => {
  assert.deepEqual(parseChallenge(V.challenge_header), {
    realm: 'The Daily Planet', vendor: 'daily-planet', price: 2, product: '/articles/moon-landing', agent: 'https://bank.example.com',
  });
});

test('signed CRL page and key announcement', async () => {
  const crl = await openSigned(V.signed_crl, agentKeys);
  assert.equal(crl.type, 'crl');
  assert.equal(crl.entries[0].serial, V.certificate_fields.serial);
  assert.equal(crl.entries[0].reason, 'double-spend');
  const pinned = await openKeys(V.signed_keys, agentKeys);
  assert.deepEqual([...pinned.keys()], ['agent-2026']);
  const boot = await openKeys(V.signed_keys, null, { bootstrap: true });
  assert.equal(b64encode(boot.get('agent-2026')), V.agent_public);
  await assert.rejects(openKeys(V.signed_keys, null), /no pinned agent key/);
});

test('the synchronous SHA-256 agrees with WebCrypto', async () => {
  for (const n of [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000]) {
    const data = globalThis.crypto.getRandomValues(new Uint8Array(n));
    assert.equal(hex(sha256Sync(data)), hex(await sha256(data)), `${n} bytes`);
  }
});

test('canonical origins of page URLs', () => {
  const cases = [
    ['https://News.Example.com/articles/x?y=1#z', 'https://news.example.com'],
    ['https://news.example.com:443/', 'https://news.example.com'],
    ['http://news.example.com:80/', 'http://news.example.com'],
    ['http://127.0.0.1:8080/a', 'http://127.0.0.1:8080'],
    ['http://[::1]:8443/', 'http://[::1]:8443'],
    ['https://user:pw@example.com/', 'https://example.com'],
    ['https://bücher.example/', 'https://xn--bcher-kva.example'],
    ['ftp://example.com/', null],
    ['file:///etc/passwd', null],
    ['https://under_score.example/', null],
    ['not a url', null],
  ];
  for (const [url, want] of cases) assert.equal(canonicalOrigin(url), want, url);
});
