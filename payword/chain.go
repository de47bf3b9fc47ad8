package payword

import (
	"crypto/hmac"
	"encoding/binary"
	"hash"

	sha256 "github.com/minio/sha256-simd"
)

// TokenSize is the size of a token, an anchor and a Merkle node.
const TokenSize = 32

// Token is one element of a hash chain.
type Token [TokenSize]byte

// Limits on certificate shape. They bound the work an attacker can ask of a
// verifier: at most MaxSegmentLen hashes per payment and MaxPathLen per proof.
const (
	DefaultSegmentLen = 128
	MaxSegmentLen     = 1024
	MaxSegments       = 1 << 20
	MaxPathLen        = 20 // ceil(log2(MaxSegments))
)

const segmentLabel = "hashwall/segment"

// hashN applies H, SHA-256, n times.
func hashN(t Token, n int) Token {
	for ; n > 0; n-- {
		t = sha256.Sum256(t[:])
	}
	return t
}

// Secret is a certificate's chain secret K. Whoever holds it can mint every
// token of the certificate: the agent keeps it encrypted, the wallet too.
type Secret [32]byte

// segmentKeyer derives segment tops from K. It reuses one HMAC state, so
// deriving many segments allocates nothing per segment.
type segmentKeyer struct {
	mac hash.Hash
	msg [len(segmentLabel) + 4]byte
}

// newSegmentKeyer returns a keyer for K.
func newSegmentKeyer(k Secret) *segmentKeyer {
	s := &segmentKeyer{mac: hmac.New(sha256.New, k[:])}
	copy(s.msg[:], segmentLabel)
	return s
}

// top returns w[g][m] = HMAC-SHA256(K, "hashwall/segment" ‖ uint32be(g)).
func (s *segmentKeyer) top(g uint32) Token {
	var t Token
	binary.BigEndian.PutUint32(s.msg[len(segmentLabel):], g)
	s.mac.Reset()
	s.mac.Write(s.msg[:])
	s.mac.Sum(t[:0])
	return t
}

// TokenAt returns w[g][i] of a chain of segment length m (0 ≤ i ≤ m): the top
// hashed m-i times. The agent uses it to check claims without storing chains.
func TokenAt(k Secret, g uint32, i, m int) Token {
	return hashN(newSegmentKeyer(k).top(g), m-i)
}

// Segment returns the whole chain of segment g: chain[i] = w[g][i], i = 0..m.
func Segment(k Secret, g uint32, m int) []Token {
	return newSegmentKeyer(k).segment(g, make([]Token, m+1))
}

func (s *segmentKeyer) segment(g uint32, chain []Token) []Token {
	m := len(chain) - 1
	chain[m] = s.top(g)
	for i := m; i > 0; i-- {
		chain[i-1] = sha256.Sum256(chain[i][:])
	}
	return chain
}

// Anchors returns a[g] = w[g][0] for g = 0..S-1.
func Anchors(k Secret, segments, m int) []Token {
	s := newSegmentKeyer(k)
	anchors := make([]Token, segments)
	for g := range anchors {
		anchors[g] = hashN(s.top(uint32(g)), m)
	}
	return anchors
}
