package paywall

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strings"

	"github.com/hashwall/hashwall/payword"
)

// problem is the RFC 9457 body of a 402 for API clients; the challenge's
// parameters are extension members.
type problem struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Status  int    `json:"status"`
	Detail  string `json:"detail"`
	Realm   string `json:"realm"`
	Vendor  string `json:"vendor"`
	Price   uint32 `json:"price"`
	Product string `json:"product"`
	Agent   string `json:"agent"`
}

func (h *Handler) challengeFor(o offer) payword.Challenge {
	return payword.Challenge{Realm: h.realm, Vendor: h.Vendor, Price: o.Price, Product: o.Product, Agent: h.Agent}
}

// challenge answers 402 with the PayWord challenge, as HTML for browsers and
// problem+json for everyone else.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, o offer) error {
	ch := h.challengeFor(o)
	hdr := w.Header()
	hdr.Set("WWW-Authenticate", ch.String())
	hdr.Set("Cache-Control", "no-store")
	hdr.Add("Vary", "Accept")
	h.metrics.challenges.Inc()

	var body bytes.Buffer
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		body.Grow(4 << 10) // the default page, in one allocation
		d := newPageData(ch, h.TokenValue, r)
		if err := h.page.Execute(&body, d); err != nil {
			h.logger.Error("402 template", zapErr(err))
			body.Reset()
		}
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		if h.page == defaultPage {
			// Set, not added: a site-wide policy would block the page's
			// style. A custom template keeps whatever the site sends.
			hdr.Set("Content-Security-Policy", d.csp())
		}
	} else {
		_ = json.NewEncoder(&body).Encode(problem{
			Type: "https://hashwall.dev/problems/payment-required", Title: "Payment Required",
			Status: http.StatusPaymentRequired, Detail: "pay with an Authorization: PayWord header",
			Realm: ch.Realm, Vendor: ch.Vendor, Price: ch.Price, Product: ch.Product, Agent: ch.Agent,
		})
		hdr.Set("Content-Type", "application/problem+json")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusPaymentRequired)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body.Bytes())
	}
	return nil
}

// loadPage reads the 402 page's template (`template`), or takes the default.
func loadPage(file string) (*template.Template, error) {
	if file == "" {
		return defaultPage, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return template.New("402").Parse(string(b))
}
