package agent

import (
	"context"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

// A batch id names one set of claims: the agent refuses (409
// batch_mismatch) a known id that comes with other claims, and changes
// nothing, rather than answer them with the stored results of the first
// (issue 9, item 1: the gateway then deleted claims never ingested).
func TestBatchIDWithOtherClaimsRefused(t *testing.T) {
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 512)
	a, b := w.claim(0, 3, 3, "planet"), w.claim(1, 2, 2, "planet")
	e.expectReport("paid:3", va, "planet", "b1", a)
	snap := e.snapshot()

	edited := a
	edited.Auth = "another-auth"
	for what, claims := range map[string][]payword.Claim{
		"other claims":          {b},
		"more claims":           {a, b},
		"one field of a claim":  {edited},
		"same claims reordered": {b, a},
	} {
		var res apiError
		if code := e.call("POST", "/v1/reports", va, payword.Report{Vendor: "planet", Batch: "b1", Claims: claims}, &res); code != 409 || res.Code != "batch_mismatch" {
			t.Fatalf("%s under a known batch id: %d %+v, want 409 batch_mismatch", what, code, res)
		}
		if e.snapshot() != snap {
			t.Fatalf("%s under a known batch id changed the store", what)
		}
	}
	// The very same claims are a redelivery: the stored answer.
	e.expectReport("paid:3", va, "planet", "b1", a)
	// Another vendor's batch of the same id is its own.
	vb := e.vendor("globe")
	e.expectReport("paid:2", vb, "globe", "b1", w.claim(2, 2, 2, "globe"))
	// Under a fresh id the refused claims are ingested, once.
	e.expectReport("duplicate:0 paid:2", va, "planet", "b2", a, b)
	if got := e.balance("v:planet"); got != 5 {
		t.Fatalf("vendor balance %d, want 5", got)
	}
	e.checkLedger()
}

// A batch answer stored before batches carried their claims' digest
// cannot be checked against the claims: they are ingested one by one
// (idempotently) instead of answered with it.
func TestLegacyBatchRecordNotTrusted(t *testing.T) {
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 256)
	a := w.claim(0, 3, 3, "planet")
	legacy := `{"batch":"old","results":[{"auth":"` + a.Auth + `","verdict":"paid","amount":3}]}`
	if err := e.rdb.Set(context.Background(), e.a.prefix+"batch:planet:old", legacy, 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.expectReport("paid:3", va, "planet", "old", a)
	if got := e.balance("v:planet"); got != 3 {
		t.Fatalf("vendor balance %d, want 3: the legacy answer was trusted", got)
	}
	e.expectReport("paid:3", va, "planet", "old", a) // now stored with its digest
	e.checkLedger()
}
