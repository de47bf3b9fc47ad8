package payword_test

import (
	"encoding/json"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

// allocBound is what decoding one hostile input may allocate at most. Inputs
// are refused past a fixed size before decoding, so this bound holds for
// every input; the test checks it on the worst shapes we know.
const (
	paymentAllocBound   = 32 << 10
	challengeAllocBound = 16 << 10
)

func bytesPerCall(f func()) uint64 {
	const runs = 20
	f() // warm up lazily initialised state
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

func TestParseAllocationIsBounded(t *testing.T) {
	fx := issue(t, 8, 16, payword.GenericScope)
	good := paymentJSONOf(t, fx.Pay(t, 2, 3, 3, "daily-planet", "/articles/a"))
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, payword.MaxPaymentHeader)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	// fit pads a JSON payment with an unknown field up to the size limit.
	fit := func(filler func(n int) any) string {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		raw, _ := json.Marshal(m)
		room := (payword.MaxPaymentHeader-len("PayWord "))*3/4 - len(raw) - 16
		m["zz"] = filler(room)
		return header(t, m)
	}
	payments := map[string]string{
		"random base64":        "PayWord " + b64.EncodeToString(random)[:payword.MaxPaymentHeader-8],
		"long unknown string":  fit(func(n int) any { return strings.Repeat("a", n) }),
		"many small numbers":   fit(func(n int) any { return make([]int, n/2) }),
		"deeply nested arrays": fit(func(n int) any { return json.RawMessage(strings.Repeat("[", n/2) + strings.Repeat("]", n/2)) }),
		"many empty objects":   fit(func(n int) any { return json.RawMessage("[" + strings.Repeat("{},", n/3-1) + "{}]") }),
		"many escapes":         fit(func(n int) any { return strings.Repeat("\u00e9", n/7) }),
	}
	for name, h := range payments {
		if len(h) > payword.MaxPaymentHeader {
			t.Fatalf("%s: test input of %d bytes is over the limit", name, len(h))
		}
		got := bytesPerCall(func() { _, _ = payword.ParseAuthorization(h) })
		t.Logf("%-22s %6d bytes/op", name, got)
		if got > paymentAllocBound {
			t.Errorf("%s: decoding allocated %d bytes, bound %d", name, got, paymentAllocBound)
		}
	}
	for name, h := range map[string]string{
		"many parameters": "PayWord " + strings.Repeat(`realm="`+strings.Repeat("x", 200)+`", `, 15),
		"long escapes":    `PayWord realm="` + strings.Repeat(`\"`, payword.MaxChallengeHeader/2-16) + `"`,
	} {
		got := bytesPerCall(func() { _, _ = payword.ParseChallenge(h[:min(len(h), payword.MaxChallengeHeader)]) })
		t.Logf("%-22s %6d bytes/op", name, got)
		if got > challengeAllocBound {
			t.Errorf("%s: challenge parsing allocated %d bytes, bound %d", name, got, challengeAllocBound)
		}
	}
}

// A gateway decodes a payment header on every payment: two allocations
// (the payment with all it points to, and its strings), whatever its shape.
// The common verification after it allocates nothing.
func TestParseAuthorizationAllocs(t *testing.T) {
	generic := issue(t, 782, 128, payword.GenericScope)
	headers := map[string]string{
		"generic, with a binding": generic.Pay(t, 400, 3, 1, "daily-planet", "/articles/a").Header(),
		"specific, no binding":    issue(t, 1, 4, "daily-planet").Pay(t, 0, 4, 1, "daily-planet", "/x").Header(),
		"escapes in the product":  generic.Pay(t, 7, 2, 2, "daily-planet", `/tags/<b>&"q"\`).Header(),
	}
	for name, h := range headers {
		if got := testing.AllocsPerRun(100, func() {
			if _, err := payword.ParseAuthorization(h); err != nil {
				t.Fatal(err)
			}
		}); got > 2 {
			t.Errorf("%s: ParseAuthorization makes %v allocations, want at most 2", name, got)
		}
	}
	v := payword.NewVerifier(generic.Bank.Keys)
	req := request("/articles/a", 1)
	first, next := generic.Pay(t, 400, 1, 1, "daily-planet", "/articles/a"), generic.Pay(t, 400, 2, 1, "daily-planet", "/articles/a")
	last, err := v.Verify(first, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(next, req, &last); err != nil {
			t.Fatal(err)
		}
	}); got != 0 {
		t.Errorf("Verify of a cached certificate makes %v allocations, want 0", got)
	}
}
