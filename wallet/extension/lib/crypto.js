// WebCrypto wrappers: the same code runs in the extension's service worker
// and in Node 20 (globalThis.crypto).

import { b64decode, concat, unhex } from './b64.js';

const subtle = globalThis.crypto.subtle;

// RFC 8410 PKCS#8 header of an Ed25519 private key: WebCrypto imports no
// raw seed, so the 32-byte seed is wrapped in it.
const PKCS8_ED25519 = unhex('302e020100300506032b657004220420');

/**
 * @param {Uint8Array} bytes
 * @returns {Promise<Uint8Array>} SHA-256 of bytes
 */
export async function sha256(bytes) {
  return new Uint8Array(await subtle.digest('SHA-256', bytes));
}

/**
 * @param {Uint8Array} key
 * @returns {Promise<CryptoKey>} an HMAC-SHA256 signing key
 */
export function hmacKey(key) {
  return subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

/**
 * @param {Uint8Array} key
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>} HMAC-SHA256(key, data)
 */
export async function hmac(key, data) {
  return new Uint8Array(await subtle.sign('HMAC', await hmacKey(key), data));
}

/** @returns {Uint8Array} a fresh random Ed25519 seed */
export function newSeed() {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

/**
 * Imports an Ed25519 seed. The private key is not extractable; the public
 * key comes out of a short-lived extractable copy.
 * @param {Uint8Array} seed 32 bytes
 * @returns {Promise<{privateKey: CryptoKey, publicKey: Uint8Array}>}
 */
export async function importSeed(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  const pkcs8 = concat(PKCS8_ED25519, seed);
  const extractable = await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await subtle.exportKey('jwk', extractable);
  const privateKey = await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  pkcs8.fill(0);
  return { privateKey, publicKey: b64decode(/** @type {string} */ (jwk.x)) };
}

/**
 * @param {CryptoKey} privateKey an Ed25519 private key
 * @param {Uint8Array} bytes
 * @returns {Promise<Uint8Array>} the 64-byte signature
 */
export async function sign(privateKey, bytes) {
  return new Uint8Array(await subtle.sign('Ed25519', privateKey, bytes));
}

/**
 * @param {Uint8Array} publicKeyRaw 32 bytes
 * @param {Uint8Array} sig 64 bytes
 * @param {Uint8Array} bytes the signed message
 * @returns {Promise<boolean>} whether sig is valid; false, never a throw, for a bad key or signature
 */
export async function verify(publicKeyRaw, sig, bytes) {
  if (!(publicKeyRaw instanceof Uint8Array) || publicKeyRaw.length !== 32) return false;
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return false;
  try {
    const key = await subtle.importKey('raw', publicKeyRaw, { name: 'Ed25519' }, false, ['verify']);
    return await subtle.verify('Ed25519', key, sig, bytes);
  } catch {
    return false;
  }
}
