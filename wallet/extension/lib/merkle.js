// The Merkle tree over segment anchors, RFC 6962's (docs/protocol.md §3):
// leaf = H(0x00 ‖ a), node = H(0x01 ‖ l ‖ r), an odd level promoting its
// last node unchanged.

import { concat, equalBytes } from './b64.js';
import { MAX_SEGMENTS } from './chain.js';
import { sha256Sync } from './sha256.js';

export const MAX_PATH_NODES = 20;

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

/** @param {Uint8Array} a */
function leafHash(a) {
  return sha256Sync(concat(LEAF, a));
}

/** @param {Uint8Array} l @param {Uint8Array} r */
function nodeHash(l, r) {
  return sha256Sync(concat(NODE, l, r));
}

/**
 * @param {Uint8Array[]} anchors
 * @returns {Uint8Array[][]} the levels, leaves first, the root's last
 */
function levels(anchors) {
  if (anchors.length < 1 || anchors.length > MAX_SEGMENTS) throw new Error(`a tree holds 1..${MAX_SEGMENTS} anchors`);
  let level = anchors.map((a) => {
    if (!(a instanceof Uint8Array) || a.length !== 32) throw new Error('an anchor is 32 bytes');
    return leafHash(a);
  });
  const out = [level];
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? nodeHash(level[i], level[i + 1]) : level[i]);
    out.push(next);
    level = next;
  }
  return out;
}

/**
 * @param {Uint8Array[]} anchors
 * @returns {Promise<Uint8Array>} R
 */
export async function merkleRoot(anchors) {
  const ls = levels(anchors);
  return ls[ls.length - 1][0];
}

/**
 * @param {Uint8Array[]} anchors
 * @param {number} g leaf index
 * @returns {Promise<Uint8Array>} the path of leaf g: its nodes bottom up, concatenated
 */
export async function merklePath(anchors, g) {
  if (!Number.isInteger(g) || g < 0 || g >= anchors.length) throw new Error(`segment ${g} is not in the tree`);
  const nodes = [];
  let idx = g;
  for (const level of levels(anchors).slice(0, -1)) {
    const sib = idx ^ 1;
    if (sib < level.length) nodes.push(level[sib]);
    idx >>= 1;
  }
  return concat(...nodes);
}

/**
 * Checks that anchor is leaf g of a tree of S leaves with root. The loop
 * runs at most log2(S) times whatever the path holds.
 * @param {Uint8Array} anchor
 * @param {number} g
 * @param {number} S
 * @param {Uint8Array} path concatenated 32-byte nodes
 * @param {Uint8Array} root
 * @returns {Promise<boolean>}
 */
export async function verifyPath(anchor, g, S, path, root) {
  if (!Number.isInteger(S) || S < 1 || S > MAX_SEGMENTS || !Number.isInteger(g) || g < 0 || g >= S) return false;
  if (path.length % 32 !== 0 || path.length > 32 * MAX_PATH_NODES || anchor.length !== 32) return false;
  const n = path.length / 32;
  const node = (k) => path.subarray(32 * k, 32 * k + 32);
  let r = leafHash(anchor);
  let k = 0;
  for (let fn = g, sn = S - 1; sn > 0; fn >>= 1, sn >>= 1) {
    if (fn & 1) {
      if (k === n) return false;
      r = nodeHash(node(k++), r);
    } else if (fn < sn) {
      if (k === n) return false;
      r = nodeHash(r, node(k++));
    }
  }
  return k === n && equalBytes(r, root);
}
