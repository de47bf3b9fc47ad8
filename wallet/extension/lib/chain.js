// Hash chains of docs/protocol.md §2: segment g's top is
// HMAC(K, "hashwall/segment" ‖ u32(g)), each lower token the SHA-256 of the
// one above, its anchor w[g][0].

import { hmacKey } from './crypto.js';
import { sha256Sync } from './sha256.js';

export const MAX_SEGMENTS = 1 << 20;
export const MAX_SEGMENT_LEN = 1024;

const LABEL = new TextEncoder().encode('hashwall/segment');

/** @param {number} g @returns {Uint8Array} the HMAC message of segment g */
function topMessage(g) {
  const msg = new Uint8Array(LABEL.length + 4);
  msg.set(LABEL);
  new DataView(msg.buffer).setUint32(LABEL.length, g);
  return msg;
}

function checkKey(K) {
  if (!(K instanceof Uint8Array) || K.length !== 32) throw new Error('the chain secret K is 32 bytes');
}

function checkShape(g, S, m) {
  if (!Number.isInteger(m) || m < 1 || m > MAX_SEGMENT_LEN) throw new Error(`segment length ${m} out of range 1..${MAX_SEGMENT_LEN}`);
  if (!Number.isInteger(S) || S < 1 || S > MAX_SEGMENTS) throw new Error(`segment count ${S} out of range 1..${MAX_SEGMENTS}`);
  if (!Number.isInteger(g) || g < 0 || g >= S) throw new Error(`segment ${g} out of range 0..${S - 1}`);
}

/**
 * H applied n times, synchronously (the hot loop of tokenAt and anchors).
 * @param {Uint8Array} tok
 * @param {number} n
 * @returns {Uint8Array}
 */
export function hashNSync(tok, n) {
  let t = tok;
  for (let k = 0; k < n; k++) t = sha256Sync(t);
  return t;
}

/**
 * @param {Uint8Array} tok
 * @param {number} n
 * @returns {Promise<Uint8Array>} H^n(tok)
 */
export async function hashN(tok, n) {
  if (!Number.isInteger(n) || n < 0 || n > MAX_SEGMENT_LEN) throw new Error(`hash count ${n} out of range 0..${MAX_SEGMENT_LEN}`);
  return hashNSync(tok, n);
}

/**
 * @param {Uint8Array} K the certificate's chain secret
 * @param {number} g segment
 * @returns {Promise<Uint8Array>} w[g][m]
 */
export async function segmentTop(K, g) {
  checkKey(K);
  checkShape(g, MAX_SEGMENTS, 1);
  const key = await hmacKey(K);
  return new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', key, topMessage(g)));
}

/**
 * @param {Uint8Array} K
 * @param {number} g segment
 * @param {number} i index, 0 ≤ i ≤ m
 * @param {number} m segment length
 * @returns {Promise<Uint8Array>} w[g][i]
 */
export async function tokenAt(K, g, i, m) {
  checkShape(g, MAX_SEGMENTS, m);
  if (!Number.isInteger(i) || i < 0 || i > m) throw new Error(`token index ${i} out of range 0..${m}`);
  return hashNSync(await segmentTop(K, g), m - i);
}

// Segment tops are asked of WebCrypto this many at a time, so a million
// tokens' worth of segments does not queue thousands of promises at once.
const TOP_BATCH = 256;

/**
 * The S anchors a[g] = w[g][0]: S HMACs and S·m hashes, done once per
 * certificate.
 * @param {Uint8Array} K
 * @param {number} S segments
 * @param {number} m segment length
 * @returns {Promise<Uint8Array[]>}
 */
export async function anchors(K, S, m) {
  checkKey(K);
  checkShape(0, S, m);
  const key = await hmacKey(K);
  const subtle = globalThis.crypto.subtle;
  /** @type {Uint8Array[]} */
  const out = [];
  for (let start = 0; start < S; start += TOP_BATCH) {
    const tops = await Promise.all(
      Array.from({ length: Math.min(TOP_BATCH, S - start) }, (_, k) => subtle.sign('HMAC', key, topMessage(start + k))),
    );
    for (const top of tops) out.push(hashNSync(new Uint8Array(top), m));
  }
  return out;
}
