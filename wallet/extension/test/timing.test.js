// How long the hot paths take in Node: tokenAt for m = 128 (every
// payment), anchors for S = 79, m = 128 (once per certificate), and a whole
// reserve(). Printed, and bounded loosely so that a regression to one
// WebCrypto round trip per hash shows.

import assert from 'node:assert/strict';
import test from 'node:test';
import { b64encode } from '../lib/b64.js';
import { anchors, merkleRoot, tokenAt } from '../lib/payword.js';
import { addBundle, newWallet, reserve } from '../lib/wallet.js';
import { agentKey, signCertificate, userKey } from './helpers.js';

const NOW = 1796083200;

/** @returns {Promise<number>} the median of runs of fn, in ms */
async function median(runs, fn) {
  const times = [];
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    await fn(k);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)];
}

test('timings', async () => {
  const K = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const tok = await median(50, (k) => tokenAt(K, k, 1, 128));
  const t0 = performance.now();
  const as = await anchors(K, 79, 128);
  const anch = performance.now() - t0;

  const user = await userKey();
  const raw = await signCertificate({
    serial: '00'.repeat(16), issuedAt: NOW - 60, expiresAt: NOW + 86400, segments: 79, segmentLen: 128, unitValue: 1,
    userKey: user.publicKey, root: await merkleRoot(as), kid: 'agent-2026', userId: 'u:alice', scope: '*', currency: 'EUR',
  }, (await agentKey()).privateKey);
  let st = newWallet({ bank: 'http://127.0.0.1:8491', user: 'u:alice', username: 'alice', seed: new Uint8Array(32).map((_, i) => 0x41 + i), keys: {}, unitValue: 1, currency: 'EUR' });
  const t1 = performance.now();
  st = await addBundle(st, { certificate: b64encode(raw), secret: b64encode(K) }, user.publicKey, { now: NOW });
  const add = performance.now() - t1;
  const page = { product: '/a', url: 'https://news.example.com/a', host: 'news.example.com', price: 1 };
  // A fresh vendor each time: a new segment, so a binding is signed too.
  const res = await median(20, (k) => reserve(st, { ...page, vendor: `v${k}` }, NOW));

  console.log(`tokenAt(m=128): ${tok.toFixed(2)} ms (median of 50)`);
  console.log(`anchors(K, 79, 128): ${anch.toFixed(1)} ms`);
  console.log(`addBundle(79 × 128): ${add.toFixed(1)} ms`);
  console.log(`reserve() with a new binding: ${res.toFixed(2)} ms (median of 20)`);
  assert.ok(tok < 10, `tokenAt took ${tok} ms`);
  assert.ok(res < 100, `reserve took ${res} ms`);
});
