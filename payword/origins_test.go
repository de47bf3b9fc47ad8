package payword_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

func TestParseOrigin(t *testing.T) {
	long := "https://" + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".com"
	good := []struct{ in, want string }{
		{"https://news.example.com", "https://news.example.com"},
		{"HTTPS://News.Example.COM/", "https://news.example.com"},
		{"https://news.example.com:443", "https://news.example.com"},
		{"http://news.example.com:80", "http://news.example.com"},
		{"http://news.example.com:443", "http://news.example.com:443"},
		{"https://news.example.com:8443", "https://news.example.com:8443"},
		{"http://127.0.0.1:8480", "http://127.0.0.1:8480"},
		{"http://[::1]:8480", "http://[::1]:8480"},
		{"http://[0:0:0:0:0:0:0:1]", "http://[::1]"},
		{"https://[2001:DB8::1]:443", "https://[2001:db8::1]"},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
		{"http://localhost:8080", "http://localhost:8080"},
		{"https://a-b.c0", "https://a-b.c0"},
	}
	for _, tt := range good {
		got, err := payword.ParseOrigin(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		if again, err := payword.ParseOrigin(got); err != nil || again != got {
			t.Errorf("canonical %q is not stable: %q %v", got, again, err)
		}
	}
	bad := []struct {
		name, in string
		kind     error
	}{
		{"empty", "", payword.ErrMalformed},
		{"no scheme", "news.example.com", payword.ErrMalformed},
		{"ftp", "ftp://news.example.com", payword.ErrMalformed},
		{"javascript", "javascript://news.example.com", payword.ErrMalformed},
		{"data", "data:text/html,hi", payword.ErrMalformed},
		{"file", "file:///etc/passwd", payword.ErrMalformed},
		{"ws", "ws://news.example.com", payword.ErrMalformed},
		{"path", "https://news.example.com/articles", payword.ErrMalformed},
		{"two slashes", "https://news.example.com//", payword.ErrMalformed},
		{"query", "https://news.example.com?x=1", payword.ErrMalformed},
		{"fragment", "https://news.example.com#top", payword.ErrMalformed},
		{"userinfo", "https://user:pw@news.example.com", payword.ErrMalformed},
		{"userinfo lookalike", "https://news.example.com@evil.com", payword.ErrMalformed},
		{"backslash", `https://evil.com\@news.example.com`, payword.ErrMalformed},
		{"percent", "https://news%2eexample.com", payword.ErrMalformed},
		{"unicode host", "https://bücher.example", payword.ErrMalformed},
		{"cyrillic lookalike", "https://nеws.example.com", payword.ErrMalformed},
		{"fullwidth dot", "https://news。example.com", payword.ErrMalformed},
		{"space", "https://news .example.com", payword.ErrMalformed},
		{"newline", "https://news.example.com\n", payword.ErrMalformed},
		{"nul", "https://news.example.com\x00.evil.com", payword.ErrMalformed},
		{"empty host", "https://", payword.ErrMalformed},
		{"empty host port", "https://:443", payword.ErrMalformed},
		{"trailing dot", "https://news.example.com.", payword.ErrMalformed},
		{"empty label", "https://news..example.com", payword.ErrMalformed},
		{"leading hyphen", "https://-news.example.com", payword.ErrMalformed},
		{"underscore", "https://my_site.example.com", payword.ErrMalformed},
		{"port zero", "https://news.example.com:0", payword.ErrMalformed},
		{"port too big", "https://news.example.com:65536", payword.ErrMalformed},
		{"port leading zero", "https://news.example.com:0443", payword.ErrMalformed},
		{"port sign", "https://news.example.com:+443", payword.ErrMalformed},
		{"empty port", "https://news.example.com:", payword.ErrMalformed},
		{"two ports", "https://news.example.com:80:80", payword.ErrMalformed},
		{"short IPv4", "http://127.1", payword.ErrMalformed},
		{"hex IPv4", "http://0x7f.0.0.1", payword.ErrMalformed},
		{"octal IPv4", "http://0177.0.0.1", payword.ErrMalformed},
		{"numeric TLD", "http://example.123", payword.ErrMalformed},
		{"IPv6 unclosed", "http://[::1", payword.ErrMalformed},
		{"IPv6 junk", "http://[::1]x", payword.ErrMalformed},
		{"IPv6 zone", "http://[fe80::1%25eth0]", payword.ErrMalformed},
		{"IPv4 in brackets", "http://[127.0.0.1]", payword.ErrMalformed},
		{"IPv6 bare", "http://::1", payword.ErrMalformed},
		{"label too long", "https://" + strings.Repeat("a", 64) + ".com", payword.ErrMalformed},
		{"host too long", long, payword.ErrMalformed},
		{"too long", "https://" + strings.Repeat("a.", 200) + "com", payword.ErrTooLarge},
	}
	for _, tt := range bad {
		if got, err := payword.ParseOrigin(tt.in); !errors.Is(err, tt.kind) {
			t.Errorf("%s: ParseOrigin(%q) = %q, %v; want %v", tt.name, tt.in, got, err, tt.kind)
		}
	}
}

func TestCanonicalOrigins(t *testing.T) {
	got, err := payword.CanonicalOrigins([]string{"https://B.example", "https://a.example/", "https://b.example:443"})
	if err != nil || strings.Join(got, " ") != "https://a.example https://b.example" {
		t.Fatalf("CanonicalOrigins = %q, %v", got, err)
	}
	if got, err := payword.CanonicalOrigins(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %q %v", got, err)
	}
	many := make([]string, payword.MaxOrigins+1)
	for i := range many {
		many[i] = "https://example.com"
	}
	if _, err := payword.CanonicalOrigins(many); !errors.Is(err, payword.ErrTooLarge) {
		t.Fatalf("too many: %v", err)
	}
	if _, err := payword.CanonicalOrigins([]string{"https://ok.example", "https://user@bad.example"}); !errors.Is(err, payword.ErrMalformed) {
		t.Fatalf("one bad origin: %v", err)
	}
}

func sealOrigins(k payword.SigningKey, d any) []byte {
	body, _ := json.Marshal(d)
	raw, _ := json.Marshal(payword.Seal(k, body))
	return raw
}

func TestOpenVendorOrigins(t *testing.T) {
	bank := paytest.NewBank(t)
	k, keys := bank.Key, bank.Keys
	other := payword.SigningKey{ID: k.ID, Key: ed25519.NewKeyFromSeed(paytest.Seed(0x02))}
	good := payword.VendorOrigins{Kind: payword.OriginsKind, Vendor: "daily-planet", Origins: []string{"https://news.example.com"}, Time: 100, Expires: 200}
	d, err := payword.OpenVendorOrigins(sealOrigins(k, good), keys)
	if err != nil || !d.Allows("https://news.example.com") || d.Allows("https://evil.example") || d.Vendor != "daily-planet" {
		t.Fatalf("good document: %+v %v", d, err)
	}
	with := func(f func(*payword.VendorOrigins)) payword.VendorOrigins {
		c := good
		c.Origins = append([]string(nil), good.Origins...)
		f(&c)
		return c
	}
	tampered := sealOrigins(k, good)
	tampered[len(tampered)-10] ^= 1
	crl, _ := json.Marshal(payword.Seal(k, []byte(`{"since":0,"last":0,"time":100,"entries":[]}`)))
	tooMany := with(func(c *payword.VendorOrigins) {
		c.Origins = nil
		for i := range payword.MaxOrigins + 1 {
			c.Origins = append(c.Origins, "https://a"+strings.Repeat("a", i)+".example")
		}
	})
	cases := []struct {
		name string
		raw  []byte
		kind error
	}{
		{"other key", sealOrigins(other, good), payword.ErrBadSignature},
		{"unknown key", sealOrigins(payword.SigningKey{ID: "x", Key: k.Key}, good), payword.ErrUnknownKey},
		{"tampered", tampered, nil},
		{"a CRL page", crl, payword.ErrMalformed},
		{"wrong kind", sealOrigins(k, with(func(c *payword.VendorOrigins) { c.Kind = "hashwall/crl" })), payword.ErrMalformed},
		{"bad vendor", sealOrigins(k, with(func(c *payword.VendorOrigins) { c.Vendor = "a b" })), payword.ErrMalformed},
		{"expired before signed", sealOrigins(k, with(func(c *payword.VendorOrigins) { c.Expires = 100 })), payword.ErrMalformed},
		{"non-canonical origin", sealOrigins(k, with(func(c *payword.VendorOrigins) { c.Origins = []string{"HTTPS://news.example.com"} })), payword.ErrMalformed},
		{"origin with path", sealOrigins(k, with(func(c *payword.VendorOrigins) { c.Origins = []string{"https://x.example/a"} })), payword.ErrMalformed},
		{"too many", sealOrigins(k, tooMany), payword.ErrTooLarge},
		{"extra field", sealOrigins(k, map[string]any{"kind": payword.OriginsKind, "vendor": "v", "origins": []string{}, "time": 1, "expires": 2, "x": 1}), payword.ErrMalformed},
		{"nested", sealOrigins(k, map[string]any{"kind": payword.OriginsKind, "vendor": "v", "origins": [][]string{{"https://a.example"}}, "time": 1, "expires": 2}), payword.ErrMalformed},
		{"too large", []byte(`{"kid":"` + strings.Repeat("a", payword.MaxOriginsDoc) + `"}`), payword.ErrTooLarge},
		{"not JSON", []byte("{"), payword.ErrMalformed},
	}
	for _, tt := range cases {
		_, err := payword.OpenVendorOrigins(tt.raw, keys)
		if err == nil || (tt.kind != nil && !errors.Is(err, tt.kind)) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.kind)
		}
	}
}

// FuzzParseOrigin: no panic; an accepted origin is canonical (parsing it
// again gives itself), short, and free of anything but a scheme, a host and
// a port.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://news.example.com", "HTTP://A.B:80/", "http://[::1]:8480", "http://127.0.0.1",
		"https://u@h", "https://h/p", "http://0x7f.1", "https://bücher.de", "https://h:0443", "http://[fe80::1%eth0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := payword.ParseOrigin(s)
		if err != nil {
			if !errors.Is(err, payword.ErrMalformed) && !errors.Is(err, payword.ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if again, err := payword.ParseOrigin(o); err != nil || again != o {
			t.Fatalf("%q → %q → %q %v: not canonical", s, o, again, err)
		}
		if len(o) > payword.MaxOriginLen || strings.ContainsAny(o, "@?#%\\ ") || strings.Count(o, "/") != 2 ||
			!(strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://")) {
			t.Fatalf("%q accepted as %q", s, o)
		}
		for i := 0; i < len(o); i++ {
			if o[i] >= 0x80 || ('A' <= o[i] && o[i] <= 'Z') {
				t.Fatalf("%q accepted as %q", s, o)
			}
		}
	})
}
