package payword

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
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
		got, err := ParseOrigin(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		if again, err := ParseOrigin(got); err != nil || again != got {
			t.Errorf("canonical %q is not stable: %q %v", got, again, err)
		}
	}
	bad := []struct {
		name, in string
		kind     error
	}{
		{"empty", "", ErrMalformed},
		{"no scheme", "news.example.com", ErrMalformed},
		{"ftp", "ftp://news.example.com", ErrMalformed},
		{"javascript", "javascript://news.example.com", ErrMalformed},
		{"data", "data:text/html,hi", ErrMalformed},
		{"file", "file:///etc/passwd", ErrMalformed},
		{"ws", "ws://news.example.com", ErrMalformed},
		{"path", "https://news.example.com/articles", ErrMalformed},
		{"two slashes", "https://news.example.com//", ErrMalformed},
		{"query", "https://news.example.com?x=1", ErrMalformed},
		{"fragment", "https://news.example.com#top", ErrMalformed},
		{"userinfo", "https://user:pw@news.example.com", ErrMalformed},
		{"userinfo lookalike", "https://news.example.com@evil.com", ErrMalformed},
		{"backslash", `https://evil.com\@news.example.com`, ErrMalformed},
		{"percent", "https://news%2eexample.com", ErrMalformed},
		{"unicode host", "https://bücher.example", ErrMalformed},
		{"cyrillic lookalike", "https://nеws.example.com", ErrMalformed},
		{"fullwidth dot", "https://news。example.com", ErrMalformed},
		{"space", "https://news .example.com", ErrMalformed},
		{"newline", "https://news.example.com\n", ErrMalformed},
		{"nul", "https://news.example.com\x00.evil.com", ErrMalformed},
		{"empty host", "https://", ErrMalformed},
		{"empty host port", "https://:443", ErrMalformed},
		{"trailing dot", "https://news.example.com.", ErrMalformed},
		{"empty label", "https://news..example.com", ErrMalformed},
		{"leading hyphen", "https://-news.example.com", ErrMalformed},
		{"underscore", "https://my_site.example.com", ErrMalformed},
		{"port zero", "https://news.example.com:0", ErrMalformed},
		{"port too big", "https://news.example.com:65536", ErrMalformed},
		{"port leading zero", "https://news.example.com:0443", ErrMalformed},
		{"port sign", "https://news.example.com:+443", ErrMalformed},
		{"empty port", "https://news.example.com:", ErrMalformed},
		{"two ports", "https://news.example.com:80:80", ErrMalformed},
		{"short IPv4", "http://127.1", ErrMalformed},
		{"hex IPv4", "http://0x7f.0.0.1", ErrMalformed},
		{"octal IPv4", "http://0177.0.0.1", ErrMalformed},
		{"numeric TLD", "http://example.123", ErrMalformed},
		{"IPv6 unclosed", "http://[::1", ErrMalformed},
		{"IPv6 junk", "http://[::1]x", ErrMalformed},
		{"IPv6 zone", "http://[fe80::1%25eth0]", ErrMalformed},
		{"IPv4 in brackets", "http://[127.0.0.1]", ErrMalformed},
		{"IPv6 bare", "http://::1", ErrMalformed},
		{"label too long", "https://" + strings.Repeat("a", 64) + ".com", ErrMalformed},
		{"host too long", long, ErrMalformed},
		{"too long", "https://" + strings.Repeat("a.", 200) + "com", ErrTooLarge},
	}
	for _, tt := range bad {
		if got, err := ParseOrigin(tt.in); !errors.Is(err, tt.kind) {
			t.Errorf("%s: ParseOrigin(%q) = %q, %v; want %v", tt.name, tt.in, got, err, tt.kind)
		}
	}
}

func TestCanonicalOrigins(t *testing.T) {
	got, err := CanonicalOrigins([]string{"https://B.example", "https://a.example/", "https://b.example:443"})
	if err != nil || strings.Join(got, " ") != "https://a.example https://b.example" {
		t.Fatalf("CanonicalOrigins = %q, %v", got, err)
	}
	if got, err := CanonicalOrigins(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %q %v", got, err)
	}
	many := make([]string, MaxOrigins+1)
	for i := range many {
		many[i] = "https://example.com"
	}
	if _, err := CanonicalOrigins(many); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too many: %v", err)
	}
	if _, err := CanonicalOrigins([]string{"https://ok.example", "https://user@bad.example"}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("one bad origin: %v", err)
	}
}

func sealOrigins(k SigningKey, d any) []byte {
	body, _ := json.Marshal(d)
	raw, _ := json.Marshal(Seal(k, body))
	return raw
}

func TestDecodeVendorOrigins(t *testing.T) {
	k := SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(seed(0x01))}
	other := SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(seed(0x02))}
	keys := KeySet{k.ID: k.Public()}
	good := VendorOrigins{Kind: OriginsKind, Vendor: "daily-planet", Origins: []string{"https://news.example.com"}, Time: 100, Expires: 200}
	d, err := OpenVendorOrigins(sealOrigins(k, good), keys)
	if err != nil || !d.Allows("https://news.example.com") || d.Allows("https://evil.example") || d.Vendor != "daily-planet" {
		t.Fatalf("good document: %+v %v", d, err)
	}
	with := func(f func(*VendorOrigins)) VendorOrigins {
		c := good
		c.Origins = append([]string(nil), good.Origins...)
		f(&c)
		return c
	}
	tampered := sealOrigins(k, good)
	tampered[len(tampered)-10] ^= 1
	crl, _ := json.Marshal(Seal(k, []byte(`{"since":0,"last":0,"time":100,"entries":[]}`)))
	tooMany := with(func(c *VendorOrigins) {
		c.Origins = nil
		for i := range MaxOrigins + 1 {
			c.Origins = append(c.Origins, "https://a"+strings.Repeat("a", i)+".example")
		}
	})
	cases := []struct {
		name string
		raw  []byte
		kind error
	}{
		{"other key", sealOrigins(other, good), ErrBadSignature},
		{"unknown key", sealOrigins(SigningKey{ID: "x", Key: k.Key}, good), ErrUnknownKey},
		{"tampered", tampered, nil},
		{"a CRL page", crl, ErrMalformed},
		{"wrong kind", sealOrigins(k, with(func(c *VendorOrigins) { c.Kind = "hashwall/crl" })), ErrMalformed},
		{"bad vendor", sealOrigins(k, with(func(c *VendorOrigins) { c.Vendor = "a b" })), ErrMalformed},
		{"expired before signed", sealOrigins(k, with(func(c *VendorOrigins) { c.Expires = 100 })), ErrMalformed},
		{"non-canonical origin", sealOrigins(k, with(func(c *VendorOrigins) { c.Origins = []string{"HTTPS://news.example.com"} })), ErrMalformed},
		{"origin with path", sealOrigins(k, with(func(c *VendorOrigins) { c.Origins = []string{"https://x.example/a"} })), ErrMalformed},
		{"too many", sealOrigins(k, tooMany), ErrTooLarge},
		{"extra field", sealOrigins(k, map[string]any{"kind": OriginsKind, "vendor": "v", "origins": []string{}, "time": 1, "expires": 2, "x": 1}), ErrMalformed},
		{"nested", sealOrigins(k, map[string]any{"kind": OriginsKind, "vendor": "v", "origins": [][]string{{"https://a.example"}}, "time": 1, "expires": 2}), ErrMalformed},
		{"too large", []byte(`{"kid":"` + strings.Repeat("a", MaxOriginsDoc) + `"}`), ErrTooLarge},
		{"not JSON", []byte("{"), ErrMalformed},
	}
	for _, tt := range cases {
		_, err := OpenVendorOrigins(tt.raw, keys)
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
		o, err := ParseOrigin(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if again, err := ParseOrigin(o); err != nil || again != o {
			t.Fatalf("%q → %q → %q %v: not canonical", s, o, again, err)
		}
		if len(o) > MaxOriginLen || strings.ContainsAny(o, "@?#%\\ ") || strings.Count(o, "/") != 2 ||
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
