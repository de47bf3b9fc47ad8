package payword

import sha256 "github.com/minio/sha256-simd"

// The Merkle tree over segment anchors is RFC 6962's (§2.1): leaf = H(0x00 ‖ a),
// node = H(0x01 ‖ left ‖ right), and a level with an odd number of nodes
// promotes its last node unchanged.

func leafHash(a Token) Token {
	var b [1 + TokenSize]byte
	copy(b[1:], a[:])
	return sha256.Sum256(b[:])
}

func nodeHash(l, r Token) Token {
	var b [1 + 2*TokenSize]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[1+TokenSize:], r[:])
	return sha256.Sum256(b[:])
}

// Tree is a Merkle tree over anchors, kept whole so that paths are cheap.
type Tree struct {
	anchors []Token
	levels  [][]Token // levels[0] are the leaf hashes, the last level is the root
}

// NewTree builds the tree over anchors (at least one).
func NewTree(anchors []Token) *Tree {
	level := make([]Token, len(anchors))
	for i, a := range anchors {
		level[i] = leafHash(a)
	}
	t := &Tree{anchors: anchors, levels: [][]Token{level}}
	for len(level) > 1 {
		next := make([]Token, (len(level)+1)/2)
		for i := range next {
			if 2*i+1 < len(level) {
				next[i] = nodeHash(level[2*i], level[2*i+1])
			} else {
				next[i] = level[2*i]
			}
		}
		t.levels = append(t.levels, next)
		level = next
	}
	return t
}

// Root returns R.
func (t *Tree) Root() Token { return t.levels[len(t.levels)-1][0] }

// Anchor returns a[g].
func (t *Tree) Anchor(g int) Token { return t.anchors[g] }

// Path returns the inclusion proof of leaf idx, bottom up.
func (t *Tree) Path(idx int) []Token {
	var path []Token
	for _, level := range t.levels[:len(t.levels)-1] {
		if sib := idx ^ 1; sib < len(level) {
			path = append(path, level[sib])
		}
		idx >>= 1
	}
	return path
}

// VerifyPath reports whether anchor is leaf idx of a tree of size leaves with
// root. Its loop runs at most log2(size) times whatever the path holds.
func VerifyPath(anchor Token, idx, size int, path []Token, root Token) bool {
	if idx < 0 || idx >= size || len(path) > MaxPathLen {
		return false
	}
	r := leafHash(anchor)
	k := 0
	for fn, sn := idx, size-1; sn > 0; fn, sn = fn>>1, sn>>1 {
		switch {
		case fn&1 == 1: // a left sibling
			if k == len(path) {
				return false
			}
			r = nodeHash(path[k], r)
			k++
		case fn < sn: // a right sibling
			if k == len(path) {
				return false
			}
			r = nodeHash(r, path[k])
			k++
		} // else: last node of an odd level, promoted
	}
	return k == len(path) && r == root
}
