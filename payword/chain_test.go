package payword

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

func TestChainDerivation(t *testing.T) {
	var k Secret
	k[0] = 7
	const m = 16
	seg := Segment(k, 5, m)
	mac := hmac.New(sha256.New, k[:])
	mac.Write([]byte("hashwall/segment\x00\x00\x00\x05"))
	if Token(mac.Sum(nil)) != seg[m] {
		t.Fatal("segment top is not HMAC(K, label ‖ g)")
	}
	for i := 0; i <= m; i++ {
		if TokenAt(k, 5, i, m) != seg[i] {
			t.Fatalf("TokenAt(%d) differs from the chain", i)
		}
		if i > 0 && hashN(seg[i], 1) != seg[i-1] {
			t.Fatalf("w[%d] does not hash to w[%d]", i, i-1)
		}
	}
	if Anchors(k, 8, m)[5] != seg[0] {
		t.Fatal("anchor differs from w[g][0]")
	}
	if hashN(seg[m], m) != seg[0] {
		t.Fatal("hashN")
	}
	if Segment(k, 6, m)[0] == seg[0] {
		t.Fatal("segments are not independent")
	}
}

func TestMerkleTree(t *testing.T) {
	var k Secret
	for size := 1; size <= 33; size++ {
		anchors := Anchors(k, size, 4)
		tree := NewTree(anchors)
		root := tree.Root()
		for idx := range size {
			path := tree.Path(idx)
			if !VerifyPath(anchors[idx], idx, size, path, root) {
				t.Fatalf("size %d: path of %d does not verify", size, idx)
			}
			if size > 1 {
				if VerifyPath(anchors[idx], (idx+1)%size, size, path, root) {
					t.Fatalf("size %d: path of %d verifies at another index", size, idx)
				}
				bad := append([]Token(nil), path...)
				bad[0][0] ^= 1
				if VerifyPath(anchors[idx], idx, size, bad, root) {
					t.Fatalf("size %d: tampered path verifies", size)
				}
				if VerifyPath(anchors[idx], idx, size, append(path, root), root) {
					t.Fatalf("size %d: over-long path verifies", size)
				}
			}
		}
	}
	// RFC 6962 shape: three leaves hash as H(H(l0,l1), l2).
	a := Anchors(k, 3, 2)
	if NewTree(a).Root() != nodeHash(nodeHash(leafHash(a[0]), leafHash(a[1])), leafHash(a[2])) {
		t.Fatal("tree of three is not RFC 6962's")
	}
	if VerifyPath(a[0], -1, 3, nil, Token{}) || VerifyPath(a[0], 3, 3, nil, Token{}) {
		t.Fatal("index out of range verifies")
	}
}
