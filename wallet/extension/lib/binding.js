// The binding of docs/protocol.md §5: the user's signed commitment of one
// segment of a generic certificate to one vendor.

import { hex, unhex } from './b64.js';
import { MAX_SEGMENTS } from './chain.js';
import { Reader, Writer, safeNumber } from './codec.js';
import { sign } from './crypto.js';
import { isId } from './ids.js';

export const MAX_BINDING_SIZE = 161;
const MAGIC = Uint8Array.of(0x48, 0x57, 0x42, 0x01); // "HWB" ‖ 0x01
const SIGNATURE_SIZE = 64;
const FIXED_LEN = 4 + 16 + 4 + 8;

/**
 * @param {{serial: string, segment: number, time: number, vendor: string}} b serial in hex
 * @param {CryptoKey} privateKey the user's Ed25519 key
 * @returns {Promise<Uint8Array>} the signed binding
 */
export async function makeBinding({ serial, segment, time, vendor }, privateKey) {
  const s = unhex(serial);
  if (s.length !== 16) throw new Error('a serial is 16 bytes');
  if (!Number.isInteger(segment) || segment < 0 || segment >= MAX_SEGMENTS) throw new Error(`segment ${segment} out of range`);
  if (!Number.isSafeInteger(time)) throw new Error('binding time must be whole seconds');
  if (!isId(vendor)) throw new Error('invalid vendor id');
  const body = new Writer().bytes(MAGIC).bytes(s).u32(segment).u64(time).str(vendor).finish();
  const sig = await sign(privateKey, body);
  const out = new Uint8Array(body.length + sig.length);
  out.set(body);
  out.set(sig, body.length);
  return out;
}

/**
 * Decodes a signed binding without checking its signature.
 * @param {Uint8Array} bytes
 * @returns {{serial: string, segment: number, time: number, vendor: string, signed: Uint8Array, signature: Uint8Array}}
 */
export function parseBinding(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new Error('binding: not bytes');
  if (bytes.length > MAX_BINDING_SIZE) throw new Error(`binding of ${bytes.length} bytes (at most ${MAX_BINDING_SIZE})`);
  if (bytes.length < FIXED_LEN + SIGNATURE_SIZE || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error('not a version 1 binding');
  const signed = bytes.slice(0, bytes.length - SIGNATURE_SIZE);
  const r = new Reader(signed);
  r.take(MAGIC.length);
  const serial = hex(r.take(16));
  const segment = r.u32();
  const time = r.i64();
  const vendor = r.str();
  if (!r.done()) throw new Error('binding length does not match its fields');
  if (!isId(vendor)) throw new Error('binding: invalid vendor id');
  return { serial, segment, time: safeNumber(time, 'binding time'), vendor, signed, signature: bytes.slice(signed.length) };
}
