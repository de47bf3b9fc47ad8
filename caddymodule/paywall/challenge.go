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

// pageData is what a 402 page template sees.
type pageData struct {
	Header string // the WWW-Authenticate value
	payword.Challenge
}

var defaultPage = template.Must(template.New("402").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Payment required</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>This page costs {{.Price}} token{{if ne .Price 1}}s{{end}}</h1>
<p>{{.Realm}} sells <code>{{.Product}}</code> for {{.Price}} PayWord token{{if ne .Price 1}}s{{end}}.
Your Hashwall wallet pays it automatically; tokens are sold by <a href="{{.Agent}}">{{.Agent}}</a>.</p>
<pre id="hashwall-challenge">{{.Header}}</pre>
</body></html>
`))

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
		if err := h.page.Execute(&body, pageData{Header: ch.String(), Challenge: ch}); err != nil {
			h.logger.Error("402 template", zapErr(err))
			body.Reset()
		}
		hdr.Set("Content-Type", "text/html; charset=utf-8")
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
