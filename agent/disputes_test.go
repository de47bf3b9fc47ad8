package agent

import (
	"errors"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// TestDisputeTable walks every row of the verdict table of POST /v1/reports
// (docs/agent-api.md): each verdict and who is paid or revoked.
func TestDisputeTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va, vb := e.vendor("planet"), e.vendor("globe")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 256) // 2 segments of 128
	uid := e.uid("alice")
	if got := e.balance("u:" + uid); got != 1000-256 {
		t.Fatalf("balance after purchase %d", got)
	}

	// Honest claims: paid the new indices only.
	res, code := e.report(va, "planet", "b1", w.claim(0, 2, 2, "planet"), w.claim(0, 5, 3, "planet"))
	e.must(code, 200, "report")
	if got := e.verdicts(res); got != "paid:2 paid:3" {
		t.Fatalf("honest: %s", got)
	}
	// The same claim twice: idempotent.
	e.expectReport("duplicate:0", va, "planet", "b2", w.claim(0, 5, 3, "planet"))
	// No binding, a binding to another vendor, a forged binding: vendor fraud.
	forged := w.claim(1, 4, 1, "planet")
	forged.Binding[len(forged.Binding)-1] ^= 1
	e.expectReport("vendor_fraud:0 vendor_fraud:0 vendor_fraud:0", va, "planet", "b3", w.claim(1, 1, 1, ""), w.claim(1, 2, 1, "globe"), forged)
	// A token that does not derive from K, a segment or index out of range: invalid.
	bad := w.claim(1, 3, 1, "planet")
	bad.Token[0] ^= 1
	out := w.claim(0, 1, 1, "planet")
	out.Segment = 2
	e.expectReport("invalid:0 invalid:0", va, "planet", "b4", bad, out)
	if fraud, _ := e.rdb.HGet(t.Context(), "hw:a:v:planet", "fraud").Int(); fraud != 5 {
		t.Fatalf("vendor flagged %d times, want 5", fraud)
	}
	if e.revoked(w.cert.Serial) {
		t.Fatal("revoked before any double-spend")
	}
	// Segment 0 bound to a second vendor: both paid, user charged, revoked.
	e.expectReport("double_spend:4", vb, "globe", "b5", w.claim(0, 4, 4, "globe"))
	if got := e.balance("u:" + uid); got != 1000-256-4 {
		t.Fatalf("user not charged: balance %d", got)
	}
	if !e.revoked(w.cert.Serial) {
		t.Fatal("double-spent certificate not revoked")
	}
	// The owner is still paid after the revocation.
	e.expectReport("paid:2", va, "planet", "b6", w.claim(0, 7, 2, "planet"))
	if a, b := e.balance("v:planet"), e.balance("v:globe"); a != 7 || b != 4 {
		t.Fatalf("vendor balances %d %d, want 7 4", a, b)
	}
	// Unknown certificate.
	unknown := w.claim(0, 8, 1, "planet")
	unknown.Serial[0] ^= 1
	e.expectReport("unknown_certificate:0", va, "planet", "b7", unknown)
	e.checkLedger()
}

func TestRedeliveredBatchChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 128)
	claims := []payword.Claim{w.claim(0, 3, 3, "planet"), w.claim(0, 5, 2, "planet")}
	first, _ := e.report(va, "planet", "b1", claims...)
	snap := e.snapshot()
	again, code := e.report(va, "planet", "b1", claims...)
	e.must(code, 200, "redelivery")
	if e.verdicts(first) != e.verdicts(again) || e.verdicts(first) != "paid:3 paid:2" {
		t.Fatalf("redelivery answered %s, first %s", e.verdicts(again), e.verdicts(first))
	}
	if e.snapshot() != snap {
		t.Fatal("redelivered batch changed the store")
	}
	// The same claims under a new batch id are duplicates.
	e.expectReport("duplicate:0 duplicate:0", va, "planet", "b2", claims...)
	if got := e.balance("v:planet"); got != 5 {
		t.Fatalf("vendor balance %d", got)
	}
	e.checkLedger()
}

func TestConcurrentIngestionPaysOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 10000), 1280)
	var claims []payword.Claim
	for g := uint32(0); g < 10; g++ {
		for i := uint32(1); i <= 20; i++ {
			claims = append(claims, w.claim(g, i, 1, "planet"))
		}
	}
	done := make(chan agentapi.ReportResult, 2)
	for _, batch := range []string{"x1", "x2"} {
		go func() {
			res, _ := e.report(va, "planet", batch, claims...)
			done <- res
		}()
	}
	paid := uint64(0)
	for range 2 {
		for _, r := range (<-done).Results {
			paid += r.Amount
		}
	}
	if paid != 200 || e.balance("v:planet") != 200 {
		t.Fatalf("paid %d in results, balance %d; want 200", paid, e.balance("v:planet"))
	}
	e.checkLedger()
}

func TestSpecificCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	v, err := e.as("Bearer "+adminToken).RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: "planet", Kind: agentapi.KindSpecific})
	e.mustOK(err, "register")
	va, vb := "Bearer "+v.Token, e.vendor("globe")
	alice := e.user("alice", 1000)
	w0, _ := e.tryBuy(alice, 1) // generic, for its key
	b, err := e.as(alice).Buy(ctx, 100, w0.cert.UserKey[:], "planet")
	e.mustOK(err, "buy specific")
	w := walletFrom(t, b, w0.key)
	_, err = e.as(alice).Buy(ctx, 100, w0.cert.UserKey[:], "globe")
	if bad, _ := errors.AsType[*agentapi.Error](err); bad == nil || bad.Code != agentapi.CodeGenericVendor {
		t.Fatalf("specific certificate of a generic vendor: %v", err)
	}
	e.expectReport("paid:3", va, "planet", "s1", w.claim(0, 3, 3, ""))
	e.expectReport("vendor_fraud:0", vb, "globe", "s1", w.claim(0, 4, 1, "globe"))
	e.checkLedger()
}

// TestCertificateGoneFromStore: a certificate the agent still caches but
// the store lost is unknown, not a script error.
func TestCertificateGoneFromStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 128)
	e.report(va, "planet", "b1", w.claim(0, 1, 1, "planet")) // caches the certificate
	e.rdb.Del(t.Context(), e.a.certKey(w.cert.Serial))
	res, code := e.report(va, "planet", "b2", w.claim(0, 2, 1, "planet"))
	if code != 200 || e.verdicts(res) != "unknown_certificate:0" {
		t.Fatalf("%d %s", code, e.verdicts(res))
	}
}
