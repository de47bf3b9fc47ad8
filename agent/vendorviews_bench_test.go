package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/payword"
)

// seedClaims has vendor (auth its API token) report n claims of one token
// each, bound to it, on certificates a reader buys, with products
// /archive/<k mod products>, spread over the days days up to the clock's
// today, in batches of 500. It returns the clock to where it was.
func (e *env) seedClaims(auth, vendor string, n, days, products int) {
	e.t.Helper()
	reader := e.user(fmt.Sprintf("seed-%s", vendor), int64(n)*2)
	perDay := (n + days - 1) / days
	start := e.clock.Now()
	e.clock.Add(-time.Duration(days-1) * 24 * time.Hour)
	var w *wallet
	var g, i uint32
	var batch []payword.Claim
	flush := func() {
		if len(batch) == 0 {
			return
		}
		res, code := e.report(auth, vendor, fmt.Sprintf("seed-%d-%d", e.clock.Now().Unix(), len(batch)+int(g)*1000+int(i)), batch...)
		if code != 200 {
			e.t.Fatalf("seeding: report %d", code)
		}
		for _, r := range res.Results {
			if r.Verdict != "paid" {
				e.t.Fatalf("seeding: %+v", r)
			}
		}
		batch = batch[:0]
	}
	for k := range n {
		if k > 0 && k%perDay == 0 {
			flush()
			e.clock.Add(24 * time.Hour)
		}
		if w == nil || i == w.cert.SegmentLen {
			g, i = g+1, 0
			if w == nil || g == w.cert.Segments {
				w, g = e.buy(reader, 1<<15), 0
			}
		}
		i++
		c := w.claim(g, i, 1, vendor)
		c.Product = fmt.Sprintf("/archive/%d", k%products)
		batch = append(batch, c)
		if len(batch) == 500 {
			flush()
		}
	}
	flush()
	e.clock.Add(start.Sub(e.clock.Now()))
}

// BenchmarkVendorViews reads each vendor view, as the vendor's pages do,
// with 10⁵ claims of 5,000 products over 30 days in Redis.
func BenchmarkVendorViews(b *testing.B) {
	e := newEnv(b)
	auth := e.vendor("planet")
	e.seedClaims(auth, "planet", 100_000, 30, 5000)
	ctx := context.Background()
	now := e.clock.Now()
	if rev, err := e.a.VendorRevenue(ctx, "planet", now.AddDate(0, 0, -29), now); err != nil || rev.Claims != 100_000 || rev.Days[0].Claims == 0 {
		b.Fatalf("seeded %+v, %v", rev, err)
	}
	for _, v := range []struct {
		name string
		f    func() error
	}{
		{"revenue-30-days", func() error { _, err := e.a.VendorRevenue(ctx, "planet", now.AddDate(0, 0, -29), now); return err }},
		{"products-page", func() error { _, err := e.a.VendorProducts(ctx, "planet", 0, defaultPage); return err }},
		{"products-last-page", func() error { _, err := e.a.VendorProducts(ctx, "planet", 4950, defaultPage); return err }},
		{"claims-page", func() error { _, err := e.a.VendorClaims(ctx, "planet", "", defaultPage); return err }},
		{"disputes-page", func() error { _, err := e.a.VendorDisputes(ctx, "planet", 0, defaultPage); return err }},
	} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				if err := v.f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// seedReaders writes n readers' accounts straight into Redis, as
// registration leaves them (without hashing n passwords): the bulk a
// dashboard's store holds.
func (e *env) seedReaders(n int) {
	e.t.Helper()
	ctx := context.Background()
	pipe := e.rdb.Pipeline()
	for k := range n {
		uid, name := fmt.Sprintf("u-seed%06d", k), fmt.Sprintf("reader%06d", k)
		pipe.HSet(ctx, e.a.prefix+"u:"+uid, "name", name, "bal", 0, "status", "active", "ctime", 1796083200) // no ledger: no balance
		pipe.Set(ctx, e.a.prefix+"uname:"+name, uid, 0)
		pipe.SAdd(ctx, e.a.prefix+"accounts", "u:"+uid)
		pipe.ZAdd(ctx, e.a.prefix+"unames", redis.Z{Member: name})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// BenchmarkVendorPages renders each vendor page over HTTP, logged in, with
// 10⁵ claims of 5,000 products over 30 days and 10³ readers in Redis
// (issue 13: ≤ 50 ms server-side).
func BenchmarkVendorPages(b *testing.B) {
	e := newEnv(b)
	srv := e.webServer()
	br, auth := e.vendorBrowser(srv, "planet")
	e.seedClaims(auth, "planet", 100_000, 30, 5000)
	e.seedReaders(1000)
	mid, err := e.a.VendorClaims(context.Background(), "planet", "", 50_000)
	if err != nil || len(mid.Claims) != 50_000 {
		b.Fatal(err)
	}
	for _, path := range []string{
		"/vendor", "/vendor/revenue", "/vendor/revenue?p=4980", "/vendor/claims",
		"/vendor/claims?before=" + mid.Next, "/vendor/disputes", "/vendor/statements", "/vendor/statements?page=1000",
	} {
		name := strings.TrimPrefix(path, "/vendor/")
		if path == "/vendor" {
			name = "overview"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if p := br.get(path); p.code != 200 || strings.Contains(p.body, "Fail") {
					b.Fatalf("%s: %d", path, p.code)
				}
			}
		})
	}
}

// BenchmarkAdminPages renders each operator page over HTTP, logged in,
// with the data of BenchmarkVendorPages: 10⁵ claims and 10³ readers.
func BenchmarkAdminPages(b *testing.B) {
	e := newEnv(b)
	srv := e.webServer()
	br := e.adminBrowser(srv)
	auth := e.vendor("planet")
	e.seedClaims(auth, "planet", 100_000, 30, 5000)
	e.seedReaders(1000)
	for _, path := range []string{
		"/admin", "/admin?check=1", "/admin/readers", "/admin/readers?q=reader0005", "/admin/readers?after=reader000900",
		"/admin/vendors", "/admin/figures", "/admin/figures?minutes=1440", "/admin/disputes", "/admin/revocations",
	} {
		name := strings.TrimPrefix(path, "/admin/")
		if !strings.HasPrefix(path, "/admin/") {
			name = "overview" + strings.TrimPrefix(path, "/admin")
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if p := br.get(path); p.code != 200 || strings.Contains(p.body, "Fail") {
					b.Fatalf("%s: %d", path, p.code)
				}
			}
		})
	}
}
