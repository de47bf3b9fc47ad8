// What the worker makes of a gateway's answer to a payment, and of a
// challenge's bank: pure parts of pay.js.
import test from 'node:test';
import assert from 'node:assert/strict';
import {classify, sameBank} from '../pay.js';

test('classify reads every answer of docs/protocol.md §7', () => {
  const h = (/** @type {Record<string,string>} */ o) => new Map(Object.entries(o));
  const cases = [
    [200, {'payment-receipt': 'a.b.c'}, 'paid'],
    [200, {}, 'retry'], // no word on the payment: it did not arrive
    [200, {'payment-error': 'not_charged'}, 'refused'],
    [404, {'payment-error': 'voided'}, 'voided'],
    [409, {'payment-error': 'voided'}, 'voided'],
    [409, {'payment-error': 'replay'}, 'replay'],
    [409, {'payment-error': 'double_spend'}, 'refused'],
    [402, {'payment-error': 'underpaid'}, 'refused'],
    [403, {'payment-error': 'revoked'}, 'refused'],
    [503, {'payment-error': 'unavailable'}, 'retry'],
    [503, {'payment-error': 'crl_stale'}, 'retry'],
    [503, {}, 'retry'],
    [402, {}, 'retry'], // a 402 without Payment-Error: the header never reached the gateway
    [200, {'payment-receipt': 'a.b.c', 'payment-error': 'unavailable'}, 'retry'],
  ];
  for (const [status, headers, want] of cases) {
    assert.equal(classify(/** @type {number} */ (status), h(/** @type {any} */ (headers))), want, `${status} ${JSON.stringify(headers)}`);
  }
});

test('sameBank takes only the wallet’s own bank', () => {
  const bank = 'http://127.0.0.1:8491';
  assert.ok(sameBank('http://127.0.0.1:8491', bank));
  assert.ok(sameBank('http://127.0.0.1:8491/', bank));
  for (const other of [undefined, '', 'http://127.0.0.1:8492', 'https://127.0.0.1:8491', 'http://127.0.0.1:8491.evil', 'http://evil/http://127.0.0.1:8491']) {
    assert.ok(!sameBank(other, bank), String(other));
  }
});
