package paywall

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// priceHeader is how an upstream prices a response (upstream_price).
const priceHeader = "Paywall-Price"

// serveUpstreamPriced passes a request no rule prices to the upstream and
// holds the response's header until it is known whether the upstream priced
// it: then the client gets the body only with a valid grant or an accepted
// payment, and a 402 otherwise.
func (h *Handler) serveUpstreamPriced(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, clean string) error {
	product, ok := productID(clean)
	if !ok {
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("%w: path too long for a product id", errAmbiguousPath))
	}
	if g := h.grantFor(r, product); g != nil {
		setPlaceholders(r, g)
		return next.ServeHTTP(&priceWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w},
			decide: func(int) bool { w.Header().Del(priceHeader); makePrivate(w.Header()); return true }}, r)
	}
	setPlaceholders(r, nil) // the upstream is asked before anything is paid
	hdr, isPayment, hdrErr := paymentHeader(r)
	pw := &priceWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	pw.decide = func(status int) bool {
		v := w.Header().Get(priceHeader)
		w.Header().Del(priceHeader)
		if v == "" {
			return true
		}
		price, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || price < 1 || price > MaxPrice {
			h.logger.Error("upstream price out of range", zapErr(errBadPrice))
			h.replace(w, http.StatusBadGateway, "bad_upstream_price")
			return false
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
		g, token, err := h.pay(r.Context(), hdr, o)
		if err != nil {
			h.replaceRejection(w, o, err)
			return false
		}
		h.deliverGrant(w, r, g, token, o)
		makePrivate(w.Header())
		return true
	}
	return next.ServeHTTP(pw, r)
}

// replaceRejection answers a refused payment from inside WriteHeader, where
// returning an error is no longer possible.
func (h *Handler) replaceRejection(w http.ResponseWriter, o offer, err error) {
	status, code := classify(err)
	paymentsTotal.WithLabelValues(code).Inc()
	clearHeader(w.Header())
	if status == http.StatusPaymentRequired {
		w.Header().Set("WWW-Authenticate", h.challengeFor(o).String())
	}
	h.replace(w, status, code)
}

func (h *Handler) replace(w http.ResponseWriter, status int, code string) {
	clearHeader(w.Header())
	w.Header().Set("Payment-Error", code)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status)+": "+code+"\n")
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
		pw.ResponseWriterWrapper.WriteHeader(status)
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
