package payword

// Internals that the external tests (package payword_test) check. Those
// tests build their certificates with internal/testutil/paytest, which a
// test of package payword cannot import: paytest imports payword.

// CertFixedLen is the size of a certificate's fixed-width fields.
const CertFixedLen = certFixedLen

// Body is c's signed part, encoded without Sign's checks.
func (c *Certificate) Body() []byte { return c.body() }

// Cached is the number of certificates v holds as verified.
func (v *Verifier) Cached() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.trusted)
}
