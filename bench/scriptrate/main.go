// Command scriptrate measures the bare rate of the payment's Redis script:
// the gateway's accept script, with the keys and arguments the gateway
// gives it for bench/paygen's payments, sent straight to Redis the two ways
// the gateway sends it (caddymodule/paywall/pipeline.go): pipelined, full
// batches of up to 64 with 2 pipelines in flight, and direct, 8 callers of
// one script at a time. No verification, no HTTP: the rate the payment path
// would have if nothing but its Redis call cost anything, on this Redis.
//
// It reads up to -load payments into memory and spends them again and
// again, each pass in a new keyspace (the vendor name in the hash tag gets
// the worker and the pass), so every script finds fresh state to advance as
// a real payment does. It prints one line of key=value pairs.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

// acceptSrc is caddymodule/paywall/store.go's acceptScript, copied so that
// the paywall package exports nothing for a benchmark; a test fails if the
// two differ.
const acceptSrc = `
local rec = redis.call('GET', KEYS[2])
if rec then return {1, rec} end
local st = redis.call('HMGET', KEYS[1], 'i', 't')
local ci = tonumber(st[1]) or 0
if ci ~= tonumber(ARGV[1]) or (ci > 0 and st[2] ~= ARGV[2]) then
  return {2, tostring(ci), st[2] or ''}
end
redis.call('HSET', KEYS[1], 'i', ARGV[3], 't', ARGV[4])
redis.call('EXPIREAT', KEYS[1], ARGV[8])
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
redis.call('XADD', KEYS[3], '*', 'c', ARGV[7])
return {0}
`

var acceptScript = redis.NewScript(acceptSrc)

// The gateway's figures (pipeline.go): scripts per pipeline, pipelines in
// flight, payments in flight that go straight to Redis.
const (
	maxPipeBatch = 64
	pipeWorkers  = 2
	directMax    = 8
)

// call is one payment's script: its keys below the keyspace and its
// arguments, as caddymodule/paywall's record and accept build them.
type call struct {
	shard       string // "<n>": the certificate's shard
	state, auth string // keyspace suffixes
	args        []any
}

// keys are c's keys in vendor keyspace ks: under the certificate's shard
// tag hw:g:{<vendor>/<n>}:, as the gateway's keyspace.of puts them.
func (c *call) keys(ks string) []string {
	p := ks + "/" + c.shard + "}:"
	return []string{p + c.state, p + c.auth, p + "r:now"} // the almost_online stream, the default mode's
}

// keyspace is the start of the gateway's keys of a vendor's certificates,
// up to the shard number.
func keyspace(vendor string) string { return "hw:g:{" + vendor }

// shardOf is the gateway's shardOf: FNV-1a of the serial, scaled to 16
// shards by its high bits.
func shardOf(s payword.Serial) int {
	h := uint32(2166136261)
	for _, c := range s {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(uint64(h) * 16 >> 32)
}

// newCall builds p's script as a gateway accepting it at now would.
func newCall(p *payword.Payment, n int, now time.Time) (*call, error) {
	if p.Binding == nil {
		return nil, errors.New("payment without a binding: not one of bench/paygen's")
	}
	seg := strconv.FormatUint(uint64(p.Segment), 10)
	h := sha256.New()
	h.Write(p.Cert.Serial[:])
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:], p.Segment)
	binary.BigEndian.PutUint32(b[4:], p.Index)
	binary.BigEndian.PutUint32(b[8:], p.Amount)
	h.Write(b[:])
	h.Write(p.Token[:])
	h.Write([]byte(p.Product))
	auth := "0123456789abcdef." + strconv.FormatUint(uint64(n), 36)
	ttl := 24 * time.Hour // the default grant TTL
	iat, exp := now.Unix(), now.Add(ttl).Unix()
	claim, err := json.Marshal(payword.Claim{
		Serial: p.Cert.Serial, Segment: p.Segment, Binding: p.Binding.Raw(), Index: p.Index,
		Token: p.Token, Amount: p.Amount, Product: p.Product, Auth: auth, Time: iat,
	})
	if err != nil {
		return nil, err
	}
	e := payword.Expected(p)
	return &call{
		shard: strconv.Itoa(shardOf(p.Cert.Serial)),
		state: "s:" + p.Cert.Serial.String() + ":" + seg,
		auth:  "a:" + hex.EncodeToString(h.Sum(nil)),
		args: []any{e.Index, e.Token[:], p.Index, p.Token[:],
			auth + " " + strconv.FormatInt(iat, 10) + " " + strconv.FormatInt(exp, 10),
			int64(ttl/time.Second) + 1, claim, p.Cert.ExpiresAt + 3600},
	}, nil
}

// load reads up to max payments from dir's payments-<i>.txt files into
// lanes of calls, one lane a file: a lane's payments must run in order.
func load(dir string, max int) ([][]*call, error) {
	files, err := filepath.Glob(filepath.Join(dir, "payments-*.txt"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no payments-*.txt in %s", dir)
	}
	per := max / len(files)
	if per == 0 {
		return nil, fmt.Errorf("-load %d: fewer than one payment per file of %d", max, len(files))
	}
	now := time.Now()
	lanes := make([][]*call, 0, len(files))
	n := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		var lane []*call
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for len(lane) < per && sc.Scan() {
			p, err := payword.ParseAuthorization(sc.Text())
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			c, err := newCall(p, n, now)
			if err != nil {
				f.Close()
				return nil, err
			}
			lane, n = append(lane, c), n+1
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		lanes = append(lanes, lane)
	}
	return lanes, nil
}

// worker spends its lanes' calls one after another, again and again, a
// new keyspace each pass.
type worker struct {
	name  string // the run's and the worker's
	calls []*call
	i     int
	pass  int
	ks    string
}

func newWorker(name string, id int, lanes [][]*call, workers int) *worker {
	w := &worker{name: fmt.Sprintf("%s.%d", name, id)}
	for l := id; l < len(lanes); l += workers {
		w.calls = append(w.calls, lanes[l]...)
	}
	w.ks = keyspace(w.vendor())
	return w
}

func (w *worker) vendor() string { return fmt.Sprintf("%s.%d", w.name, w.pass) }

func (w *worker) next() (*call, string) {
	c, ks := w.calls[w.i], w.ks
	if w.i++; w.i == len(w.calls) {
		w.i, w.pass = 0, w.pass+1
		w.ks = keyspace(w.vendor())
	}
	return c, ks
}

// tally is what a run counted.
type tally struct {
	done    atomic.Int64 // scripts answered
	refused atomic.Int64 // answered, but not {0}: the tool is wrong
	failed  atomic.Int64 // Redis errors
	mu      sync.Mutex
	first   error
}

func (t *tally) result(v []any, err error) {
	t.done.Add(1)
	if err == nil && (len(v) == 0 || v[0] != int64(0)) {
		err = fmt.Errorf("script answered %v, not {0}", v)
		t.refused.Add(1)
	} else if err != nil {
		t.failed.Add(1)
	}
	if err != nil {
		t.mu.Lock()
		if t.first == nil {
			t.first = err
		}
		t.mu.Unlock()
	}
}

// run starts workers goroutines of body until d has passed or about n
// scripts were answered, and returns scripts per second.
func run(name string, lanes [][]*call, workers int, d time.Duration, n int64, t *tally, body func(*worker)) (float64, error) {
	if len(lanes) < workers {
		return 0, fmt.Errorf("%d payment files for %d workers: each needs its own", len(lanes), workers)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for id := range workers {
		w := newWorker(name, id, lanes, workers)
		wg.Go(func() {
			// Each worker ends its first pass over its lane, so that every
			// keyspace it started is whole (a slow worker is not cut short
			// by the others' count); the time still bounds it.
			for time.Since(start) < d && (t.done.Load() < n || w.pass == 0) {
				body(w)
			}
		})
	}
	wg.Wait()
	return float64(t.done.Load()) / time.Since(start).Seconds(), nil
}

// runName tells a run's keyspaces from those of any other run on the
// same Redis.
func runName(way string) string {
	return fmt.Sprintf("bench-script.%s.%x", way, time.Now().UnixNano())
}

// pipelined sends full batches, as pipeline.go's workers do under load.
func pipelined(ctx context.Context, rdb redis.UniversalClient, lanes [][]*call, d time.Duration, n int64) (float64, *tally, error) {
	t := &tally{}
	rate, err := run(runName("pipe"), lanes, pipeWorkers, d, n, t, func(w *worker) {
		cmds, _ := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for range maxPipeBatch {
				c, ks := w.next()
				acceptScript.EvalSha(ctx, pipe, c.keys(ks), c.args...)
			}
			return nil
		})
		for _, cmd := range cmds {
			t.result(cmd.(*redis.Cmd).Slice())
		}
	})
	return rate, t, err
}

// direct runs one script at a time per caller, as a gateway does while
// few payments are in flight.
func direct(ctx context.Context, rdb redis.UniversalClient, lanes [][]*call, d time.Duration, n int64) (float64, *tally, error) {
	t := &tally{}
	rate, err := run(runName("direct"), lanes, directMax, d, n, t, func(w *worker) {
		c, ks := w.next()
		t.result(acceptScript.Run(ctx, rdb, c.keys(ks), c.args...).Slice())
	})
	return rate, t, err
}

func main() {
	rawURL := flag.String("redis", "", "Redis URL, on a loopback address")
	dir := flag.String("payments", "", "directory of bench/paygen payment files (at least 8)")
	max := flag.Int("load", 32768, "payments to read and spend again in new keyspaces")
	d := flag.Duration("duration", 5*time.Second, "how long each way runs")
	n := flag.Int64("n", 10_000_000, "at most about this many scripts each way")
	flag.Parse()
	if err := loopback(*rawURL); err != nil {
		log.Fatalf("scriptrate: %v", err)
	}
	if *d <= 0 || *d > 10*time.Minute || *n < 1 || *max < 1 || *max > 1<<20 {
		log.Fatal("scriptrate: -duration up to 10m, -n and -load (up to 2^20) positive")
	}
	lanes, err := load(*dir, *max)
	if err != nil {
		log.Fatalf("scriptrate: %v", err)
	}
	rdb, err := redisurl.New(*rawURL)
	if err != nil {
		log.Fatalf("scriptrate: %v", err)
	}
	defer rdb.Close()
	ctx := context.Background()
	if err := acceptScript.Load(ctx, rdb).Err(); err != nil {
		log.Fatalf("scriptrate: %v", err)
	}
	pipeRate, pt, err := pipelined(ctx, rdb, lanes, *d, *n)
	if err != nil {
		log.Fatalf("scriptrate: %v", err)
	}
	directRate, dt, err := direct(ctx, rdb, lanes, *d, *n)
	if err != nil {
		log.Fatalf("scriptrate: %v", err)
	}
	fmt.Printf("pipelined_rate=%.0f direct_rate=%.0f pipelined=%d direct=%d errors=%d\n",
		pipeRate, directRate, pt.done.Load(), dt.done.Load(),
		pt.refused.Load()+pt.failed.Load()+dt.refused.Load()+dt.failed.Load())
	for _, t := range []*tally{pt, dt} {
		if t.first != nil {
			log.Fatalf("scriptrate: first error: %v", t.first)
		}
	}
}

func loopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "redis" {
		return fmt.Errorf("-redis %q: want redis://127.0.0.1:port/db", rawURL)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-redis %q: loopback addresses only", rawURL)
	}
	return nil
}
