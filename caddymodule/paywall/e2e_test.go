package paywall

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/caddyload"
	"github.com/hashwall/hashwall/payword"
)

// End to end through a real Caddy: 402 → pay → 200 with content → grant
// reuse → grant expiry, and an upstream-priced page.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	port := caddyload.FreePort(t)
	t.Setenv("HW_TEST_GRANT_KEY", testGrantKey)
	caddyload.Start(t, fmt.Sprintf(`{
	log {
		level ERROR
	}
}
http://127.0.0.1:%d {
	route {
		paywall {
			vendor %s
			api_token secret-token
			agent %s
			key %s %s
			redis %s
			grant_key {env.HW_TEST_GRANT_KEY}
			ttl 2s
			price /articles/* 2
			upstream_price
		}
		header /news/* Paywall-Price 3
		respond "article {path} for {http.paywall.user}"
	}
}`, port, testVendor, e.agent.URL, e.agent.key.ID, pubB64(e.agent.key), e.redis.URL()))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	wal := newWallet(t, 30, payword.GenericScope)

	fetch := func(path, auth string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := fetch("/articles/moon", "")
	if resp.StatusCode != 402 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "PayWord ") {
		t.Fatalf("unpaid: %d %q", resp.StatusCode, body)
	}
	resp, body = fetch("/articles/moon", wal.pay(t, 0, 2, 2, testVendor, "/articles/moon"))
	if resp.StatusCode != 200 || body != "article /articles/moon for u:alice" || resp.Header.Get("Payment-Receipt") == "" {
		t.Fatalf("paid: %d %q", resp.StatusCode, body)
	}
	// Rejections come back through Caddy's error handling with their code.
	resp, _ = fetch("/articles/mars", wal.pay(t, 0, 2, 2, testVendor, "/articles/mars"))
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Payment-Error") != "replay" {
		t.Fatalf("replay: %d %q", resp.StatusCode, resp.Header.Get("Payment-Error"))
	}
	if resp, body = fetch("/articles/moon", ""); resp.StatusCode != 200 {
		t.Fatalf("grant reuse: %d %q", resp.StatusCode, body)
	}
	if resp, _ = fetch("/articles/mars", ""); resp.StatusCode != 402 {
		t.Fatalf("other article with the grant: %d", resp.StatusCode)
	}
	time.Sleep(2100 * time.Millisecond)
	if resp, _ = fetch("/articles/moon", ""); resp.StatusCode != 402 {
		t.Fatalf("expired grant: %d", resp.StatusCode)
	}

	resp, body = fetch("/news/today", "")
	ch, err := payword.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != 402 || err != nil || ch.Price != 3 || strings.Contains(body, "article") {
		t.Fatalf("upstream-priced: %d %q %v", resp.StatusCode, body, err)
	}
	resp, body = fetch("/news/today", wal.pay(t, 0, 5, 3, testVendor, "/news/today"))
	// The upstream answered before it was paid, so it saw no placeholders.
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "article /news/today for") {
		t.Fatalf("upstream-priced paid: %d %q", resp.StatusCode, body)
	}
	waitFor(t, "claims at the agent", 2*time.Second, func() bool { return e.agent.claimCount() == 2 })
}
