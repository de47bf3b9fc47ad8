package paywall

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/payword"
)

// priceHeader is how an upstream prices a response (upstream_price).
const priceHeader = "Paywall-Price"

// serveUpstreamPriced passes a request no rule prices to the upstream and
// holds the response's header until it is known whether the upstream priced
// it: then the client gets the answer only with a grant that paid at least
// that price or an accepted payment, and a 402 otherwise. The product is
// the path and the query: the upstream may price each query differently,
// and it is sent the query in the one spelling the product names.
func (h *Handler) serveUpstreamPriced(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, clean string) error {
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	r.URL.RawQuery, r.URL.ForceQuery = query, false
	product, ok := productID(clean)
	if query != "" {
		product += "?" + query
		ok = ok && payword.ValidProduct(product)
	}
	var g *grantClaims
	if ok {
		g = h.grantFor(r, product, 0) // the dearest; the upstream's price decides
	}
	hdr, isPayment, hdrErr := paymentHeader(r)
	if g == nil && !isPayment && isUpgrade(r) {
		// The answer would be a connection, not a header that can be held
		// back: a page that may be priced is upgraded only once paid for.
		status, code := classify(errUpgradeUnpaid)
		w.Header().Set(payword.ErrorHeader, string(code))
		return caddyhttp.Error(status, errUpgradeUnpaid)
	}
	// The payment is verified now, for the lowest price (certificate,
	// revocation, binding); its amount is checked against the price the
	// upstream sets, and it is spent only if that answer is charged.
	var p *payword.Payment
	var took time.Duration
	payErr := hdrErr
	if isPayment && ok {
		p, took, payErr = h.verifyPayment(r.Context(), hdr, offer{Product: product, Price: 1})
	}
	// The upstream is told the grant's reader (its price is checked once
	// the upstream has set one), or the reader of a payment that verifies,
	// or no one.
	who := g
	if who == nil && p != nil {
		who = payerOf(p, product)
	}
	setPlaceholders(r, who)
	if isPayment {
		dropConditionals(r)
	}
	hw := &heldWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	hw.decide = func(status int) bool {
		v := w.Header().Get(priceHeader)
		w.Header().Del(priceHeader)
		if v == "" {
			if isPayment {
				h.notCharged(w) // an unpriced answer: the payment stays unspent
			}
			if g != nil {
				makePrivate(w.Header())
			}
			return true
		}
		price, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || price < 1 || price > MaxPrice {
			h.logger.Error("upstream price out of range", zapErr(errBadPrice))
			h.replace(w, errBadPrice)
			return false
		}
		if !ok {
			h.replace(w, errAmbiguousPath) // too long for a product id
			return false
		}
		if g != nil && g.Price >= uint32(price) {
			if isPayment {
				h.notCharged(w)
			}
			makePrivate(w.Header())
			return true
		}
		o := offer{Product: product, Price: uint32(price), TTL: h.ttl, Mode: h.mode, Rule: ruleUpstream}
		if payErr != nil {
			h.replaceRejection(w, o, payErr)
			return false
		}
		if !isPayment {
			clearHeader(w.Header())
			_ = h.challenge(w, r, o)
			return false
		}
		return h.spend(w, r, status, p, o, took)
	}
	err = next.ServeHTTP(hw, r)
	if isPayment {
		return h.notChargedOnError(w, hw, err)
	}
	return err
}

// replaceRejection answers a refused payment from inside WriteHeader, where
// returning an error is no longer possible.
func (h *Handler) replaceRejection(w http.ResponseWriter, o offer, err error) {
	status, code := classify(err)
	h.metrics.payments.WithLabelValues(string(code)).Inc()
	clearHeader(w.Header())
	if status == http.StatusPaymentRequired {
		w.Header().Set("WWW-Authenticate", h.challengeFor(o).String())
	}
	h.replace(w, err)
}

// replace answers err's status and code instead of the upstream's answer.
func (h *Handler) replace(w http.ResponseWriter, err error) {
	status, code := classify(err)
	clearHeader(w.Header())
	w.Header().Set(payword.ErrorHeader, string(code))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status)+": "+string(code)+"\n")
}

// clearHeader drops the upstream's response header, keeping only what
// the answer that replaces it needs.
func clearHeader(hdr http.Header) {
	for k := range hdr {
		if k != "Www-Authenticate" {
			delete(hdr, k)
		}
	}
}

// spend decides on verified payment p for upstream-priced offer o once the
// upstream's answer has status: an answer not charged goes out as it is, with
// not_charged; otherwise the payment is recorded and the answer goes out
// with the grant, or, if the payment is refused at this point (its tokens
// were spent meanwhile, the store is down), the refusal replaces it
// (false).
func (h *Handler) spend(w http.ResponseWriter, r *http.Request, status int, p *payword.Payment, o offer, took time.Duration) bool {
	if !charged(status) {
		h.notCharged(w)
		return true
	}
	g, token, err := h.charge(r.Context(), p, o, took)
	if err != nil {
		h.replaceRejection(w, o, err)
		return false
	}
	h.deliverGrant(w, r, g, token, o)
	makePrivate(w.Header())
	return true
}

// notChargedOnError marks the answer to an upstream that returned err
// without answering (a file_server 404, a reverse_proxy 502): Caddy
// writes that answer after the paywall returns, and the payment was not
// spent.
func (h *Handler) notChargedOnError(w http.ResponseWriter, hw *heldWriter, err error) error {
	if err != nil && !hw.decided {
		h.notCharged(w)
	}
	return err
}

// payerOf is who sends verified payment p for product, as the placeholders
// give it to the upstream before the payment is spent: the authorization
// number is not known yet.
func payerOf(p *payword.Payment, product string) *grantClaims {
	g := &grantClaims{Product: product, User: p.Cert.UserID}
	g.Subject = p.Cert.Serial.String()
	g.ready()
	return g
}

// heldWriter holds the response header until decide has looked at its
// status and header: nothing of the upstream's answer reaches the client
// before. If decide answers false it has written its own response, and the
// upstream's body is discarded.
type heldWriter struct {
	caddyhttp.ResponseWriterWrapper
	decide  func(status int) bool
	decided bool
	discard bool
}

func (hw *heldWriter) WriteHeader(status int) {
	if hw.decided {
		return
	}
	if status >= 100 && status <= 199 && status != http.StatusSwitchingProtocols {
		// Interim answers (103 Early Hints, 100 Continue) would go out
		// before the price is known: they are dropped. They are hints only;
		// the final answer does without them.
		return
	}
	hw.decided = true
	if !hw.decide(status) {
		hw.discard = true
		return
	}
	hw.ResponseWriterWrapper.WriteHeader(status)
}

func (hw *heldWriter) Write(b []byte) (int, error) {
	hw.WriteHeader(http.StatusOK)
	if hw.discard {
		return len(b), nil
	}
	return hw.ResponseWriterWrapper.Write(b)
}

func (hw *heldWriter) ReadFrom(r io.Reader) (int64, error) {
	hw.WriteHeader(http.StatusOK)
	if hw.discard {
		return io.Copy(io.Discard, r)
	}
	return hw.ResponseWriterWrapper.ReadFrom(r)
}

func (hw *heldWriter) Flush() {
	hw.WriteHeader(http.StatusOK)
	if !hw.discard {
		_ = http.NewResponseController(hw.ResponseWriter).Flush()
	}
}

// FlushError is what http.ResponseController calls first.
func (hw *heldWriter) FlushError() error {
	hw.Flush()
	return nil
}

// Hijack refuses to hand over the connection of a withheld response, so an
// upgraded (e.g. WebSocket) answer cannot go around the paywall.
func (hw *heldWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !hw.decided || hw.discard {
		return nil, nil, fmt.Errorf("paywall: response withheld")
	}
	return http.NewResponseController(hw.ResponseWriter).Hijack()
}

// Interface guards
var (
	_ http.Flusher  = (*heldWriter)(nil)
	_ http.Hijacker = (*heldWriter)(nil)
)
