// Shared by the tests: the vectors of docs/protocol.md §10, read from the
// document itself, and certificates signed with the vector agent key.

import { readFileSync } from 'node:fs';
import { b64encode, unhex } from '../lib/b64.js';
import { Writer } from '../lib/codec.js';
import { importSeed, sign } from '../lib/crypto.js';

const PROTOCOL = new URL('../../../docs/protocol.md', import.meta.url);

/** @returns {any} the §10 test vectors */
export function vectors() {
  const doc = readFileSync(PROTOCOL, 'utf8');
  const m = /<!-- test vectors:[^>]*-->\s*```json\n([\s\S]*?)```\s*<!-- end of test vectors -->/.exec(doc);
  if (!m) throw new Error('no test vectors in docs/protocol.md');
  return JSON.parse(m[1]);
}

/** @returns {Promise<{privateKey: CryptoKey, publicKey: Uint8Array}>} the vector agent key */
export function agentKey() {
  return importSeed(unhex(vectors().agent_seed_hex));
}

/** @returns {Promise<{privateKey: CryptoKey, publicKey: Uint8Array}>} the vector user key */
export function userKey() {
  return importSeed(unhex(vectors().user_seed_hex));
}

/**
 * The §4 encoding of a certificate, signed by key.
 * @param {object} c fields as parseCertificate returns them (serial in hex)
 * @param {CryptoKey} key the agent's private key
 * @returns {Promise<Uint8Array>}
 */
export async function signCertificate(c, key) {
  const body = new Writer()
    .bytes(Uint8Array.of(0x48, 0x57, 0x43, 0x01))
    .bytes(unhex(c.serial))
    .u64(c.issuedAt)
    .u64(c.expiresAt)
    .u32(c.segments)
    .u32(c.segmentLen)
    .u64(c.unitValue)
    .bytes(c.userKey)
    .bytes(c.root)
    .str(c.kid)
    .str(c.userId)
    .str(c.scope)
    .str(c.currency)
    .finish();
  const sig = await sign(key, body);
  const out = new Uint8Array(body.length + 64);
  out.set(body);
  out.set(sig, body.length);
  return out;
}

/**
 * A signed document {kid, body, sig} of body (an object or a string).
 * @param {object|string} body
 * @param {CryptoKey} key
 * @param {string} kid
 */
export async function signDoc(body, key, kid) {
  const bytes = new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body));
  const msg = new Uint8Array([...new TextEncoder().encode('hashwall/v1/signed\n'), ...bytes]);
  return { kid, body: b64encode(bytes), sig: b64encode(await sign(key, msg)) };
}
