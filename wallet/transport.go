package wallet

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// OverLimitError is returned instead of paying a price above the reader's
// limits. Nothing is spent.
type OverLimitError struct {
	Price, Limit uint32
	What         string
}

func (e *OverLimitError) Error() string {
	return fmt.Sprintf("the site asks %d tokens, above your %s of %d; nothing was paid", e.Price, e.What, e.Limit)
}

// PendingError means a payment was sent but its answer was lost. It stays in
// the journal and is sent again, unchanged, before the next payment at that
// vendor; the vendor answers a repeat with the same grant.
type PendingError struct {
	Vendor string
	Err    error
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("payment to %s sent but not confirmed (%v); it is kept and retried first next time, no tokens are lost", e.Vendor, e.Err)
}

func (e *PendingError) Unwrap() error { return e.Err }

// Transport is an http.RoundTripper that pays PayWord challenges from a
// wallet. It pays only for GET and HEAD requests, within the wallet's limits
// (or MaxPrice, when set), and sends stored grants so a paid article is not
// paid again while its grant lives.
type Transport struct {
	Wallet   *Wallet
	Base     http.RoundTripper // nil: http.DefaultTransport
	MaxPrice uint32            // per-request cap overriding the wallet's; 0: the wallet's
	// Paid, if set, is told of every payment made and how long it took,
	// from choosing the tokens to the vendor's answer.
	Paid func(vendor, product string, price uint32, took time.Duration)
	// Bank fetches the vendors' origins documents (and the bank's keys)
	// from the wallet's bank; nil: a client with a 10 s timeout.
	Bank *http.Client
}

// retries of one payment whose answer is lost in transit, before it is left
// pending in the journal.
const sendAttempts = 3

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return t.base().RoundTrip(req)
	}
	t.settlePending(req)
	host, path := req.URL.Host, req.URL.EscapedPath()
	r := req.Clone(req.Context())
	grant := t.Wallet.grantFor(host, path, req.URL.RawQuery)
	if grant != nil {
		r.Header.Set("Authorization", "Bearer "+grant.Token)
	}
	resp, err := t.base().RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		return resp, err
	}
	if grant != nil {
		_ = t.Wallet.dropGrant(grant.Host, grant.Path) // expired or revoked at the vendor
	}
	ch, ok := challengeOf(resp)
	if !ok {
		return resp, nil // a 402 of another scheme: not ours to pay
	}
	drain(resp)
	if err := t.withinLimits(host, ch.Vendor, ch.Price); err != nil {
		return nil, err
	}
	// Only a vendor whose published origins include this site is paid,
	// checked before any token is chosen or binding signed. The origin is
	// the request's own: after redirects, the one that got the 402.
	if err := t.checkSite(req, ch); err != nil {
		return nil, err
	}
	start := time.Now()
	p, err := t.Wallet.reserve(ch.Vendor, ch.Product, req.URL.String(), ch.Price)
	if err != nil {
		return nil, err
	}
	resp, err = t.send(req, p)
	if err == nil && t.Paid != nil && resp.Header.Get(payword.ReceiptHeader) != "" {
		t.Paid(ch.Vendor, ch.Product, ch.Price, time.Since(start))
	}
	return resp, err
}

// send delivers a journaled payment and records the vendor's verdict. Like
// any RoundTripper it returns a response or an error, never both.
func (t *Transport) send(req *http.Request, p *pendingPay) (*http.Response, error) {
	var lastErr error
	for range sendAttempts {
		r := req.Clone(req.Context())
		r.Header.Set("Authorization", p.Header)
		resp, err := t.base().RoundTrip(r)
		if err != nil {
			lastErr = err
			if req.Context().Err() != nil {
				break
			}
			continue
		}
		if resp.StatusCode >= 500 && resp.Header.Get(payword.ReceiptHeader) == "" && !unpaidAnswer(resp) {
			// Not a verdict: the vendor may or may not have taken it.
			drain(resp)
			return nil, &PendingError{Vendor: p.Vendor, Err: fmt.Errorf("status %d", resp.StatusCode)}
		}
		if err := t.settle(p, resp); err != nil {
			drain(resp)
			return nil, err
		}
		return resp, nil
	}
	return nil, &PendingError{Vendor: p.Vendor, Err: lastErr}
}

// settle turns a vendor's final answer into the journal's outcome: the
// receipt says the payment was taken; not_charged that it was not, voided
// that it was taken and its value goes back to the reader's account.
func (t *Transport) settle(p *pendingPay, resp *http.Response) error {
	switch {
	case resp.Header.Get(payword.ReceiptHeader) != "":
		return t.Wallet.settle(p.ID, accepted, grantOf(resp, p), "")
	case errorCode(resp) == payword.CodeNotCharged:
		// The page was not served (the site's 404 or 5xx) or was open
		// already: nothing was spent, and the tokens are ours again.
		return t.Wallet.settle(p.ID, refused, nil, fmt.Sprintf("not charged: the site answered %d", resp.StatusCode))
	case errorCode(resp) == payword.CodeVoided:
		return t.Wallet.settle(p.ID, spentWithoutGrant, nil,
			fmt.Sprintf("voided: the site answered %d; the bank credits the tokens' value to your account", resp.StatusCode))
	case resp.StatusCode < 300:
		return t.Wallet.settle(p.ID, spentWithoutGrant, nil, "the vendor answered without a grant")
	case errorCode(resp) == payword.CodeReplay:
		// The vendor says these tokens were spent there already, yet gave no
		// grant: they are gone; the history keeps the case for a complaint.
		return t.Wallet.settle(p.ID, spentWithoutGrant, nil, "the vendor said the tokens were already spent")
	default:
		return t.Wallet.settle(p.ID, refused, nil, fmt.Sprintf("refused with status %d", resp.StatusCode))
	}
}

func errorCode(resp *http.Response) payword.ErrorCode {
	return payword.ErrorCode(resp.Header.Get(payword.ErrorHeader))
}

// unpaidAnswer is the upstream's own answer to a payment the gateway did not
// keep: a verdict, whatever its status.
func unpaidAnswer(resp *http.Response) bool {
	c := errorCode(resp)
	return c == payword.CodeNotCharged || c == payword.CodeVoided
}

// settlePending sends every journaled payment again, unchanged, so that a
// lost answer is repaired before anything else is spent.
func (t *Transport) settlePending(like *http.Request) {
	for _, p := range t.Wallet.unsettled() {
		r, err := http.NewRequestWithContext(like.Context(), http.MethodGet, p.URL, nil)
		if err != nil {
			_ = t.Wallet.settle(p.ID, refused, nil, "unusable URL")
			continue
		}
		if resp, err := t.send(r, &p); err == nil {
			drain(resp)
		}
	}
}

// checkSite refuses a challenge whose vendor did not publish the request's
// origin; the refusal is recorded and counts toward the site's limit.
func (t *Transport) checkSite(req *http.Request, ch payword.Challenge) error {
	raw := req.URL.Scheme + "://" + req.URL.Host
	origin, err := payword.ParseOrigin(raw)
	if err != nil {
		err = &OriginError{Origin: raw, Vendor: ch.Vendor, Reason: "its address is not an origin a vendor can register"}
	} else {
		err = t.checkOrigin(req.Context(), origin, ch.Vendor)
	}
	var oe *OriginError
	if errors.As(err, &oe) {
		if rerr := t.Wallet.recordRefusal(ch.Vendor, ch.Product, req.URL.String(), ch.Price, oe.Reason); rerr != nil {
			return rerr
		}
	}
	return err
}

func (t *Transport) withinLimits(host, vendor string, price uint32) error {
	limits, spent, vendors := t.Wallet.spentAt(host, time.Now().Add(-24*time.Hour))
	if !vendors[vendor] && len(vendors) >= MaxVendorsPerSiteDay {
		return &TooManyVendorsError{Site: host, Vendor: vendor, Count: len(vendors)}
	}
	perRequest := limits.PerRequest
	if t.MaxPrice > 0 {
		perRequest = t.MaxPrice
	}
	if price > perRequest {
		return &OverLimitError{Price: price, Limit: perRequest, What: "limit per request"}
	}
	if limits.PerSiteDay > 0 && spent+price > limits.PerSiteDay {
		return &OverLimitError{Price: price, Limit: limits.PerSiteDay - min(spent, limits.PerSiteDay), What: "daily limit left for this site"}
	}
	return nil
}

func hostOf(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	host, _, _ := strings.Cut(rest, "/")
	return host
}

func challengeOf(resp *http.Response) (payword.Challenge, bool) {
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if c, err := payword.ParseChallenge(h); err == nil {
			return c, true
		}
	}
	return payword.Challenge{}, false
}

// grantOf reads the grant from the receipt header, scoped and timed by the
// grant cookie the vendor sets with it, or else by the token's own claims.
func grantOf(resp *http.Response, p *pendingPay) *heldGrant {
	token := resp.Header.Get(payword.ReceiptHeader)
	if token == "" {
		return nil
	}
	g := &heldGrant{Host: hostOf(p.URL), Path: p.Product, Token: token, Expires: time.Now().Add(time.Hour)}
	if exp, product := jwtClaims(token); !exp.IsZero() {
		g.Expires = exp
		if product != "" {
			g.Path = product
		}
	}
	for _, c := range resp.Cookies() {
		if c.Value == token {
			if c.Path != "" && !strings.Contains(g.Path, "?") { // a cookie path has no query
				g.Path = c.Path
			}
			if c.MaxAge > 0 {
				g.Expires = time.Now().Add(time.Duration(c.MaxAge) * time.Second)
			}
		}
	}
	return g
}

// jwtClaims reads exp and product from a JWT's payload without verifying it:
// the wallet cannot (the key is the vendor's) and only uses them to know
// when to stop sending the grant.
func jwtClaims(token string) (time.Time, string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 4096 {
		return time.Time{}, ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, ""
	}
	var c struct {
		Exp     int64  `json:"exp"`
		Product string `json:"product"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Exp == 0 {
		return time.Time{}, ""
	}
	return time.Unix(c.Exp, 0), c.Product
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

var _ http.RoundTripper = (*Transport)(nil)
