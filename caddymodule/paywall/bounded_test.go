package paywall

import (
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A bounded cache never holds more than its bound, however many distinct
// keys come; it holds the newest half of them, keeps an entry in use, and
// once both generations are full it takes new keys without allocating (its
// maps' tables are reused, not grown or dropped). Not parallel: it counts
// allocations.
func TestBoundedCache(t *testing.T) {
	const bound, n = 64, 10000
	c := bounded[int, int]{max: bound}
	c.put(-1, -1) // in use throughout
	for i := range n {
		c.put(i, i)
		if v, ok := c.get(-1); !ok || v != -1 {
			t.Fatalf("after %d keys: the entry in use was dropped", i+1)
		}
		if got := c.len(); got > bound {
			t.Fatalf("after %d keys: %d entries, bound %d", i+1, got, bound)
		}
	}
	for i := n - bound/2 + 1; i < n; i++ {
		if v, ok := c.get(i); !ok || v != i {
			t.Errorf("key %d of the newest not held", i)
		}
	}
	if _, ok := c.get(0); ok {
		t.Error("the oldest key is still held")
	}
	next := n
	if a := testing.AllocsPerRun(1000, func() { c.put(next, next); next++ }); a != 0 {
		t.Errorf("a full cache allocates %v times per new key", a)
	}
}

// The segment caches hold digests: a bound of entries whatever the keys'
// length.
func TestBoundedSet(t *testing.T) {
	t.Parallel()
	s := boundedSet{bounded[digest, struct{}]{max: 32}}
	long := string(make([]byte, 4096))
	for i := range 1000 {
		s.add(long + strconv.Itoa(i))
		if !s.has(long + strconv.Itoa(i)) {
			t.Fatalf("key %d not held", i)
		}
		if s.len() > 32 {
			t.Fatalf("after %d keys: %d entries", i+1, s.len())
		}
	}
	if s.has(long + "0") {
		t.Error("the oldest key is still held")
	}
	if s.has(long) {
		t.Error("a key never added is held")
	}
}

// The grant cache holds at most its bound of grants, however many distinct
// valid grants are checked, and a grant it dropped is checked again (not
// refused).
func TestGrantCacheBounded(t *testing.T) {
	t.Parallel()
	const bound, n = 32, 500
	g := newGranter([][]byte{[]byte(testGrantKey)}, testVendor)
	g.cache.max = bound
	now := time.Now()
	var toks []string
	for i := range n {
		tok, err := g.mint(&grantClaims{Product: "/articles/a", Scope: "path", User: "u:" + strconv.Itoa(i), Price: 1,
			RegisteredClaims: jwt.RegisteredClaims{Issuer: testVendor, Subject: "00", ID: "auth" + strconv.Itoa(i),
				ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		if _, err := g.check(tok, "/articles/a", now); err != nil {
			t.Fatalf("grant %d: %v", i, err)
		}
		if got := g.cache.len(); got > bound {
			t.Fatalf("after %d grants: %d cached, bound %d", i+1, got, bound)
		}
	}
	var oldest grantKey
	copy(oldest[:], toks[0][len(toks[0])-len(oldest):])
	if _, ok := g.cache.get(oldest); ok {
		t.Error("the oldest grant is still cached")
	}
	if c, err := g.check(toks[0], "/articles/a", now); err != nil || c.User != "u:0" {
		t.Errorf("a grant dropped from the cache: %v", err)
	}
	// The cache answers for the exact token it checked, not for another
	// with its signature.
	last := toks[n-1]
	if _, err := g.check("x"+last, "/articles/a", now); err == nil {
		t.Error("a cached grant's signature took another token")
	}
	if _, err := g.check(last, "/articles/a", now); err != nil {
		t.Errorf("the cached grant after another took its slot: %v", err)
	}
}

// The default bounds, as docs/scaling.md states them.
func TestCacheBounds(t *testing.T) {
	if maxGrantCache != 1<<16 || maxSegmentCache != 1<<16 {
		t.Fatalf("grant cache %d, segment caches %d: update docs/scaling.md", maxGrantCache, maxSegmentCache)
	}
}

// BenchmarkGrantCheck is a cached grant's check alone: the cache lookup
// and the expiry and product comparisons.
func BenchmarkGrantCheck(b *testing.B) {
	g := newGranter([][]byte{[]byte(testGrantKey)}, testVendor)
	now := time.Now()
	tok, err := g.mint(&grantClaims{Product: "/articles/a", Scope: "path", User: "u:alice", Price: 1,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: testVendor, Subject: "0123456789abcdef0123456789abcdef", ID: "auth1",
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.check(tok, "/articles/a", now); err != nil {
			b.Fatal(err)
		}
	}
}
