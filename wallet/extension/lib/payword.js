// The PayWord protocol of docs/protocol.md, one import for the extension:
// chains, Merkle proofs, certificates, bindings, payments, challenges,
// signed documents and origins.

export { anchors, hashN, segmentTop, tokenAt } from './chain.js';
export { merklePath, merkleRoot, verifyPath } from './merkle.js';
export { parseCertificate, verifyCertificate } from './certificate.js';
export { makeBinding, parseBinding } from './binding.js';
export { paymentHeader, paymentJSON } from './payment.js';
export { parseChallenge, parseChallenges } from './challenge.js';
export { isId, isProductId } from './ids.js';
export { openKeys, openSigned } from './signed.js';
export { canonicalOrigin, openOrigins } from './origins.js';
