package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// TestCopiesMatchTheGateway: the script is the gateway's, byte for byte,
// and the gateway still builds its keys, arguments and pipelines the way
// this tool copies them. If this fails, the gateway changed: copy again.
func TestCopiesMatchTheGateway(t *testing.T) {
	t.Parallel()
	src := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "caddymodule", "paywall", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	store := src("store.go")
	m := regexp.MustCompile("(?s)var acceptScript = redis.NewScript\\(`(.*?)`\\)").FindStringSubmatch(store)
	if m == nil || m[1] != acceptSrc {
		t.Fatalf("acceptSrc differs from store.go's acceptScript:\n%v", m)
	}
	space := regexp.MustCompile(`[ \t]+`)
	for file, lines := range map[string][]string{
		"store.go": {
			`k.shard[n] = "hw:g:{" + vendor + "/" + strconv.Itoa(n) + "}:"`,
			`const shards = 16`,
			`h = (h ^ uint32(c)) * 16777619`,
			`return int(uint64(h) * shards >> 32)`,
			`return k.of(s) + "s:" + s.String() + ":" + strconv.FormatUint(uint64(g), 10)`,
			`return k.of(p.Cert.Serial) + "a:" + authDigest(p)`,
			`h.Write(p.Cert.Serial[:])`,
			`binary.BigEndian.PutUint32(b[0:], p.Segment)`,
			`binary.BigEndian.PutUint32(b[4:], p.Index)`,
			`binary.BigEndian.PutUint32(b[8:], p.Amount)`,
			`h.Write(p.Token[:])`,
			`h.Write([]byte(p.Product))`,
			`return hex.EncodeToString(h.Sum(nil))`,
			`return "r:now"`,
			`keys := []string{ks.state(p.Cert.Serial, p.Segment), ks.authorization(p), a.Stream}`,
			`exp.Index, exp.Token[:], p.Index, p.Token[:], a.Record, a.RecordTTL, a.Claim, a.StateExpiry)`,
		},
		"pay.go": {
			`Serial: p.Cert.Serial, Segment: p.Segment, Binding: bindingRaw(p), Index: p.Index,`,
			`Token: p.Token, Amount: p.Amount, Product: p.Product, Auth: auth, Time: iat,`,
			`first := auth + " " + strconv.FormatInt(iat, 10) + " " + strconv.FormatInt(exp, 10)`,
			`RecordTTL: int64(o.TTL/time.Second) + 1,`,
			`StateExpiry: p.Cert.ExpiresAt + 3600,`,
		},
		"pipeline.go": {
			`directMax = 8`, `pipeWorkers = 2`, `maxPipeBatch = 64`,
			`acceptScript.EvalSha(ctx, pipe, c.keys, c.args...)`,
		},
		"handler.go": {`defaultTTL = 24 * time.Hour`, `h.mode = ModeAlmostOnline`},
	} {
		text := space.ReplaceAllString(src(file), " ")
		for _, l := range lines {
			if !strings.Contains(text, l) {
				t.Errorf("%s no longer has %q", file, l)
			}
		}
	}
}

// payments writes files payments-1..files.txt, file i spending tokens 1..per
// of segment i-1, and returns their directory.
func payments(t *testing.T, files, per int) string {
	dir := t.TempDir()
	cert := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 7, Segments: files})
	for f := range files {
		var b strings.Builder
		for i := 1; i <= per; i++ {
			fmt.Fprintln(&b, cert.Header(t, uint32(f), uint32(i), 1, "bench", "/articles/bench"))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("payments-%d.txt", f+1)), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestScriptsAdvanceRealState runs both ways against a real Redis, past the
// end of the payments (so in new keyspaces): every script is accepted, and
// a first pass leaves each segment's state at its last token and its claims
// on the stream, as a gateway's payments do.
func TestScriptsAdvanceRealState(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb, err := redisurl.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	const files, per = 8, 10
	lanes, err := load(payments(t, files, per), files*per)
	if err != nil {
		t.Fatal(err)
	}
	if err := acceptScript.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	for way, f := range map[string]func(context.Context, redis.UniversalClient, [][]*call, time.Duration, int64) (float64, *tally, error){
		"pipe": pipelined, "direct": direct,
	} {
		rate, tl, err := f(ctx, rdb, lanes, 10*time.Second, 3*files*per)
		if err != nil || tl.first != nil || tl.done.Load() < 3*files*per || rate <= 0 {
			t.Fatalf("%s: rate %v done %d: %v %v", way, rate, tl.done.Load(), err, tl.first)
		}
		states, err := rdb.Keys(ctx, "hw:g:{bench-script."+way+".*.0/*}:s:*").Result()
		if err != nil || len(states) != files {
			t.Fatalf("%s: first-pass states %v %v, want %d", way, states, err, files)
		}
		for _, k := range states {
			if i, err := rdb.HGet(ctx, k, "i").Result(); err != nil || i != fmt.Sprint(per) {
				t.Errorf("%s: %s at %q %v, want %d", way, k, i, err, per)
			}
		}
		streams, _ := rdb.Keys(ctx, "hw:g:{bench-script."+way+".*.0.0/*}:r:now").Result()
		if len(streams) != 1 {
			t.Fatalf("%s: streams %v", way, streams)
		}
		msgs, err := rdb.XRange(ctx, streams[0], "-", "+").Result()
		if err != nil || len(msgs) != len(newWorkerCalls(lanes, way)) {
			t.Fatalf("%s: %d claims %v", way, len(msgs), err)
		}
		var c payword.Claim
		if err := json.Unmarshal([]byte(msgs[0].Values["c"].(string)), &c); err != nil || c.Index != 1 || c.Amount != 1 || len(c.Binding) == 0 {
			t.Errorf("%s: first claim %+v %v", way, c, err)
		}
	}
}

// newWorkerCalls is worker 0's calls for way.
func newWorkerCalls(lanes [][]*call, way string) []*call {
	workers := directMax
	if way == "pipe" {
		workers = pipeWorkers
	}
	return newWorker("x", 0, lanes, workers).calls
}

// TestScriptCopyAnswersAsTheGatewayExpects: a repeated payment finds its
// record (the gateway's idempotent retry); one out of order finds the state.
func TestScriptCopyAnswersAsTheGatewayExpects(t *testing.T) {
	t.Parallel()
	rdb, err := redisurl.New(redistest.Start(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	lanes, err := load(payments(t, 1, 3), 3)
	if err != nil {
		t.Fatal(err)
	}
	ks := keyspace("v")
	first, third := lanes[0][0], lanes[0][2]
	for i, want := range []int64{0, 1} {
		v, err := acceptScript.Run(ctx, rdb, first.keys(ks), first.args...).Slice()
		if err != nil || v[0] != want {
			t.Fatalf("run %d: %v %v, want code %d", i, v, err, want)
		}
	}
	if v, err := acceptScript.Run(ctx, rdb, third.keys(ks), third.args...).Slice(); err != nil || v[0] != int64(2) || v[1] != "1" {
		t.Fatalf("out of order: %v %v, want {2, 1, token}", v, err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"redis://10.0.0.1:6379/0", "redis://example.com:6379", "http://127.0.0.1:6379", ""} {
		if loopback(u) == nil {
			t.Errorf("%q accepted", u)
		}
	}
	if err := loopback("redis://127.0.0.1:6379/0"); err != nil {
		t.Error(err)
	}
}
