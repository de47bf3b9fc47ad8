// The payment of docs/protocol.md §7, written byte for byte as the Go
// encoder (encoding/json) writes it: members in the table's order, `bind`
// left out when empty, `"path":""` when empty, and Go's escaping.

import { b64encode } from './b64.js';

export const MAX_PAYMENT_HEADER = 8192;

/**
 * @typedef {object} Payment
 * @property {Uint8Array} cert the signed certificate
 * @property {number} seg segment g
 * @property {Uint8Array} anchor a[g]
 * @property {Uint8Array} path the Merkle path of g, nodes concatenated
 * @property {Uint8Array|null} bind the signed binding, null for a specific certificate
 * @property {number} i the highest index spent
 * @property {Uint8Array} tok w[g][i]
 * @property {number} p tokens paid
 * @property {string} vendor
 * @property {string} product
 */

/**
 * A JSON string as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and
 * U+2029 as \u escapes, a lone surrogate (Go: invalid UTF-8) as U+FFFD.
 * @param {string} s
 * @returns {string}
 */
export function goJSONString(s) {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) {
      out += '\\u' + c.toString(16).padStart(4, '0');
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\ufffd';
    else out += ch;
  }
  return out + '"';
}

/** @param {unknown} n @param {string} name */
function integer(n, name) {
  if (!Number.isSafeInteger(n)) throw new Error(`payment: ${name} must be an integer`);
  return String(n);
}

/** @param {unknown} b @param {string} name */
function bytes(b, name) {
  if (!(b instanceof Uint8Array)) throw new Error(`payment: ${name} must be bytes`);
  return goJSONString(b64encode(b));
}

/**
 * @param {Payment} p
 * @returns {string} the payment JSON
 */
export function paymentJSON(p) {
  let out = '{"v":1';
  out += ',"cert":' + bytes(p.cert, 'cert');
  out += ',"seg":' + integer(p.seg, 'seg');
  out += ',"anchor":' + bytes(p.anchor, 'anchor');
  out += ',"path":' + bytes(p.path ?? new Uint8Array(0), 'path');
  if (p.bind && p.bind.length > 0) out += ',"bind":' + bytes(p.bind, 'bind');
  out += ',"i":' + integer(p.i, 'i');
  out += ',"tok":' + bytes(p.tok, 'tok');
  out += ',"p":' + integer(p.p, 'p');
  out += ',"vendor":' + goJSONString(String(p.vendor));
  out += ',"product":' + goJSONString(String(p.product));
  return out + '}';
}

/**
 * @param {Payment} p
 * @returns {string} the Authorization header value, "PayWord " and the b64 JSON
 */
export function paymentHeader(p) {
  const h = 'PayWord ' + b64encode(new TextEncoder().encode(paymentJSON(p)));
  if (h.length > MAX_PAYMENT_HEADER) throw new Error(`payment header of ${h.length} bytes (at most ${MAX_PAYMENT_HEADER})`);
  return h;
}
