package payword

import "crypto/sha256"

// Internals that the external tests (package payword_test) check. Those
// tests build their certificates with internal/testutil/paytest, which a
// test of package payword cannot import: paytest imports payword.

// CertFixedLen is the size of a certificate's fixed-width fields.
const CertFixedLen = certFixedLen

// Body is c's signed part, encoded without Sign's checks.
func (c *Certificate) Body() []byte { return c.body() }

// Cached is the number of certificates v holds as verified, counting one
// in both generations twice.
func (v *Verifier) Cached() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.cur) + len(v.old)
}

// MaxTrusted is the bound of the certificate cache.
const MaxTrusted = maxTrusted

// SetMaxTrusted lowers v's bound, before v is used.
func (v *Verifier) SetMaxTrusted(n int) { v.max = n }

// Holds tells whether v holds c as verified.
func (v *Verifier) Holds(c *Certificate) bool {
	sum := sha256.Sum256(c.raw)
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, cur := v.cur[sum]
	_, old := v.old[sum]
	return cur || old
}
