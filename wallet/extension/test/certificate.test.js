// Hostile certificates and bindings (docs/protocol.md §4, §5).

import assert from 'node:assert/strict';
import test from 'node:test';
import { b64decode } from '../lib/b64.js';
import { importSeed } from '../lib/crypto.js';
import { parseBinding, parseCertificate, verifyCertificate } from '../lib/payword.js';
import { agentKey, signCertificate, vectors } from './helpers.js';

const V = vectors();
const RAW = b64decode(V.certificate);
const NOW = 1796083200;
const KEYS = new Map([['agent-2026', b64decode(V.agent_public)]]);

/** The vector certificate's fields with some changed, signed by the vector agent. */
async function variant(changes) {
  const c = { ...parseCertificate(RAW), ...changes };
  return signCertificate(c, (await agentKey()).privateKey);
}

test('the test encoder reproduces the vector certificate', async () => {
  assert.deepEqual(await variant({}), RAW);
});

test('malformed certificates are refused', async () => {
  const tampered = (i, v) => {
    const b = RAW.slice();
    b[i] = v;
    return b;
  };
  const cases = {
    truncated: RAW.subarray(0, RAW.length - 1),
    'cut in the fixed fields': RAW.subarray(0, 100),
    'trailing bytes': Uint8Array.of(...RAW, 0),
    'wrong magic': tampered(0, 0x58),
    'wrong version': tampered(3, 2),
    'over 384 bytes': new Uint8Array(385),
    empty: new Uint8Array(0),
    'S = 0': await variant({ segments: 0 }),
    'S over 2^20': await variant({ segments: (1 << 20) + 1 }),
    'm = 0': await variant({ segmentLen: 0 }),
    'm over 1024': await variant({ segmentLen: 1025 }),
    'expires = issued': await variant({ expiresAt: 1796079600 }),
    'bad user id': await variant({ userId: 'u alice' }),
    'bad scope': await variant({ scope: 'a/b' }),
    'bad currency': await variant({ currency: 'eur' }),
    'bad key id': await variant({ kid: '' }),
    'unit value beyond 2^53 - 1': await variant({ unitValue: 2n ** 53n }),
  };
  for (const [name, raw] of Object.entries(cases)) assert.throws(() => parseCertificate(raw), Error, name);
});

test('certificates that do not verify', async () => {
  const other = await importSeed(new Uint8Array(32).fill(7));
  const flipped = RAW.slice();
  flipped[RAW.length - 1] ^= 1;
  const otherRoot = RAW.slice();
  otherRoot[100] ^= 1; // a byte of R: still a well-formed certificate
  const cases = [
    ['bad signature', parseCertificate(flipped), KEYS, NOW, /bad signature/],
    ['another root', parseCertificate(otherRoot), KEYS, NOW, /bad signature/],
    ['another key under that id', parseCertificate(RAW), new Map([['agent-2026', other.publicKey]]), NOW, /bad signature/],
    ['unknown key', parseCertificate(RAW), new Map([['agent-2027', KEYS.get('agent-2026')]]), NOW, /unknown agent key/],
    ['expired', parseCertificate(RAW), KEYS, V.certificate_fields.expires_at, /expired/],
    ['not yet valid', parseCertificate(RAW), KEYS, V.certificate_fields.issued_at - 301, /not yet valid/],
  ];
  for (const [name, c, keys, now, err] of cases) await assert.rejects(verifyCertificate(c, keys, now), err, name);
  await verifyCertificate(parseCertificate(RAW), KEYS, V.certificate_fields.issued_at - 300);
  await verifyCertificate(parseCertificate(RAW), KEYS, V.certificate_fields.expires_at - 1);
});

test('malformed bindings are refused', () => {
  const raw = b64decode(V.binding_of_segment_2_to_daily_planet);
  const cases = {
    truncated: raw.subarray(0, raw.length - 1),
    'trailing bytes': Uint8Array.of(...raw, 0),
    'wrong magic': Uint8Array.of(0x48, 0x57, 0x43, ...raw.subarray(3)),
    'over 161 bytes': new Uint8Array(162),
  };
  for (const [name, b] of Object.entries(cases)) assert.throws(() => parseBinding(b), Error, name);
});
