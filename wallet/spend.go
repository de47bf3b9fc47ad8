package wallet

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// ErrNoTokens means no certificate can pay the price at that vendor.
var ErrNoTokens = errors.New("not enough tokens for this payment: buy more with `hashwall-wallet buy N`")

// ErrPending means a payment to the same vendor is still unsettled; it must
// be sent again and settled before anything else is spent there.
var ErrPending = errors.New("an earlier payment is still unsettled")

// expiryMargin keeps the wallet from spending a certificate that would expire
// while the payment travels.
const expiryMargin = time.Minute

// addCertificate stores a certificate bought from the agent, after checking
// that it is made out to this wallet's key and that K really generates its
// root. revokeHeld stops spending every certificate held before, in the same
// save: after a recovery the agent has revoked them.
func (w *Wallet) addCertificate(raw, k []byte, revokeHeld bool) error {
	c, err := payword.ParseCertificate(raw)
	if err != nil {
		return fmt.Errorf("the agent sent a bad certificate: %w", err)
	}
	entry := &heldCert{Raw: raw, K: k, Segs: map[uint32]*segState{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	if string(c.UserKey[:]) != string(w.userKey().Public().(ed25519.PublicKey)) {
		return errors.New("the certificate is made out to another key")
	}
	if len(k) != len(payword.Secret{}) {
		return errors.New("the certificate secret does not match the certificate")
	}
	// The anchors are kept so that no later process hashes the whole
	// certificate again (S·m hashes: 80 ms for a million tokens).
	entry.Anchors = payword.Anchors(payword.Secret(k), int(c.Segments), int(c.SegmentLen))
	if _, err := w.tree(entry, c); err != nil {
		return errors.New("the certificate secret does not match the certificate")
	}
	return w.updateLocked(func(st *fileState) error {
		if revokeHeld {
			st.revokeAll()
		}
		st.Certs = append(st.Certs, entry)
		st.record(&Event{Time: w.now(), Kind: "bought", Amount: c.Tokens(), Note: c.Serial.String()})
		return nil
	})
}

// reserve journals a payment of price tokens to vendor for product and
// returns it; the journal record is on disk before reserve returns, so the
// payment can be sent. It refuses while a payment to the same vendor is
// pending: that one must be settled first, or tokens of its segment could be
// handed out twice. Pending payments elsewhere do not block it, since their
// segments are bound to other vendors.
func (w *Wallet) reserve(vendor, product, url string, price uint32) (*pendingPay, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.st.Pending {
		if p.Vendor == vendor {
			return nil, ErrPending
		}
	}
	now := w.now()
	c, cert, g, seg, err := w.choose(vendor, price, now)
	if err != nil {
		return nil, err
	}
	if seg.Anchor == nil {
		// The segment's first payment: its Merkle proof is kept with it.
		tree, err := w.tree(c, cert)
		if err != nil {
			return nil, err
		}
		a := tree.Anchor(int(g))
		seg.Anchor, seg.Path = &a, tree.Path(int(g))
	}
	var bind *payword.Binding
	if len(seg.Binding) > 0 {
		if bind, err = payword.ParseBinding(seg.Binding); err != nil {
			return nil, err
		}
	}
	seg.Spent += price
	pay := &payword.Payment{Cert: cert, Segment: g, Anchor: *seg.Anchor, Path: seg.Path, Binding: bind,
		Index: seg.Spent, Token: payword.TokenAt(payword.Secret(c.K), g, int(seg.Spent), int(cert.SegmentLen)),
		Amount: price, Vendor: vendor, Product: product}
	p := &pendingPay{ID: w.st.Seq + 1, Serial: cert.Serial.String(), Segment: g, Index: seg.Spent, Amount: price,
		Vendor: vendor, Product: product, URL: url, Header: pay.Header(), Created: now}
	o := &op{Reserve: &reserveOp{Pending: p, Seg: seg, NextFresh: max(c.NextFresh, g+1)}}
	if err := w.logOp(o); err != nil {
		return nil, err
	}
	out := *p
	return &out, nil
}

// choose picks the segment to pay from: one already bound to vendor with room
// for price, in the certificate that expires first; else the next fresh
// segment, with a new binding. It changes nothing: the caller journals the
// choice. A segment is never bound to two vendors.
func (w *Wallet) choose(vendor string, price uint32, now time.Time) (*heldCert, *payword.Certificate, uint32, segState, error) {
	type usable struct {
		c    *heldCert
		cert *payword.Certificate
	}
	var certs []usable
	for _, c := range w.st.Certs {
		cert, err := payword.ParseCertificate(c.Raw)
		if err != nil || c.Revoked || now.Add(expiryMargin).Unix() >= cert.ExpiresAt ||
			(!cert.Generic() && cert.Scope != vendor) || price > cert.SegmentLen {
			continue
		}
		certs = append(certs, usable{c, cert})
	}
	sort.SliceStable(certs, func(i, j int) bool { return certs[i].cert.ExpiresAt < certs[j].cert.ExpiresAt })
	for _, u := range certs {
		for _, g := range slices.Sorted(maps.Keys(u.c.Segs)) {
			if seg := u.c.Segs[g]; seg.Vendor == vendor && u.cert.SegmentLen-seg.Spent >= price {
				return u.c, u.cert, g, *seg, nil
			}
		}
	}
	for _, u := range certs {
		if u.c.NextFresh >= u.cert.Segments {
			continue
		}
		g := u.c.NextFresh
		seg := segState{Vendor: vendor}
		if u.cert.Generic() {
			b, err := payword.Bind(u.cert, w.userKey(), g, vendor, now)
			if err != nil {
				return nil, nil, 0, segState{}, err
			}
			seg.Binding = b.Raw()
		}
		return u.c, u.cert, g, seg, nil
	}
	return nil, nil, 0, segState{}, ErrNoTokens
}

// tree returns the Merkle tree of c's segment anchors, built once per
// process from the stored anchors, or from K when they are missing or do
// not give the certificate's root.
func (w *Wallet) tree(c *heldCert, cert *payword.Certificate) (*payword.Tree, error) {
	if t, ok := w.trees[cert.Serial.String()]; ok {
		return t, nil
	}
	var t *payword.Tree
	if len(c.Anchors) == int(cert.Segments) {
		t = payword.NewTree(c.Anchors)
	}
	if t == nil || t.Root() != cert.Root {
		if len(c.K) != len(payword.Secret{}) {
			return nil, ErrNotWallet
		}
		t = payword.NewTree(payword.Anchors(payword.Secret(c.K), int(cert.Segments), int(cert.SegmentLen)))
		if t.Root() != cert.Root {
			return nil, ErrNotWallet
		}
	}
	w.trees[cert.Serial.String()] = t
	return t, nil
}

// outcome is how a vendor answered a payment.
type outcome int

const (
	// accepted: the vendor took the tokens and returned a grant.
	accepted outcome = iota
	// refused: a definitive refusal; the vendor spent nothing, so the tokens
	// come back (the segment stays bound to that vendor).
	refused
	// spentWithoutGrant: the vendor kept the tokens but gave no grant (or
	// said they were spent already): they are gone, and the history says so.
	spentWithoutGrant
)

// settle records the outcome of pending payment id.
func (w *Wallet) settle(id uint64, o outcome, g *heldGrant, note string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logOp(&op{Settle: &settleOp{ID: id, Outcome: o, Grant: g, Note: note, Time: w.now()}})
}

func (st *fileState) settle(s *settleOp) error {
	i := slices.IndexFunc(st.Pending, func(p *pendingPay) bool { return p.ID == s.ID })
	if i < 0 {
		return errNoSuchPayment
	}
	p := st.Pending[i]
	st.Pending = slices.Delete(st.Pending, i, i+1)
	e := &Event{Time: s.Time, Vendor: p.Vendor, Product: p.Product, URL: p.URL, Amount: int(p.Amount), Note: s.Note}
	switch s.Outcome {
	case accepted:
		e.Kind = "paid"
		if s.Grant != nil {
			st.addGrant(s.Grant, s.Time)
		}
	case refused:
		e.Kind = "refused"
		if seg := st.segment(p.Serial, p.Segment); seg != nil && seg.Spent == p.Index {
			seg.Spent -= p.Amount
		}
	case spentWithoutGrant:
		e.Kind = "spent-without-grant"
	}
	st.record(e)
	return nil
}

func (st *fileState) cert(serial string) *heldCert {
	for _, c := range st.Certs {
		if cert, err := payword.ParseCertificate(c.Raw); err == nil && cert.Serial.String() == serial {
			return c
		}
	}
	return nil
}

func (st *fileState) segment(serial string, g uint32) *segState {
	if c := st.cert(serial); c != nil {
		return c.Segs[g]
	}
	return nil
}

func (st *fileState) addGrant(g *heldGrant, now time.Time) {
	kept := st.Grants[:0]
	for _, old := range st.Grants {
		if old.Expires.After(now) && !(old.Host == g.Host && old.Path == g.Path) {
			kept = append(kept, old)
		}
	}
	st.Grants = append(kept, g)
}

// grantFor returns a live grant covering host and path, if any.
//
// query is the request's raw query: a grant for a page the vendor prices
// by query (its product holds one, `/read?id=1`) opens only that page, so
// it is not sent to `/read?id=2`, which the vendor may price higher.
func (w *Wallet) grantFor(host, path, query string) *heldGrant {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, g := range w.st.Grants {
		if g.Host == host && g.Expires.After(now) && grantOpens(g.Path, path, query) {
			c := *g
			return &c
		}
	}
	return nil
}

// dropGrant forgets a grant the vendor no longer honours.
func (w *Wallet) dropGrant(host, path string) error {
	return w.update(func(st *fileState) error {
		kept := st.Grants[:0]
		for _, g := range st.Grants {
			if !(g.Host == host && g.Path == path) {
				kept = append(kept, g)
			}
		}
		st.Grants = kept
		return nil
	})
}

// grantOpens reports whether a grant for product may open path?query: a
// product with a query opens that query only, in the vendor's canonical
// form (parameters sorted by name, as url.Values encodes them).
func grantOpens(product, path, query string) bool {
	p, q, ok := strings.Cut(product, "?")
	if !ok {
		return pathWithin(path, product)
	}
	v, err := url.ParseQuery(query)
	return err == nil && path == p && v.Encode() == q
}

// pathWithin reports whether path is scope or below it, as cookie paths match.
func pathWithin(path, scope string) bool {
	if path == scope {
		return true
	}
	if len(path) > len(scope) && path[:len(scope)] == scope {
		return scope[len(scope)-1] == '/' || path[len(scope)] == '/'
	}
	return false
}

// PendingPayment is a payment sent whose answer was lost: the wallet sends
// it again, unchanged, before anything else is spent at its vendor.
type PendingPayment struct {
	Vendor  string
	Product string
	URL     string
	Amount  uint32
	Created time.Time
}

// PendingPayments returns the unsettled payments, oldest first.
func (w *Wallet) PendingPayments() []PendingPayment {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]PendingPayment, len(w.st.Pending))
	for i, p := range w.st.Pending {
		out[i] = PendingPayment{Vendor: p.Vendor, Product: p.Product, URL: p.URL, Amount: p.Amount, Created: p.Created}
	}
	return out
}

// unsettled returns copies of the journal's pending payments, oldest first.
func (w *Wallet) unsettled() []pendingPay {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]pendingPay, len(w.st.Pending))
	for i, p := range w.st.Pending {
		out[i] = *p
	}
	return out
}

// CertBalance is what is left of one certificate.
type CertBalance struct {
	Serial    string
	Scope     string
	Expires   time.Time
	Revoked   bool
	Total     int            // S·m
	Free      int            // tokens of unbound segments: spendable anywhere
	Bound     map[string]int // vendor → tokens left in segments bound to it
	Spent     int            // handed out and settled
	Pending   int            // handed out, not settled
	Unit      uint64
	Currency  string
	Segments  int
	SegLength int
}

// Spendable is what is left to spend of a certificate that is not revoked:
// its free tokens and those left in segments bound to vendors.
func (b CertBalance) Spendable() int {
	if b.Revoked {
		return 0
	}
	n := b.Free
	for _, left := range b.Bound {
		n += left
	}
	return n
}

// Balance reports every certificate's tokens.
func (w *Wallet) Balance() []CertBalance {
	w.mu.Lock()
	defer w.mu.Unlock()
	unsettled := map[string]int{}
	for _, p := range w.st.Pending {
		unsettled[p.Serial] += int(p.Amount)
	}
	var out []CertBalance
	for _, c := range w.st.Certs {
		cert, err := payword.ParseCertificate(c.Raw)
		if err != nil {
			continue
		}
		s := cert.Serial.String()
		b := CertBalance{Serial: s, Scope: cert.Scope, Expires: time.Unix(cert.ExpiresAt, 0), Revoked: c.Revoked,
			Total: cert.Tokens(), Free: int(cert.Segments-c.NextFresh) * int(cert.SegmentLen), Bound: map[string]int{},
			Pending: unsettled[s], Unit: cert.UnitValue, Currency: cert.Currency,
			Segments: int(cert.Segments), SegLength: int(cert.SegmentLen)}
		for _, seg := range c.Segs {
			b.Bound[seg.Vendor] += int(cert.SegmentLen - seg.Spent)
			b.Spent += int(seg.Spent)
		}
		b.Spent -= b.Pending
		out = append(out, b)
	}
	return out
}

// spentAt returns the limits, the tokens paid or asked for at host since
// then, and the vendors host had the wallet pay or try to pay. Refusals
// count like payments: a site that has its payments refused, or that the
// wallet refuses, uses up its daily limit instead of trying forever; and so
// do unsettled payments, or a site answering none would bind a segment per
// vendor without end.
func (w *Wallet) spentAt(host string, since time.Time) (Limits, uint32, map[string]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	spent := uint32(0)
	vendors := map[string]bool{}
	for _, p := range w.st.Pending {
		if hostOf(p.URL) == host {
			spent += p.Amount
			vendors[p.Vendor] = true
		}
	}
	for i := len(w.st.History) - 1; i >= 0 && w.st.History[i].Time.After(since); i-- {
		e := w.st.History[i]
		switch e.Kind {
		case "paid", "spent-without-grant", "refused", "refused-origin":
			if hostOf(e.URL) == host {
				spent += uint32(e.Amount)
				vendors[e.Vendor] = true
			}
		}
	}
	return w.st.Limits, spent, vendors
}

// Limits returns the caps on automatic payments.
func (w *Wallet) Limits() Limits {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.Limits
}

// SetLimits changes the caps on automatic payments.
func (w *Wallet) SetLimits(l Limits) error {
	return w.update(func(st *fileState) error {
		st.Limits = l
		return nil
	})
}
