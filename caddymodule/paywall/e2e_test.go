package paywall

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// End to end through real Caddy, real Redis and the real agent handler (see
// e2e_world_test.go): the reader's path from 402 to content and back, an
// upstream-priced page, replay and retry, revocation, and an agent outage.
func TestE2EPaywall(t *testing.T) {
	w := newWorld(t, worldOpts{})
	t.Run("402, pay, grant reuse, grant expiry", func(t *testing.T) { e2ePayAndGrant(t, w) })
	t.Run("upstream price", func(t *testing.T) { e2eUpstreamPrice(t, w) })
	t.Run("replay and idempotent retry", func(t *testing.T) { e2eReplayAndRetry(t, w) })
	t.Run("revocation within a second", func(t *testing.T) { e2eRevocation(t, w) })
	t.Run("agent down then back", func(t *testing.T) { e2eAgentOutage(t, w) })
	if l := w.cms.leaked(); len(l) > 0 {
		t.Fatalf("priced articles reached the CMS unpaid: %q", l)
	}
	w.ledgerOK()
}

func e2ePayAndGrant(t *testing.T, w *world) {
	wal := w.buy(3 * 128)
	const p = "/articles/moon"

	resp, body := w.fetch(nil, "GET", w.news+p, "Accept", "application/json")
	ch, err := payword.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusPaymentRequired || err != nil || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "PayWord ") {
		t.Fatalf("unpaid: %d %q %v", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), err)
	}
	if ch.Vendor != testVendor || ch.Price != 2 || ch.Product != p || ch.Agent != w.proxy.URL {
		t.Fatalf("challenge %+v", ch)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(body, `"price":2`) || strings.Contains(body, e2eMarker) {
		t.Fatalf("402: %v %q", resp.Header, body)
	}
	resp, body = w.fetch(nil, "GET", w.news+p, "Accept", "text/html")
	if resp.StatusCode != 402 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "costs 2 tokens") {
		t.Fatalf("402 page: %d %q", resp.StatusCode, body)
	}
	if n := w.cms.hitsOf(p); n != 0 {
		t.Fatalf("the unpaid requests reached the CMS %d times", n)
	}
	// Free and unpriced pages pass, and the CMS's paywall headers are empty,
	// not unreplaced placeholders it could take for a reader.
	for _, free := range []string{"/articles/index.html", "/about"} {
		if resp, body = w.fetch(nil, "GET", w.news+free); resp.StatusCode != 200 || body != e2eMarker+" article "+free+" for " {
			t.Fatalf("%s: %d %q", free, resp.StatusCode, body)
		}
	}

	// Pay: the content in the same round trip, with the grant.
	jar, _ := cookiejar.New(nil)
	reader := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, body = w.fetch(reader, "GET", w.news+p, "Authorization", wal.Header(t, 0, 2, 2, testVendor, p))
	receipt := resp.Header.Get("Payment-Receipt")
	if resp.StatusCode != 200 || body != w.content(p) || receipt == "" {
		t.Fatalf("paid: %d %q receipt %q", resp.StatusCode, body, receipt)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == grantCookie {
			ck = c
		}
	}
	if ck == nil || ck.Value != receipt || ck.Path != p || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode ||
		ck.MaxAge < 86000 || ck.MaxAge > 86400 {
		t.Fatalf("grant cookie %+v", ck)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") || strings.Contains(cc, "public") {
		t.Fatalf("paid page Cache-Control %q", cc)
	}
	g := grantPayload(t, receipt)
	exp, _ := g["exp"].(float64)
	iat, _ := g["iat"].(float64)
	if g["iss"] != testVendor || g["sub"] != wal.Serial.String() || g["product"] != p || g["scope"] != "path" ||
		g["uid"] != w.uid || exp-iat != 86400 {
		t.Fatalf("grant claims %v", g)
	}

	// The grant opens the article again, by cookie and by Bearer, without
	// paying; not another article.
	resp, body = w.fetch(reader, "GET", w.news+p)
	if resp.StatusCode != 200 || body != w.content(p) || resp.Header.Get("Payment-Receipt") != "" {
		t.Fatalf("cookie reuse: %d %q", resp.StatusCode, body)
	}
	resp, body = w.fetch(nil, "GET", w.news+p, "Authorization", "Bearer "+receipt)
	if resp.StatusCode != 200 || body != w.content(p) {
		t.Fatalf("Bearer reuse: %d %q", resp.StatusCode, body)
	}
	if resp, _ = w.fetch(nil, "GET", w.news+"/articles/mars", "Authorization", "Bearer "+receipt); resp.StatusCode != 402 {
		t.Fatalf("the grant on another article: %d", resp.StatusCode)
	}
	if n := w.cms.hitsOf(p); n != 3 {
		t.Fatalf("the CMS served %s %d times, want 3 (paid, cookie, Bearer)", p, n)
	}

	// A path with characters a product id escapes: the wallet pays the
	// product the challenge names, and the CMS gets the same article.
	const odd = "/articles/caf%C3%A9%20au%20lait"
	resp, _ = w.fetch(nil, "GET", w.news+odd)
	ch, err = payword.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != 402 || err != nil || ch.Product != odd {
		t.Fatalf("escaped path: %d %+v %v", resp.StatusCode, ch, err)
	}
	resp, body = w.fetch(nil, "GET", w.news+odd, "Authorization", wal.Header(t, 2, 2, 2, testVendor, ch.Product))
	if resp.StatusCode != 200 || body != w.content("/articles/café au lait") {
		t.Fatalf("escaped path paid: %d %q", resp.StatusCode, body)
	}
	if resp, _ = w.fetch(nil, "GET", w.news+odd, "Authorization", "Bearer "+resp.Header.Get("Payment-Receipt")); resp.StatusCode != 200 {
		t.Fatalf("escaped path, grant: %d", resp.StatusCode)
	}

	// A two-second grant lasts at least one second, then the article
	// costs again.
	const brief = "/brief/weather"
	resp, _ = w.fetch(reader, "GET", w.news+brief, "Authorization", wal.Header(t, 1, 1, 1, testVendor, brief))
	paidAt := time.Now()
	short := resp.Header.Get("Payment-Receipt")
	if resp.StatusCode != 200 || short == "" {
		t.Fatalf("brief: %d", resp.StatusCode)
	}
	if resp, _ = w.fetch(reader, "GET", w.news+brief); resp.StatusCode != 200 {
		t.Fatalf("fresh short grant: %d", resp.StatusCode)
	}
	// Polled as Bearer: the cookie jar drops the cookie on its own at
	// Max-Age, which is the grant's lifetime rounded down.
	waitFor(t, "the short grant to expire", 4*time.Second, func() bool {
		resp, _ := w.fetch(nil, "GET", w.news+brief, "Authorization", "Bearer "+short)
		return resp.StatusCode == 402
	})
	if d := time.Since(paidAt); d < 900*time.Millisecond {
		t.Fatalf("a 2s grant expired after %v", d)
	}
	if resp, _ = w.fetch(nil, "GET", w.news+brief, "Cookie", grantCookie+"="+short); resp.StatusCode != 402 {
		t.Fatalf("expired grant as a cookie: %d", resp.StatusCode)
	}
	w.waitClaims(wal.Serial, 3, 5*time.Second)
}

func e2eUpstreamPrice(t *testing.T, w *world) {
	wal := w.buy(128)
	const p = "/news/today"
	// Read off the wire: no byte of the upstream's answer may get out.
	for _, method := range []string{"GET", "HEAD"} {
		r := rawRequest(t, w.news, method, p)
		ch, err := payword.ParseChallenge(r.Header.Get("WWW-Authenticate"))
		if r.StatusCode != 402 || err != nil || ch.Price != 3 || ch.Product != p {
			t.Fatalf("%s unpaid: %d %v %+v", method, r.StatusCode, err, ch)
		}
		if strings.Contains(r.wire, e2eMarker) || r.Header.Get(priceHeader) != "" || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s unpaid answer leaks the upstream's: %q", method, r.wire)
		}
	}
	// Underpaid: refused with a fresh challenge, nothing spent.
	r := rawRequest(t, w.news, "GET", p, "Authorization", wal.Header(t, 0, 2, 2, testVendor, p))
	if r.StatusCode != 402 || r.Header.Get("Payment-Error") != "underpaid" || strings.Contains(r.wire, e2eMarker) {
		t.Fatalf("underpaid: %d %q", r.StatusCode, r.wire)
	}
	resp, body := w.fetch(nil, "GET", w.news+p, "Authorization", wal.Header(t, 0, 3, 3, testVendor, p))
	receipt := resp.Header.Get("Payment-Receipt")
	if resp.StatusCode != 200 || receipt == "" || strings.Count(body, e2eMarker) != 8 || resp.Header.Get(priceHeader) != "" ||
		!strings.HasPrefix(resp.Header.Get("Cache-Control"), "private") {
		t.Fatalf("paid: %d %v %d bytes", resp.StatusCode, resp.Header, len(body))
	}
	if resp, body = w.fetch(nil, "GET", w.news+p, "Authorization", "Bearer "+receipt); resp.StatusCode != 200 || strings.Count(body, e2eMarker) != 8 {
		t.Fatalf("grant: %d", resp.StatusCode)
	}
	w.waitClaims(wal.Serial, 1, 5*time.Second)
}

func e2eReplayAndRetry(t *testing.T, w *world) {
	wal := w.buy(128)
	w.drained()
	before := w.recorded()
	hdr := wal.Header(t, 0, 2, 2, testVendor, "/articles/a")
	resp, body := w.fetch(nil, "GET", w.news+"/articles/a", "Authorization", hdr)
	receipt := resp.Header.Get("Payment-Receipt")
	if resp.StatusCode != 200 || body != w.content("/articles/a") || receipt == "" {
		t.Fatalf("pay: %d %q", resp.StatusCode, body)
	}
	// The same header again, as after a lost answer: the same grant.
	resp, body = w.fetch(nil, "GET", w.news+"/articles/a", "Authorization", hdr)
	if resp.StatusCode != 200 || body != w.content("/articles/a") || resp.Header.Get("Payment-Receipt") != receipt {
		t.Fatalf("retry: %d, same receipt %v", resp.StatusCode, resp.Header.Get("Payment-Receipt") == receipt)
	}
	// The same tokens for another article: a replay.
	resp, body = w.fetch(nil, "GET", w.news+"/articles/b", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/b"))
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Payment-Error") != "replay" || strings.Contains(body, e2eMarker) {
		t.Fatalf("replay: %d %q %q", resp.StatusCode, resp.Header.Get("Payment-Error"), body)
	}
	if n := w.recorded() - before; n != 1 {
		t.Fatalf("%d claims recorded for one payment, its retry and a replay", n)
	}
	w.waitClaims(wal.Serial, 1, 5*time.Second)
	w.drained()
	// Retried again once the claim is at the agent: still the same grant,
	// still one claim.
	resp, _ = w.fetch(nil, "GET", w.news+"/articles/a", "Authorization", hdr)
	if resp.StatusCode != 200 || resp.Header.Get("Payment-Receipt") != receipt {
		t.Fatalf("late retry: %d", resp.StatusCode)
	}
	if n := w.recorded() - before; n != 1 {
		t.Fatalf("%d claims recorded after a late retry", n)
	}
	if n := w.cms.hitsOf("/articles/b"); n != 0 {
		t.Fatalf("the replay reached the CMS %d times", n)
	}
}

func e2eRevocation(t *testing.T, w *world) {
	wal := w.buy(128)
	hdr := wal.Header(t, 0, 2, 2, testVendor, "/articles/r")
	if resp, _ := w.fetch(nil, "GET", w.news+"/articles/r", "Authorization", hdr); resp.StatusCode != 200 {
		t.Fatalf("pay: %d", resp.StatusCode)
	}
	out, err := w.admin.Revoke(t.Context(), agentapi.Revoke{Serial: &wal.Serial})
	if err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if !out.Revoked {
		t.Fatal("the agent did not revoke the certificate")
	}
	// Resending the accepted payment probes the gateway without spending.
	var last *http.Response
	for last == nil || last.StatusCode == 200 {
		if d := time.Since(revoked); d > time.Second {
			t.Fatalf("the gateway still accepts the certificate %v after its revocation", d)
		}
		last, _ = w.fetch(nil, "GET", w.news+"/articles/r", "Authorization", hdr)
	}
	took := time.Since(revoked)
	if last.StatusCode != http.StatusForbidden || last.Header.Get("Payment-Error") != "revoked" {
		t.Fatalf("after revocation: %d %q", last.StatusCode, last.Header.Get("Payment-Error"))
	}
	t.Logf("revocation refused by the gateway %v after the agent's answer", took)
	resp, body := w.fetch(nil, "GET", w.news+"/articles/s", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/s"))
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Payment-Error") != "revoked" || strings.Contains(body, e2eMarker) {
		t.Fatalf("new payment with a revoked certificate: %d %q", resp.StatusCode, resp.Header.Get("Payment-Error"))
	}
}

func e2eAgentOutage(t *testing.T, w *world) {
	wal := w.buy(128)
	w.drained()
	creditBefore := w.credited()
	i := uint32(0)
	pay := func() {
		t.Helper()
		i += 2
		prod := fmt.Sprintf("/articles/o%d", i)
		if resp, body := w.fetch(nil, "GET", w.news+prod, "Authorization", wal.Header(t, 0, i, 2, testVendor, prod)); resp.StatusCode != 200 || body != w.content(prod) {
			t.Fatalf("payment %d: %d %q", i/2, resp.StatusCode, resp.Header.Get("Payment-Error"))
		}
	}
	for range 3 {
		pay()
	}
	w.waitClaims(wal.Serial, 3, 5*time.Second)

	// The agent is unreachable: payments are still accepted, their claims
	// wait in the vendor's stream.
	w.proxy.setDown(true, 0)
	for range 6 {
		pay()
	}
	waitFor(t, "a report refused while the agent is down", 5*time.Second, func() bool {
		refused, _ := w.proxy.counts()
		return refused > 0
	})
	if n := len(w.claims(wal.Serial)); n != 3 {
		t.Fatalf("%d claims reached the agent while it was down", n)
	}
	// Back, but the answer to the first report is lost: the agent has the
	// claims, the gateway sends them again.
	w.proxy.setDown(false, 1)
	claims := w.waitClaims(wal.Serial, 9, 15*time.Second)
	w.drained()
	if _, lost := w.proxy.counts(); lost != 1 || w.proxy.maxForwarded() < 2 {
		t.Fatalf("no report was delivered twice (lost %d, max deliveries %d)", lost, w.proxy.maxForwarded())
	}
	for k := 2; k <= 18; k += 2 {
		if claims[fmt.Sprintf("%s|0|%d", testVendor, k)] != "paid" {
			t.Fatalf("claim of index %d: %v", k, claims)
		}
	}
	claimed, err := w.agentRDB.HGet(t.Context(), "hw:a:c:{"+wal.Serial.String()+"}", "claimed").Int()
	if err != nil || claimed != 18 {
		t.Fatalf("the agent counts %d tokens claimed (%v), want 18", claimed, err)
	}
	if d := w.credited() - creditBefore; d != 18 {
		t.Fatalf("the vendor was credited %d for 18 tokens", d)
	}
}

// Two gateway instances of one vendor share its Redis, each with its own
// backend (caches, workers). The same tokens sent to both at once are
// accepted exactly once, round after round.
func TestE2ETwoGatewaysDoubleSpend(t *testing.T) {
	w := newWorld(t, worldOpts{second: true})
	n := 0
	backends.Range(func(k, _ any) bool {
		if c, ok := k.(backendConfig); ok && c.Vendor == testVendor && c.Redis == w.newsURL {
			n++
		}
		return true
	})
	if n != 2 {
		t.Fatalf("%d backends for the two gateways, want 2", n)
	}
	wal := w.buy(128 * 24)
	clients := []*http.Client{{Timeout: 10 * time.Second}, {Timeout: 10 * time.Second}}
	bases := []string{w.news, w.news2}
	const rounds = 30
	wins := [2]int{}
	for r := range rounds {
		// Fresh segments, then one segment spent contiguously, then the
		// same payment (same product) to both.
		seg, idx, same := uint32(r), uint32(2), false
		switch {
		case r >= 20:
			seg, same = uint32(r-9), true
		case r >= 10:
			seg, idx = 10, uint32(2*(r-9))
		}
		var prods [2]string
		var hdrs [2]string
		for j := range 2 {
			prods[j] = fmt.Sprintf("/articles/r%d-%d", r, j)
			if same {
				prods[j] = fmt.Sprintf("/articles/r%d", r)
			}
			hdrs[j] = wal.Header(t, seg, idx, 2, testVendor, prods[j])
		}
		before := w.recorded()
		var codes [2]int
		var receipts [2]string
		var errs [2]error
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j := range 2 {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", bases[j]+prods[j], nil)
				req.Header.Set("Authorization", hdrs[j])
				<-start
				resp, err := clients[j].Do(req)
				if err != nil {
					errs[j] = err
					return
				}
				resp.Body.Close()
				codes[j], receipts[j] = resp.StatusCode, resp.Header.Get("Payment-Receipt")
				if resp.StatusCode == http.StatusConflict && resp.Header.Get("Payment-Error") != "replay" {
					errs[j] = fmt.Errorf("409 %q", resp.Header.Get("Payment-Error"))
				}
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
		if n := w.recorded() - before; n != 1 {
			t.Fatalf("round %d: %d claims recorded, want 1 (statuses %v)", r, n, codes)
		}
		switch {
		case same && (codes != [2]int{200, 200} || receipts[0] != receipts[1]):
			t.Fatalf("round %d, one payment at both: %v, same receipt %v", r, codes, receipts[0] == receipts[1])
		case !same && codes != [2]int{200, 409} && codes != [2]int{409, 200}:
			t.Fatalf("round %d: statuses %v, want exactly one 200 and one 409", r, codes)
		}
		if !same && codes[0] == 200 {
			wins[0]++
		} else if !same {
			wins[1]++
		}
	}
	t.Logf("contested rounds won by gateway 1: %d, gateway 2: %d", wins[0], wins[1])
	// The vendor's gateways share the grant key: a grant from one opens the
	// article at the other.
	resp, _ := w.fetch(nil, "GET", w.news+"/articles/shared", "Authorization", wal.Header(t, 23, 2, 2, testVendor, "/articles/shared"))
	if resp.StatusCode != 200 {
		t.Fatalf("pay at gateway 1: %d", resp.StatusCode)
	}
	if resp, _ = w.fetch(nil, "GET", w.news2+"/articles/shared", "Authorization", "Bearer "+resp.Header.Get("Payment-Receipt")); resp.StatusCode != 200 {
		t.Fatalf("gateway 1's grant at gateway 2: %d", resp.StatusCode)
	}
	w.waitClaims(wal.Serial, rounds+1, 10*time.Second)
	w.drained()
	if c := w.credited(); c != 2*(rounds+1) {
		t.Fatalf("the vendor was credited %d for %d tokens", c, 2*(rounds+1))
	}
	if cases := w.fraud(); len(cases) != 0 {
		t.Fatalf("fraud cases: %+v", cases)
	}
	w.ledgerOK()
}

// The vendor's Redis (not the agent's: the CRL comes from the agent) dies:
// payments get 503 and spend nothing, grants given before still open their
// articles; once it is back, payments go through and nothing was forgotten.
func TestE2EVendorRedisKilled(t *testing.T) {
	w := newWorld(t, worldOpts{aof: true})
	wal := w.buy(2 * 128)
	jar, _ := cookiejar.New(nil)
	reader := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, _ := w.fetch(reader, "GET", w.news+"/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a"))
	grant := resp.Header.Get("Payment-Receipt")
	if resp.StatusCode != 200 || grant == "" {
		t.Fatalf("pay: %d", resp.StatusCode)
	}

	w.newsRedis.Kill()
	next := wal.Header(t, 0, 4, 2, testVendor, "/articles/b")
	resp, body := w.fetch(nil, "GET", w.news+"/articles/b", "Authorization", next)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Payment-Error") != "unavailable" || strings.Contains(body, e2eMarker) {
		t.Fatalf("payment with the vendor's Redis down: %d %q %q", resp.StatusCode, resp.Header.Get("Payment-Error"), body)
	}
	if resp, body = w.fetch(reader, "GET", w.news+"/articles/a"); resp.StatusCode != 200 || body != w.content("/articles/a") {
		t.Fatalf("grant by cookie with Redis down: %d %q", resp.StatusCode, body)
	}
	if resp, _ = w.fetch(nil, "GET", w.news+"/articles/a", "Authorization", "Bearer "+grant); resp.StatusCode != 200 {
		t.Fatalf("grant by Bearer with Redis down: %d", resp.StatusCode)
	}
	if resp, _ = w.fetch(nil, "GET", w.news+"/articles/c"); resp.StatusCode != 402 {
		t.Fatalf("challenge with Redis down: %d", resp.StatusCode)
	}
	// Priced by the upstream: the payment is refused after the upstream
	// answered, and nothing of its answer gets out.
	r := rawRequest(t, w.news, "GET", "/news/k", "Authorization", wal.Header(t, 1, 3, 3, testVendor, "/news/k"))
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Payment-Error") != "unavailable" || strings.Contains(r.wire, e2eMarker) {
		t.Fatalf("upstream-priced payment with Redis down: %d %q", r.StatusCode, r.wire)
	}
	if n := w.cms.hitsOf("/articles/b"); n != 0 {
		t.Fatalf("a payment refused for want of Redis reached the CMS %d times", n)
	}

	w.newsRedis.Restart()
	waitFor(t, "payments with the vendor's Redis back", 5*time.Second, func() bool {
		resp, _ := w.fetch(nil, "GET", w.news+"/articles/b", "Authorization", next)
		return resp.StatusCode == 200
	})
	// The state written before the crash survived it: those tokens stay spent.
	resp, _ = w.fetch(nil, "GET", w.news+"/articles/d", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/d"))
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Payment-Error") != "replay" {
		t.Fatalf("tokens spent before the crash: %d %q", resp.StatusCode, resp.Header.Get("Payment-Error"))
	}
	w.waitClaims(wal.Serial, 2, 10*time.Second)
}
