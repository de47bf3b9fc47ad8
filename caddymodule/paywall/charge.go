package paywall

import (
	"context"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// Only answers worth paying for are charged: a success (2xx) or a protocol
// switch. docs/protocol.md §7 ("Only successful answers are charged"):
//
//   - On a rule-priced page the payment is recorded and its claim queued
//     before the upstream sees the request (no unpaid request reaches it).
//     If the upstream then answers anything else, the payment is voided:
//     its record says so, a void entry follows the claim on the report
//     stream, and the agent takes the claim's value back from the vendor
//     and credits it to the reader's account. The answer goes out without
//     the grant, with Payment-Error: voided.
//   - On an upstream-priced page the price is known only from the
//     upstream's answer, so the payment is spent only when that answer is
//     charged; otherwise nothing is spent and the answer goes out with
//     Payment-Error: not_charged (the tokens are the wallet's again).

// charged reports whether an answer with status is paid for: a success,
// or a protocol switch (the connection is what was bought).
func charged(status int) bool {
	return status >= 200 && status <= 299 || status == http.StatusSwitchingProtocols
}

// notCharged marks an answer to a request that carried a payment the
// gateway did not spend.
func (h *Handler) notCharged(w http.ResponseWriter) {
	h.metrics.payments.WithLabelValues(string(payword.CodeNotCharged)).Inc()
	w.Header().Set(payword.ErrorHeader, string(payword.CodeNotCharged))
	w.Header().Set("Cache-Control", "no-store")
}

// servePaid spends the payment in header hdr for rule-priced offer o, then
// passes the request on with its grant; an answer not charged voids it.
func (h *Handler) servePaid(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, hdr string, o offer) error {
	p, took, err := h.verifyPayment(r.Context(), hdr, o)
	if err != nil {
		return h.reject(w, o, err)
	}
	g, token, err := h.charge(r.Context(), p, o, took)
	if err != nil {
		return h.reject(w, o, err)
	}
	h.deliverGrant(w, r, g, token, o)
	dropConditionals(r)
	pw := private(w)
	pw.answered = func(status int) {
		if !charged(status) {
			h.void(w, r, p, g, o)
		}
	}
	err = next.ServeHTTP(pw, r)
	if err != nil && !pw.wrote {
		h.void(w, r, p, g, o) // Caddy writes the error's answer after we return
	}
	return err
}

// void takes back the grant of payment p, whose answer was not charged,
// and queues the void of its claim. If the store cannot record the void,
// the payment stands and the reader keeps the grant it paid for. A reader
// who left before the answer (the upstream's failure is then its
// cancelled request) is not voided: its wallet sends the payment again and
// gets the grant, as after any lost answer.
func (h *Handler) void(w http.ResponseWriter, r *http.Request, p *payword.Payment, g *grantClaims, o offer) {
	if r.Context().Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
	defer cancel()
	if err := h.recordVoid(ctx, p, g, o); err != nil {
		h.logger.Error("could not void the payment of an answer not charged; it stands",
			zap.String("auth", g.ID), zap.Error(err))
		return
	}
	h.metrics.payments.WithLabelValues(string(payword.CodeVoided)).Inc()
	hdr := w.Header()
	hdr.Del(payword.ReceiptHeader)
	dropGrantCookie(hdr, grantCookieName(o.Product))
	hdr.Set(payword.ErrorHeader, string(payword.CodeVoided))
	hdr.Set("Cache-Control", "no-store")
}

// dropGrantCookie removes the grant cookie deliverGrant set.
func dropGrantCookie(hdr http.Header, name string) {
	var kept []string
	for _, c := range hdr.Values("Set-Cookie") {
		if !strings.HasPrefix(c, name+"=") {
			kept = append(kept, c)
		}
	}
	hdr.Del("Set-Cookie")
	for _, c := range kept {
		hdr.Add("Set-Cookie", c)
	}
}

// dropConditionals keeps a paying request from being answered 304 out of
// the reader's cache, which is not charged: a paying reader gets the page.
func dropConditionals(r *http.Request) {
	r.Header.Del("If-None-Match")
	r.Header.Del("If-Modified-Since")
}
