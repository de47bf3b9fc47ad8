// The 402 challenge of docs/protocol.md §6, read exactly as
// payword.ParseChallenge reads it (RFC 9110 §11 auth-params).

import { isId, isProductId } from './ids.js';

export const MAX_CHALLENGE_HEADER = 4096;
const MAX_PARAMS = 16;
const MAX_PRICE = 1024;
const TCHAR = /[A-Za-z0-9!#$%&'*+\-.^_`|~]/;

/** @param {number} c a char code @returns {boolean} a control character other than tab */
function isControl(c) {
  return (c < 0x20 && c !== 0x09) || c === 0x7f;
}

/** @param {string} s @param {number} i @returns {number} the index after the tchars at i */
function tokenEnd(s, i) {
  while (i < s.length && TCHAR.test(s[i])) i++;
  return i;
}

/** @param {string} s @param {number} i @returns {number} the index after spaces and tabs at i */
function skipWS(s, i) {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
}

/**
 * Reads `name = ( token / quoted-string )` at s[i].
 * @returns {{name: string, value: string, end: number}}
 */
function authParam(s, i) {
  let j = tokenEnd(s, i);
  if (j === i) throw new Error('challenge: expected a parameter name');
  const name = s.slice(i, j);
  j = skipWS(s, j);
  if (s[j] !== '=') throw new Error(`challenge: expected '=' after ${JSON.stringify(name)}`);
  j = skipWS(s, j + 1);
  if (s[j] === '"') {
    let value = '';
    for (j++; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c === 0x22) return { name, value, end: j + 1 };
      if (c === 0x5c && j + 1 < s.length && !isControl(s.charCodeAt(j + 1))) value += s[++j];
      else if (isControl(c)) throw new Error(`challenge: control character in ${JSON.stringify(name)}`);
      else value += s[j];
    }
    throw new Error(`challenge: unterminated quoted string in ${JSON.stringify(name)}`);
  }
  const end = tokenEnd(s, j);
  if (end === j) throw new Error(`challenge: empty value for ${JSON.stringify(name)}`);
  return { name, value: s.slice(j, end), end };
}

/**
 * @typedef {object} Challenge
 * @property {string} realm
 * @property {string} vendor
 * @property {number} price tokens, 1..1024
 * @property {string} product
 * @property {string} agent the agent's base URL as the site wrote it (unchecked)
 */

/**
 * Parses one WWW-Authenticate field value holding one PayWord challenge.
 * @param {string} value
 * @returns {Challenge}
 * @throws {Error} on anything else
 */
export function parseChallenge(value) {
  if (typeof value !== 'string') throw new Error('challenge: not a string');
  if (value.length > MAX_CHALLENGE_HEADER) throw new Error(`challenge of ${value.length} bytes (at most ${MAX_CHALLENGE_HEADER})`);
  // A header value is bytes; a char above 0xFF came from no HTTP header.
  if (/[^\x00-\xff]/.test(value)) throw new Error('challenge: not a header value');
  const sp = value.indexOf(' ');
  const scheme = sp < 0 ? value : value.slice(0, sp);
  if (scheme.toLowerCase() !== 'payword') throw new Error('not a PayWord challenge');
  /** @type {Record<string, string>} */
  const got = {};
  const seen = new Set();
  let i = sp < 0 ? value.length : sp + 1;
  for (let n = 0; ; n++) {
    i = skipWS(value, i);
    if (i === value.length) break;
    if (n === MAX_PARAMS) throw new Error(`challenge: more than ${MAX_PARAMS} parameters`);
    const p = authParam(value, i);
    const name = p.name.toLowerCase();
    if (seen.has(name)) throw new Error(`challenge: parameter ${JSON.stringify(name)} given twice`);
    seen.add(name);
    got[name] = p.value;
    i = skipWS(value, p.end);
    if (i < value.length) {
      if (value[i] !== ',') throw new Error("challenge: expected ',' between parameters");
      i++;
    }
  }
  // Leading zeros are allowed (002 is 2), however many.
  const digits = /^[0-9]+$/.test(got.price ?? '') ? got.price.replace(/^0+/, '') : 'x';
  const price = digits.length <= 4 ? Number(digits) : NaN;
  if (!(price >= 1 && price <= MAX_PRICE)) {
    throw new Error(`challenge: price must be a whole number of tokens in 1..${MAX_PRICE}`);
  }
  if (!isId(got.vendor)) throw new Error('challenge: invalid vendor id');
  if (!isProductId(got.product)) throw new Error('challenge: invalid product id');
  return { realm: got.realm ?? '', vendor: got.vendor, price, product: got.product, agent: got.agent ?? '' };
}

/**
 * Reads each WWW-Authenticate field on its own, as the Go wallet does.
 * @param {string[]} values
 * @returns {Challenge|null} the first that parses
 */
export function parseChallenges(values) {
  for (const v of values) {
    try {
      return parseChallenge(v);
    } catch {
      // another scheme, or a broken challenge: try the next field
    }
  }
  return null;
}
