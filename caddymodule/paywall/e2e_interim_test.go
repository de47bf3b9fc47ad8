package paywall

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashwall/hashwall/internal/testutil/caddyload"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
)

const interimMarker = "UPSTREAM-BYTES"

// interimUpstream is a site that answers everything it can before payment:
// CORS preflights with its own headers and a body, protocol upgrades by
// taking over the connection, and 103 Early Hints ahead of the pages it
// prices itself (under /news/). It counts every request that reaches it.
type interimUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int // "METHOD path"
}

func newInterimUpstream(t *testing.T) *interimUpstream {
	u := &interimUpstream{hits: map[string]int{}}
	u.Server = httptest.NewServer(u)
	t.Cleanup(u.Close)
	return u
}

func (u *interimUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.hits[r.Method+" "+r.URL.Path]++
	u.mu.Unlock()
	priced := strings.HasPrefix(r.URL.Path, "/news/")
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		price := ""
		if priced {
			price = priceHeader + ": 3\r\n"
		}
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%sX-Upstream: upgrade\r\n\r\n%s tunnel %s",
			price, interimMarker, r.URL.Path)
		_ = brw.Flush()
		return
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("X-Upstream", "preflight")
		fmt.Fprintf(w, "%s preflight", interimMarker)
		return
	}
	w.Header().Set("Link", "</secret.css>; rel=preload; as=style")
	w.Header().Set("X-Upstream-Hint", interimMarker)
	w.WriteHeader(http.StatusEarlyHints)
	w.Header().Del("X-Upstream-Hint")
	if priced {
		w.Header().Set(priceHeader, "3")
	}
	fmt.Fprintf(w, "%s page %s", interimMarker, r.URL.Path)
}

func (u *interimUpstream) hitsOf(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[key]
}

// No upstream byte, header or connection of a priced resource goes out
// before payment, through the real Caddy: preflights are the gateway's
// own, upgrades of priced pages need a grant, interim answers are held.
func TestE2EPreflightUpgradeInterim(t *testing.T) {
	e := newEnv(t)
	up := newInterimUpstream(t)
	t.Setenv("HW_TEST_GRANT_KEY", testGrantKey)
	port := caddyload.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	caddyload.Start(t, fmt.Sprintf(`{
	log {
		level WARN
	}
}
http://127.0.0.1:%d {
	route {
		paywall {
			vendor %s
			api_token secret-token
			agent %s
			redis %s
			grant_key {env.HW_TEST_GRANT_KEY}
			key %s %s
			price /articles/* 2
			upstream_price
			crl agent 100ms
		}
		reverse_proxy %s
	}
}
`, port, testVendor, e.agent.URL, e.redis.URL(), e.agent.key.ID, pubB64(e.agent.key), up.Listener.Addr()))

	leaks := func(what string, r rawResponse) {
		t.Helper()
		if strings.Contains(r.wire, interimMarker) || strings.Contains(r.wire, "X-Upstream") || strings.Contains(r.wire, "secret.css") {
			t.Errorf("%s: upstream bytes in the answer: %q", what, r.wire)
		}
	}
	// Preflights: the gateway's fixed answer, the upstream never asked.
	for _, target := range []string{"/articles/x", "/news/x", "/news/x?id=1"} {
		for _, extra := range [][]string{nil, {"Connection", "Upgrade", "Upgrade", "websocket"}} {
			hdr := append([]string{"Origin", "https://reader.example", "Access-Control-Request-Method", "GET",
				"Access-Control-Request-Headers", "authorization"}, extra...)
			r := rawRequest(t, base, "OPTIONS", target, hdr...)
			what := fmt.Sprintf("preflight %s %v", target, extra)
			leaks(what, r)
			if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
				r.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s: %d %q", what, r.StatusCode, r.wire)
			}
			for _, h := range []string{"WWW-Authenticate", "Payment-Receipt", "Payment-Error"} {
				if !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), h) {
					t.Errorf("%s: %s not exposed: %q", what, h, r.Header.Get("Access-Control-Expose-Headers"))
				}
			}
		}
	}
	// Upgrades of priced pages without a grant: refused before the upstream.
	for _, target := range []string{"/articles/ws", "/news/ws"} {
		r := rawRequest(t, base, "GET", target, "Connection", "Upgrade", "Upgrade", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		leaks("upgrade "+target, r)
		if r.StatusCode == http.StatusSwitchingProtocols || r.StatusCode/100 == 2 {
			t.Errorf("upgrade %s: %d %q", target, r.StatusCode, r.wire)
		}
	}
	// An upstream-priced page: its 103 does not go out ahead of the 402.
	for _, target := range []string{"/news/today", "/news/today?id=7"} {
		r := rawRequest(t, base, "GET", target)
		leaks("GET "+target, r)
		if !strings.HasPrefix(r.wire, "HTTP/1.1 402 ") {
			t.Errorf("GET %s: the first answer is not the 402: %q", target, r.wire)
		}
	}
	for key, want := range map[string]int{
		"OPTIONS /articles/x": 0, "OPTIONS /news/x": 0, "GET /articles/ws": 0, "GET /news/ws": 0, "GET /news/today": 2,
	} {
		if n := up.hitsOf(key); n != want {
			t.Errorf("%s reached the upstream %d times, want %d", key, n, want)
		}
	}

	// Paid, the page and the upgrade go through.
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 40})
	r := rawRequest(t, base, "GET", "/news/ws", "Authorization", wal.Header(t, 0, 3, 3, testVendor, "/news/ws"))
	grant := r.Header.Get("Payment-Receipt")
	if r.StatusCode != 200 || grant == "" || !strings.Contains(r.body, interimMarker+" page /news/ws") {
		t.Fatalf("paying /news/ws: %d %q", r.StatusCode, r.wire)
	}
	if strings.Contains(r.wire, "103 Early Hints") {
		t.Errorf("paid answer with an interim one ahead of it: %q", r.wire)
	}
	r = rawRequest(t, base, "GET", "/news/ws", "Authorization", "Bearer "+grant, "Connection", "Upgrade", "Upgrade", "websocket")
	if r.StatusCode != http.StatusSwitchingProtocols || !strings.Contains(r.wire, interimMarker+" tunnel /news/ws") {
		t.Errorf("paid upgrade: %d %q", r.StatusCode, r.wire)
	}
}
