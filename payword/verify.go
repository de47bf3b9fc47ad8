package payword

import (
	"sync"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
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
// costs a map lookup instead of an Ed25519 verification. It is safe for
// concurrent use.
type Verifier struct {
	keys KeySet

	mu      sync.RWMutex
	trusted map[string]*voi.ExpandedPublicKey // verified certificate encoding → its user key, expanded
}

// maxTrusted bounds the certificate cache; only validly signed certificates
// enter it, and it is emptied when full.
const maxTrusted = 1 << 16

// NewVerifier returns a verifier trusting keys. The set must not change after.
func NewVerifier(keys KeySet) *Verifier {
	return &Verifier{keys: keys, trusted: make(map[string]*voi.ExpandedPublicKey)}
}

// trust returns the expanded user key of c, verifying c's signature the
// first time. Expanding the key once makes each binding check cheaper.
func (v *Verifier) trust(c *Certificate) (*voi.ExpandedPublicKey, error) {
	v.mu.RLock()
	user, ok := v.trusted[string(c.raw)]
	v.mu.RUnlock()
	if ok {
		return user, nil
	}
	if err := c.Verify(v.keys); err != nil {
		return nil, err
	}
	user, err := voi.NewExpandedPublicKey(c.UserKey[:])
	if err != nil {
		return nil, errorf(ErrMalformed, "certificate %s: user key is not a curve point", c.Serial)
	}
	v.mu.Lock()
	if len(v.trusted) >= maxTrusted {
		clear(v.trusted)
	}
	v.trusted[string(c.raw)] = user
	v.mu.Unlock()
	return user, nil
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
	if _, err := v.trust(p.Cert); err != nil {
		return err
	}
	return p.Cert.validAt(req.Now)
}

// CheckSegment is step 2 of Verify: what a vendor checks once per segment,
// the user's binding of the segment to this vendor (generic certificates
// only) and the anchor's Merkle path to the certificate root.
func CheckSegment(p *Payment) error {
	return verifySegment(p, func(b *Binding) error { return b.Verify(p.Cert) })
}

// checkSegment is CheckSegment with the certificate's user key kept expanded
// across calls; the certificate must be trusted (Check) or it is verified now.
func (v *Verifier) checkSegment(p *Payment) error {
	user, err := v.trust(p.Cert)
	if err != nil {
		return err
	}
	return verifySegment(p, func(b *Binding) error { return b.verifyExpanded(user) })
}

func verifySegment(p *Payment, verifyBinding func(*Binding) error) error {
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
		if err := verifyBinding(b); err != nil {
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
		if err := v.checkSegment(p); err != nil {
			return State{}, err
		}
		return Advance(p, Genesis(p))
	}
	return Advance(p, *last)
}
