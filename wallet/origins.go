package wallet

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// The wallet pays a challenge only when the site it is talking to is one of
// the challenge vendor's origins, as the wallet's own bank publishes them in
// a signed document (docs/protocol.md §9). Otherwise a site could show
// another newspaper's challenge, take the payment and replay it there
// (a relay), or name a fresh vendor on every visit to make the wallet bind
// segments it can never use again.

// OriginError is a payment the wallet refused because the site is not one
// of the vendor's published origins. Nothing was paid and no segment was
// bound; the refusal counts toward the site's daily limit.
type OriginError struct {
	Origin string // of the request that got the 402
	Vendor string // named by the challenge
	Reason string
}

func (e *OriginError) Error() string {
	return fmt.Sprintf("refused to pay: %s is not a site of vendor %q as your bank publishes them (%s); "+
		"the site may be relaying another newspaper's paywall; nothing was paid", e.Origin, e.Vendor, e.Reason)
}

// TooManyVendorsError is a payment refused because the site already made
// the wallet pay (or try to pay) MaxVendorsPerSiteDay other vendors in the
// last 24 hours: each new vendor binds a fresh segment.
type TooManyVendorsError struct {
	Site   string
	Vendor string
	Count  int
}

func (e *TooManyVendorsError) Error() string {
	return fmt.Sprintf("refused to pay: %s asked for payments to %d different vendors in 24 hours (at most %d), now %q; nothing was paid",
		e.Site, e.Count+1, MaxVendorsPerSiteDay, e.Vendor)
}

// BankError means the vendor's origins could not be checked at the bank;
// nothing was paid.
type BankError struct{ Err error }

func (e *BankError) Error() string {
	return fmt.Sprintf("cannot check the vendor's sites at your bank (%v); nothing was paid", e.Err)
}

func (e *BankError) Unwrap() error { return e.Err }

// MaxVendorsPerSiteDay bounds the distinct vendors one site may have the
// wallet pay in 24 hours. A segment is bound per vendor, so this bounds the
// segments one site can tie up in a day, even a site that its vendors all
// list (a hostile bank customer registering many vendors for one origin).
const MaxVendorsPerSiteDay = 3

const (
	originCacheTTL   = 5 * time.Minute  // at most; less if the bank says so
	originNegTTL     = time.Minute      // an unknown vendor is asked again after this
	maxOriginEntries = 256              // cached documents
	maxBankKeys      = 16               // pinned agent keys
	keyRefetch       = 10 * time.Minute // at most one /v1/keys per this, for an unknown key id
	maxClockSkew     = 5 * time.Minute  // a document signed this far in the future is refused
	bankTimeout      = 10 * time.Second
)

// originBook caches the origins documents of one wallet's bank, in memory,
// bounded.
type originBook struct {
	mu          sync.Mutex
	entries     map[string]*originEntry // by vendor
	keysFetched time.Time
}

type originEntry struct {
	doc   *payword.VendorOrigins // nil: the bank knows no such active vendor
	until time.Time
}

// checkOrigin returns nil when origin may be paid to vendor, an
// *OriginError when it may not, and a *BankError when the bank cannot say.
func (t *Transport) checkOrigin(ctx context.Context, origin, vendor string) error {
	w := t.Wallet
	now := w.now()
	b := &w.origins
	b.mu.Lock()
	e, ok := b.entries[vendor]
	b.mu.Unlock()
	if !ok || !now.Before(e.until) || (e.doc != nil && now.Unix() >= e.doc.Expires) {
		var err error
		if e, err = t.fetchOrigins(ctx, vendor, now); err != nil {
			return &BankError{Err: err}
		}
		b.put(vendor, e, now)
	}
	switch {
	case e.doc == nil:
		return &OriginError{Origin: origin, Vendor: vendor, Reason: "your bank knows no such vendor"}
	case !e.doc.Allows(origin):
		return &OriginError{Origin: origin, Vendor: vendor, Reason: "it is not among the vendor's registered sites"}
	}
	return nil
}

func (b *originBook) put(vendor string, e *originEntry, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.entries == nil {
		b.entries = map[string]*originEntry{}
	}
	if _, ok := b.entries[vendor]; !ok && len(b.entries) >= maxOriginEntries {
		oldest := ""
		for v, x := range b.entries {
			if oldest == "" || x.until.Before(b.entries[oldest].until) {
				oldest = v
			}
		}
		delete(b.entries, oldest)
	}
	b.entries[vendor] = e
}

func (t *Transport) bank() *agentapi.Client {
	hc := t.Bank
	if hc == nil {
		hc = &http.Client{Timeout: bankTimeout}
	}
	return t.Wallet.Bank(hc)
}

// fetchOrigins gets and verifies vendor's origins document from the bank
// that issued the wallet's certificates.
func (t *Transport) fetchOrigins(ctx context.Context, vendor string, now time.Time) (*originEntry, error) {
	if t.Wallet.agentURL() == "" {
		return nil, errors.New("the wallet knows no bank")
	}
	bank := t.bank()
	raw, age, err := bank.VendorOrigins(ctx, vendor)
	if ae, ok := errors.AsType[*agentapi.Error](err); ok && ae.Status == http.StatusNotFound {
		return &originEntry{until: now.Add(originNegTTL)}, nil
	}
	if err != nil {
		return nil, err
	}
	var s payword.Signed
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("the bank's origins document is malformed")
	}
	keys, err := t.Wallet.bankKeys(ctx, bank, s.KeyID)
	if err != nil {
		return nil, err
	}
	doc, err := payword.OpenVendorOrigins(raw, keys)
	if err != nil {
		return nil, fmt.Errorf("the bank's origins document of %q does not verify: %w", vendor, err)
	}
	switch {
	case doc.Vendor != vendor:
		return nil, fmt.Errorf("the bank answered the origins of %q for %q", doc.Vendor, vendor)
	case now.Unix() >= doc.Expires:
		return nil, errors.New("the bank's origins document has expired (is this machine's clock right?)")
	case time.Unix(doc.Time, 0).After(now.Add(maxClockSkew)):
		return nil, errors.New("the bank's origins document is signed in the future (is this machine's clock right?)")
	}
	ttl := originCacheTTL
	if age >= 0 && age < ttl {
		ttl = age
	}
	return &originEntry{doc: doc, until: now.Add(ttl)}, nil
}

// bankKeys returns the bank keys the wallet trusts. They are pinned in the
// wallet file the first time they are needed (at registration, or at the
// first origin check of an older wallet); a key id not yet pinned makes the
// wallet ask the bank's /v1/keys again, at most once per keyRefetch, and
// pin the new keys (a bank rotating its keys). A pinned key id never
// changes its key.
func (w *Wallet) bankKeys(ctx context.Context, bank *agentapi.Client, kid string) (payword.KeySet, error) {
	keys := w.pinnedKeys()
	if _, ok := keys[kid]; ok {
		return keys, nil
	}
	w.origins.mu.Lock()
	recent := len(keys) > 0 && w.now().Sub(w.origins.keysFetched) < keyRefetch
	if !recent {
		w.origins.keysFetched = w.now()
	}
	w.origins.mu.Unlock()
	if recent {
		return keys, nil // Open fails on the unknown key id
	}
	if err := w.PinBankKeys(ctx, bank); err != nil {
		return nil, err
	}
	return w.pinnedKeys(), nil
}

func (w *Wallet) pinnedKeys() payword.KeySet {
	w.mu.Lock()
	defer w.mu.Unlock()
	ks := payword.KeySet{}
	for kid, pub := range w.st.AgentKeys {
		ks[kid] = ed25519.PublicKey(pub)
	}
	return ks
}

func (w *Wallet) agentURL() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimRight(w.st.Agent, "/")
}

// PinBankKeys fetches the bank's public keys from bank (a client of the
// wallet's bank: see Bank) and pins those not pinned yet in the wallet file.
// They verify the origins documents that say which sites may be paid; a
// wallet without them pins them at its first payment.
func (w *Wallet) PinBankKeys(ctx context.Context, bank *agentapi.Client) error {
	if w.agentURL() == "" {
		return errors.New("the wallet knows no bank")
	}
	keys, err := bank.Keys(ctx)
	if err != nil {
		return err
	}
	return w.update(func(st *fileState) error {
		if st.AgentKeys == nil {
			st.AgentKeys = map[string]payword.Bytes{}
		}
		for _, k := range keys.Keys {
			if _, pinned := st.AgentKeys[k.KeyID]; pinned || len(st.AgentKeys) >= maxBankKeys ||
				!payword.ValidID(k.KeyID) || len(k.Public) != ed25519.PublicKeySize {
				continue
			}
			st.AgentKeys[k.KeyID] = k.Public
		}
		return nil
	})
}

// recordRefusal writes a refused payment to the history: it counts toward
// the site's daily limit like a payment.
func (w *Wallet) recordRefusal(vendor, product, url string, price uint32, note string) error {
	return w.update(func(st *fileState) error {
		st.record(&Event{Time: w.now(), Kind: "refused-origin", Vendor: vendor, Product: product, URL: url, Amount: int(price), Note: note})
		return nil
	})
}
