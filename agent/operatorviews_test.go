package agent

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestOperatorViews: readers and vendors by name, page by page, with what
// their accounts hold; a store from before the index gets it at start;
// the figures count the minute's claims and the vendor's report lag.
func TestOperatorViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as("Bearer " + adminToken)
	for _, n := range []string{"alice", "albert", "bob", "al"} {
		e.user(n, 100)
	}
	va := e.vendor("planet")
	e.vendor("globe")
	names := func(q string, limit int) []string {
		var out []string
		for after := ""; ; {
			p, err := admin.Users(ctx, q, after, limit)
			e.mustOK(err, "users")
			for _, u := range p.Users {
				out = append(out, u.Username)
			}
			if after = p.Next; after == "" {
				return out
			}
		}
	}
	for _, c := range []struct {
		q     string
		limit int
		want  []string
	}{
		{"", 0, []string{"al", "albert", "alice", "bob"}},
		{"al", 1, []string{"al", "albert", "alice"}},
		{"ali", 2, []string{"alice"}},
		{"c", 0, nil},
	} {
		if got := names(c.q, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("users %q (pages of %d): %q, want %q", c.q, c.limit, got, c.want)
		}
	}
	us, err := admin.Users(ctx, "alice", "", 0)
	e.mustOK(err, "alice")
	w := e.buy(e.user("carol", 1000), 256)
	if u := us.Users[0]; u.ID != e.uid("alice") || u.Balance != 100 || u.Status != "active" || u.Certificates != 0 || u.Created == 0 {
		t.Fatalf("alice: %+v", u)
	}
	if cs, _ := admin.Users(ctx, "carol", "", 0); cs.Users[0].Certificates != 1 || cs.Users[0].Balance != 1000-256 {
		t.Fatalf("carol: %+v", cs.Users[0])
	}

	// A report: its claims in this minute's figures, its lag on the vendor.
	now := e.clock.Now().Unix()
	a, b := w.claim(0, 3, 3, "planet"), w.claim(0, 5, 2, "planet")
	a.Time, b.Time = now-7, now-2
	forged := w.claim(1, 2, 2, "planet")
	forged.Token[0] ^= 1
	forged.Time = now
	e.expectReport("paid:3 paid:2 invalid:0", va, "planet", "b1", a, b, forged)
	e.expectReport("paid:3 paid:2 invalid:0", va, "planet", "b1", a, b, forged) // again: counted once
	st, err := admin.Stats(ctx, 0)
	e.mustOK(err, "stats")
	m := st.Minutes[len(st.Minutes)-1]
	if len(st.Minutes) != defaultMinutes || m.Minute != now/60*60 || m.Claims != 3 || m.Paid != 2 || m.Value != 5 || m.LagMax != 7 || m.LagMean != 3 {
		t.Fatalf("this minute %+v of %d", m, len(st.Minutes))
	}
	if st.Users != 5 || st.Vendors != 2 || st.FraudCases != 1 || st.CRLEntries != 0 {
		t.Fatalf("sizes %+v", st)
	}
	vs, err := admin.VendorList(ctx, "", "", 0)
	e.mustOK(err, "vendors")
	if got := fmt.Sprint(vs.Vendors); got != fmt.Sprintf("[{globe 0 active 0 0 0} {planet 5 active 1 %d 7}]", now) {
		t.Fatalf("vendors %s", got)
	}

	// A store from before the index: indexed when the agent starts.
	e.mustOK(e.rdb.Del(ctx, e.a.prefix+"unames", e.a.prefix+"vnames", e.a.prefix+namesIndexed).Err(), "drop the index")
	e.restartAgent()
	if got := names("", 2); !slices.Equal(got, []string{"al", "albert", "alice", "bob", "carol"}) {
		t.Fatalf("after indexing: %q", got)
	}
	if vs, _ := admin.VendorList(ctx, "pl", "", 0); len(vs.Vendors) != 1 || vs.Vendors[0].Vendor != "planet" {
		t.Fatalf("vendors after indexing: %+v", vs)
	}
	e.checkLedger()
}

// TestOperatorViewsRefuse: hostile queries get a 400 and change nothing;
// anyone but the operator a 401.
func TestOperatorViewsRefuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	alice := e.user("alice", 10)
	admin := "Bearer " + adminToken
	before := e.snapshot()
	for _, p := range []string{
		"/v1/admin/users?q=a%20b", "/v1/admin/users?q=%FF", "/v1/admin/users?after=%00", "/v1/admin/users?limit=0",
		"/v1/admin/users?q=" + strings.Repeat("a", maxSearch+1),
		"/v1/admin/vendors?q=%0a", "/v1/admin/vendors?limit=9999",
		"/v1/admin/stats?minutes=0", "/v1/admin/stats?minutes=2881", "/v1/admin/stats?minutes=x",
	} {
		if r := e.raw(http.MethodGet, p, admin); r.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", p, r.Code, r.Body)
		}
	}
	for _, p := range []string{"/v1/admin/users", "/v1/admin/vendors", "/v1/admin/stats"} {
		for _, auth := range []string{"", va, alice, "Bearer not-the-token"} {
			if r := e.raw(http.MethodGet, p, auth); r.Code != http.StatusUnauthorized {
				t.Errorf("%s as %q: %d, want 401", p, auth, r.Code)
			}
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused view changed the store")
	}
}

// FuzzOperatorQuery: what a search accepts is a short visible-ASCII name
// start, which cannot reach past its prefix's range.
func FuzzOperatorQuery(f *testing.F) {
	for _, s := range []string{"", "al", "a b", "\xff", "[x", "(x", "-", "+", strings.Repeat("z", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if searchable(s) && (len(s) > maxSearch || strings.ContainsAny(s, " \xff\x00")) {
			t.Fatalf("searchable %q", s)
		}
	})
}
