// Signed documents of docs/protocol.md §9: {kid, body, sig}, sig being
// Ed25519 over "hashwall/v1/signed\n" ‖ the body's bytes. Key
// announcements (payword.OpenKeys) are opened here too.

import { b64decode, concat, equalBytes } from './b64.js';
import { verify } from './crypto.js';
import { isId } from './ids.js';

const PREFIX = new TextEncoder().encode('hashwall/v1/signed\n');
export const MAX_SIGNED_BODY = 2 << 20; // a CRL page of 1,000 entries is about 150 kB
export const MAX_ANNOUNCED_KEYS = 16;
const MAX_KEY_DOC = 64 << 10;

/**
 * Whether raw nests `{`/`[` at most max deep outside strings, counted as
 * the Go code counts (payword.shallowJSON), before any parsing.
 * @param {string} raw
 * @param {number} max
 * @returns {boolean}
 */
export function shallowJSON(raw, max) {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (escaped) escaped = false;
    else if (inString) {
      escaped = c === '\\';
      inString = c !== '"';
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (++depth > max) return false;
    } else if (c === '}' || c === ']') depth--;
  }
  return true;
}

/**
 * The value of a JSON member as Go's encoding/json reads it into a struct
 * field: names matched without regard to case, the last one winning.
 * @param {Record<string, unknown>} obj
 * @param {string} name lower case
 * @returns {unknown}
 */
export function member(obj, name) {
  let out;
  for (const k of Object.keys(obj)) if (k.toLowerCase() === name) out = obj[k];
  return out;
}

/**
 * @param {unknown} doc
 * @returns {{kid: string, body: Uint8Array, sig: Uint8Array}}
 */
function decodeEnvelope(doc) {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a signed document');
  const o = /** @type {Record<string, unknown>} */ (doc);
  const kid = member(o, 'kid');
  const body = member(o, 'body');
  const sig = member(o, 'sig');
  if (typeof kid !== 'string' || typeof body !== 'string' || typeof sig !== 'string') throw new Error('not a signed document');
  return { kid, body: b64decode(body), sig: b64decode(sig) };
}

/**
 * @param {{kid: string, body: Uint8Array, sig: Uint8Array}} env
 * @param {Map<string, Uint8Array>} keys
 * @returns {Promise<Uint8Array>} the body, once its signature verifies
 */
async function openEnvelope(env, keys) {
  const pub = keys.get(env.kid);
  if (!pub) throw new Error(`unknown agent key ${JSON.stringify(env.kid)}`);
  if (!(await verify(pub, env.sig, concat(PREFIX, env.body)))) throw new Error('bad signature on signed document');
  return env.body;
}

/**
 * @param {Uint8Array} body
 * @param {number} maxDepth
 * @returns {unknown}
 */
function parseBody(body, maxDepth) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new Error('signed document body is not UTF-8');
  }
  if (!shallowJSON(text, maxDepth)) throw new Error('signed document body nests too deep');
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('signed document body is not JSON');
  }
}

/**
 * Verifies a signed document and returns its body parsed.
 * @param {{kid: string, body: string, sig: string}} doc body and sig in b64
 * @param {Map<string, Uint8Array>} keys trusted agent keys
 * @param {{maxDepth?: number, maxBytes?: number}} [opts] the body's bounds:
 *   nesting (3 for CRL and key bodies, 2 for origins) and size
 * @returns {Promise<any>}
 */
export async function openSigned(doc, keys, { maxDepth = 3, maxBytes = MAX_SIGNED_BODY } = {}) {
  const env = decodeEnvelope(doc);
  if (env.body.length > maxBytes) throw new Error(`signed document of ${env.body.length} bytes (at most ${maxBytes})`);
  return parseBody(await openEnvelope(env, keys), maxDepth);
}

/**
 * The keys of an announcement body, or an error saying why not.
 * @param {unknown} doc
 * @returns {Map<string, Uint8Array>}
 */
function announcedKeys(doc) {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('key announcement is not an object');
  const o = /** @type {Record<string, unknown>} */ (doc);
  const list = member(o, 'keys');
  if (member(o, 'type') !== 'keys' || !Array.isArray(list) || list.length === 0 || list.length > MAX_ANNOUNCED_KEYS) {
    throw new Error('key announcement is not JSON of the right shape');
  }
  const out = new Map();
  for (const k of list) {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new Error('announced key is not an object');
    const kid = member(k, 'kid');
    const pub = member(k, 'public');
    if (!isId(kid)) throw new Error(`announced key id ${JSON.stringify(kid)} is invalid`);
    const raw = typeof pub === 'string' ? b64decode(pub) : null;
    if (!raw || raw.length !== 32) throw new Error(`announced key ${kid} is not 32 bytes`);
    out.set(kid, raw);
  }
  return out;
}

/**
 * The agent keys announced by the documents signed by a pinned key,
 * pinned ones included (payword.OpenKeys). Documents signed by other keys
 * are ignored; a malformed one signed by a pinned key is an error, and so
 * is a pinned key id announced with another key. Without pinned keys only a
 * bootstrap, which the caller may do only over an authenticated channel,
 * learns keys: from a document signed by a key it announces itself.
 * @param {{kid: string, body: string, sig: string}[]} signed
 * @param {Map<string, Uint8Array>|null} pinned
 * @param {{bootstrap?: boolean}} [opts]
 * @returns {Promise<Map<string, Uint8Array>>}
 */
export async function openKeys(signed, pinned, { bootstrap = false } = {}) {
  if (!Array.isArray(signed)) throw new Error('key announcements are not a list');
  if (signed.length > MAX_ANNOUNCED_KEYS) throw new Error(`${signed.length} key announcements (at most ${MAX_ANNOUNCED_KEYS})`);
  const trusted = pinned ?? new Map();
  if (trusted.size === 0 && !bootstrap) throw new Error('no pinned agent key to trust an announcement with');
  const out = new Map(trusted);
  for (const doc of signed) {
    const env = decodeEnvelope(doc);
    if (env.body.length > MAX_KEY_DOC) throw new Error(`key announcement of ${env.body.length} bytes`);
    let announced;
    if (trusted.size > 0) {
      try {
        await openEnvelope(env, trusted);
      } catch {
        continue; // someone else's word
      }
      announced = announcedKeys(parseBody(env.body, 3));
    } else {
      try {
        announced = announcedKeys(parseBody(env.body, 3));
        await openEnvelope(env, announced);
      } catch {
        continue; // not signed by a key it announces
      }
    }
    for (const [kid, pub] of announced) {
      const old = out.get(kid);
      if (old && !equalBytes(old, pub)) throw new Error(`key id ${JSON.stringify(kid)} announced with another key`);
      out.set(kid, pub);
    }
  }
  return out;
}
