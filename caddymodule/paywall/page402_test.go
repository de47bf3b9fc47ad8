package paywall

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// pageHandler is a Handler with just what challenge() needs: no Redis.
func pageHandler(t testing.TB, mods ...func(*Handler)) *Handler {
	t.Helper()
	h := &Handler{Vendor: testVendor, Agent: "https://bank.example.com", realm: "The Daily Planet", page: defaultPage, logger: zap.NewNop()}
	var err error
	if h.metrics, err = newMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if m != nil {
			m(h)
		}
	}
	return h
}

func render402(t testing.TB, h *Handler, o offer, accept string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := h.challenge(w, get(o.Product, "Accept", accept), o); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusPaymentRequired {
		t.Fatalf("status %d", w.Code)
	}
	return w
}

var (
	metaChallenge = regexp.MustCompile(`<meta name="hashwall-challenge" content="([^"]*)">`)
	styleElement  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	headElement   = regexp.MustCompile(`(?s)<head>.*</head>`)
	anyTag        = regexp.MustCompile(`(?s)<[^>]*>`)
	hrefs         = regexp.MustCompile(`href="([^"]*)"`)
	formTag       = regexp.MustCompile(`<form class="pay" method="get" action="([^"]*)">`)
	inputTag      = regexp.MustCompile(`<input ([^>]*)>`)
	attr          = regexp.MustCompile(`([a-z]+)="([^"]*)"`)
	quoted        = regexp.MustCompile(`"[^"]*"`)
)

// visibleText is what a reader sees: the body's text, unescaped.
func visibleText(page string) string {
	return html.UnescapeString(anyTag.ReplaceAllString(headElement.ReplaceAllString(page, ""), " "))
}

func TestPage402Rendered(t *testing.T) {
	eur := &TokenValue{MinorUnits: 1, Currency: "EUR"}
	for _, tc := range []struct {
		name        string
		mod         func(*Handler)
		offer       offer
		want, never []string // in the visible text
		links       []string // every href, in order
		action      string   // the pay button's form action; "" for no button
		formAction  string   // the CSP's form-action sources
	}{
		{
			name: "tokens and money", mod: func(h *Handler) { h.TokenValue = eur }, offer: offer{Product: "/articles/moon", Price: 2},
			want:   []string{"The Daily Planet", "costs 2 tokens", "0.02 EUR", "one token is worth 0.01 EUR", "/articles/moon", "bank.example.com", "hashwall-wallet", "A token is"},
			links:  []string{"https://bank.example.com/signup", "https://bank.example.com/login"},
			action: "https://bank.example.com/pay", formAction: "https://bank.example.com",
		},
		{
			name: "one token, in dollars", mod: func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 250, Currency: "USD"} }, offer: offer{Product: "/a", Price: 1},
			want:   []string{"costs 1 token", "2.50 USD"},
			never:  []string{"1 tokens"},
			links:  []string{"https://bank.example.com/signup", "https://bank.example.com/login"},
			action: "https://bank.example.com/pay", formAction: "https://bank.example.com",
		},
		{
			name: "no token_value: tokens only", offer: offer{Product: "/a", Price: 1024},
			want:   []string{"costs 1024 tokens"},
			never:  []string{"EUR", "worth"},
			links:  []string{"https://bank.example.com/signup", "https://bank.example.com/login"},
			action: "https://bank.example.com/pay", formAction: "https://bank.example.com",
		},
		{
			name: "invalid token_value set in Go: tokens only", mod: func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1, Currency: "<b>"} },
			offer: offer{Product: "/a", Price: 2}, never: []string{"<b>", "0.02"},
			links:  []string{"https://bank.example.com/signup", "https://bank.example.com/login"},
			action: "https://bank.example.com/pay", formAction: "https://bank.example.com",
		},
		{
			name: "agent with a base path and a query", mod: func(h *Handler) { h.Agent = "https://bank.example.com/hw/?x=1#f" }, offer: offer{Product: "/a", Price: 2},
			links:  []string{"https://bank.example.com/hw/signup", "https://bank.example.com/hw/login"},
			action: "https://bank.example.com/hw/pay", formAction: "https://bank.example.com",
		},
		{
			name: "loopback agent over http", mod: func(h *Handler) { h.Agent = "http://127.0.0.1:8081" }, offer: offer{Product: "/a", Price: 2},
			want:   []string{"127.0.0.1:8081"},
			links:  []string{"http://127.0.0.1:8081/signup", "http://127.0.0.1:8081/login"},
			action: "http://127.0.0.1:8081/pay", formAction: "http://127.0.0.1:8081",
		},
		{
			name: "hostile realm and product", mod: func(h *Handler) { h.realm = `<script>alert(1)</script>"><img src=x onerror=alert(2)>` },
			offer:  offer{Product: `/a/"><script>alert(3)</script>`, Price: 2},
			want:   []string{`<script>alert(1)</script>`, `/a/"><script>alert(3)</script>`},
			links:  []string{"https://bank.example.com/signup", "https://bank.example.com/login"},
			action: "https://bank.example.com/pay", formAction: "https://bank.example.com",
		},
		{name: "javascript agent", mod: func(h *Handler) { h.Agent = "javascript:alert(1)//" }, offer: offer{Product: "/a", Price: 2}, never: []string{"Log in"}},
		{name: "upper-case javascript agent", mod: func(h *Handler) { h.Agent = "JavaScript:alert(1)" }, offer: offer{Product: "/a", Price: 2}},
		{name: "data agent", mod: func(h *Handler) { h.Agent = "data:text/html,<script>alert(1)</script>" }, offer: offer{Product: "/a", Price: 2}},
		{name: "scheme-relative agent", mod: func(h *Handler) { h.Agent = "//evil.example" }, offer: offer{Product: "/a", Price: 2}},
		{name: "agent with credentials", mod: func(h *Handler) { h.Agent = "https://u:p@bank.example.com" }, offer: offer{Product: "/a", Price: 2}},
		{name: "empty agent", mod: func(h *Handler) { h.Agent = "" }, offer: offer{Product: "/a", Price: 2}},
		{
			name: "agent with markup in its path", mod: func(h *Handler) { h.Agent = `https://bank.example.com/"><script>alert(1)</script>` }, offer: offer{Product: "/a", Price: 2},
			links:  []string{"https://bank.example.com/%22%3E%3Cscript%3Ealert%281%29%3C/script%3E/signup", "https://bank.example.com/%22%3E%3Cscript%3Ealert%281%29%3C/script%3E/login"},
			action: "https://bank.example.com/%22%3E%3Cscript%3Ealert%281%29%3C/script%3E/pay", formAction: "https://bank.example.com",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := pageHandler(t, tc.mod)
			w := render402(t, h, tc.offer, "text/html,application/xhtml+xml,*/*;q=0.8")
			page, hdr := w.Body.String(), w.Header()
			if hdr.Get("Content-Type") != "text/html; charset=utf-8" || hdr.Get("Cache-Control") != "no-store" || hdr.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("headers %v", hdr)
			}
			// The header is exactly the challenge; the page carries it as data.
			ch := h.challengeFor(tc.offer)
			if hdr.Get("WWW-Authenticate") != ch.String() {
				t.Fatalf("WWW-Authenticate %q, want %q", hdr.Get("WWW-Authenticate"), ch.String())
			}
			m := metaChallenge.FindAllStringSubmatch(page, -1)
			if len(m) != 1 || html.UnescapeString(m[0][1]) != ch.String() {
				t.Fatalf("meta challenge %q, want one equal to %q", m, ch.String())
			}
			if parsed, err := payword.ParseChallenge(html.UnescapeString(m[0][1])); err != nil || parsed != ch {
				t.Fatalf("meta challenge parses to %+v, %v", parsed, err)
			}
			text := visibleText(page)
			if strings.Contains(text, "PayWord realm=") || strings.Contains(text, ch.String()) {
				t.Fatalf("the raw challenge is visible: %q", text)
			}
			for _, s := range tc.want {
				if !strings.Contains(text, s) {
					t.Errorf("visible text lacks %q: %q", s, text)
				}
			}
			for _, s := range tc.never {
				if strings.Contains(text, s) {
					t.Errorf("visible text has %q: %q", s, text)
				}
			}
			// No script, no event handler, no style but the one the CSP
			// allows, in any tag; links only to the bank (below).
			for _, tag := range anyTag.FindAllString(page, -1) {
				low := strings.ToLower(quoted.ReplaceAllString(tag, `""`)) // names, not values
				for _, bad := range []string{"<script", "<img", "<iframe", "<object", "<embed", "<base", " on", "style="} {
					if strings.Contains(low, bad) {
						t.Errorf("tag %q has %q", tag, bad)
					}
				}
			}
			// The pay button: one GET form to the bank, hidden fields only.
			forms := formTag.FindAllStringSubmatch(page, -1)
			switch {
			case tc.action == "" && (len(forms) != 0 || strings.Contains(page, "<input") || strings.Contains(page, "<button")):
				t.Fatalf("a pay button for agent %q", h.Agent)
			case tc.action != "" && (len(forms) != 1 || html.UnescapeString(forms[0][1]) != tc.action):
				t.Fatalf("forms %q, want one to %q", forms, tc.action)
			case tc.action != "":
				if got := payFields(t, page); strings.Join(got.names, " ") != "vendor product price realm return" || !strings.Contains(text, "Pay ") {
					t.Fatalf("pay form fields %q", got.names)
				}
			}
			var links []string
			for _, l := range hrefs.FindAllStringSubmatch(page, -1) {
				links = append(links, html.UnescapeString(l[1]))
			}
			for _, l := range links {
				if !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") {
					t.Errorf("link %q", l)
				}
			}
			if strings.Join(links, " ") != strings.Join(tc.links, " ") {
				t.Errorf("links %q, want %q", links, tc.links)
			}
			// The policy allows exactly the page's one style element.
			styles := styleElement.FindAllStringSubmatch(page, -1)
			if len(styles) != 1 {
				t.Fatalf("%d style elements", len(styles))
			}
			sum := sha256.Sum256([]byte(styles[0][1]))
			csp := hdr.Get("Content-Security-Policy")
			if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) ||
				!strings.HasPrefix(csp, "default-src 'none';") || strings.Contains(csp, "unsafe") {
				t.Fatalf("CSP %q, want %q", csp, want)
			}
			want := "'none'"
			if tc.formAction != "" {
				want = tc.formAction
			}
			if !strings.HasSuffix(csp, "; form-action "+want) || strings.Count(csp, "form-action") != 1 {
				t.Fatalf("CSP %q, want form-action %s", csp, want)
			}
		})
	}
}

// payButton is the pay button's form as a browser submits it.
type payButton struct {
	names  []string
	values url.Values
}

// payFields reads the pay form's inputs: all hidden, one submit button.
func payFields(t *testing.T, page string) payButton {
	t.Helper()
	b := payButton{values: url.Values{}}
	for _, in := range inputTag.FindAllStringSubmatch(page, -1) {
		a := map[string]string{}
		for _, m := range attr.FindAllStringSubmatch(in[1], -1) {
			a[m[1]] = html.UnescapeString(m[2])
		}
		if a["type"] != "hidden" || len(a) != 3 {
			t.Fatalf("input %q", in[0])
		}
		b.names = append(b.names, a["name"])
		b.values.Add(a["name"], a["value"])
	}
	if n := strings.Count(page, "<button"); n != 1 || !strings.Contains(page, `<button type="submit">`) {
		t.Fatalf("%d buttons", n)
	}
	return b
}

// The pay button's form carries exactly the fields the bank's /pay takes,
// the return being the article as the browser asked for it; the policy
// lets the form go to the bank's origin only.
func TestPage402PayButton(t *testing.T) {
	long := strings.Repeat("a", maxReturnPath)
	for _, tc := range []struct {
		name, agent, target, host string
		tls                       bool
		orig                      string // the original request URI, if a route changed it
		product                   string
		action, ret, formAction   string // "" action: no button
	}{
		{name: "plain", agent: "https://bank.example.com", target: "/articles/moon", product: "/articles/moon",
			action: "https://bank.example.com/pay", ret: "http://news.example/articles/moon", formAction: "https://bank.example.com"},
		{name: "TLS, query, port", agent: "https://bank.example.com:8443/hw/", target: "/articles/moon?ref=home&x=%2F", host: "news.example:8443", tls: true,
			product: "/articles/moon", action: "https://bank.example.com:8443/hw/pay", ret: "https://news.example:8443/articles/moon?ref=home&x=%2F",
			formAction: "https://bank.example.com:8443"},
		{name: "escaped path kept as asked", agent: "https://bank.example.com", target: "/articles/caf%C3%A9", product: "/articles/caf%C3%A9",
			action: "https://bank.example.com/pay", ret: "http://news.example/articles/caf%C3%A9", formAction: "https://bank.example.com"},
		{name: "stripped prefix: the original URI", agent: "https://bank.example.com", target: "/articles/moon", orig: "/blog/articles/moon?p=2",
			product: "/articles/moon", action: "https://bank.example.com/pay", ret: "http://news.example/blog/articles/moon?p=2", formAction: "https://bank.example.com"},
		{name: "loopback bank", agent: "http://127.0.0.1:8081", target: "/a", product: "/a",
			action: "http://127.0.0.1:8081/pay", ret: "http://news.example/a", formAction: "http://127.0.0.1:8081"},
		{name: "IPv6 bank: its scheme only", agent: "http://[::1]:8081", target: "/a", product: "/a",
			action: "http://[::1]:8081/pay", ret: "http://news.example/a", formAction: "http:"},
		{name: "URI too long for the form", agent: "https://bank.example.com", target: "/" + long, product: "/x"},
		{name: "javascript agent", agent: "javascript:alert(1)", target: "/a", product: "/a"},
		{name: "non-http agent", agent: "ftp://bank.example.com", target: "/a", product: "/a"},
		{name: "no agent", agent: "", target: "/a", product: "/a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := pageHandler(t, func(h *Handler) { h.Agent = tc.agent })
			r := get(tc.target, "Accept", "text/html")
			if tc.host != "" {
				r.Host = tc.host
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.orig != "" {
				u, _ := url.ParseRequestURI(tc.orig)
				orig := http.Request{Method: "GET", RequestURI: tc.orig, URL: u}
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, orig))
			}
			o := offer{Product: tc.product, Price: 3}
			w := httptest.NewRecorder()
			if err := h.challenge(w, r, o); err != nil {
				t.Fatal(err)
			}
			page, csp := w.Body.String(), w.Header().Get("Content-Security-Policy")
			forms := formTag.FindAllStringSubmatch(page, -1)
			if tc.action == "" {
				if len(forms) != 0 || strings.Contains(page, "<input") || csp != pageCSP {
					t.Fatalf("a button: %q, CSP %q", forms, csp)
				}
				return
			}
			if len(forms) != 1 || html.UnescapeString(forms[0][1]) != tc.action {
				t.Fatalf("forms %q, want one to %q", forms, tc.action)
			}
			b := payFields(t, page)
			want := url.Values{"vendor": {testVendor}, "product": {tc.product}, "price": {"3"}, "realm": {"The Daily Planet"}, "return": {tc.ret}}
			if strings.Join(b.names, " ") != "vendor product price realm return" || b.values.Encode() != want.Encode() {
				t.Fatalf("fields %q %v, want %v", b.names, b.values, want)
			}
			if csp != pageCSPBase+tc.formAction {
				t.Fatalf("CSP %q, want form-action %s", csp, tc.formAction)
			}
			if !strings.Contains(visibleText(page), "Pay 3 tokens with "+bankURL(tc.agent).Host) {
				t.Fatalf("button text: %q", visibleText(page))
			}
		})
	}
}

// A site-wide policy the site set before the paywall would block the
// page's style: the default page replaces it.
func TestPage402ReplacesSiteCSP(t *testing.T) {
	h := pageHandler(t)
	w := httptest.NewRecorder()
	w.Header().Set("Content-Security-Policy", "default-src 'self'")
	if err := h.challenge(w, get("/a", "Accept", "text/html"), offer{Product: "/a", Price: 2}); err != nil {
		t.Fatal(err)
	}
	want := pageCSPBase + "https://bank.example.com"
	if got := w.Header().Values("Content-Security-Policy"); len(got) != 1 || got[0] != want {
		t.Fatalf("CSP %q", got)
	}
	// HEAD: the same headers, no body.
	r := get("/a", "Accept", "text/html")
	r.Method = http.MethodHead
	w = httptest.NewRecorder()
	if err := h.challenge(w, r, offer{Product: "/a", Price: 2}); err != nil {
		t.Fatal(err)
	}
	if w.Body.Len() != 0 || w.Header().Get("Content-Security-Policy") != want || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("HEAD: %v, %d body bytes", w.Header(), w.Body.Len())
	}
}

// API clients get the problem document they always got, without the
// page's headers.
func TestPage402NotForAPIClients(t *testing.T) {
	h := pageHandler(t, func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1, Currency: "EUR"} })
	o := offer{Product: "/articles/moon", Price: 2}
	for _, accept := range []string{"", "application/json", "application/problem+json", "*/*", "text/plain"} {
		w := render402(t, h, o, accept)
		hdr := w.Header()
		if hdr.Get("Content-Type") != "application/problem+json" || hdr.Get("Content-Security-Policy") != "" ||
			hdr.Get("WWW-Authenticate") != h.challengeFor(o).String() || hdr.Get("Vary") != "Accept" {
			t.Fatalf("Accept %q: headers %v", accept, hdr)
		}
		want := `{"type":"https://hashwall.dev/problems/payment-required","title":"Payment Required","status":402,` +
			`"detail":"pay with an Authorization: PayWord header","realm":"The Daily Planet","vendor":"daily-planet",` +
			`"price":2,"product":"/articles/moon","agent":"https://bank.example.com"}` + "\n"
		if got := w.Body.String(); got != want {
			t.Fatalf("Accept %q: body %q, want %q", accept, got, want)
		}
		var p problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
	}
}

// A custom template sees the fields it always saw and the new ones, all
// escaped; the gateway sets no policy on it (the site's own applies).
func TestPage402CustomTemplate(t *testing.T) {
	file := t.TempDir() + "/402.html"
	src := `<p>{{.Realm}}|{{.Vendor}}|{{.Price}}|{{.Product}}|{{.Agent}}|{{.Header}}|{{.Money}}|{{.TokenValue}}|{{.Bank}}|{{.BankURL}}|{{.SignupURL}}|{{.LoginURL}}|{{.PayURL}}|{{.ReturnURL}}</p>` +
		`<a href="{{.Agent}}">bank</a><style>p{color:red}</style>`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	page, err := loadPage(file)
	if err != nil {
		t.Fatal(err)
	}
	h := pageHandler(t, func(h *Handler) {
		h.page, h.realm, h.TokenValue = page, "R&D", &TokenValue{MinorUnits: 5, Currency: "EUR"}
	})
	w := httptest.NewRecorder()
	w.Header().Set("Content-Security-Policy", "default-src 'self'")
	if err := h.challenge(w, get("/x?a=1&b=%3c", "Accept", "text/html"), offer{Product: "/x<y>", Price: 3}); err != nil {
		t.Fatal(err)
	}
	want := `<p>R&amp;D|daily-planet|3|/x&lt;y&gt;|https://bank.example.com|` +
		`PayWord realm=&#34;R&amp;D&#34;, vendor=&#34;daily-planet&#34;, price=&#34;3&#34;, product=&#34;/x&lt;y&gt;&#34;, agent=&#34;https://bank.example.com&#34;|` +
		`0.15 EUR|0.05 EUR|bank.example.com|https://bank.example.com|https://bank.example.com/signup|https://bank.example.com/login|` +
		`https://bank.example.com/pay|http://news.example/x?a=1&amp;b=%3c</p>` +
		`<a href="https://bank.example.com">bank</a><style>p{color:red}</style>`
	if got := w.Body.String(); got != want {
		t.Fatalf("custom page:\n%s\nwant\n%s", got, want)
	}
	if got := w.Header().Values("Content-Security-Policy"); len(got) != 1 || got[0] != "default-src 'self'" {
		t.Fatalf("CSP on a custom page %q", got)
	}
	// A hostile agent in a custom template's href is neutralised by html/template.
	h.Agent = "javascript:alert(1)"
	w = httptest.NewRecorder()
	if err := h.challenge(w, get("/x", "Accept", "text/html"), offer{Product: "/x", Price: 3}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(w.Body.String(), `href="javascript:`) {
		t.Fatalf("javascript: link: %s", w.Body.String())
	}
}

func TestPage402Money(t *testing.T) {
	for _, tc := range []struct {
		price uint32
		tv    TokenValue
		want  string
	}{
		{2, TokenValue{1, "EUR"}, "0.02 EUR"},
		{1024, TokenValue{1, "EUR"}, "10.24 EUR"},
		{3, TokenValue{250, "USD"}, "7.50 USD"},
		{MaxPrice, TokenValue{maxMinorUnits, "X"}, "11258999068426.24 X"},
	} {
		d := newPageData(payword.Challenge{Price: tc.price}, &tc.tv, nil)
		if d.Money != tc.want {
			t.Errorf("%d × %v: %q, want %q", tc.price, tc.tv, d.Money, tc.want)
		}
	}
	// Past the bound (a handler built in Go, unchecked): no money shown.
	if d := newPageData(payword.Challenge{Price: 1 << 31}, &TokenValue{1 << 62, "EUR"}, nil); d.Money != "" {
		t.Errorf("overflowing price shown as %q", d.Money)
	}
}

// The default page's render, the cost a browser's 402 adds.
func BenchmarkChallengePage(b *testing.B) {
	h := pageHandler(b, func(h *Handler) { h.TokenValue = &TokenValue{MinorUnits: 1, Currency: "EUR"} })
	o := offer{Product: "/articles/moon", Price: 2}
	r := get("/articles/moon", "Accept", "text/html")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := h.challenge(w, r, o); err != nil {
			b.Fatal(err)
		}
	}
}
