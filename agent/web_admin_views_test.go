package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAdminViewPagesAreTheAPIs: the readers, vendors and figures pages show
// what GET /v1/admin/users, /v1/admin/vendors and /v1/admin/stats answer.
func TestAdminViewPagesAreTheAPIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := e.adminBrowser(srv)
	ctx := context.Background()
	admin := e.as("Bearer " + adminToken)
	for _, n := range []string{"alice", "albert", "bob"} {
		e.user(n, 250)
	}
	va := e.vendor("planet")
	e.vendor("globe")
	w := e.buy(e.user("carol", 1000), 256)
	c := w.claim(0, 4, 4, "planet")
	c.Time = e.clock.Now().Unix() - 3
	e.expectReport("paid:4", va, "planet", "b1", c)

	p := b.get("/admin/readers?q=al")
	us, err := admin.Users(ctx, "al", "", 0)
	e.mustOK(err, "users")
	rows := p.rows()
	if p.code != 200 || len(rows) != len(us.Users) || len(rows) != 2 {
		t.Fatalf("%d, %d rows, API %d\n%s", p.code, len(rows), len(us.Users), p.body)
	}
	for i, u := range us.Users {
		want := []string{u.Username, u.ID, e.a.money(u.Balance), u.Status, fmt.Sprint(u.Certificates), when(u.Created)}
		if fmt.Sprint(rows[i]) != fmt.Sprint(want) {
			t.Errorf("reader row %q, API %q", rows[i], want)
		}
	}

	p = b.get("/admin/vendors")
	vs, err := admin.VendorList(ctx, "", "", 0)
	e.mustOK(err, "vendors")
	rows = p.rows()
	if len(rows) != 2 || rows[1][0] != "planet" || rows[1][1] != e.a.money(vs.Vendors[1].Balance) || rows[1][4] != when(vs.Vendors[1].LastReport) ||
		rows[1][5] != "3 s" || rows[0][4] != "never" {
		t.Fatalf("vendor rows %q, API %+v", rows, vs.Vendors)
	}

	p = b.get("/admin/figures")
	st, err := admin.Stats(ctx, 0)
	e.mustOK(err, "stats")
	var claims, paid int64
	for _, m := range st.Minutes {
		claims += m.Claims
		paid += m.Paid
	}
	if got := p.figure(t, "Claims"); got != fmt.Sprint(claims) || claims != 1 || paid != 1 {
		t.Errorf("claims %q, API %d (%d paid)", got, claims, paid)
	}
	if got := p.figure(t, "Revocation list"); got != fmt.Sprint(st.CRLEntries) {
		t.Errorf("CRL %q, API %d", got, st.CRLEntries)
	}
	if got := p.figure(t, "Fraud cases"); got != fmt.Sprint(st.FraudCases) {
		t.Errorf("fraud %q, API %d", got, st.FraudCases)
	}
	last := st.Minutes[len(st.Minutes)-1]
	bar := fmt.Sprintf("<title>%s: %d</title>", time.Unix(last.Minute, 0).UTC().Format("15:04"), last.Claims)
	if n := strings.Count(p.body, `<rect class="bar"`); n != 3*len(st.Minutes) || !strings.Contains(p.body, bar) {
		t.Errorf("%d bars for %d minutes; no %s", n, len(st.Minutes), bar)
	}
}

// TestAdminViewPagesRefuse: a bad search or period gets a message and
// changes nothing; logged out, the log-in page.
func TestAdminViewPagesRefuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := e.adminBrowser(srv)
	e.user("alice", 10)
	before := e.snapshot()
	for _, path := range []string{"/admin/readers?q=a%20b", "/admin/readers?after=%FF", "/admin/vendors?q=" + strings.Repeat("x", 65),
		"/admin/figures?minutes=0", "/admin/figures?minutes=99999", "/admin/figures?minutes=%3Cscript%3E"} {
		if p := b.get(path); p.code != http.StatusBadRequest || strings.Contains(p.body, "<script>") {
			t.Errorf("%s: %d\n%s", path, p.code, p.body)
		}
	}
	if p := b.get("/admin/readers?q=%3Cb%3E"); p.code != 200 || strings.Contains(p.body, "“<b>”") || !strings.Contains(p.body, "&lt;b&gt;") {
		t.Errorf("a search is not escaped:\n%s", p.body)
	}
	anon := newBrowser(t, srv)
	for _, path := range []string{"/admin/readers", "/admin/vendors", "/admin/figures"} {
		if p := anon.get(path); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/login" {
			t.Errorf("%s logged out: %d %s", path, p.code, p.header.Get("Location"))
		}
	}
	if e.snapshot() != before {
		t.Fatal("a page changed the store")
	}
}

// TestAdminRevokesVendor: the revoke page revokes a vendor as POST
// /v1/admin/revoke does: its token and its reports stop.
func TestAdminRevokesVendor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := e.adminBrowser(srv)
	va := e.vendor("planet")
	p := b.adminSubmit("/admin/revoke", "/admin/revoke", url.Values{"vendor": {"planet"}, "reason": {"the paper closed"}})
	if p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/revocations?vendor=planet" {
		t.Fatalf("%d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	if p := b.get(p.header.Get("Location")); !strings.Contains(p.body, "Vendor planet is revoked") {
		t.Fatalf("no confirmation:\n%s", p.body)
	}
	if _, err := e.as(va).Statement(context.Background(), time.Time{}, time.Time{}); status(err, 200) != http.StatusForbidden {
		t.Fatalf("a revoked vendor's token: %v", err)
	}
}
