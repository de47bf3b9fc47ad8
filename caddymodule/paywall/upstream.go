package paywall

import (
	"bufio"
	"context"
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
	// The upstream is told the grant's reader (its price is checked once
	// the upstream has set one), or the reader of a payment that verifies
	// for the product (its amount, and spending it, once the price is
	// known), or no one.
	who := g
	if who == nil && isPayment && hdrErr == nil && ok {
		who = h.payer(r, hdr, product)
	}
	setPlaceholders(r, who)
	pw := &priceWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	pw.decide = func(status int) bool {
		v := w.Header().Get(priceHeader)
		w.Header().Del(priceHeader)
		if v == "" {
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
			makePrivate(w.Header())
			return true
		}
		o := offer{Product: product, Price: uint32(price), TTL: h.ttl, Mode: h.mode}
		if hdrErr != nil {
			h.replaceRejection(w, o, hdrErr)
			return false
		}
		if !isPayment {
			clearHeader(w.Header())
			_ = h.challenge(w, r, o)
			return false
		}
		paid, token, err := h.pay(r.Context(), hdr, o)
		if err != nil {
			h.replaceRejection(w, o, err)
			return false
		}
		h.deliverGrant(w, r, paid, token, o)
		makePrivate(w.Header())
		return true
	}
	return next.ServeHTTP(pw, r)
}

// payer is who sends payment hdr for product, as the placeholders give it
// to the upstream before it prices its answer: the payment must verify
// for the product at the lowest price (certificate, revocation, binding);
// nothing is spent, and the authorization number is not known yet. Nil
// when it does not verify: the upstream is told no one.
func (h *Handler) payer(r *http.Request, hdr, product string) *grantClaims {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	p, err := h.verify(ctx, hdr, offer{Product: product, Price: 1}, time.Now())
	if err != nil {
		return nil
	}
	g := &grantClaims{Product: product, User: p.Cert.UserID}
	g.Subject = p.Cert.Serial.String()
	g.ready()
	return g
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

// priceWriter holds the response header until decide has looked at it. If
// decide answers false it has written its own response, and the upstream's
// body is discarded.
type priceWriter struct {
	caddyhttp.ResponseWriterWrapper
	decide  func(status int) bool
	decided bool
	discard bool
}

func (pw *priceWriter) WriteHeader(status int) {
	if pw.decided {
		return
	}
	if status >= 100 && status <= 199 && status != http.StatusSwitchingProtocols {
		// Interim answers (103 Early Hints, 100 Continue) would go out
		// before the price is known: they are dropped. They are hints only;
		// the final answer does without them.
		return
	}
	pw.decided = true
	if !pw.decide(status) {
		pw.discard = true
		return
	}
	pw.ResponseWriterWrapper.WriteHeader(status)
}

func (pw *priceWriter) Write(b []byte) (int, error) {
	pw.WriteHeader(http.StatusOK)
	if pw.discard {
		return len(b), nil
	}
	return pw.ResponseWriterWrapper.Write(b)
}

func (pw *priceWriter) ReadFrom(r io.Reader) (int64, error) {
	pw.WriteHeader(http.StatusOK)
	if pw.discard {
		return io.Copy(io.Discard, r)
	}
	return pw.ResponseWriterWrapper.ReadFrom(r)
}

func (pw *priceWriter) Flush() {
	pw.WriteHeader(http.StatusOK)
	if !pw.discard {
		_ = http.NewResponseController(pw.ResponseWriter).Flush()
	}
}

// FlushError is what http.ResponseController calls first.
func (pw *priceWriter) FlushError() error {
	pw.Flush()
	return nil
}

// Hijack refuses to hand over the connection of a withheld response, so an
// upgraded (e.g. WebSocket) answer cannot go around the paywall.
func (pw *priceWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !pw.decided || pw.discard {
		return nil, nil, fmt.Errorf("paywall: response withheld")
	}
	return http.NewResponseController(pw.ResponseWriter).Hijack()
}

// Interface guards
var (
	_ http.Flusher  = (*priceWriter)(nil)
	_ http.Hijacker = (*priceWriter)(nil)
)
