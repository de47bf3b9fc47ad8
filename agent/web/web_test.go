package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		origin, referer string
		secure, ok      bool
		site            string // Sec-Fetch-Site
	}{
		// What Chromium sends for our own forms (Referrer-Policy no-referrer).
		{origin: "null", ok: true, site: "same-origin"},
		{origin: "http://bank.test", ok: true, site: "same-origin"},
		{origin: "https://evil.test", site: "same-origin"},
		{origin: "null", site: "cross-site"},
		{origin: "null", site: "same-site"},
		{site: "none"},
		{origin: "http://bank.test", site: "cross-site"},
		{origin: "http://bank.test", referer: "", secure: false, ok: true},
		{origin: "https://bank.test", referer: "", secure: false, ok: true}, // a TLS proxy in front
		{origin: "https://bank.test", referer: "", secure: true, ok: true},
		{origin: "http://bank.test", referer: "", secure: true, ok: false}, // a downgrade
		{origin: "https://evil.test", referer: "", secure: false, ok: false},
		{origin: "https://bank.test.evil.test", referer: "", secure: false, ok: false},
		{origin: "null", referer: "", secure: false, ok: false},
		{origin: "", referer: "http://bank.test/login", secure: false, ok: true},
		{origin: "", referer: "https://evil.test/bank.test", secure: false, ok: false},
		{origin: "", referer: "::not a url", secure: false, ok: false},
		{origin: "", referer: "", secure: false, ok: true}, // not a browser: the CSRF token decides
		{origin: "https://evil.test", referer: "http://bank.test/", secure: false, ok: false},
	} {
		r := httptest.NewRequest("POST", "http://bank.test/limits", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.referer != "" {
			r.Header.Set("Referer", c.referer)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if got := SameOrigin(r, c.secure); got != c.ok {
			t.Errorf("%+v: %v", c, got)
		}
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	a, b := CSRFToken("session-a"), CSRFToken("session-b")
	if a == "" || a == b || strings.Contains(a, "session") {
		t.Fatalf("tokens %q %q", a, b)
	}
	if !CheckCSRF("session-a", a) || CheckCSRF("session-a", b) || CheckCSRF("", "") || CheckCSRF("session-a", "") {
		t.Fatal("CheckCSRF")
	}
}

func TestParseFormBounds(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		strings.Repeat("a=1&", MaxFormFields) + "b=2", "a=" + strings.Repeat("x", MaxFieldBytes+1), "a=%ff", "%zz=1",
		strings.Repeat("x", MaxFormBytes+1),
	} {
		if _, err := ParseFormBody(body); err == nil {
			t.Errorf("accepted %.40q…", body)
		}
	}
	f, err := ParseFormBody("a=1&a=2&b=%3Cx%3E")
	if err != nil || f.Get("a") != "1" || f.Get("b") != "<x>" {
		t.Fatalf("%v %v", f, err)
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader("a=1"))
	r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	if _, err := ParseForm(httptest.NewRecorder(), r); err == nil {
		t.Fatal("multipart accepted")
	}
}

func TestBarChart(t *testing.T) {
	t.Parallel()
	c := BarChart("t", []string{"d1", "d2", "d3"}, []int64{0, 5, 10000}, func(v int64) string { return "x" })
	if len(c.Bars) != 3 || c.Bars[0].H != 0 || c.Bars[1].H != 1 || c.Bars[2].Y != chartTop {
		t.Fatalf("%+v", c.Bars)
	}
	for _, b := range c.Bars {
		if b.X < 0 || b.X+b.W > chartW || b.Y+b.H > chartH-chartBottom {
			t.Fatalf("bar out of the box: %+v", b)
		}
	}
	if c := BarChart("t", nil, nil, nil); len(c.Bars) != 0 {
		t.Fatal("bars of nothing")
	}
}

func TestRankChart(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("x", 100) + "/end"
	r := RankChart("t", []string{"/a", "/b", long}, []int64{1000, 1, -3}, func(v int64) string { return "x" })
	if len(r.Rows) != 3 || r.Rows[0].W != rankBarW || r.Rows[1].W != 1 || r.Rows[2].W != 0 || r.Height != 3*rankRowH {
		t.Fatalf("%+v", r)
	}
	if !strings.HasSuffix(r.Rows[2].Name, "/end") || len(r.Rows[2].Name) > 40 {
		t.Fatalf("long name shown as %q", r.Rows[2].Name)
	}
	if r := RankChart("t", nil, nil, nil); len(r.Rows) != 0 || r.Height != rankRowH {
		t.Fatal("rows of nothing")
	}
}

func TestEveryPageParses(t *testing.T) {
	t.Parallel()
	s, err := New("Bank")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"signup", "login", "account", "topup", "topup_done", "limits", "recover", "error"} {
		if _, ok := s.pages[p]; !ok {
			t.Errorf("no page %s", p)
		}
	}
}
