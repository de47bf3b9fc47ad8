// The certificate of docs/protocol.md §4: the agent's signed statement that
// a Merkle root is worth S·m tokens to the holder of the user key.

import { hex } from './b64.js';
import { MAX_SEGMENT_LEN, MAX_SEGMENTS } from './chain.js';
import { Reader, safeNumber } from './codec.js';
import { verify } from './crypto.js';
import { isCurrency, isId } from './ids.js';

export const MAX_CERTIFICATE_SIZE = 384;
export const CERT_MAGIC = Uint8Array.of(0x48, 0x57, 0x43, 0x01); // "HWC" ‖ 0x01
export const GENERIC_SCOPE = '*';
const SIGNATURE_SIZE = 64;
const FIXED_LEN = 4 + 16 + 8 + 8 + 4 + 4 + 8 + 32 + 32;
// Seconds a certificate may be dated in the future (clock skew).
export const CLOCK_SKEW = 300;

/**
 * @typedef {object} Certificate
 * @property {string} serial 32 lower-case hex digits
 * @property {number} issuedAt Unix seconds
 * @property {number} expiresAt Unix seconds; void from this second on
 * @property {number} segments S
 * @property {number} segmentLen m
 * @property {number} unitValue minor units of currency per token
 * @property {Uint8Array} userKey the wallet's Ed25519 public key
 * @property {Uint8Array} root R
 * @property {string} kid the agent key that signs
 * @property {string} userId
 * @property {string} scope "*" or one vendor id
 * @property {string} currency
 * @property {Uint8Array} signed the bytes before the signature
 * @property {Uint8Array} signature
 */

/**
 * Decodes a signed certificate and checks its encoding and ranges; the
 * signature and the time are verifyCertificate's.
 * @param {Uint8Array} bytes
 * @returns {Certificate}
 */
export function parseCertificate(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new Error('certificate: not bytes');
  if (bytes.length > MAX_CERTIFICATE_SIZE) throw new Error(`certificate of ${bytes.length} bytes (at most ${MAX_CERTIFICATE_SIZE})`);
  if (bytes.length < FIXED_LEN + SIGNATURE_SIZE || CERT_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error('not a version 1 certificate');
  }
  const signed = bytes.slice(0, bytes.length - SIGNATURE_SIZE);
  const r = new Reader(signed);
  r.take(CERT_MAGIC.length);
  const serial = hex(r.take(16));
  const issuedAt = r.i64();
  const expiresAt = r.i64();
  const segments = r.u32();
  const segmentLen = r.u32();
  const unitValue = r.u64();
  const userKey = r.take(32);
  const root = r.take(32);
  const kid = r.str();
  const userId = r.str();
  const scope = r.str();
  const currency = r.str();
  if (!r.done()) throw new Error('certificate length does not match its fields');
  if (segments < 1 || segments > MAX_SEGMENTS) throw new Error(`segment count ${segments} out of range 1..${MAX_SEGMENTS}`);
  if (segmentLen < 1 || segmentLen > MAX_SEGMENT_LEN) throw new Error(`segment length ${segmentLen} out of range 1..${MAX_SEGMENT_LEN}`);
  if (expiresAt <= issuedAt) throw new Error('certificate expires before it is issued');
  if (!isId(kid)) throw new Error('certificate: invalid key id');
  if (!isId(userId)) throw new Error('certificate: invalid user id');
  if (scope !== GENERIC_SCOPE && !isId(scope)) throw new Error('certificate: invalid scope');
  if (!isCurrency(currency)) throw new Error('certificate: invalid currency');
  return {
    serial,
    issuedAt: safeNumber(issuedAt, 'certificate issued_at'),
    expiresAt: safeNumber(expiresAt, 'certificate expires_at'),
    segments,
    segmentLen,
    unitValue: safeNumber(unitValue, 'certificate unit_value'),
    userKey,
    root,
    kid,
    userId,
    scope,
    currency,
    signed,
    signature: bytes.slice(bytes.length - SIGNATURE_SIZE),
  };
}

/**
 * Checks the agent's signature and the validity period at now.
 * @param {Certificate} cert
 * @param {Map<string, Uint8Array>} keys trusted agent keys by key id
 * @param {number} now Unix seconds
 * @returns {Promise<void>}
 */
export async function verifyCertificate(cert, keys, now) {
  const pub = keys.get(cert.kid);
  if (!pub) throw new Error(`unknown agent key ${JSON.stringify(cert.kid)}`);
  if (!(await verify(pub, cert.signature, cert.signed))) throw new Error(`bad signature on certificate ${cert.serial}`);
  if (now >= cert.expiresAt) throw new Error(`certificate ${cert.serial} expired at ${cert.expiresAt}`);
  if (now + CLOCK_SKEW < cert.issuedAt) throw new Error(`certificate ${cert.serial} is not yet valid (issued at ${cert.issuedAt})`);
}
