// Hostile vendor origins documents (docs/protocol.md §9.1) and signed
// documents.

import assert from 'node:assert/strict';
import test from 'node:test';
import { importSeed } from '../lib/crypto.js';
import { openKeys, openOrigins, openSigned } from '../lib/payword.js';
import { agentKey, signDoc } from './helpers.js';

const NOW = 1796083200;
const GOOD = {
  kind: 'hashwall/vendor-origins/v1', vendor: 'daily-planet',
  origins: ['https://news.example.com', 'https://www.news.example.com'], time: NOW, expires: NOW + 3600,
};

async function setup() {
  const agent = await agentKey();
  const keys = new Map([['agent-2026', agent.publicKey]]);
  return { agent, keys, sign: (body, kid = 'agent-2026', key = agent.privateKey) => signDoc(body, key, kid) };
}

test('a good origins document opens', async () => {
  const { keys, sign } = await setup();
  assert.deepEqual(await openOrigins(await sign(GOOD), keys, 'daily-planet', NOW), GOOD.origins);
  assert.deepEqual(await openOrigins(await sign({ ...GOOD, origins: [] }), keys, 'daily-planet', NOW), []);
  assert.deepEqual(await openOrigins(await sign({ ...GOOD, time: NOW + 300 }), keys, 'daily-planet', NOW), GOOD.origins, '300 s ahead passes');
});

test('hostile origins documents are refused', async () => {
  const { keys, sign } = await setup();
  const stranger = await importSeed(new Uint8Array(32).fill(9));
  const good = await sign(GOOD);
  const cases = {
    'wrong kind': await sign({ ...GOOD, kind: 'crl' }),
    'other vendor': await sign({ ...GOOD, vendor: 'other-vendor' }),
    expired: await sign({ ...GOOD, time: NOW - 3600, expires: NOW }),
    future: await sign({ ...GOOD, time: NOW + 301, expires: NOW + 4000 }),
    'bad signature': { ...good, sig: (await sign({ ...GOOD, vendor: 'x' })).sig },
    'signed by a stranger under the kid': await sign(GOOD, 'agent-2026', stranger.privateKey),
    'unknown kid': await sign(GOOD, 'agent-2099'),
    'unknown member': await sign({ ...GOOD, extra: 1 }),
    'non-canonical origin': await sign({ ...GOOD, origins: ['https://News.example.com'] }),
    'origin with a path': await sign({ ...GOOD, origins: ['https://news.example.com/a'] }),
    'default port written': await sign({ ...GOOD, origins: ['https://news.example.com:443'] }),
    'over 16 origins': await sign({ ...GOOD, origins: Array.from({ length: 17 }, (_, k) => `https://s${String(k).padStart(2, '0')}.example`) }),
    'nested too deep': await sign({ ...GOOD, origins: [['https://news.example.com']] }),
    'expires before time': await sign({ ...GOOD, expires: NOW - 1 }),
    'fractional time': await sign(JSON.stringify(GOOD).replace(`"time":${NOW}`, `"time":${NOW}.5`)),
    'not JSON': await sign('{"kind":'),
    'body over 16 KiB': await sign({ ...GOOD, vendor: 'daily-planet', pad: 'x'.repeat(17000) }),
    'not base64url body': { ...good, body: good.body + '=' },
    'no kid': { body: good.body, sig: good.sig },
  };
  for (const [name, doc] of Object.entries(cases)) {
    await assert.rejects(openOrigins(doc, keys, 'daily-planet', NOW), Error, name);
  }
});

test('signed documents: nesting limit and key announcements', async () => {
  const { agent, keys, sign } = await setup();
  assert.deepEqual(await openSigned(await sign({ a: { b: [1] } }), keys), { a: { b: [1] } });
  await assert.rejects(openSigned(await sign({ a: { b: [[1]] } }), keys), /nests too deep/);
  assert.deepEqual(await openSigned(await sign({ s: '[[[[{{{{' }), keys), { s: '[[[[{{{{' }, 'brackets in strings do not count');

  const next = await importSeed(new Uint8Array(32).fill(3));
  const { b64encode } = await import('../lib/b64.js');
  const body = { type: 'keys', time: NOW, keys: [{ kid: 'agent-2026', public: b64encode(agent.publicKey) }, { kid: 'agent-2027', public: b64encode(next.publicKey) }] };
  const rotation = [await sign(body), await sign(body, 'agent-2027', next.privateKey)];
  const learnt = await openKeys(rotation, keys);
  assert.deepEqual([...learnt.keys()].sort(), ['agent-2026', 'agent-2027']);
  // Only the new key's word: not trusted.
  assert.deepEqual([...(await openKeys([rotation[1]], keys)).keys()], ['agent-2026']);
  const swapped = { type: 'keys', time: NOW, keys: [{ kid: 'agent-2026', public: b64encode(next.publicKey) }] };
  await assert.rejects(openKeys([await sign(swapped)], keys), /announced with another key/);
  await assert.rejects(openKeys([await sign({ type: 'crl', keys: [] })], keys), /right shape/);
  await assert.rejects(openKeys(Array(17).fill(rotation[0]), keys), /17 key announcements/);
  // Bootstrap ignores a document not signed by a key it announces.
  const stranger = await importSeed(new Uint8Array(32).fill(4));
  const liar = await sign(body, 'agent-2026', stranger.privateKey);
  assert.equal((await openKeys([liar], null, { bootstrap: true })).size, 0);
});
