package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistQuantilesWithinOnePercent(t *testing.T) {
	t.Parallel()
	for v := uint64(0); v < 1<<40; v += 1 + v/97 {
		if i := bucket(v); ceiling(i) < v || (i > 0 && ceiling(i-1) >= v) {
			t.Fatalf("value %d in bucket %d of ceiling %d (previous %d)", v, i, ceiling(i), ceiling(i-1))
		}
	}
	if i := bucket(math.MaxUint64); i != len(hist{}.counts)-1 {
		t.Fatalf("largest value in bucket %d of %d", i, len(hist{}.counts))
	}
	var h hist
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 200_000)
	for i := range vals {
		vals[i] = time.Duration(1e3 * math.Pow(10, rng.Float64()*6)) // 1 µs to 1 s, log-uniform
		h.record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		if got := h.quantile(q); got < exact || float64(got) > float64(exact)*1.01 {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
	if h.max != vals[len(vals)-1] || h.n != uint64(len(vals)) {
		t.Errorf("max %v n %d, want %v %d", h.max, h.n, vals[len(vals)-1], len(vals))
	}
}

// TestConnReadsEveryFraming: bodies with a length, chunked with a trailer,
// none (204) and to the end of the connection, over kept-alive connections.
func TestConnReadsEveryFraming(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/len":
			w.Write([]byte("fixed body"))
		case "/chunked":
			w.Header().Set("Trailer", "X-T")
			w.Write([]byte(strings.Repeat("a", 5000)))
			w.(http.Flusher).Flush()
			w.Write([]byte("more"))
			w.Header().Set("X-T", "end")
		case "/none":
			w.WriteHeader(204)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(402)
			w.Write([]byte("pay"))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := &conn{addr: srv.Listener.Addr().String(), timeout: 5 * time.Second}
	defer c.close()
	for _, tc := range []struct {
		path  string
		want  int
		conns int32
	}{{"/len", 200, 1}, {"/chunked", 200, 1}, {"/none", 204, 1}, {"/len", 200, 1}, {"/close", 402, 1}, {"/len", 200, 2}} {
		status, err := c.do([]byte("GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err != nil || status != tc.want || conns.Load() != tc.conns {
			t.Fatalf("%s: %d %v on connection %d, want %d on %d", tc.path, status, err, conns.Load(), tc.want, tc.conns)
		}
	}
}

// echo is a server that answers 200 after stall (for the request whose
// X-N header is stallOn) and records the Authorization headers it gets.
type echo struct {
	*httptest.Server
	mu      sync.Mutex
	auths   []string
	stallOn string
	stall   time.Duration
	n       atomic.Int64
}

func newEcho(t *testing.T, stall time.Duration, stallOn int64) *echo {
	e := &echo{stall: stall}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.n.Add(1) == stallOn {
			time.Sleep(e.stall)
		}
		if a := r.Header.Get("Authorization"); a != "" {
			e.mu.Lock()
			e.auths = append(e.auths, a)
			e.mu.Unlock()
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(e.Close)
	return e
}

// TestOpenLoopChargesTheWait is the point of the open loop: one request
// stalled 200 ms delays the 200 that were due meanwhile on its lane, and
// each is charged its wait from its due time. A closed loop at the same
// request count records only the one slow request.
func TestOpenLoopChargesTheWait(t *testing.T) {
	t.Parallel()
	e := newEcho(t, 200*time.Millisecond, 100)
	cfg := config{target: e.URL + "/a", rate: 1000, conns: 1, duration: time.Second, n: 1_000_000, timeout: 5 * time.Second}
	res, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := res.summary()
	if s.ok != 1000 || s.errors() != 0 {
		t.Fatalf("ok %d errors %d, want 1000 and 0", s.ok, s.errors())
	}
	if p90 := s.lat.quantile(0.9); p90 < 50*time.Millisecond {
		t.Errorf("open loop p90 %v: the requests due during the stall were not charged their wait", p90)
	}
	if s.elapsed < 999*time.Millisecond {
		t.Errorf("done in %v: the last request was due at 999 ms", s.elapsed)
	}

	e2 := newEcho(t, 200*time.Millisecond, 100)
	cfg = config{target: e2.URL + "/a", conns: 1, duration: 10 * time.Second, n: 1000, timeout: 5 * time.Second}
	if res, err = run(cfg); err != nil {
		t.Fatal(err)
	}
	s = res.summary()
	if s.ok != 1000 || s.lat.quantile(0.9) > 50*time.Millisecond || s.lat.max < 200*time.Millisecond {
		t.Errorf("closed loop: ok %d p90 %v max %v, want 1000, small, >= 200ms", s.ok, s.lat.quantile(0.9), s.lat.max)
	}
}

// TestPaymentsInOrderPerLane: every payment is sent once, each lane's in
// the order of its file; a closed loop stops when a lane runs out.
func TestPaymentsInOrderPerLane(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const lanes, per = 3, 40
	for l := 1; l <= lanes; l++ {
		var b strings.Builder
		for i := range per {
			fmt.Fprintf(&b, "L%d-%03d\n", l, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("payments-%d.txt", l)), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := newEcho(t, 0, 0)
	cfg := config{target: e.URL + "/a", headers: []string{"Cookie: x=1"}, payments: dir, rate: 2000, conns: lanes,
		duration: 50 * time.Millisecond, n: 1_000_000, timeout: 5 * time.Second}
	res, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := res.summary(); s.ok != 100 || s.errors() != 0 || res.outOfPay {
		t.Fatalf("open loop: ok %d errors %d out %v, want 100 0 false", s.ok, s.errors(), res.outOfPay)
	}
	// The rest, closed loop, to the end of the files.
	cfg.rate, cfg.duration = 0, 10*time.Second
	if res, err = run(cfg); err != nil {
		t.Fatal(err)
	}
	if !res.outOfPay {
		t.Error("closed loop did not stop at the end of the payments")
	}
	// The second run reads the files from the start again: keep only the
	// first run's and check each lane's order.
	e.mu.Lock()
	defer e.mu.Unlock()
	byLane := map[string][]string{}
	for _, a := range e.auths[:100] {
		lane, _, _ := strings.Cut(a, "-")
		byLane[lane] = append(byLane[lane], a)
	}
	for lane, got := range byLane {
		if !slices.IsSorted(got) || len(got) < 33 || len(got) > 34 {
			t.Errorf("lane %s: %d payments, sorted %v", lane, len(got), slices.IsSorted(got))
		}
	}
}

func TestCheckRefusesBadKnobs(t *testing.T) {
	t.Parallel()
	good := config{target: "http://127.0.0.1:8080/a", conns: 1, duration: time.Second, n: 1, timeout: time.Second}
	for name, mod := range map[string]func(*config){
		"not loopback": func(c *config) { c.target = "http://10.0.0.1:8080/" },
		"a name":       func(c *config) { c.target = "http://example.com/" },
		"https":        func(c *config) { c.target = "https://127.0.0.1/" },
		"header":       func(c *config) { c.headers = []string{"no colon"} },
		"header CRLF":  func(c *config) { c.headers = []string{"A: b\r\nC: d"} },
		"conns":        func(c *config) { c.conns = 0 },
		"duration":     func(c *config) { c.duration = time.Hour },
		"n":            func(c *config) { c.n = 0 },
		"rate":         func(c *config) { c.rate = -1 },
	} {
		c := good
		mod(&c)
		if _, _, err := c.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if addr, path, err := good.check(); err != nil || addr != "127.0.0.1:8080" || path != "/a" {
		t.Errorf("good config: %s %s %v", addr, path, err)
	}
}
