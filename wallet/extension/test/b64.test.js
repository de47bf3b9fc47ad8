// base64url and hex: one value, one encoding.

import assert from 'node:assert/strict';
import test from 'node:test';
import { b64decode, b64encode, hex, unhex } from '../lib/b64.js';

test('base64url round trips without padding', () => {
  for (let n = 0; n < 70; n++) {
    const b = globalThis.crypto.getRandomValues(new Uint8Array(n));
    const s = b64encode(b);
    assert.equal(s, Buffer.from(b).toString('base64url'));
    assert.deepEqual(b64decode(s), b);
  }
});

test('hostile base64url is refused', () => {
  const cases = {
    padding: 'AQ==',
    'one padding char': 'AQI=',
    'standard alphabet +': 'ab+c',
    'standard alphabet /': 'ab/c',
    LF: 'AQID\nBA',
    CR: 'AQID\rBA',
    space: 'AQ ID',
    'length 1 mod 4': 'AQIDB',
    'trailing bits (1 byte)': 'AR',
    'trailing bits (2 bytes)': 'AQJ',
    'non-ASCII': 'AQ\u00e9D',
    'not a string': 42,
  };
  for (const [name, s] of Object.entries(cases)) assert.throws(() => b64decode(/** @type {any} */ (s)), Error, name);
});

test('hex', () => {
  assert.equal(hex(Uint8Array.of(0, 15, 16, 255)), '000f10ff');
  assert.deepEqual(unhex('000F10fF'), Uint8Array.of(0, 15, 16, 255));
  for (const s of ['0', 'zz', '0x00', ' 00']) assert.throws(() => unhex(s), Error, s);
});
