package capacity

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/caddyload"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// BenchmarkCapacityProcessRSS is the memory of a real gateway process
// under b.N distinct readers, for docs/scaling.md: the hashwall binary,
// built from ./cmd/hashwall and started on its own (so nothing of this
// test's data is counted), a real redis-server, and the stub bank taking
// the claims. Each reader is a certificate of its own: it pays once
// (segment 0, taken offline) and comes back once with its grant cookie,
// over loopback HTTP. Readers are made in chunks while earlier ones are
// sent, so the test's own memory stays small too.
//
// It reports the gateway's VmRSS at the end (RSS-MiB), its peak (VmHWM,
// peak-RSS-MiB), and the Go heap in use at the end as the gateway's
// /metrics says (heap-MiB). HW_HEAP_PROFILE=<file> saves its heap profile
// at the end. For 10^6 readers (about 10 minutes on 2
// cores):
//
//	go test ./bench/capacity -run '^$' -bench CapacityProcessRSS -benchtime 1000000x -timeout 30m
func BenchmarkCapacityProcessRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "hashwall")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/hashwall/hashwall/cmd/hashwall").CombinedOutput(); err != nil {
		b.Fatalf("building hashwall: %v\n%s", err, out)
	}
	srv := redistest.Start(b)
	bank := newStubBank(b)
	key := paytest.NewBank(b).Key
	port, admin := caddyload.FreePort(b), caddyload.FreePort(b)
	cfg := filepath.Join(b.TempDir(), "Caddyfile")
	src := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	log {
		level ERROR
	}
}
http://127.0.0.1:%d {
	paywall {
		vendor %s
		api_token %s
		agent %s
		crl redis
		key %s %s
		redis %s
		grant_key bench-grant-key-bench-grant-key-0123
		price /articles/* %d
		offline_segments 1
	}
	respond %q 200
}
`, admin, port, vendor, apiToken, bank.URL, key.ID, base64.RawURLEncoding.EncodeToString(key.Public()), srv.URL(), price, body)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(b.TempDir(), "hashwall.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+b.TempDir(), "XDG_DATA_HOME="+b.TempDir(), "XDG_CONFIG_HOME="+b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, Product)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	up := false
	for range 100 {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			up = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !up {
		logs, _ := os.ReadFile(logf.Name())
		b.Fatalf("hashwall did not start:\n%s", logs)
	}

	// Chunks of readers, made while the ones before are sent; two in
	// flight at most.
	const chunk = 4096
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	chunks := make(chan []*payword.Payment, 1)
	go func() {
		defer close(chunks)
		for from := 0; from < b.N; from += chunk {
			select {
			case chunks <- NewReadersFrom(b, from, min(chunk, b.N-from), price, vendor):
			case <-ctx.Done():
				return
			}
		}
	}()
	// A 503 (the store slow to answer on a loaded machine: the gateway
	// fails closed) is retried as a wallet would, a few times, and counted.
	var retried atomic.Int64
	visit := func(header, value string) (string, error) {
		for try := 0; ; try++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set(header, value)
			resp, err := hc.Do(req)
			if err != nil {
				return "", err
			}
			got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && try < 5 {
				retried.Add(1)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if resp.StatusCode != 200 || string(got) != body {
				return "", fmt.Errorf("%s: %d %s", header, resp.StatusCode, resp.Header.Get(payword.ErrorHeader))
			}
			return resp.Header.Get(payword.ReceiptHeader), nil
		}
	}
	var peak atomic.Uint64
	stopPoll := make(chan struct{})
	var polled sync.WaitGroup
	polled.Go(func() { // VmHWM is the peak, this a check of it
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopPoll:
				return
			case <-t.C:
				if r, _ := procStatus(cmd.Process.Pid); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	})

	b.ResetTimer()
	start := time.Now()
	var done atomic.Int64
	for pays := range chunks {
		next := make(chan *payword.Payment)
		errs := make(chan error, clients)
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for p := range next {
					grant, err := visit("Authorization", p.Header())
					if err == nil && grant == "" {
						err = fmt.Errorf("no grant")
					}
					if err == nil {
						_, err = visit("Cookie", "hw_grant="+grant)
					}
					if err != nil {
						errs <- fmt.Errorf("reader %s: %w", p.Cert.Serial, err)
						cancel()
						return
					}
					done.Add(1)
				}
			})
		}
	feed:
		for _, p := range pays {
			select {
			case next <- p:
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		select {
		case err := <-errs:
			logs, _ := os.ReadFile(logf.Name())
			b.Fatalf("%v; the gateway's log ends:\n%s", err, logs[max(len(logs)-4096, 0):])
		default:
		}
		if ctx.Err() != nil {
			b.Fatalf("out of time after %d readers", done.Load())
		}
	}
	took := time.Since(start)
	b.StopTimer()
	close(stopPoll)
	polled.Wait()
	if int(done.Load()) != b.N {
		b.Fatalf("%d of %d readers", done.Load(), b.N)
	}
	rss, hwm := procStatus(cmd.Process.Pid)
	b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
	b.ReportMetric(float64(max(hwm, peak.Load()))/(1<<20), "peak-RSS-MiB")
	if heap, ok := metric(hc, admin, "go_memstats_heap_inuse_bytes"); ok {
		b.ReportMetric(heap/(1<<20), "heap-MiB")
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "readers/s")
	b.ReportMetric(float64(retried.Load()), "retried-503")
	if path := os.Getenv("HW_HEAP_PROFILE"); path != "" {
		saveHeapProfile(b, hc, admin, path)
	}
}

// saveHeapProfile writes the gateway's heap profile (Caddy's admin API
// serves pprof) to path, for `go tool pprof`.
func saveHeapProfile(b *testing.B, hc *http.Client, admin int, path string) {
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", admin))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err == nil {
		err = os.WriteFile(path, raw, 0o600)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// procStatus reads VmRSS and VmHWM (the peak RSS) of process pid, in bytes.
func procStatus(pid int) (rss, hwm uint64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), ":")
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// metric reads one unlabelled gauge from the Caddy admin API's /metrics.
func metric(hc *http.Client, admin int, name string) (float64, bool) {
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
