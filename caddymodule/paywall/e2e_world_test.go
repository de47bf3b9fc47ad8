package paywall

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	_ "github.com/hashwall/hashwall/caddymodule/agenthandler"
	"github.com/hashwall/hashwall/internal/testutil/caddyload"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// The end-to-end world: one real Caddy (caddytest, through
// internal/caddyload) serves the bank (paywall_agent on its own
// redis-server) and the newspaper (paywall on the vendor's redis-server) in
// front of a CMS. The gateways reach the bank through a fault proxy the
// test controls; readers buy real certificates from the bank over HTTP.

const (
	e2eAdmin    = "e2e-admin"
	e2eMarker   = "CMS-CONTENT" // in every body the CMS serves, never in a gateway's own answer
	e2eReader   = "alice"
	e2ePassword = "correct horse battery"
	globeVendor = "globe"
)

type worldOpts struct {
	second bool // a second gateway of the vendor on the same Redis, with its own backend
	globe  bool // another vendor whose gateway was (wrongly) given the same grant key
	aof    bool // the vendor's Redis persists every write
	// offline sets the gateways' offline_segments (0: the default).
	offline int
	// cluster puts the bank's store and the vendor's on two Redis
	// Clusters of three primaries; shared puts both on one, where the
	// gateways follow the bank's revocation list (crl redis).
	cluster, shared bool
}

type world struct {
	t    *testing.T
	opts worldOpts

	bankRedis, newsRedis *redistest.Server // nil on a Cluster
	bankURL, newsURL     string
	agentRDB, newsRDB    redis.UniversalClient
	keyFile              string
	cms                  *cms
	proxy                *faultProxy

	bankPort, newsPort, news2Port, globePort int
	deadPort                                 int    // no one listens: the upstream of /articles/unreachable*
	bank, news, news2, globe                 string // base URLs
	token, globeToken                        string // vendor API tokens

	user   ed25519.PrivateKey
	uid    string
	hc     *http.Client
	api    *agentapi.Client // the bank, without credentials
	admin  *agentapi.Client // with the admin token
	reader *agentapi.Client // with the reader's session
}

func newWorld(t *testing.T, opts worldOpts) *world {
	t.Helper()
	w := &world{t: t, opts: opts, hc: &http.Client{Timeout: 10 * time.Second}}
	switch {
	case opts.shared:
		c := redistest.StartCluster(t, 3)
		w.bankURL, w.newsURL = c.URL(), c.URL()
	case opts.cluster:
		cs := redistest.StartClusters(t, 2, 3)
		w.bankURL, w.newsURL = cs[0].URL(), cs[1].URL()
	default:
		w.bankRedis = redistest.Start(t)
		if opts.aof {
			w.newsRedis = redistest.Start(t, redistest.WithAOF())
		} else {
			w.newsRedis = redistest.Start(t)
		}
		w.bankURL, w.newsURL = w.bankRedis.URL(), w.newsRedis.URL()
	}
	w.agentRDB, w.newsRDB = mustRedis(t, w.bankURL), mustRedis(t, w.newsURL)
	// Listening before the ports for Caddy are picked, so none of those
	// can be one of theirs; started before Caddy, so closed after it went
	// idle.
	w.cms = newCMS(t)
	w.proxy = newFaultProxy(t)
	// Not *.key: caddytest rewrites such paths to its own directory.
	w.keyFile = filepath.Join(t.TempDir(), "agent-2026.pem")
	if _, err := agent.Keygen(w.keyFile, "agent-2026"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HW_E2E_MASTER", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)))
	t.Setenv("HW_TEST_GRANT_KEY", testGrantKey)
	w.bankPort, w.newsPort = caddyload.FreePort(t), caddyload.FreePort(t)
	w.news2Port, w.globePort = caddyload.FreePort(t), caddyload.FreePort(t)
	w.deadPort = caddyload.FreePort(t)
	w.bank = fmt.Sprintf("http://127.0.0.1:%d", w.bankPort)
	w.news = fmt.Sprintf("http://127.0.0.1:%d", w.newsPort)
	w.news2 = fmt.Sprintf("http://127.0.0.1:%d", w.news2Port)
	w.globe = fmt.Sprintf("http://127.0.0.1:%d", w.globePort)
	w.proxy.target(t, w.bank)
	w.api = agentapi.NewClient(w.bank, w.hc)
	w.admin = w.api.WithToken(e2eAdmin)

	// The bank first: the gateways' configs need their API tokens.
	caddyload.Start(t, w.caddyfile(false))
	ctx := t.Context()
	w.token = w.registerVendor(testVendor)
	if opts.globe {
		w.globeToken = w.registerVendor(globeVendor)
	}
	u, err := w.api.RegisterUser(ctx, agentapi.RegisterUser{Username: e2eReader, Password: e2ePassword})
	if err != nil {
		t.Fatal(err)
	}
	w.uid = u.User
	if _, err := w.admin.Credit(ctx, agentapi.Credit{User: e2eReader, Amount: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	s, err := w.api.Login(ctx, e2eReader, e2ePassword)
	if err != nil {
		t.Fatal(err)
	}
	w.reader = w.api.WithToken(s.Token)
	w.user = ed25519.NewKeyFromSeed(paytest.Seed(0x41))

	caddyload.Start(t, w.caddyfile(true))
	// The reload shuts the bank's old server down in the background: it
	// closes a kept-alive connection once it sees it idle, which can be
	// just as a request goes out on it, and a POST is not retried.
	w.hc.CloseIdleConnections()
	return w
}

// registerVendor registers a vendor at the bank and returns its API token.
func (w *world) registerVendor(vendor string) string {
	w.t.Helper()
	v, err := w.admin.RegisterVendor(w.t.Context(), agentapi.RegisterVendor{Vendor: vendor})
	if err != nil {
		w.t.Fatal(err)
	}
	return v.Token
}

// caddyfile is the bank alone, or the bank and the newspaper's gateways.
func (w *world) caddyfile(gateways bool) string {
	var b strings.Builder
	b.WriteString("{\n\tlog {\n\t\tlevel WARN\n\t}\n}\n")
	fmt.Fprintf(&b, `http://127.0.0.1:%d {
	paywall_agent {
		redis %s
		signing_keys %s
		master_key {env.HW_E2E_MASTER}
		admin_token %s
		ephemeral
	}
}
`, w.bankPort, w.bankURL, w.keyFile, e2eAdmin)
	if !gateways {
		return b.String()
	}
	// The CRL interval differs between the two gateways of the vendor, so
	// that they do not share one backend (and one segment cache).
	b.WriteString(w.gateway(w.newsPort, testVendor, w.token, "200ms"))
	if w.opts.second {
		b.WriteString(w.gateway(w.news2Port, testVendor, w.token, "300ms"))
	}
	if w.opts.globe {
		b.WriteString(w.gateway(w.globePort, globeVendor, w.globeToken, "200ms"))
	}
	return b.String()
}

func (w *world) gateway(port int, vendor, token, crl string) string {
	return fmt.Sprintf(`http://127.0.0.1:%d {
	route {
		paywall {
			vendor %s
			api_token %s
			agent %s
			redis %s
			grant_key {env.HW_TEST_GRANT_KEY}
			price /articles/* 2
			price /brief/* 1 {
				ttl 2s
			}
			price /issues/*/* 5 {
				scope /issues/*/
			}
			price /live/* 1 {
				mode online
			}
			price /digest/* 1 {
				mode batch
			}
			batch_interval 300ms
			free /articles/index.html
			upstream_price
			crl %s %s
			%s
		}
		reverse_proxy /articles/unreachable* 127.0.0.1:%d
		reverse_proxy %s {
			header_up X-Paywall-User {http.paywall.user}
			header_up X-Paywall-Auth {http.paywall.auth}
		}
	}
}
`, port, vendor, token, w.proxy.URL, w.newsURL, w.crlMode(), crl, w.offline(), w.deadPort, w.cms.Listener.Addr())
}

func (w *world) crlMode() string {
	if w.opts.shared {
		return crlFromRedis
	}
	return crlFromAgent
}

func (w *world) offline() string {
	if w.opts.offline == 0 {
		return ""
	}
	return fmt.Sprintf("offline_segments %d", w.opts.offline)
}

// buy buys a certificate of at least tokens tokens from the bank.
func (w *world) buy(tokens int) *paytest.Cert {
	w.t.Helper()
	b, err := w.reader.Buy(w.t.Context(), int64(tokens), w.user.Public().(ed25519.PublicKey), "")
	if err != nil {
		w.t.Fatal(err)
	}
	return paytest.FromBundle(w.t, w.user, b)
}

// fetch sends a request through Go's client and returns the answer with
// its body. hdr holds header name and value pairs.
func (w *world) fetch(c *http.Client, method, target string, hdr ...string) (*http.Response, string) {
	w.t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = w.hc
	}
	resp, err := c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp, string(body)
}

// content is what the CMS serves for an article bought by the world's reader.
func (w *world) content(p string) string {
	return fmt.Sprintf("%s article %s for %s", e2eMarker, p, w.uid)
}

// claims returns the agent's verdicts on the claims it ingested for
// serial, by "vendor|segment|index" (the agent's idempotency record).
func (w *world) claims(s payword.Serial) map[string]string {
	w.t.Helper()
	m, err := w.agentRDB.HGetAll(w.t.Context(), w.agentKey("c:{"+s.String()+"}:cl")).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// agentKey is the name of an agent key: the contract's hw:a:<rest>, with
// the agent's one hash tag on a Cluster (agent/scripts.go's clusterTag).
func (w *world) agentKey(rest string) string {
	if w.opts.cluster || w.opts.shared {
		return "hw:a:{hw-agent-13708}:" + rest
	}
	return "hw:a:" + rest
}

// waitClaims waits until the agent holds n claims for serial, all paid.
func (w *world) waitClaims(s payword.Serial, n int, within time.Duration) map[string]string {
	w.t.Helper()
	var m map[string]string
	waitFor(w.t, fmt.Sprintf("%d claims of %s at the agent", n, s), within, func() bool {
		m = w.claims(s)
		return len(m) >= n
	})
	if len(m) != n {
		w.t.Fatalf("%d claims at the agent, want %d: %v", len(m), n, m)
	}
	for k, v := range m {
		if v != "paid" {
			w.t.Fatalf("claim %s: verdict %q", k, v)
		}
	}
	return m
}

// recorded is how many claims the vendor's gateways ever appended to the
// almost-online report streams (entries are deleted once the agent has
// them, so the stream's length would not tell).
func (w *world) recorded() int64 {
	w.t.Helper()
	var n int64
	for _, s := range newKeyspace(testVendor).streams(ModeAlmostOnline) {
		info, err := w.newsRDB.XInfoStream(w.t.Context(), s).Result()
		if err != nil {
			w.t.Fatal(err)
		}
		n += info.EntriesAdded
	}
	return n
}

// drained waits until every claim in the vendor's streams reached the agent.
func (w *world) drained() {
	w.t.Helper()
	ks := newKeyspace(testVendor)
	streams := append(ks.streams(ModeAlmostOnline), ks.streams(ModeBatch)...)
	waitFor(w.t, "the report streams drained", 10*time.Second, func() bool {
		return streamsLen(w.t, w.newsRDB, streams) == 0
	})
}

// credited is the vendor's balance at the agent, from its statement.
func (w *world) credited() int64 {
	w.t.Helper()
	st, err := w.api.WithToken(w.token).Statement(w.t.Context(), time.Time{}, time.Time{})
	if err != nil {
		w.t.Fatal(err)
	}
	return st.Closing
}

// ledgerOK asks the agent to check that every balance is the sum of its ledger.
func (w *world) ledgerOK() {
	w.t.Helper()
	if c, err := w.admin.CheckLedger(w.t.Context()); err != nil || !c.OK {
		w.t.Fatalf("the agent's ledger check: %+v %v", c, err)
	}
}

// fraud is the bank's latest fraud cases.
func (w *world) fraud() []agentapi.FraudCase {
	w.t.Helper()
	f, err := w.admin.Fraud(w.t.Context(), 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return f.Cases
}

// grantPayload decodes a grant's claims (without checking it).
func grantPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("grant %q is not a JWT", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// rawResponse is an answer read off the wire.
type rawResponse struct {
	*http.Response
	body string
	wire string // every byte the server sent on the connection
}

// rawRequest sends target exactly as written (Go's client would clean or
// re-encode it) on a new connection, and reads everything the server sends
// until it closes the connection.
func rawRequest(t *testing.T, base, method, target string, hdr ...string) rawResponse {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&req, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	req.WriteString("\r\n")
	// Written while the answer is read: the server may answer an oversized
	// request before it has read all of it.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.WriteString(c, req.String())
	}()
	wire, err := io.ReadAll(c)
	_ = c.Close() // unblocks a writer the server stopped reading
	<-done
	if err != nil && len(wire) == 0 {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: unreadable answer %q: %v", method, target, wire, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return rawResponse{Response: resp, body: string(body), wire: string(wire)}
}

// cms is the newspaper's upstream. It reads a request path the way a
// lenient server might (case, repeated percent-decoding, backslashes, path
// parameters, dot segments, trailing dots and spaces), serves the article
// it finds, and notes every request for a rule-priced article that reached
// it without a payment or a grant: a way around the paywall. Articles under
// /news/ are priced by the CMS itself with Paywall-Price, and streamed.
type cms struct {
	*httptest.Server
	mu    sync.Mutex
	hits  map[string]int // by lenient path
	leaks []string
}

func newCMS(t *testing.T) *cms {
	c := &cms{hits: map[string]int{}}
	c.Server = httptest.NewServer(c)
	t.Cleanup(c.Close)
	return c
}

// lenient resolves a request target the way a careless server would.
func lenient(target string) string {
	p := target
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	for range 4 {
		u, err := url.PathUnescape(p)
		if err != nil || u == p {
			break
		}
		p = u
	}
	// Unicode as a normalising server reads it: compatibility forms, case
	// folding, invisible characters and marks dropped.
	p = cases.Fold().String(norm.NFKC.String(p))
	p = strings.Map(func(r rune) rune {
		if unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) {
			return -1
		}
		return r
	}, p)
	p = strings.ToLower(strings.ReplaceAll(p, `\`, "/"))
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			s = s[:j]
		}
		if s != "." && s != ".." {
			s = strings.TrimRight(s, ". \t\x00")
		}
		segs[i] = s
	}
	return path.Clean("/" + strings.Join(segs, "/"))
}

// rulePriced reports whether the newspaper's rules price lenient path p.
func rulePriced(p string) bool {
	return strings.HasPrefix(p, "/articles/") && p != "/articles/index.html" ||
		strings.HasPrefix(p, "/brief/") || strings.HasPrefix(p, "/issues/") ||
		strings.HasPrefix(p, "/live/") || strings.HasPrefix(p, "/digest/")
}

func (c *cms) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := lenient(r.RequestURI)
	if isPreflight(r) {
		// The site's CORS answer, and carelessly the page with it: the
		// gateway must let the first through and not a byte of the second.
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		fmt.Fprintf(w, "%s preflight %s", e2eMarker, p)
		return
	}
	c.mu.Lock()
	c.hits[p]++
	if rulePriced(p) && !payword.ValidID(r.Header.Get("X-Paywall-Auth")) {
		c.leaks = append(c.leaks, r.Method+" "+r.RequestURI)
	}
	c.mu.Unlock()
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// Pages it does not have, or cannot serve now (priced all the same
	// under /news/): no answer a reader pays for.
	if status := failing(p); status != 0 {
		if strings.HasPrefix(p, "/news/") {
			w.Header().Set(priceHeader, "3")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s %d %s", e2eMarker, status, p)
		return
	}
	if strings.HasPrefix(p, "/news/") {
		// The header and a first part go out before the rest is written.
		w.Header().Set(priceHeader, "3")
		w.WriteHeader(http.StatusOK)
		for i := range 8 {
			fmt.Fprintf(w, "%s news %s part %d %s\n", e2eMarker, p, i, strings.Repeat("x", 4096))
			_ = http.NewResponseController(w).Flush()
		}
		return
	}
	fmt.Fprintf(w, "%s article %s for %s", e2eMarker, p, r.Header.Get("X-Paywall-User"))
}

// failing is the CMS's status for a page it cannot serve, or 0: its
// last path segment starts with "missing" (404), "broken" (503) or
// "moved" (301).
func failing(p string) int {
	switch name := path.Base(p); {
	case strings.HasPrefix(name, "missing"):
		return http.StatusNotFound
	case strings.HasPrefix(name, "broken"):
		return http.StatusServiceUnavailable
	case strings.HasPrefix(name, "moved"):
		return http.StatusMovedPermanently
	}
	return 0
}

func (c *cms) hitsOf(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[p]
}

func (c *cms) leaked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.leaks...)
}

// faultProxy stands between the gateways and the agent. It forwards, or
// plays the agent down (every connection is dropped unanswered), or
// forwards the next report and drops the agent's answer to it (the agent
// has the claims, the gateway does not know). It counts what it forwards.
type faultProxy struct {
	*httptest.Server

	mu        sync.Mutex
	rp        *httputil.ReverseProxy
	down      bool
	loseNext  int            // reports whose answer is dropped
	refused   int            // reports refused while down
	lost      int            // reports forwarded whose answer was dropped
	forwarded map[string]int // claim "serial|seg|index" → times forwarded
}

func newFaultProxy(t *testing.T) *faultProxy {
	p := &faultProxy{forwarded: map[string]int{}}
	p.Server = httptest.NewServer(p)
	t.Cleanup(p.Close)
	return p
}

// target sets where the proxy forwards to, before any request comes.
func (p *faultProxy) target(t *testing.T, base string) {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.mu.Unlock()
}

func (p *faultProxy) setDown(down bool, loseNext int) {
	p.mu.Lock()
	p.down, p.loseNext = down, loseNext
	p.mu.Unlock()
}

func (p *faultProxy) counts() (refused, lost int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused, p.lost
}

func (p *faultProxy) maxForwarded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.forwarded {
		n = max(n, v)
	}
	return n
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	report := r.Method == http.MethodPost && r.URL.Path == "/v1/reports"
	var body []byte
	if report {
		body, _ = io.ReadAll(io.LimitReader(r.Body, payword.MaxReportSize+1))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	p.mu.Lock()
	rp := p.rp
	down, lose := p.down, report && p.loseNext > 0 && !p.down
	if down && report {
		p.refused++
	}
	if lose {
		p.loseNext--
		p.lost++
	}
	if report && !down {
		if rep, err := payword.ParseReport(body); err == nil {
			for _, c := range rep.Claims {
				p.forwarded[c.Serial.String()+"|"+strconv.Itoa(int(c.Segment))+"|"+strconv.Itoa(int(c.Index))]++
			}
		}
	}
	p.mu.Unlock()
	switch {
	case down:
		drop(w)
	case lose:
		rp.ServeHTTP(httptest.NewRecorder(), r)
		drop(w)
	default:
		rp.ServeHTTP(w, r)
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = c.Close()
	}
}
