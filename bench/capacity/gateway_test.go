package capacity

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	_ "github.com/hashwall/hashwall/caddymodule/paywall" // http.handlers.paywall
	"github.com/hashwall/hashwall/internal/testutil/caddyload"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

const (
	vendor   = "daily-planet"
	apiToken = "bench-api-token"
	price    = 2  // tokens per article
	clients  = 32 // connections at once, each a reader's wallet in turn
	body     = "the article"
)

// BenchmarkCapacityGateway is payments through a real gateway, for
// docs/scaling.md: Caddy with the paywall handler in this process, a real
// redis-server (AOF, appendfsync always, on /dev/shm), clients new
// payments over loopback HTTP, each answered 200 with a grant, and the
// claims shipped to a stub bank that pays them all (the bank's own cost is
// BenchmarkCapacityIngest's). The CPU of this process (Caddy, the clients
// and the stub) and of Redis's main thread is counted until every claim has
// been shipped.
//
//   - new-readers: each payment is a reader the gateway has never seen (a
//     certificate and segment of its own): two signature checks, a Merkle
//     path, the offline count and the accept script.
//
//   - returning: readers the gateway knows, each payment the next of its
//     segment: price hashes and the accept script (and a binding
//     registered with the bank every 64 payments, when a segment is used
//     up).
//
//   - plain: the same requests to a site without the paywall, the HTTP
//     cost to subtract from the others'.
//
//     go test ./bench/capacity -run '^$' -bench CapacityGateway -benchtime 20000x
func BenchmarkCapacityGateway(b *testing.B) {
	b.Run("new-readers", func(b *testing.B) {
		benchGateway(b, Split(NewReaders(b, b.N, price, vendor), clients), true)
	})
	b.Run("returning", func(b *testing.B) {
		benchGateway(b, Returning(b, clients, b.N, price, vendor), true)
	})
	b.Run("plain", func(b *testing.B) {
		benchGateway(b, Split(NewReaders(b, b.N, price, vendor), clients), false)
	})
}

func benchGateway(b *testing.B, loads [][]*payword.Payment, paid bool) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	bank := newStubBank(b)
	key := paytest.NewBank(b).Key
	port := caddyload.FreePort(b)
	b.Setenv("HW_BENCH_GRANT_KEY", "bench-grant-key-bench-grant-key-0123")
	site := fmt.Sprintf("respond %q 200", body)
	if paid {
		site = fmt.Sprintf(`paywall {
		vendor %s
		api_token %s
		agent %s
		crl redis
		key %s %s
		redis %s
		grant_key {env.HW_BENCH_GRANT_KEY}
		price /articles/* %d
	}
	%s`, vendor, apiToken, bank.URL, key.ID, base64.RawURLEncoding.EncodeToString(key.Public()), srv.URL(), price, site)
	}
	caddyload.Start(b, fmt.Sprintf("{\n\tlog {\n\t\tlevel ERROR\n\t}\n}\nhttp://127.0.0.1:%d {\n\t%s\n}\n", port, site))

	hdrs := make([][]string, len(loads))
	n := 0
	for c, load := range loads {
		for _, p := range load {
			hdrs[c] = append(hdrs[c], p.Header())
		}
		n += len(load)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, Product)
	b.ResetTimer()
	m := StartMeter(b, rdb)
	took, lat, err := Run(hdrs, func(hdr string) error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", hdr)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != body || paid && resp.Header.Get("Payment-Receipt") == "" {
			return fmt.Errorf("%d %s %q", resp.StatusCode, resp.Header.Get("Payment-Error"), got)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if paid {
		bank.waitClaims(b, n)
	}
	b.StopTimer()
	ReportRate(b, n, took, lat, "req")
	m.Report(b, n, "req")
}

// stubBank answers a gateway's reports, every claim paid, and its segment
// registrations, every segment its own: the least a bank can cost.
type stubBank struct {
	*httptest.Server
	mu     sync.Mutex
	claims map[string]bool // authorization numbers
}

func newStubBank(tb testing.TB) *stubBank {
	s := &stubBank{claims: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *stubBank) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+apiToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, payword.MaxReportSize+1))
	var out any
	switch r.URL.Path {
	case "/v1/reports":
		rep, err := payword.ParseReport(raw)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := agentapi.ReportResult{Batch: rep.Batch}
		s.mu.Lock()
		for _, c := range rep.Claims {
			s.claims[c.Auth] = true
			res.Results = append(res.Results, agentapi.ClaimResult{Auth: c.Auth, Verdict: agentapi.VerdictPaid, Amount: uint64(c.Amount)})
		}
		s.mu.Unlock()
		out = res
	case "/v1/bindings":
		var q agentapi.Bind
		if err := json.Unmarshal(raw, &q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, err := payword.ParseBinding(q.Bind)
		if err != nil {
			http.Error(w, "bad binding", http.StatusBadRequest)
			return
		}
		out = agentapi.Binding{Owner: b.Vendor}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// waitClaims waits until the bank has been sent n distinct claims.
func (s *stubBank) waitClaims(tb testing.TB, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.claims)
		s.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the bank got %d of %d claims", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
