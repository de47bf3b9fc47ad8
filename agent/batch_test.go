package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// A batch id names one set of claims: the agent refuses (409
// batch_mismatch) a known id that comes with other claims, and changes
// nothing, rather than answer them with the stored results of the first
// (issue 9, item 1: the gateway then deleted claims never ingested).
func TestBatchIDWithOtherClaimsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 512)
	a, b := w.claim(0, 3, 3, "planet"), w.claim(1, 2, 2, "planet")
	e.expectReport("paid:3", va, "planet", "b1", a)
	snap := e.snapshot()

	edited := a
	edited.Auth = "another-auth"
	void := a
	void.Void = true
	for what, claims := range map[string][]payword.Claim{
		"the claim's void":      {void},
		"other claims":          {b},
		"more claims":           {a, b},
		"one field of a claim":  {edited},
		"same claims reordered": {b, a},
	} {
		var res agentapi.Error
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
	t.Parallel()
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

// cancelOnEOF cancels a request's context once its body is read: the
// vendor hung up (its attempt timed out) while the agent was at work.
type cancelOnEOF struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelOnEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

// A report whose sender stopped waiting is ingested all the same, so that
// its retry finds the answer stored rather than redoing the work (a vendor
// that always gave up first would never be paid).
func TestReportIngestedAfterSenderLeft(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 256)
	body, _ := json.Marshal(payword.Report{Vendor: "planet", Batch: "gone", Claims: []payword.Claim{w.claim(0, 3, 3, "planet")}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "POST", "/v1/reports", &cancelOnEOF{r: bytes.NewReader(body), cancel: cancel})
	req.Header.Set("Authorization", va)
	e.a.ServeHTTP(httptest.NewRecorder(), req)
	if got := e.balance("v:planet"); got != 3 {
		t.Fatalf("vendor balance %d after its sender left, want 3: the report was dropped", got)
	}
	e.expectReport("paid:3", va, "planet", "gone", w.claim(0, 3, 3, "planet"))
	e.checkLedger()
}
