// The wallet at rest.

import assert from 'node:assert/strict';
import test from 'node:test';
import { b64decode, b64encode } from '../lib/b64.js';
import { deriveKey, open, seal } from '../lib/vault.js';

test('seal and open, and every failure is one message', async () => {
  const salt = new Uint8Array(16).fill(1);
  const key = await deriveKey('correct horse', salt, 1000);
  assert.equal(key.length, 32);
  assert.deepEqual(key, await deriveKey('correct horse', salt, 1000), 'deterministic');
  const obj = { v: 1, seed: 'abc', n: [1, 2, 3] };
  const sealed = await seal(key, obj);
  assert.equal(sealed.v, 1);
  assert.equal(b64decode(sealed.iv).length, 12);
  assert.deepEqual(await open(key, sealed), obj);
  assert.notEqual((await seal(key, obj)).iv, sealed.iv, 'a fresh IV each time');

  const ct = b64decode(sealed.ct);
  ct[0] ^= 1;
  const cases = {
    'wrong password': [await deriveKey('wrong horse', salt, 1000), sealed],
    'other salt': [await deriveKey('correct horse', new Uint8Array(16), 1000), sealed],
    'damaged ciphertext': [key, { ...sealed, ct: b64encode(ct) }],
    'other IV': [key, { ...sealed, iv: b64encode(new Uint8Array(12)) }],
    'short IV': [key, { ...sealed, iv: 'AAAA' }],
    'other version': [key, { ...sealed, v: 2 }],
    'not a sealed wallet': [key, null],
  };
  for (const [name, [k, s]] of Object.entries(cases)) await assert.rejects(open(k, s), /^Error: wrong password or damaged wallet$/, name);
});
