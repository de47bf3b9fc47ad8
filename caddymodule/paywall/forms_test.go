package paywall

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// formRules price paths so that every spelling of a resource that an
// upstream may serve as that resource matters: the trailing-slash form is
// dearer, a scoped issue, exact paths whose letters have non-ASCII
// look-alikes.
var formRules = []Rule{
	{Pattern: "/dir/*/", Price: 10},
	{Pattern: "/dir/*", Price: 1},
	{Pattern: "/issues/*/*", Price: 5, Scope: "/issues/*/"},
	{Pattern: "/kiosk", Price: 3},
	{Pattern: "/articles/secret*", Price: 9},
	{Pattern: "/articles/ss*", Price: 9},
	{Pattern: "/articles/fi*", Price: 9},
	{Pattern: "/articles/*", Price: 2},
}

// Every form of a resource gets the resource's price and product (up to
// ASCII case, which the product keeps: a case-sensitive upstream serves
// /read/AbC and /read/abc as two pages), or is refused; none is forwarded
// unpaid.
func TestPathFormsOnePriceOneProduct(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.Rules, h.Free = formRules, nil })
	reached := ""
	spy := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		reached = r.URL.Path
		_, _ = w.Write([]byte("content"))
		return nil
	})
	for _, g := range []struct {
		price   uint32
		product string
		forms   []string // each priced price for product, or refused with 400
	}{
		{10, "/dir/x", []string{"/dir/x", "/dir/x/", "//dir//x", "/dir/./x/", "/a/../dir/x", "/dir/%78", "/dir/x//",
			"/dir/x/.", "/DIR/X", "/Dir/x/", "/dir%2fx", `/dir\x`, "/dir/x;p", "/dir/x/;p", "/dir/x.", "/dir/x%20", "/dir/x%2e",
			"/dir/x::$DATA", "/dir/x:$DATA", "/dir/\uff58", "/dir\uff0fx", "/dir/x\uff0f", "/dir/%EF%BD%98"}},
		{5, "/issues/d/", []string{"/issues/d", "/issues/d/", "/issues//d", "/issues/./d//", "/Issues/D",
			"/issues/d\uff0f", "/issues/\uff44", "/issues/d%2f", "/issues/d."}},
		{5, "/issues/d/", []string{"/issues/d/p1", "/issues/d/p1/", "/issues/d//p1"}},
		{3, "/kiosk", []string{"/kiosk", "/kiosk/", "/KIOSK", "/Kiosk/", "/\u212aiosk", "/k\u0131osk", "/K\u0130OSK",
			"/\uff4biosk", "/k%C4%B1osk", "/%E2%84%AAiosk", "/kio\u017fk", "/kio%C5%BFk", "/ki\u1d3csk", "/k\u2170osk",
			"/\u24daiosk", "/\U0001d424iosk", "/kiosk\u0307", "/kiosk\u00a0", "/KIOS\u212a", "/kIOSK\u200b"}},
		{9, "/articles/secret", []string{"/articles/secret", "/articles/SECRET", "/articles/\u017fecret",
			"/articles/secre\uff54", "/articles/\u017fECRET"}},
		{9, "/articles/ss", []string{"/articles/ss", "/articles/SS", "/articles/\u00df", "/articles/\u1e9e",
			"/articles/s\u017f", "/articles/%C3%9F"}},
		{9, "/articles/file", []string{"/articles/file", "/articles/FILE", "/articles/\ufb01le", "/articles/\ufb01LE",
			"/articles/f\u0131le", "/articles/f\u0130le"}},
		{2, "/articles/caf%C3%A9", []string{"/articles/caf\u00e9", "/articles/caf%C3%A9", "/articles/caf%c3%a9",
			"/articles/cafe\u0301", "/articles/cafe%CC%81"}},
		{2, "/articles/x", []string{"/articles/x", "/articles/x/", "/ARTICL~1/x", "/articles/X~1", "/articles/x\uff0e",
			"/articles/\uff0e\uff0e/kiosk", "/articles/\u2024\u2024/kiosk", "/articles/x\u2024"}},
	} {
		for _, form := range g.forms {
			reached = ""
			r := httptest.NewRequest("GET", "http://news.example/", nil)
			u, err := url.ParseRequestURI(strings.ReplaceAll(form, `\`, "%5C"))
			if err != nil {
				t.Fatalf("%q: %v", form, err)
			}
			if strings.Contains(form, `\`) {
				u.Path, u.RawPath = form, ""
			}
			r.URL = u
			w, es := do(h, r, spy)
			if reached != "" {
				t.Errorf("%q reached the upstream unpaid as %q", form, reached)
			}
			switch st := status(w, es); st {
			case http.StatusBadRequest:
			case http.StatusPaymentRequired:
				ch, err := payword.ParseChallenge(w.Header().Get("WWW-Authenticate"))
				if err != nil || ch.Price != g.price || !strings.EqualFold(ch.Product, g.product) {
					t.Errorf("%q: price %d product %q, want %d %q (%v)", form, ch.Price, ch.Product, g.price, g.product, err)
				}
			default:
				t.Errorf("%q: %d, want 402 or 400", form, st)
			}
		}
	}

	// A grant bought on one form opens the others, at their one price.
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 30})
	w, es := do(h, get("/dir/x/", "Authorization", wal.Header(t, 0, 10, 10, testVendor, "/dir/x")), spy)
	grant := w.Header().Get("Payment-Receipt")
	if status(w, es) != 200 || grant == "" {
		t.Fatalf("paying /dir/x/: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	for _, form := range []string{"/dir/x", "/dir/x/", "//dir/x"} {
		if w, es := do(h, get(form, "Authorization", "Bearer "+grant), spy); status(w, es) != 200 {
			t.Errorf("grant on %q: %d", form, status(w, es))
		}
	}
	w, es = do(h, get("/issues/d", "Authorization", wal.Header(t, 1, 5, 5, testVendor, "/issues/d/")), spy)
	if grant = w.Header().Get("Payment-Receipt"); status(w, es) != 200 || grant == "" {
		t.Fatalf("paying /issues/d: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	if ck := w.Header().Get("Set-Cookie"); !strings.Contains(ck, "Path=/issues/d;") {
		t.Errorf("the issue's cookie must come back for /issues/d and /issues/d/…: %q", ck)
	}
	for _, form := range []string{"/issues/d", "/issues/d/", "/issues/d/p1"} {
		if w, es := do(h, get(form, "Cookie", grantCookie+"="+grant), spy); status(w, es) != 200 {
			t.Errorf("grant on %q: %d", form, status(w, es))
		}
	}
}

// The set of non-ASCII runes refused in paths holds what folds or
// normalises to ASCII, and not ordinary letters.
func TestASCIIFolding(t *testing.T) {
	folds := asciiFolding()
	for _, r := range []rune{'\u017f', '\u0131', '\u0130', '\u212a', '\u00df', '\u1e9e', '\u0149', '\u01f0', '\u1e96', '\u00cc'} {
		if _, ok := folds[r]; !ok {
			t.Errorf("%U (%c) not refused", r, r)
		}
	}
	for _, r := range []rune{'\u00e9', '\u00c9', '\u00fc', '\u0436', '\u03b1', '\u4e2d', '\u212b'} {
		if _, ok := folds[r]; ok {
			t.Errorf("%U (%c) refused", r, r)
		}
	}
	// Every rune of a simple fold orbit with an ASCII letter is in.
	for c := 'a'; c <= 'z'; c++ {
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			if _, ok := folds[f]; f >= 0x80 && !ok {
				t.Errorf("%U folds to %c but is not refused", f, c)
			}
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"", ""},
		{"id=1", "id=1"},
		{"id=%31", "id=1"},
		{"&id=1&", "id=1"},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1", "a=2&a=1"}, // a name's values keep their order
		{"a", "a="},
		{"q=a+b", "q=a+b"},
		{"q=a%20b", "q=a+b"},
		{"q=%2F..%2F", "q=%2F..%2F"},
		{"q=caf%C3%A9", "q=caf%C3%A9"},
		{"q=\xff", "q=%FF"},
		{"id=1;id=2", "!"},
		{"id=%zz", "!"},
		{"id=%", "!"},
		{strings.Repeat("a", maxPathLen+1), "!"},
	} {
		got, err := canonicalQuery(tc.raw)
		if tc.want == "!" {
			if err == nil {
				t.Errorf("%q: accepted as %q", tc.raw, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.raw, got, err, tc.want)
		}
	}
}

// FuzzCanonicalQuery: the canonical query is a fixed point, and fits in a
// product id.
func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{"id=1", "b=2&a=1", "a;b", "q=%C3%A9&q=x", "%zz", "a=%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := canonicalQuery(raw)
		if err != nil || q == "" {
			return
		}
		again, err := canonicalQuery(q)
		if err != nil || again != q {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", raw, q, again, err)
		}
		if !payword.ValidProduct("/p?"+q) && len(q) < payword.MaxProductLen-3 {
			t.Fatalf("%q → %q is not a product id", raw, q)
		}
	})
}
