// Hostile challenges (docs/protocol.md §6): each must be refused.

import assert from 'node:assert/strict';
import test from 'node:test';
import { parseChallenge, parseChallenges } from '../lib/payword.js';

const OK = 'PayWord realm="R", vendor="v1", price="2", product="/a"';

test('challenges that parse', () => {
  const cases = [
    [OK, { realm: 'R', vendor: 'v1', price: 2, product: '/a', agent: '' }],
    ['payword vendor=v1, price=2, product="/a"', { realm: '', vendor: 'v1', price: 2, product: '/a', agent: '' }],
    ['PAYWORD Vendor="v1",PRICE="0002" , Product="/a",', { realm: '', vendor: 'v1', price: 2, product: '/a', agent: '' }],
    ['PayWord vendor="v1", price=00000000000000001024, product="/a"', { realm: '', vendor: 'v1', price: 1024, product: '/a', agent: '' }],
    ['PayWord realm="a \\"q\\" \\\\ b\tc", vendor=v1, price=1, product="/x?y=<z>", future=1', { realm: 'a "q" \\ b\tc', vendor: 'v1', price: 1, product: '/x?y=<z>', agent: '' }],
    ['PayWord \t vendor = "v1" ,\tprice= 3 , product ="/p", agent="https://bank.example.com"', { realm: '', vendor: 'v1', price: 3, product: '/p', agent: 'https://bank.example.com' }],
    ['PayWord realm="caf\xe9", vendor=v1, price=1, product="/a"', { realm: 'caf\xe9', vendor: 'v1', price: 1, product: '/a', agent: '' }],
  ];
  for (const [h, want] of cases) assert.deepEqual(parseChallenge(h), want, h);
});

test('hostile challenges are refused', () => {
  const pairs = (n) => Array.from({ length: n }, (_, k) => `x${k}=1`).join(', ');
  const cases = {
    'over 4096 bytes': `${OK}, realm2="${'a'.repeat(4096)}"`,
    'missing vendor': 'PayWord price="2", product="/a"',
    'missing price': 'PayWord vendor="v1", product="/a"',
    'missing product': 'PayWord vendor="v1", price="2"',
    'price 0': 'PayWord vendor=v1, price=0, product="/a"',
    'price 1025': 'PayWord vendor=v1, price=1025, product="/a"',
    'price -1': 'PayWord vendor=v1, price=-1, product="/a"',
    'price 1e2': 'PayWord vendor=v1, price=1e2, product="/a"',
    'price +2': 'PayWord vendor=v1, price="+2", product="/a"',
    'price 2.0': 'PayWord vendor=v1, price="2.0", product="/a"',
    'price empty': 'PayWord vendor=v1, price="", product="/a"',
    'duplicate name, other case': 'PayWord vendor=v1, price=2, product="/a", VENDOR=v2',
    'duplicate unknown name': 'PayWord vendor=v1, price=2, product="/a", x=1, X=2',
    'a second challenge': `${OK}, Basic realm="x"`,
    'a second challenge after a space': `${OK} Basic realm="x"`,
    'control character in a quoted string': 'PayWord realm="a\x01b", vendor=v1, price=2, product="/a"',
    'escaped control character': 'PayWord realm="a\\\nb", vendor=v1, price=2, product="/a"',
    'DEL in a quoted string': 'PayWord realm="a\x7fb", vendor=v1, price=2, product="/a"',
    'CR LF in a value': 'PayWord realm="a\r\nb", vendor=v1, price=2, product="/a"',
    'more than 16 pairs': `PayWord vendor=v1, price=2, product="/a", ${pairs(14)}`,
    'bad vendor id': 'PayWord vendor="v 1", price=2, product="/a"',
    'vendor over 64 bytes': `PayWord vendor=${'v'.repeat(65)}, price=2, product="/a"`,
    'bad product id': 'PayWord vendor=v1, price=2, product="/a b"',
    'product over 512 bytes': `PayWord vendor=v1, price=2, product="/${'a'.repeat(512)}"`,
    'unterminated quote': 'PayWord vendor="v1, price=2, product="/a"',
    'empty element': 'PayWord vendor=v1,, price=2, product="/a"',
    'leading comma': 'PayWord , vendor=v1, price=2, product="/a"',
    'two trailing commas': `${OK},,`,
    'other scheme': 'Basic realm="x"',
    'scheme and a tab': 'PayWord\tvendor=v1, price=2, product="/a"',
    'no parameters': 'PayWord',
    'unquoted value with a /, no token': 'PayWord vendor=v1, price=2, product=/a',
    'empty value': 'PayWord vendor=, price=2, product="/a"',
    'no comma between pairs': 'PayWord vendor=v1 price=2, product="/a"',
    'not a byte string': 'PayWord realm="\u2028", vendor=v1, price=2, product="/a"',
  };
  for (const [name, h] of Object.entries(cases)) assert.throws(() => parseChallenge(h), Error, name);
  assert.doesNotThrow(() => parseChallenge(`PayWord vendor=v1, price=2, product="/a", ${pairs(13)}`), '16 pairs pass');
});

test('parseChallenges takes the first field that parses', () => {
  assert.equal(parseChallenges(['Basic realm="x"', 'PayWord vendor=v2, price=1, product="/b"', OK]).vendor, 'v2');
  assert.equal(parseChallenges(['Basic realm="x"', 'PayWord vendor=v1']), null);
  assert.equal(parseChallenges([]), null);
});
