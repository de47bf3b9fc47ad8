package payword_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/payword"
)

func TestCertificateRoundTrip(t *testing.T) {
	f := issue(t, 8, 16, payword.GenericScope)
	c, err := payword.ParseCertificate(f.Raw())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(f.Bank.Keys); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, f.Certificate) {
		t.Fatalf("round trip changed the certificate:\n%+v\n%+v", c, f.Certificate)
	}
	if f.Tokens() != 128 {
		t.Fatal("accessors")
	}
}

func TestParseCertificateHostile(t *testing.T) {
	f := issue(t, 8, 16, payword.GenericScope)
	good := f.Raw()
	with := func(mut func(c *payword.Certificate)) []byte {
		c := *f.Certificate
		mut(&c)
		body := c.Body() // bypasses Sign's checks on purpose
		return append(body, make([]byte, ed25519.SignatureSize)...)
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, payword.ErrMalformed},
		{"truncated", good[:len(good)-1], payword.ErrMalformed},
		{"only the fixed part", good[:payword.CertFixedLen], payword.ErrMalformed},
		{"trailing byte", append(append([]byte(nil), good...), 0), payword.ErrMalformed},
		{"oversized", make([]byte, payword.MaxCertificateSize+1), payword.ErrTooLarge},
		{"wrong magic", append([]byte("HWB\x01"), good[4:]...), payword.ErrMalformed},
		{"version 2", append([]byte("HWC\x02"), good[4:]...), payword.ErrMalformed},
		{"zero segments", with(func(c *payword.Certificate) { c.Segments = 0 }), payword.ErrMalformed},
		{"too many segments", with(func(c *payword.Certificate) { c.Segments = payword.MaxSegments + 1 }), payword.ErrMalformed},
		{"segment length 0", with(func(c *payword.Certificate) { c.SegmentLen = 0 }), payword.ErrMalformed},
		{"segment length too long", with(func(c *payword.Certificate) { c.SegmentLen = payword.MaxSegmentLen + 1 }), payword.ErrMalformed},
		{"expires before issued", with(func(c *payword.Certificate) { c.ExpiresAt = c.IssuedAt }), payword.ErrMalformed},
		{"empty key id", with(func(c *payword.Certificate) { c.KeyID = "" }), payword.ErrMalformed},
		{"key id with a space", with(func(c *payword.Certificate) { c.KeyID = "a b" }), payword.ErrMalformed},
		{"user id with a newline", with(func(c *payword.Certificate) { c.UserID = "u\nroot" }), payword.ErrMalformed},
		{"scope not an id", with(func(c *payword.Certificate) { c.Scope = "**" }), payword.ErrMalformed},
		{"lowercase currency", with(func(c *payword.Certificate) { c.Currency = "eur" }), payword.ErrMalformed},
		{"string length past the end", func() []byte {
			b := append([]byte(nil), good...)
			b[payword.CertFixedLen] = 200
			return b
		}(), payword.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := payword.ParseCertificate(tt.raw)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("ParseCertificate = %v, %v; want %v", c, err, tt.want)
			}
		})
	}
	if _, err := (&payword.Certificate{Segments: 1}).Sign(f.Bank.Key); !errors.Is(err, payword.ErrMalformed) {
		t.Fatalf("signing an invalid certificate: %v", err)
	}
}

func TestParseBindingHostile(t *testing.T) {
	f := issue(t, 4, 4, payword.GenericScope)
	b, err := payword.Bind(f.Certificate, f.User, 1, "daily-planet", f.Now)
	if err != nil {
		t.Fatal(err)
	}
	good := b.Raw()
	if got, err := payword.ParseBinding(good); err != nil || got.Segment != 1 || got.Vendor != "daily-planet" || got.Verify(f.Certificate) != nil {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, payword.ErrMalformed},
		{"truncated", good[:len(good)-1], payword.ErrMalformed},
		{"trailing byte", append(append([]byte(nil), good...), 0), payword.ErrMalformed},
		{"oversized", make([]byte, payword.MaxBindingSize+1), payword.ErrTooLarge},
		{"certificate magic", append([]byte("HWC\x01"), good[4:]...), payword.ErrMalformed},
		{"empty vendor", func() []byte {
			fixed := len(good) - ed25519.SignatureSize - 1 - len("daily-planet") // the fields before the vendor
			b := append([]byte(nil), good[:fixed]...)
			return append(append(b, 0), make([]byte, ed25519.SignatureSize)...)
		}(), payword.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := payword.ParseBinding(tt.raw); !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("ParseBinding = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	forged, err := payword.ParseBinding(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.Verify(f.Certificate); !errors.Is(err, payword.ErrBadSignature) {
		t.Fatalf("forged binding: %v", err)
	}
	if _, err := payword.Bind(f.Certificate, f.User, 1, "bad vendor", f.Now); !errors.Is(err, payword.ErrMalformed) {
		t.Fatalf("binding to an invalid vendor id: %v", err)
	}
}

func TestParseAuthorizationHostile(t *testing.T) {
	f := issue(t, 8, 16, payword.GenericScope)
	p := f.Pay(t, 2, 3, 3, "daily-planet", "/articles/a")
	good := p.Header()
	if _, err := payword.ParseAuthorization(good); err != nil {
		t.Fatal(err)
	}
	if _, err := payword.ParseAuthorization("payword " + strings.TrimPrefix(good, "PayWord ")); err != nil {
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
		{"empty", "", payword.ErrMalformed},
		{"scheme only", "PayWord", payword.ErrMalformed},
		{"other scheme", "Bearer " + strings.TrimPrefix(good, "PayWord "), payword.ErrMalformed},
		{"truncated", good[:len(good)-7], payword.ErrMalformed},
		{"oversized", "PayWord " + strings.Repeat("A", payword.MaxPaymentHeader), payword.ErrTooLarge},
		{"non-base64", "PayWord {\"v\":1}", payword.ErrMalformed},
		{"padded base64", good + "==", payword.ErrMalformed},
		{"standard base64 alphabet", "PayWord " + strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimPrefix(good, "PayWord ")) + "+/", payword.ErrMalformed},
		{"non-JSON", "PayWord " + b64.EncodeToString([]byte("not json")), payword.ErrMalformed},
		{"JSON array", "PayWord " + b64.EncodeToString([]byte("[1,2]")), payword.ErrMalformed},
		{"nested JSON", field("zz", []any{[]any{1}}), payword.ErrMalformed},
		{"JSON null", "PayWord " + b64.EncodeToString([]byte("null")), payword.ErrMalformed},
		{"version 2", field("v", 2), payword.ErrMalformed},
		{"no certificate", field("cert", nil), payword.ErrMalformed},
		{"certificate not base64", field("cert", "!!"), payword.ErrMalformed},
		// Go's base64 decoder skips CR and LF even in strict mode: a JSON
		// escape inside a value must not give it a second encoding.
		{"line feed inside the certificate", field("cert", func() string { c := paymentJSONOf(t, p)["cert"].(string); return c[:10] + "\n" + c[10:] }()), payword.ErrMalformed},
		{"carriage return inside the token", field("tok", func() string { c := paymentJSONOf(t, p)["tok"].(string); return c[:5] + "\r" + c[5:] }()), payword.ErrMalformed},
		{"line break inside the path", field("path", func() string { c := paymentJSONOf(t, p)["path"].(string); return c + "\r\n" }()), payword.ErrMalformed},
		{"line feed inside the binding", field("bind", func() string { c := paymentJSONOf(t, p)["bind"].(string); return "\n" + c }()), payword.ErrMalformed},
		{"string where a number goes", field("i", "3"), payword.ErrMalformed},
		{"fractional index", field("i", 2.5), payword.ErrMalformed},
		{"huge index", field("i", 1e30), payword.ErrMalformed},
		{"segment index = S", field("seg", 8), payword.ErrBadIndex},
		{"negative segment", field("seg", -1), payword.ErrBadIndex},
		{"segment past uint32", field("seg", 1<<32), payword.ErrBadIndex},
		{"token index 0", field("i", 0), payword.ErrBadIndex},
		{"token index > m", field("i", 17), payword.ErrBadIndex},
		{"amount 0", field("p", 0), payword.ErrBadAmount},
		{"negative amount", field("p", -1), payword.ErrBadAmount},
		{"amount > index", field("p", 4), payword.ErrBadAmount},
		{"short token", field("tok", b64.EncodeToString(make([]byte, 31))), payword.ErrMalformed},
		{"long anchor", field("anchor", b64.EncodeToString(make([]byte, 33))), payword.ErrMalformed},
		{"path not a multiple of 32", field("path", b64.EncodeToString(make([]byte, 33))), payword.ErrMalformed},
		{"path too long", field("path", b64.EncodeToString(make([]byte, 32*(payword.MaxPathLen+1)))), payword.ErrMalformed},
		{"binding garbage", field("bind", b64.EncodeToString([]byte("garbage"))), payword.ErrMalformed},
		{"vendor with a space", field("vendor", "daily planet"), payword.ErrMalformed},
		{"empty product", field("product", ""), payword.ErrMalformed},
		{"product with a control character", field("product", "/a\x00b"), payword.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := payword.ParseAuthorization(tt.h); !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("ParseAuthorization = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseReport(t *testing.T) {
	f := issue(t, 4, 16, payword.GenericScope)
	b, _ := payword.Bind(f.Certificate, f.User, 1, "daily-planet", f.Now)
	claim := payword.Claim{Serial: f.Serial, Segment: 1, Binding: b.Raw(), Index: 3, Token: payword.TokenAt(f.K, 1, 3, 16),
		Amount: 3, Product: "/articles/a", Auth: "a1", Time: f.Now.Unix()}
	good := payword.Report{Vendor: "daily-planet", Batch: "b1", Claims: []payword.Claim{claim}}
	raw, _ := json.Marshal(good)
	r, err := payword.ParseReport(raw)
	if err != nil || !bytes.Equal(r.Claims[0].Binding, b.Raw()) || r.Claims[0].Token != claim.Token || r.Claims[0].Serial != claim.Serial {
		t.Fatalf("round trip: %+v %v", r, err)
	}
	mut := func(f func(*payword.Report)) []byte {
		r := good
		r.Claims = append([]payword.Claim(nil), good.Claims...)
		f(&r)
		raw, _ := json.Marshal(r)
		return raw
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"not JSON", []byte("{"), payword.ErrMalformed},
		{"oversized", make([]byte, payword.MaxReportSize+1), payword.ErrTooLarge},
		{"nested too deep", []byte(`{"vendor":"v","batch":"b","claims":[{"x":[[1]]}]}`), payword.ErrMalformed},
		{"no vendor", mut(func(r *payword.Report) { r.Vendor = "" }), payword.ErrMalformed},
		{"no batch id", mut(func(r *payword.Report) { r.Batch = "" }), payword.ErrMalformed},
		{"no claims", mut(func(r *payword.Report) { r.Claims = nil }), payword.ErrMalformed},
		{"too many claims", mut(func(r *payword.Report) { r.Claims = make([]payword.Claim, payword.MaxReportClaims+1) }), payword.ErrTooLarge},
		{"index 0", mut(func(r *payword.Report) { r.Claims[0].Index = 0 }), payword.ErrBadIndex},
		{"amount above index", mut(func(r *payword.Report) { r.Claims[0].Amount = 4 }), payword.ErrBadAmount},
		{"no auth number", mut(func(r *payword.Report) { r.Claims[0].Auth = "" }), payword.ErrMalformed},
		{"bad serial", []byte(strings.Replace(string(raw), claim.Serial.String(), "zz", 1)), payword.ErrMalformed},
		{"bad token", []byte(strings.Replace(string(raw), b64.EncodeToString(claim.Token[:]), "AAAA", 1)), payword.ErrMalformed},
		{"negative amount", []byte(strings.Replace(string(raw), `"p":3`, `"p":-3`, 1)), payword.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := payword.ParseReport(tt.raw); !errors.Is(err, tt.want) || r != nil {
				t.Fatalf("ParseReport = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestOpenCRL(t *testing.T) {
	f := issue(t, 1, 1, payword.GenericScope)
	crl := payword.CRL{Type: payword.CRLType, Since: 3, Next: 5, Last: 7, Time: f.Now.Unix(), Entries: []payword.CRLEntry{
		{Seq: 4, Serial: f.Serial, Time: f.Now.Unix(), Exp: f.ExpiresAt, Reason: "double-spend"}, {Seq: 5, Time: f.Now.Unix()}}}
	body, _ := json.Marshal(crl)
	raw, _ := json.Marshal(payword.Seal(f.Bank.Key, body))
	got, err := payword.OpenCRL(raw, f.Bank.Keys)
	if err != nil || len(got.Entries) != 2 || got.Entries[0].Serial != f.Serial || got.Entries[0].Exp != f.ExpiresAt || got.Complete() {
		t.Fatalf("OpenCRL = %+v, %v", got, err)
	}
	seal := func(c payword.CRL, k payword.SigningKey) []byte {
		body, _ := json.Marshal(c)
		raw, _ := json.Marshal(payword.Seal(k, body))
		return raw
	}
	mut := func(m func(c *payword.CRL)) []byte {
		c := crl
		c.Entries = append([]payword.CRLEntry(nil), crl.Entries...)
		m(&c)
		return seal(c, f.Bank.Key)
	}
	tampered := bytes.Replace(raw, []byte(b64.EncodeToString(body[:12])), []byte(b64.EncodeToString([]byte(`{"type":"CRL`))), 1)
	keyDoc, _ := json.Marshal(map[string]any{"type": "keys", "time": 1, "keys": []map[string]any{{"kid": "a", "public": make(payword.Bytes, 32)}}})
	keyDocRaw, _ := json.Marshal(payword.Seal(f.Bank.Key, keyDoc))
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"not JSON", []byte("x"), payword.ErrMalformed},
		{"oversized", make([]byte, payword.MaxSignedSize+1), payword.ErrTooLarge},
		{"deep", []byte(strings.Repeat("[", 100)), payword.ErrMalformed},
		{"unknown key", seal(crl, payword.SigningKey{ID: "other", Key: f.Bank.Key.Key}), payword.ErrUnknownKey},
		{"forged", seal(crl, payword.SigningKey{ID: f.Bank.Key.ID, Key: f.User}), payword.ErrBadSignature},
		{"tampered body", tampered, payword.ErrBadSignature},
		{"a key announcement", keyDocRaw, payword.ErrMalformed},
		{"no type", mut(func(c *payword.CRL) { c.Type = "" }), payword.ErrMalformed},
		{"entries out of order", mut(func(c *payword.CRL) { c.Entries[0], c.Entries[1] = c.Entries[1], c.Entries[0] }), payword.ErrMalformed},
		{"entry at since", mut(func(c *payword.CRL) { c.Entries[0].Seq = 3 }), payword.ErrMalformed},
		{"entry beyond next", mut(func(c *payword.CRL) { c.Next = 4 }), payword.ErrMalformed},
		{"next beyond last", mut(func(c *payword.CRL) { c.Next, c.Last = 7, 6 }), payword.ErrMalformed},
		{"since beyond next", mut(func(c *payword.CRL) { c.Since, c.Entries = 6, nil }), payword.ErrMalformed},
		{"entries beyond the head", mut(func(c *payword.CRL) { c.Since, c.Next, c.Last, c.Entries = 8, 8, 7, []payword.CRLEntry{{Seq: 8}} }), payword.ErrMalformed},
		{"no time", mut(func(c *payword.CRL) { c.Time = 0 }), payword.ErrMalformed},
		{"too many entries", mut(func(c *payword.CRL) {
			c.Since, c.Next, c.Last, c.Entries = 0, payword.MaxCRLEntries+1, payword.MaxCRLEntries+1, nil
			for i := range payword.MaxCRLEntries + 1 {
				c.Entries = append(c.Entries, payword.CRLEntry{Seq: uint64(i + 1)})
			}
		}), payword.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := payword.OpenCRL(tt.raw, f.Bank.Keys); !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("OpenCRL = %v; want %v", err, tt.want)
			}
		})
	}
}

// A CRL client takes only the answer to its own question, never a page
// older than one it has seen or than its maximum age.
func TestCRLCursorAccept(t *testing.T) {
	now := vectorNow
	cur := payword.CRLCursor{Since: 10, Last: 12, Time: now.Unix() - 5}
	page := payword.CRL{Type: payword.CRLType, Since: 10, Next: 14, Last: 20, Time: now.Unix() - 2}
	next, err := cur.Accept(&page, now, time.Minute)
	if err != nil || next != (payword.CRLCursor{Since: 14, Last: 20, Time: page.Time}) {
		t.Fatalf("Accept = %+v, %v", next, err)
	}
	if got := page.FreshAt(now); !got.Equal(time.Unix(page.Time+1, 0)) {
		t.Fatalf("FreshAt = %v", got)
	}
	if got := (&payword.CRL{Time: now.Unix()}).FreshAt(now.Add(300 * time.Millisecond)); !got.Equal(now.Add(300 * time.Millisecond)) {
		t.Fatalf("FreshAt of a page of this second = %v", got)
	}
	tests := []struct {
		name string
		mut  func(c *payword.CRL)
	}{
		{"another since", func(c *payword.CRL) { c.Since = 0 }},
		{"a later since", func(c *payword.CRL) { c.Since = 11 }},
		{"head went back", func(c *payword.CRL) { c.Last, c.Next = 11, 11 }},
		{"older than seen", func(c *payword.CRL) { c.Time = cur.Time - 1 }},
		{"older than max age", func(c *payword.CRL) { c.Time = now.Unix() - 62 }},
		{"from the future", func(c *payword.CRL) { c.Time = now.Add(payword.MaxClockSkew).Unix() + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := page
			tt.mut(&c)
			if got, err := cur.Accept(&c, now, time.Minute); !errors.Is(err, payword.ErrStale) || got != cur {
				t.Fatalf("Accept = %+v, %v; want ErrStale and the cursor unchanged", got, err)
			}
		})
	}
	// The answer to a since beyond the head decodes, and is refused.
	ahead := payword.CRL{Type: payword.CRLType, Since: 10, Next: 10, Last: 3, Time: now.Unix()}
	if _, err := cur.Accept(&ahead, now, time.Minute); !errors.Is(err, payword.ErrStale) {
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
	e := payword.CRLEntry{Exp: vectorNow.Unix()}
	if e.Expired(vectorNow.Add(payword.CRLKeep-time.Second)) || !e.Expired(vectorNow.Add(payword.CRLKeep)) || (payword.CRLEntry{}).Expired(vectorNow.Add(1e6*time.Hour)) {
		t.Fatal("an entry expires CRLKeep after its certificate, and never without an expiry")
	}
}

// Keys are learnt only from announcements signed by a trusted key, or, on
// bootstrap, signed by a key they announce.
func TestOpenKeys(t *testing.T) {
	f := issue(t, 1, 1, payword.GenericScope)
	next := payword.SigningKey{ID: "agent-2027", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))}
	evil := payword.SigningKey{ID: "agent-evil", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))}
	docs := payword.AnnounceKeys([]payword.SigningKey{next, f.Bank.Key}, f.Now)
	got, err := payword.OpenKeys(docs, f.Bank.Keys)
	if err != nil || len(got) != 2 || !got[next.ID].Equal(next.Public()) || !got[f.Bank.Key.ID].Equal(f.Bank.Key.Public()) {
		t.Fatalf("rotation: %v %v", got, err)
	}
	if got, err := payword.OpenKeys(docs, payword.KeySet{}); err != nil || len(got) != 2 {
		t.Fatalf("bootstrap: %v %v", got, err)
	}
	injected := append(payword.AnnounceKeys([]payword.SigningKey{evil}, f.Now), docs...)
	if got, err := payword.OpenKeys(injected, f.Bank.Keys); err != nil || len(got) != 2 || got[evil.ID] != nil {
		t.Fatalf("self-signed injection: %v %v", got, err)
	}
	forged := payword.Seal(evil, docs[0].Body) // the real list, re-signed
	forged.KeyID = f.Bank.Key.ID
	if got, err := payword.OpenKeys([]payword.Signed{forged}, f.Bank.Keys); err != nil || len(got) != 1 {
		t.Fatalf("forged announcement: %v %v", got, err)
	}
	body, _ := json.Marshal(map[string]any{"type": "keys", "time": 1, "keys": []map[string]any{{"kid": f.Bank.Key.ID, "public": payword.Bytes(evil.Public())}}})
	if _, err := payword.OpenKeys([]payword.Signed{payword.Seal(f.Bank.Key, body)}, f.Bank.Keys); !errors.Is(err, payword.ErrBadSignature) {
		t.Fatalf("a trusted key id announced with another key: %v", err)
	}
	crlBody, _ := json.Marshal(payword.CRL{Type: payword.CRLType, Time: 1})
	bad := []struct {
		name string
		docs []payword.Signed
		want error
	}{
		{"too many", make([]payword.Signed, payword.MaxAnnouncedKeys+1), payword.ErrTooLarge},
		{"oversized", []payword.Signed{{KeyID: f.Bank.Key.ID, Body: make(payword.Bytes, payword.MaxKeyDocSize+1)}}, payword.ErrTooLarge},
		{"a CRL page", []payword.Signed{payword.Seal(f.Bank.Key, crlBody)}, payword.ErrMalformed},
		{"bad key", []payword.Signed{payword.Seal(f.Bank.Key, []byte(`{"type":"keys","time":1,"keys":[{"kid":"x","public":"AAAA"}]}`))}, payword.ErrMalformed},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := payword.OpenKeys(tt.docs, f.Bank.Keys); !errors.Is(err, tt.want) {
				t.Fatalf("OpenKeys = %v; want %v", err, tt.want)
			}
		})
	}
}
