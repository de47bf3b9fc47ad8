package paywall

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// answering is an upstream that answers status (without writing, as
// file_server and reverse_proxy do, when asError) and records what it saw.
func answering(status int, asError bool, saw *http.Header) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if saw != nil {
			*saw = r.Header.Clone()
		}
		if asError {
			return caddyhttp.Error(status, nil)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("the site's own answer"))
		return nil
	})
}

// TestVoidOnUnsuccessfulAnswer: a rule-priced payment whose upstream
// answers no success is voided, whether the upstream writes its answer or
// returns an error for Caddy to write: no receipt, no grant cookie, the
// payment's record void, and its claim's void delivered to the agent
// under its own authorization number. The gateway sends the upstream no
// conditional headers with a payment.
func TestVoidOnUnsuccessfulAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 31})
	for i, c := range []struct {
		status  int
		asError bool
	}{{404, false}, {500, false}, {302, false}, {404, true}, {502, true}} {
		idx := uint32(2 * (i + 1))
		var saw http.Header
		r := get("/articles/a", "Authorization", wal.Header(t, 0, idx, 2, testVendor, "/articles/a"),
			"If-None-Match", `"v1"`, "If-Modified-Since", "Wed, 02 Dec 2026 10:00:00 GMT")
		w, es := do(h, r, answering(c.status, c.asError, &saw))
		if status(w, es) != c.status || w.Header().Get(payword.ErrorHeader) != string(payword.CodeVoided) {
			t.Fatalf("%d (error %v): %d %q, want voided", c.status, c.asError, status(w, es), w.Header().Get(payword.ErrorHeader))
		}
		if w.Header().Get(payword.ReceiptHeader) != "" || w.Header().Get("Set-Cookie") != "" {
			t.Fatalf("%d: a voided answer carries the grant: %v", c.status, w.Header())
		}
		if saw.Get("If-None-Match") != "" || saw.Get("If-Modified-Since") != "" || saw.Get("Authorization") != "" {
			t.Fatalf("the upstream got a paying request's conditional or payment headers: %v", saw)
		}
	}
	waitFor(t, "the claims and their voids at the agent", 5*time.Second, func() bool {
		return e.agent.claimCount() == 5 && e.agent.voidCount() == 5
	})
	e.agent.mu.Lock()
	defer e.agent.mu.Unlock()
	for k, v := range e.agent.voids {
		c := e.agent.claims[k]
		if !v.Void || v.Auth != c.Auth+payword.VoidSuffix || v.Token != c.Token || v.Amount != c.Amount || c.Void {
			t.Fatalf("void %+v of claim %+v", v, c)
		}
	}
}

// If the vendor's store fails between the payment and the upstream's
// unsuccessful answer, the void cannot be recorded: the payment stands,
// and the reader keeps the receipt and grant it paid for.
func TestVoidFailsPaymentStands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 32})
	dies := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		e.redis.Kill()
		w.WriteHeader(http.StatusNotFound)
		return nil
	})
	w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), dies)
	if status(w, es) != 404 || w.Header().Get(payword.ReceiptHeader) == "" || w.Header().Get(payword.ErrorHeader) != "" {
		t.Fatalf("unvoidable: %d %v", status(w, es), w.Header())
	}
}

// A grant that opens the page leaves a payment sent with it unspent (and
// away from the upstream); so does an upstream-priced page answered with
// no success, whose tokens then buy the page.
func TestNotCharged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.UpstreamPrice = true })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 33})
	w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil)
	grant := w.Header().Get(payword.ReceiptHeader)
	if status(w, es) != 200 || grant == "" {
		t.Fatalf("pay: %d", status(w, es))
	}
	var saw http.Header
	w, es = do(h, get("/articles/a", "Cookie", grantCookie+"="+grant, "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/a")),
		answering(200, false, &saw))
	if status(w, es) != 200 || w.Header().Get(payword.ErrorHeader) != string(payword.CodeNotCharged) || saw.Get("Authorization") != "" {
		t.Fatalf("grant and payment: %d %v, upstream saw %v", status(w, es), w.Header(), saw)
	}
	// The tokens 3..4 were not spent: they pay for the next article.
	if w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil); status(w, es) != 200 {
		t.Fatalf("the unspent tokens: %d %q", status(w, es), w.Header().Get(payword.ErrorHeader))
	}

	priced := func(status int) caddyhttp.Handler {
		return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set(priceHeader, "3")
			w.WriteHeader(status)
			_, _ = w.Write([]byte("page " + r.URL.Path))
			return nil
		})
	}
	pay := wal.Header(t, 0, 7, 3, testVendor, "/news/x")
	for _, st := range []int{404, 503} {
		w, es = do(h, get("/news/x", "Authorization", pay), priced(st))
		if status(w, es) != st || w.Header().Get(payword.ErrorHeader) != string(payword.CodeNotCharged) ||
			w.Header().Get(payword.ReceiptHeader) != "" || !strings.Contains(w.Body.String(), "page /news/x") {
			t.Fatalf("upstream-priced %d: %d %v %q", st, status(w, es), w.Header(), w.Body.String())
		}
	}
	w, es = do(h, get("/news/x", "Authorization", pay), answering(502, true, nil))
	if status(w, es) != 502 || w.Header().Get(payword.ErrorHeader) != string(payword.CodeNotCharged) {
		t.Fatalf("upstream-priced, no answer: %d %v", status(w, es), w.Header())
	}
	if w, es = do(h, get("/news/x", "Authorization", pay), priced(200)); status(w, es) != 200 || w.Header().Get(payword.ReceiptHeader) == "" {
		t.Fatalf("the same payment once the page is there: %d %v", status(w, es), w.Header())
	}
	// Unpriced after all: the payment is not spent either.
	if w, es = do(h, get("/news/y", "Authorization", wal.Header(t, 0, 9, 2, testVendor, "/news/y")), answering(200, false, nil)); status(w, es) != 200 ||
		w.Header().Get(payword.ErrorHeader) != string(payword.CodeNotCharged) {
		t.Fatalf("an unpriced answer: %d %v", status(w, es), w.Header())
	}
}
