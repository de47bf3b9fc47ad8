// The wallet at rest: its state sealed with AES-256-GCM under a key
// derived from the reader's password (PBKDF2-SHA256).

import { b64decode, b64encode } from './b64.js';

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
// Associated data: a sealed wallet opens as nothing else's ciphertext.
const AD = utf8.encode('hashwall-wallet/v1');
const WRONG = 'wrong password or damaged wallet';

/**
 * @param {string} password
 * @param {Uint8Array} salt
 * @param {number} [iterations]
 * @returns {Promise<Uint8Array>} 32 raw key bytes
 */
export async function deriveKey(password, salt, iterations = 600000) {
  const base = await subtle.importKey('raw', utf8.encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, 256);
  return new Uint8Array(bits);
}

/** @param {Uint8Array} rawKey @param {KeyUsage} use */
function aesKey(rawKey, use) {
  return subtle.importKey('raw', rawKey, 'AES-GCM', false, [use]);
}

/**
 * @param {Uint8Array} rawKey 32 bytes
 * @param {unknown} obj anything JSON holds
 * @returns {Promise<{v: 1, iv: string, ct: string}>} iv and ct in b64
 */
export async function seal(rawKey, obj) {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ct = await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: AD }, await aesKey(rawKey, 'encrypt'), utf8.encode(JSON.stringify(obj)));
  return { v: 1, iv: b64encode(iv), ct: b64encode(new Uint8Array(ct)) };
}

/**
 * @param {Uint8Array} rawKey
 * @param {{v: 1, iv: string, ct: string}} sealed
 * @returns {Promise<any>} the object sealed
 * @throws {Error} "wrong password or damaged wallet" on any failure
 */
export async function open(rawKey, sealed) {
  try {
    if (sealed?.v !== 1) throw new Error(WRONG);
    const iv = b64decode(sealed.iv);
    if (iv.length !== 12) throw new Error(WRONG);
    const pt = await subtle.decrypt({ name: 'AES-GCM', iv, additionalData: AD }, await aesKey(rawKey, 'decrypt'), b64decode(sealed.ct));
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(pt));
  } catch {
    throw new Error(WRONG);
  }
}
