package payword

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCertificateRoundTrip(t *testing.T) {
	f := newFixture(t, 8, 16, GenericScope)
	c, err := ParseCertificate(f.cert.Raw())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(f.keys); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, f.cert) {
		t.Fatalf("round trip changed the certificate:\n%+v\n%+v", c, f.cert)
	}
	if len(f.cert.Sig()) != ed25519.SignatureSize || f.cert.Tokens() != 128 {
		t.Fatal("accessors")
	}
}

func TestParseCertificateHostile(t *testing.T) {
	f := newFixture(t, 8, 16, GenericScope)
	good := f.cert.Raw()
	with := func(mut func(c *Certificate)) []byte {
		c := *f.cert
		mut(&c)
		body := c.body() // bypasses Sign's checks on purpose
		return append(body, make([]byte, ed25519.SignatureSize)...)
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"only the fixed part", good[:certFixedLen], ErrMalformed},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"oversized", make([]byte, MaxCertificateSize+1), ErrTooLarge},
		{"wrong magic", append([]byte("HWB\x01"), good[4:]...), ErrMalformed},
		{"version 2", append([]byte("HWC\x02"), good[4:]...), ErrMalformed},
		{"zero segments", with(func(c *Certificate) { c.Segments = 0 }), ErrMalformed},
		{"too many segments", with(func(c *Certificate) { c.Segments = MaxSegments + 1 }), ErrMalformed},
		{"segment length 0", with(func(c *Certificate) { c.SegmentLen = 0 }), ErrMalformed},
		{"segment length too long", with(func(c *Certificate) { c.SegmentLen = MaxSegmentLen + 1 }), ErrMalformed},
		{"expires before issued", with(func(c *Certificate) { c.ExpiresAt = c.IssuedAt }), ErrMalformed},
		{"empty key id", with(func(c *Certificate) { c.KeyID = "" }), ErrMalformed},
		{"key id with a space", with(func(c *Certificate) { c.KeyID = "a b" }), ErrMalformed},
		{"user id with a newline", with(func(c *Certificate) { c.UserID = "u\nroot" }), ErrMalformed},
		{"scope not an id", with(func(c *Certificate) { c.Scope = "**" }), ErrMalformed},
		{"lowercase currency", with(func(c *Certificate) { c.Currency = "eur" }), ErrMalformed},
		{"string length past the end", func() []byte {
			b := append([]byte(nil), good...)
			b[certFixedLen] = 200
			return b
		}(), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCertificate(tt.raw)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("ParseCertificate = %v, %v; want %v", c, err, tt.want)
			}
		})
	}
	if _, err := (&Certificate{Segments: 1}).Sign(f.agent); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signing an invalid certificate: %v", err)
	}
}

func TestParseBindingHostile(t *testing.T) {
	f := newFixture(t, 4, 4, GenericScope)
	b, err := Bind(f.cert, f.user, 1, "daily-planet", f.now)
	if err != nil {
		t.Fatal(err)
	}
	good := b.Raw()
	if got, err := ParseBinding(good); err != nil || got.Segment != 1 || got.Vendor != "daily-planet" || got.Verify(f.cert) != nil {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"oversized", make([]byte, MaxBindingSize+1), ErrTooLarge},
		{"certificate magic", append([]byte("HWC\x01"), good[4:]...), ErrMalformed},
		{"empty vendor", func() []byte {
			b := append([]byte(nil), good[:bindingFixedLen]...)
			return append(append(b, 0), make([]byte, ed25519.SignatureSize)...)
		}(), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseBinding(tt.raw); !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("ParseBinding = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	forged, err := ParseBinding(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.Verify(f.cert); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged binding: %v", err)
	}
	if _, err := Bind(f.cert, f.user, 1, "bad vendor", f.now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("binding to an invalid vendor id: %v", err)
	}
}

// paymentJSONOf returns the JSON object of a good payment as a map, for
// tests that change one field.
func paymentJSONOf(t *testing.T, p *Payment) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(p.Encode(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func header(t *testing.T, m map[string]any) string {
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return "PayWord " + b64.EncodeToString(raw)
}

func TestParseAuthorizationHostile(t *testing.T) {
	f := newFixture(t, 8, 16, GenericScope)
	p := f.pay(t, 2, 3, 3, "daily-planet", "/articles/a")
	good := p.Header()
	if _, err := ParseAuthorization(good); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseAuthorization("payword " + strings.TrimPrefix(good, "PayWord ")); err != nil {
		t.Fatalf("scheme is case-insensitive: %v", err)
	}
	field := func(k string, v any) string {
		m := paymentJSONOf(t, p)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return header(t, m)
	}
	tests := []struct {
		name, h string
		want    error
	}{
		{"empty", "", ErrMalformed},
		{"scheme only", "PayWord", ErrMalformed},
		{"other scheme", "Bearer " + strings.TrimPrefix(good, "PayWord "), ErrMalformed},
		{"truncated", good[:len(good)-7], ErrMalformed},
		{"oversized", "PayWord " + strings.Repeat("A", MaxPaymentHeader), ErrTooLarge},
		{"non-base64", "PayWord {\"v\":1}", ErrMalformed},
		{"padded base64", good + "==", ErrMalformed},
		{"standard base64 alphabet", "PayWord " + strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimPrefix(good, "PayWord ")) + "+/", ErrMalformed},
		{"non-JSON", "PayWord " + b64.EncodeToString([]byte("not json")), ErrMalformed},
		{"JSON array", "PayWord " + b64.EncodeToString([]byte("[1,2]")), ErrMalformed},
		{"nested JSON", field("zz", []any{[]any{1}}), ErrMalformed},
		{"JSON null", "PayWord " + b64.EncodeToString([]byte("null")), ErrMalformed},
		{"version 2", field("v", 2), ErrMalformed},
		{"no certificate", field("cert", nil), ErrMalformed},
		{"certificate not base64", field("cert", "!!"), ErrMalformed},
		// Go's base64 decoder skips CR and LF even in strict mode: a JSON
		// escape inside a value must not give it a second encoding.
		{"line feed inside the certificate", field("cert", func() string { c := paymentJSONOf(t, p)["cert"].(string); return c[:10] + "\n" + c[10:] }()), ErrMalformed},
		{"carriage return inside the token", field("tok", func() string { c := paymentJSONOf(t, p)["tok"].(string); return c[:5] + "\r" + c[5:] }()), ErrMalformed},
		{"line break inside the path", field("path", func() string { c := paymentJSONOf(t, p)["path"].(string); return c + "\r\n" }()), ErrMalformed},
		{"line feed inside the binding", field("bind", func() string { c := paymentJSONOf(t, p)["bind"].(string); return "\n" + c }()), ErrMalformed},
		{"string where a number goes", field("i", "3"), ErrMalformed},
		{"fractional index", field("i", 2.5), ErrMalformed},
		{"huge index", field("i", 1e30), ErrMalformed},
		{"segment index = S", field("seg", 8), ErrBadIndex},
		{"negative segment", field("seg", -1), ErrBadIndex},
		{"segment past uint32", field("seg", 1<<32), ErrBadIndex},
		{"token index 0", field("i", 0), ErrBadIndex},
		{"token index > m", field("i", 17), ErrBadIndex},
		{"amount 0", field("p", 0), ErrBadAmount},
		{"negative amount", field("p", -1), ErrBadAmount},
		{"amount > index", field("p", 4), ErrBadAmount},
		{"short token", field("tok", b64.EncodeToString(make([]byte, 31))), ErrMalformed},
		{"long anchor", field("anchor", b64.EncodeToString(make([]byte, 33))), ErrMalformed},
		{"path not a multiple of 32", field("path", b64.EncodeToString(make([]byte, 33))), ErrMalformed},
		{"path too long", field("path", b64.EncodeToString(make([]byte, 32*(MaxPathLen+1)))), ErrMalformed},
		{"binding garbage", field("bind", b64.EncodeToString([]byte("garbage"))), ErrMalformed},
		{"vendor with a space", field("vendor", "daily planet"), ErrMalformed},
		{"empty product", field("product", ""), ErrMalformed},
		{"product with a control character", field("product", "/a\x00b"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseAuthorization(tt.h); !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("ParseAuthorization = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestChallengeRoundTrip(t *testing.T) {
	c := Challenge{Realm: `The "Daily" Planet \ news`, Vendor: "daily-planet", Price: 2, Product: "/articles/moon", Agent: "https://bank.example.com"}
	h := c.String()
	want := `PayWord realm="The \"Daily\" Planet \\ news", vendor="daily-planet", price="2", product="/articles/moon", agent="https://bank.example.com"`
	if h != want {
		t.Fatalf("String() =\n%s\nwant\n%s", h, want)
	}
	got, err := ParseChallenge(h)
	if err != nil || got != c {
		t.Fatalf("ParseChallenge = %+v, %v", got, err)
	}
	// A control character can never break the header.
	if h := (Challenge{Realm: "a\r\nSet-Cookie: x", Vendor: "v", Price: 1, Product: "/a"}).String(); strings.ContainsAny(h, "\r\n") {
		t.Fatalf("control characters in %q", h)
	}
	// Token values, odd spacing, case and unknown parameters are accepted.
	got, err = ParseChallenge(`payword  Vendor=daily-planet ,price=2,product="/a", future="x"`)
	if err != nil || got.Vendor != "daily-planet" || got.Price != 2 || got.Product != "/a" {
		t.Fatalf("lenient parse = %+v, %v", got, err)
	}
}

func TestParseChallengeHostile(t *testing.T) {
	ok := `vendor="v", price="2", product="/a"`
	tests := []struct {
		name, h string
		want    error
	}{
		{"empty", "", ErrMalformed},
		{"other scheme", `Basic realm="x"`, ErrMalformed},
		{"oversized", "PayWord " + ok + `, realm="` + strings.Repeat("x", MaxChallengeHeader) + `"`, ErrTooLarge},
		{"too many parameters", "PayWord " + ok + manyParams(maxChallengeParams), ErrTooLarge},
		{"no price", `PayWord vendor="v", product="/a"`, ErrMalformed},
		{"price 0", `PayWord vendor="v", price="0", product="/a"`, ErrMalformed},
		{"negative price", `PayWord vendor="v", price="-2", product="/a"`, ErrMalformed},
		{"price above m", `PayWord vendor="v", price="1025", product="/a"`, ErrMalformed},
		{"price not a number", `PayWord vendor="v", price="two", product="/a"`, ErrMalformed},
		{"duplicate parameter", "PayWord " + ok + `, price="1"`, ErrMalformed},
		{"duplicate in another case", "PayWord " + ok + `, PRICE="1"`, ErrMalformed},
		{"unterminated quote", `PayWord vendor="v, price="2", product="/a`, ErrMalformed},
		{"missing comma", `PayWord vendor="v" price="2" product="/a"`, ErrMalformed},
		{"missing equals", `PayWord vendor "v"`, ErrMalformed},
		{"empty token value", `PayWord vendor=, price=2, product=/a`, ErrMalformed},
		{"control character", "PayWord vendor=\"v\x01\", price=2, product=/a", ErrMalformed},
		{"bad vendor", `PayWord vendor="a b", price="2", product="/a"`, ErrMalformed},
		{"bad product", `PayWord vendor="v", price="2", product="/a b"`, ErrMalformed},
		{"trailing backslash", `PayWord vendor="v\`, ErrMalformed},
		{"escaped control character", "PayWord realm=\"\\\x12\", vendor=v, price=2, product=/a", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseChallenge(tt.h); !errors.Is(err, tt.want) {
				t.Fatalf("ParseChallenge = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestDecodeReport(t *testing.T) {
	f := newFixture(t, 4, 16, GenericScope)
	b, _ := Bind(f.cert, f.user, 1, "daily-planet", f.now)
	claim := Claim{Serial: f.cert.Serial, Segment: 1, Binding: b.Raw(), Index: 3, Token: TokenAt(f.k, 1, 3, 16),
		Amount: 3, Product: "/articles/a", Auth: "a1", Time: f.now.Unix()}
	good := Report{Vendor: "daily-planet", Batch: "b1", Claims: []Claim{claim}}
	raw, _ := json.Marshal(good)
	r, err := ParseReport(raw)
	if err != nil || !bytes.Equal(r.Claims[0].Binding, b.Raw()) || r.Claims[0].Token != claim.Token || r.Claims[0].Serial != claim.Serial {
		t.Fatalf("round trip: %+v %v", r, err)
	}
	mut := func(f func(*Report)) []byte {
		r := good
		r.Claims = append([]Claim(nil), good.Claims...)
		f(&r)
		raw, _ := json.Marshal(r)
		return raw
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"not JSON", []byte("{"), ErrMalformed},
		{"oversized", make([]byte, MaxReportSize+1), ErrTooLarge},
		{"nested too deep", []byte(`{"vendor":"v","batch":"b","claims":[{"x":[[1]]}]}`), ErrMalformed},
		{"no vendor", mut(func(r *Report) { r.Vendor = "" }), ErrMalformed},
		{"no batch id", mut(func(r *Report) { r.Batch = "" }), ErrMalformed},
		{"no claims", mut(func(r *Report) { r.Claims = nil }), ErrMalformed},
		{"too many claims", mut(func(r *Report) { r.Claims = make([]Claim, MaxReportClaims+1) }), ErrTooLarge},
		{"index 0", mut(func(r *Report) { r.Claims[0].Index = 0 }), ErrBadIndex},
		{"amount above index", mut(func(r *Report) { r.Claims[0].Amount = 4 }), ErrBadAmount},
		{"no auth number", mut(func(r *Report) { r.Claims[0].Auth = "" }), ErrMalformed},
		{"bad serial", []byte(strings.Replace(string(raw), claim.Serial.String(), "zz", 1)), ErrMalformed},
		{"bad token", []byte(strings.Replace(string(raw), b64.EncodeToString(claim.Token[:]), "AAAA", 1)), ErrMalformed},
		{"negative amount", []byte(strings.Replace(string(raw), `"p":3`, `"p":-3`, 1)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := ParseReport(tt.raw); !errors.Is(err, tt.want) || r != nil {
				t.Fatalf("ParseReport = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestSignedCRL(t *testing.T) {
	f := newFixture(t, 1, 1, GenericScope)
	crl := CRL{Type: CRLType, Since: 3, Next: 5, Last: 7, Time: f.now.Unix(), Entries: []CRLEntry{
		{Seq: 4, Serial: f.cert.Serial, Time: f.now.Unix(), Exp: f.cert.ExpiresAt, Reason: "double-spend"}, {Seq: 5, Time: f.now.Unix()}}}
	body, _ := json.Marshal(crl)
	raw, _ := json.Marshal(Seal(f.agent, body))
	got, err := OpenCRL(raw, f.keys)
	if err != nil || len(got.Entries) != 2 || got.Entries[0].Serial != f.cert.Serial || got.Entries[0].Exp != f.cert.ExpiresAt || got.Complete() {
		t.Fatalf("OpenCRL = %+v, %v", got, err)
	}
	seal := func(c CRL, k SigningKey) []byte {
		body, _ := json.Marshal(c)
		raw, _ := json.Marshal(Seal(k, body))
		return raw
	}
	mut := func(m func(c *CRL)) []byte {
		c := crl
		c.Entries = append([]CRLEntry(nil), crl.Entries...)
		m(&c)
		return seal(c, f.agent)
	}
	tampered := bytes.Replace(raw, []byte(b64.EncodeToString(body[:12])), []byte(b64.EncodeToString([]byte(`{"type":"CRL`))), 1)
	keyDoc, _ := json.Marshal(KeyDoc{Type: KeysType, Time: 1, Keys: []KeyEntry{{KeyID: "a", Public: make(Bytes, 32)}}})
	keyDocRaw, _ := json.Marshal(Seal(f.agent, keyDoc))
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"not JSON", []byte("x"), ErrMalformed},
		{"oversized", make([]byte, MaxSignedSize+1), ErrTooLarge},
		{"deep", []byte(strings.Repeat("[", 100)), ErrMalformed},
		{"unknown key", seal(crl, SigningKey{ID: "other", Key: f.agent.Key}), ErrUnknownKey},
		{"forged", seal(crl, SigningKey{ID: f.agent.ID, Key: f.user}), ErrBadSignature},
		{"tampered body", tampered, ErrBadSignature},
		{"a key announcement", keyDocRaw, ErrMalformed},
		{"no type", mut(func(c *CRL) { c.Type = "" }), ErrMalformed},
		{"entries out of order", mut(func(c *CRL) { c.Entries[0], c.Entries[1] = c.Entries[1], c.Entries[0] }), ErrMalformed},
		{"entry at since", mut(func(c *CRL) { c.Entries[0].Seq = 3 }), ErrMalformed},
		{"entry beyond next", mut(func(c *CRL) { c.Next = 4 }), ErrMalformed},
		{"next beyond last", mut(func(c *CRL) { c.Next, c.Last = 7, 6 }), ErrMalformed},
		{"since beyond next", mut(func(c *CRL) { c.Since, c.Entries = 6, nil }), ErrMalformed},
		{"entries beyond the head", mut(func(c *CRL) { c.Since, c.Next, c.Last, c.Entries = 8, 8, 7, []CRLEntry{{Seq: 8}} }), ErrMalformed},
		{"no time", mut(func(c *CRL) { c.Time = 0 }), ErrMalformed},
		{"too many entries", mut(func(c *CRL) {
			c.Since, c.Next, c.Last, c.Entries = 0, MaxCRLEntries+1, MaxCRLEntries+1, nil
			for i := range MaxCRLEntries + 1 {
				c.Entries = append(c.Entries, CRLEntry{Seq: uint64(i + 1)})
			}
		}), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := OpenCRL(tt.raw, f.keys); !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("OpenCRL = %v; want %v", err, tt.want)
			}
		})
	}
}

// A CRL client takes only the answer to its own question, never a page
// older than one it has seen or than its maximum age.
func TestCRLCursorAccept(t *testing.T) {
	now := fixtureNow
	cur := CRLCursor{Since: 10, Last: 12, Time: now.Unix() - 5}
	page := CRL{Type: CRLType, Since: 10, Next: 14, Last: 20, Time: now.Unix() - 2}
	next, err := cur.Accept(&page, now, time.Minute)
	if err != nil || next != (CRLCursor{Since: 14, Last: 20, Time: page.Time}) {
		t.Fatalf("Accept = %+v, %v", next, err)
	}
	if got := page.FreshAt(now); !got.Equal(time.Unix(page.Time+1, 0)) {
		t.Fatalf("FreshAt = %v", got)
	}
	if got := (&CRL{Time: now.Unix()}).FreshAt(now.Add(300 * time.Millisecond)); !got.Equal(now.Add(300 * time.Millisecond)) {
		t.Fatalf("FreshAt of a page of this second = %v", got)
	}
	tests := []struct {
		name string
		mut  func(c *CRL)
	}{
		{"another since", func(c *CRL) { c.Since = 0 }},
		{"a later since", func(c *CRL) { c.Since = 11 }},
		{"head went back", func(c *CRL) { c.Last, c.Next = 11, 11 }},
		{"older than seen", func(c *CRL) { c.Time = cur.Time - 1 }},
		{"older than max age", func(c *CRL) { c.Time = now.Unix() - 62 }},
		{"from the future", func(c *CRL) { c.Time = now.Add(MaxClockSkew).Unix() + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := page
			tt.mut(&c)
			if got, err := cur.Accept(&c, now, time.Minute); !errors.Is(err, ErrStale) || got != cur {
				t.Fatalf("Accept = %+v, %v; want ErrStale and the cursor unchanged", got, err)
			}
		})
	}
	// The answer to a since beyond the head decodes, and is refused.
	ahead := CRL{Type: CRLType, Since: 10, Next: 10, Last: 3, Time: now.Unix()}
	if _, err := cur.Accept(&ahead, now, time.Minute); !errors.Is(err, ErrStale) {
		t.Fatalf("a head behind the client: %v", err)
	}
	// Equal times and heads are fine (two pages in one second).
	c := page
	c.Time, c.Last, c.Next = cur.Time, cur.Last, cur.Last
	if _, err := cur.Accept(&c, now, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestCRLEntryExpired(t *testing.T) {
	e := CRLEntry{Exp: fixtureNow.Unix()}
	if e.Expired(fixtureNow.Add(CRLKeep-time.Second)) || !e.Expired(fixtureNow.Add(CRLKeep)) || (CRLEntry{}).Expired(fixtureNow.Add(1e6*time.Hour)) {
		t.Fatal("an entry expires CRLKeep after its certificate, and never without an expiry")
	}
}

// Keys are learnt only from announcements signed by a trusted key, or, on
// bootstrap, signed by a key they announce.
func TestOpenKeys(t *testing.T) {
	f := newFixture(t, 1, 1, GenericScope)
	next := SigningKey{ID: "agent-2027", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))}
	evil := SigningKey{ID: "agent-evil", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))}
	docs := AnnounceKeys([]SigningKey{next, f.agent}, f.now)
	got, err := OpenKeys(docs, f.keys)
	if err != nil || len(got) != 2 || !got[next.ID].Equal(next.Public()) || !got[f.agent.ID].Equal(f.agent.Public()) {
		t.Fatalf("rotation: %v %v", got, err)
	}
	if got, err := OpenKeys(docs, KeySet{}); err != nil || len(got) != 2 {
		t.Fatalf("bootstrap: %v %v", got, err)
	}
	injected := append(AnnounceKeys([]SigningKey{evil}, f.now), docs...)
	if got, err := OpenKeys(injected, f.keys); err != nil || len(got) != 2 || got[evil.ID] != nil {
		t.Fatalf("self-signed injection: %v %v", got, err)
	}
	forged := Seal(evil, docs[0].Body) // the real list, re-signed
	forged.KeyID = f.agent.ID
	if got, err := OpenKeys([]Signed{forged}, f.keys); err != nil || len(got) != 1 {
		t.Fatalf("forged announcement: %v %v", got, err)
	}
	body, _ := json.Marshal(KeyDoc{Type: KeysType, Time: 1, Keys: []KeyEntry{{KeyID: f.agent.ID, Public: Bytes(evil.Public())}}})
	if _, err := OpenKeys([]Signed{Seal(f.agent, body)}, f.keys); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a trusted key id announced with another key: %v", err)
	}
	crlBody, _ := json.Marshal(CRL{Type: CRLType, Time: 1})
	bad := []struct {
		name string
		docs []Signed
		want error
	}{
		{"too many", make([]Signed, MaxAnnouncedKeys+1), ErrTooLarge},
		{"oversized", []Signed{{KeyID: f.agent.ID, Body: make(Bytes, MaxKeyDocSize+1)}}, ErrTooLarge},
		{"a CRL page", []Signed{Seal(f.agent, crlBody)}, ErrMalformed},
		{"bad key", []Signed{Seal(f.agent, []byte(`{"type":"keys","time":1,"keys":[{"kid":"x","public":"AAAA"}]}`))}, ErrMalformed},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenKeys(tt.docs, f.keys); !errors.Is(err, tt.want) {
				t.Fatalf("OpenKeys = %v; want %v", err, tt.want)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ", x%d=1", i)
	}
	return b.String()
}
