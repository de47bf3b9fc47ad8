package payword

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Request is what the vendor expects of a payment.
type Request struct {
	Vendor  string
	Product string
	Price   uint32 // tokens
	Now     time.Time
}

// State is a vendor's last-seen position in one segment of one certificate:
// the highest index accepted there and its token (0 and the anchor before the
// first payment).
type State struct {
	Index uint32
	Token Token
}

// Verifier checks payments against a set of trusted agent keys. It caches
// certificates whose signature it has checked, so a returning certificate
// costs a hash and a map lookup instead of an Ed25519 verification. It is
// safe for concurrent use.
type Verifier struct {
	keys KeySet

	// trusted holds the SHA-256 of each certificate encoding verified, 32
	// bytes however long the certificate, in two generations of
	// maxTrusted/2: when the newer is full the older is emptied (its table
	// kept) and becomes the newer, so the cache's memory is fixed once both
	// are full. A hit in the older is copied to the newer.
	mu       sync.RWMutex
	cur, old map[[sha256.Size]byte]struct{}
	max      int // maxTrusted; tests lower it
}

// maxTrusted bounds the certificate cache (both generations): about 3 MiB.
// Only validly signed certificates enter it.
const maxTrusted = 1 << 16

// NewVerifier returns a verifier trusting keys. The set must not change after.
func NewVerifier(keys KeySet) *Verifier {
	return &Verifier{keys: keys, cur: make(map[[sha256.Size]byte]struct{}), old: make(map[[sha256.Size]byte]struct{}), max: maxTrusted}
}

// trust verifies c's signature unless it is cached.
func (v *Verifier) trust(c *Certificate) error {
	sum := sha256.Sum256(c.raw)
	v.mu.RLock()
	_, ok := v.cur[sum]
	_, old := v.old[sum]
	v.mu.RUnlock()
	if ok {
		return nil
	}
	if !old {
		if err := c.Verify(v.keys); err != nil {
			return err
		}
	}
	v.mu.Lock()
	if len(v.cur) >= max(v.max/2, 1) {
		clear(v.old)
		v.cur, v.old = v.old, v.cur
	}
	v.cur[sum] = struct{}{}
	v.mu.Unlock()
	return nil
}

// Check is step 1 of Verify: every check that needs neither the vendor's
// state nor the segment proof (ranges, vendor, scope, product, price,
// certificate signature and validity).
func (v *Verifier) Check(p *Payment, req Request) error {
	if err := p.checkRanges(); err != nil {
		return err
	}
	if p.Vendor != req.Vendor {
		return errorf(ErrWrongVendor, "payment is for vendor %q", p.Vendor)
	}
	if !p.Cert.Generic() && p.Cert.Scope != req.Vendor {
		return errorf(ErrWrongVendor, "certificate is specific to vendor %q", p.Cert.Scope)
	}
	if !p.Cert.Generic() && p.Binding != nil {
		// Nothing would verify it, yet a vendor would count and report it.
		return errorf(ErrBadBinding, "a specific certificate takes no binding")
	}
	if p.Product != req.Product {
		return errorf(ErrWrongProduct, "payment is for product %q", p.Product)
	}
	if p.Amount < req.Price {
		return errorf(ErrUnderpaid, "paid %d of %d tokens", p.Amount, req.Price)
	}
	if err := v.trust(p.Cert); err != nil {
		return err
	}
	return p.Cert.validAt(req.Now)
}

// CheckSegment is step 2 of Verify: what a vendor checks once per segment,
// the user's binding of the segment to this vendor (generic certificates
// only) and the anchor's Merkle path to the certificate root.
func CheckSegment(p *Payment) error {
	c := p.Cert
	if c.Generic() {
		b := p.Binding
		switch {
		case b == nil:
			return errorf(ErrBadBinding, "a generic certificate needs a segment binding")
		case b.Serial != c.Serial:
			return errorf(ErrBadBinding, "binding is for certificate %s", b.Serial)
		case b.Segment != p.Segment:
			return errorf(ErrBadBinding, "binding is for segment %d", b.Segment)
		case b.Vendor != p.Vendor:
			return errorf(ErrBadBinding, "binding is for vendor %q", b.Vendor)
		}
		if err := b.Verify(c); err != nil {
			return err
		}
	}
	if !VerifyPath(p.Anchor, int(p.Segment), int(c.Segments), p.Path, c.Root) {
		return errorf(ErrBadProof, "segment %d", p.Segment)
	}
	return nil
}

// Advance is step 3 of Verify: it checks the payment's tokens against the
// last-seen state and returns the new state. The caller must have checked
// the segment (CheckSegment) before it trusts last, which for a fresh
// segment is Genesis(p).
func Advance(p *Payment, last State) (State, error) {
	if p.Index <= last.Index || p.Index-p.Amount < last.Index {
		return State{}, errorf(ErrReplay, "tokens up to %d already spent, payment covers %d..%d",
			last.Index, p.Index-p.Amount+1, p.Index)
	}
	if hashN(p.Token, int(p.Index-last.Index)) != last.Token {
		return State{}, errorf(ErrBadToken, "token %d of segment %d", p.Index, p.Segment)
	}
	return State{Index: p.Index, Token: p.Token}, nil
}

// Genesis is the state of a segment before its first payment: index 0 and the
// payment's (proven) anchor.
func Genesis(p *Payment) State { return State{Token: p.Anchor} }

// Expected returns the state an honest, contiguous payment follows:
// (i-p, H^p(w)). A gateway can compare-and-set it in one store round trip.
func Expected(p *Payment) State {
	return State{Index: p.Index - p.Amount, Token: hashN(p.Token, int(p.Amount))}
}

// Verify is the whole vendor-side check of a payment: Check, then, if last
// is nil (the vendor has not seen the segment), CheckSegment, then Advance
// from last or from Genesis. last is the vendor's state for (serial,
// segment). It returns the state to store; a refusal changes nothing.
func (v *Verifier) Verify(p *Payment, req Request, last *State) (State, error) {
	if err := v.Check(p, req); err != nil {
		return State{}, err
	}
	if last == nil {
		if err := CheckSegment(p); err != nil {
			return State{}, err
		}
		return Advance(p, Genesis(p))
	}
	return Advance(p, *last)
}
