package payword_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// The tests of package payword_test build their certificates with paytest,
// whose defaults are those of docs/protocol.md's test vectors.

// vectorNow is the time of the test vectors, 2026-12-01T00:00:00Z.
var vectorNow = time.Unix(1796083200, 0)

const vendor = "daily-planet"

// issue is paytest's certificate of S segments of m tokens, issued at vectorNow.
func issue(tb testing.TB, segments, m int, scope string) *paytest.Cert {
	tb.Helper()
	return paytest.NewBank(tb).Issue(tb, paytest.Options{Segments: segments, SegmentLen: m, Scope: scope, Now: vectorNow})
}

func request(product string, price uint32) payword.Request {
	return payword.Request{Vendor: vendor, Product: product, Price: price, Now: vectorNow}
}

// roundTrip sends p through its wire encoding, as a gateway receives it.
func roundTrip(tb testing.TB, p *payword.Payment) *payword.Payment {
	tb.Helper()
	q, err := payword.ParseAuthorization(p.Header())
	if err != nil {
		tb.Fatalf("round trip: %v", err)
	}
	return q
}

// b64 is the wire's base64url (docs/protocol.md §1).
var b64 = base64.RawURLEncoding

// paymentJSON is the JSON form of p, the body of its header.
func paymentJSON(tb testing.TB, p *payword.Payment) []byte {
	tb.Helper()
	raw, err := b64.DecodeString(strings.TrimPrefix(p.Header(), payword.Scheme+" "))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// paymentJSONOf returns the JSON object of a good payment as a map, for
// tests that change one field.
func paymentJSONOf(tb testing.TB, p *payword.Payment) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(paymentJSON(tb, p), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func header(tb testing.TB, m map[string]any) string {
	tb.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return payword.Scheme + " " + b64.EncodeToString(raw)
}
