// Vendor origins (docs/protocol.md §9.1): the agent's signed list of the
// sites a vendor may be paid from, and the canonical origin of a page.

import { isId } from './ids.js';
import { member, openSigned } from './signed.js';

export const ORIGINS_KIND = 'hashwall/vendor-origins/v1';
export const MAX_ORIGINS = 16;
const MAX_ORIGIN_LEN = 300;
const MAX_ORIGINS_DOC = 16 << 10;
// Seconds a document may be signed ahead of the wallet's clock.
const CLOCK_SKEW = 300;
const BODY_MEMBERS = new Set(['kind', 'vendor', 'origins', 'time', 'expires']);

/**
 * @param {string} h a host without port, not an IPv6 literal
 * @returns {string|null} its canonical form: a lower-case DNS name or a dotted quad
 */
function canonicalHost(h) {
  h = h.toLowerCase();
  if (h === '' || h.length > 253) return null;
  const labels = h.split('.');
  const last = labels[labels.length - 1];
  // Browsers read "1.2.3" or "0x7f.1" as addresses: a numeric last label
  // makes the whole host a dotted quad or nothing.
  if (last !== '' && /^[0-9]|^0x/.test(last) && /^[0-9a-fx]*$/.test(last)) {
    const quad = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/.exec(h);
    return quad && quad.slice(1).every((x) => Number(x) <= 255) ? h : null;
  }
  for (const l of labels) {
    if (!/^[a-z0-9-]{1,63}$/.test(l) || l.startsWith('-') || l.endsWith('-')) return null;
  }
  return h;
}

/**
 * payword.ParseOrigin: an origin `scheme://host[:port]` in canonical form,
 * or null. One trailing "/" is tolerated.
 * @param {string} s
 * @returns {string|null}
 */
export function parseOrigin(s) {
  if (typeof s !== 'string' || s.length > MAX_ORIGIN_LEN) return null;
  const sep = s.indexOf('://');
  if (sep < 0) return null;
  const scheme = s.slice(0, sep).toLowerCase();
  const defPort = { https: '443', http: '80' }[scheme];
  if (!defPort) return null;
  let rest = s.slice(sep + 3);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (/[\x00-\x20\x7f-\uffff/?#@%\\]/.test(rest)) return null;
  let host;
  let port = '';
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) return null;
    const after = rest.slice(end + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return null;
      port = after.slice(1);
    }
    // WHATWG URL writes an IPv6 address in RFC 5952 form, as Go's netip does.
    try {
      host = new URL(`http://${rest.slice(0, end + 1)}/`).hostname;
    } catch {
      return null;
    }
    if (!host.startsWith('[')) return null;
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) port = rest.slice(colon + 1);
    host = canonicalHost(colon >= 0 ? rest.slice(0, colon) : rest);
    if (host === null) return null;
  }
  if (port !== '' || rest.endsWith(':')) {
    if (!/^[1-9][0-9]{0,4}$/.test(port) || Number(port) > 65535) return null;
    if (port === defPort) port = '';
  }
  return `${scheme}://${host}${port ? ':' + port : ''}`;
}

/**
 * The canonical origin of a page URL, as the wallet checks it against a
 * vendor's origins.
 * @param {string} url
 * @returns {string|null} null when the page's origin is no valid origin
 */
export function canonicalOrigin(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return parseOrigin(`${u.protocol.slice(0, -1)}://${u.host}`);
}

/**
 * Opens the agent's signed origins document of vendor and checks it
 * (payword.OpenVendorOrigins and the wallet's freshness checks).
 * @param {{kid: string, body: string, sig: string}} doc
 * @param {Map<string, Uint8Array>} keys the bank's pinned keys
 * @param {string} vendor the vendor the challenge named
 * @param {number} now Unix seconds
 * @returns {Promise<string[]>} the vendor's canonical origins
 */
export async function openOrigins(doc, keys, vendor, now) {
  const body = await openSigned(doc, keys, { maxDepth: 2, maxBytes: MAX_ORIGINS_DOC });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('origins body is not an object');
  for (const k of Object.keys(body)) {
    if (!BODY_MEMBERS.has(k.toLowerCase())) throw new Error(`origins body has an unknown member ${JSON.stringify(k)}`);
  }
  const kind = member(body, 'kind');
  const docVendor = member(body, 'vendor');
  const time = member(body, 'time');
  const expires = member(body, 'expires');
  const origins = member(body, 'origins') ?? [];
  if (kind !== ORIGINS_KIND) throw new Error('not an origins document');
  if (!isId(docVendor)) throw new Error('origins document: invalid vendor id');
  if (!Number.isSafeInteger(time) || !Number.isSafeInteger(expires) || time <= 0 || expires <= time) {
    throw new Error('origins document: bad times');
  }
  if (!Array.isArray(origins)) throw new Error('origins document: origins is not a list');
  if (origins.length > MAX_ORIGINS) throw new Error(`origins document lists ${origins.length} origins (at most ${MAX_ORIGINS})`);
  for (const o of origins) {
    if (typeof o !== 'string' || parseOrigin(o) !== o) throw new Error(`origin ${JSON.stringify(o)} is not canonical`);
  }
  if (docVendor !== vendor) throw new Error(`the bank answered the origins of ${JSON.stringify(docVendor)} for ${JSON.stringify(vendor)}`);
  if (now >= expires) throw new Error("the bank's origins document has expired (is this machine's clock right?)");
  if (time > now + CLOCK_SKEW) throw new Error("the bank's origins document is signed in the future (is this machine's clock right?)");
  return origins;
}
