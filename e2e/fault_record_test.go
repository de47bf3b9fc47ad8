package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/hashwall/hashwall/payword"
)

// tokenKey names one token a payment spends up to: its certificate,
// segment and highest index.
type tokenKey struct {
	Serial string
	Seg    uint32
	Index  uint32
}

func (k tokenKey) String() string {
	return fmt.Sprintf("%s…/seg %d/i %d", k.Serial[:8], k.Seg, k.Index)
}

// acceptedPayment is a payment a gateway accepted: the answer to it carried
// a receipt (a grant). A payment sent again after a lost answer is the same
// payment, and the gateway must answer it with the same grant (same
// authorization number).
type acceptedPayment struct {
	Key     tokenKey
	Vendor  string
	Amount  uint32
	Product string
	Auths   map[string]int // authorization number (the grant's jti) → receipts carrying it
	Hosts   map[string]bool
	// Seq orders first acceptances; Header and Path let the test send
	// the very same payment again.
	Seq    int
	Header string
	Path   string
}

// payRecorder sits under each wallet's paying transport and sees every
// request and answer on the wire. It records each payment that a gateway
// accepted, keyed by the token it spends, whichever attempt delivered the
// answer: a payment whose answer was lost and that the wallet's journal sent
// again counts once, by its receipt, never by the HTTP attempt.
type payRecorder struct {
	base http.RoundTripper

	mu       sync.Mutex
	accepted map[tokenKey]*acceptedPayment
	sent     int // payment attempts put on the wire
	seq      int
	answers  map[string]int // "<status> <Payment-Error>" of payment attempts without a receipt
	netErrs  int            // payment attempts that got no answer at all
	badRcpt  int            // receipts whose grant could not be read
}

func newPayRecorder(base http.RoundTripper) *payRecorder {
	return &payRecorder{base: base, accepted: map[tokenKey]*acceptedPayment{}, answers: map[string]int{}}
}

func (r *payRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	hdr := req.Header.Get("Authorization")
	var p *payword.Payment
	if strings.HasPrefix(hdr, payword.Scheme+" ") {
		p, _ = payword.ParseAuthorization(hdr)
	}
	resp, err := r.base.RoundTrip(req)
	if p == nil {
		return resp, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	if err != nil {
		r.netErrs++
		return resp, err
	}
	receipt := resp.Header.Get("Payment-Receipt")
	if receipt == "" {
		r.answers[fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Payment-Error"))]++
		return resp, err
	}
	g, ok := readGrant(receipt)
	if !ok || g.Sub != p.Cert.Serial.String() || g.Product != p.Product || g.Iss != p.Vendor {
		r.badRcpt++
		return resp, err
	}
	k := tokenKey{Serial: p.Cert.Serial.String(), Seg: p.Segment, Index: p.Index}
	a := r.accepted[k]
	if a == nil {
		a = &acceptedPayment{Key: k, Vendor: p.Vendor, Amount: p.Amount, Product: p.Product,
			Auths: map[string]int{}, Hosts: map[string]bool{}, Header: hdr, Path: req.URL.Path}
		r.seq++
		a.Seq = r.seq
		r.accepted[k] = a
	}
	if a.Vendor != p.Vendor || a.Amount != p.Amount || a.Product != p.Product {
		// The same token accepted for another vendor, amount or product:
		// keep it visible as a second authorization.
		a.Auths[fmt.Sprintf("%s (as %s %d %s)", g.Jti, p.Vendor, p.Amount, p.Product)]++
	} else {
		a.Auths[g.Jti]++
	}
	a.Hosts[req.URL.Host] = true
	return resp, err
}

type grantView struct {
	Iss, Sub, Jti, Product string
}

// readGrant reads a grant's claims without checking its signature: the test
// only needs the authorization number the gateway gave the payment.
func readGrant(token string) (grantView, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return grantView{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return grantView{}, false
	}
	var g grantView
	if json.Unmarshal(raw, &g) != nil || g.Jti == "" {
		return grantView{}, false
	}
	return g, true
}

// replay sends up to n of the earliest accepted payments again, unchanged,
// each to base(vendor) (another gateway of the vendor, say), as a reader
// who kept the headers could. The gateway must answer each with the grant it
// gave first (same authorization number) or refuse it; an answer with a new
// authorization means the tokens were accepted twice, which the recorder
// shows. It returns the answers by kind.
func (r *payRecorder) replay(ctx context.Context, n int, base func(vendor string, first map[string]bool) string) map[string]int {
	list := r.snapshot()
	sort.Slice(list, func(i, j int) bool { return list[i].Seq < list[j].Seq })
	out := map[string]int{}
	for _, a := range list[:min(n, len(list))] {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base(a.Vendor, a.Hosts)+a.Path, nil)
		if err != nil {
			continue
		}
		req.Header.Set("Authorization", a.Header)
		resp, err := r.RoundTrip(req)
		if err != nil {
			out["no answer"]++
			continue
		}
		resp.Body.Close()
		g, ok := readGrant(resp.Header.Get("Payment-Receipt"))
		switch {
		case !ok:
			out[fmt.Sprintf("refused %d %s", resp.StatusCode, resp.Header.Get("Payment-Error"))]++
		case a.Auths[g.Jti] > 0:
			out["same grant"]++
		default:
			out["NEW GRANT"]++
		}
	}
	return out
}

// snapshot returns the accepted payments, in a stable order.
func (r *payRecorder) snapshot() []*acceptedPayment {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*acceptedPayment, 0, len(r.accepted))
	for _, a := range r.accepted {
		c := *a
		c.Auths, c.Hosts = map[string]int{}, map[string]bool{}
		for k, v := range a.Auths {
			c.Auths[k] = v
		}
		for k, v := range a.Hosts {
			c.Hosts[k] = v
		}
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i].Key, out[j].Key
		if x.Serial != y.Serial {
			return x.Serial < y.Serial
		}
		if x.Seg != y.Seg {
			return x.Seg < y.Seg
		}
		return x.Index < y.Index
	})
	return out
}
