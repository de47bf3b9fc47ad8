package agent

import (
	"testing"

	"github.com/hashwall/hashwall/payword"
)

func voidOf(c payword.Claim) payword.Claim {
	c.Void = true
	c.Auth += payword.VoidSuffix
	return c
}

// A void takes back from the vendor what its claim was paid (at most its
// p tokens) and credits the user, once, whatever the order claims and
// voids arrive in; the tokens stay spent, so the certificate's refund at
// expiry does not pay them again. The ledger balances throughout.
func TestVoids(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 512)
	uid := "u:" + e.uid("alice")
	start := e.balance(uid)

	a, b, c := w.claim(0, 3, 3, "planet"), w.claim(0, 5, 2, "planet"), w.claim(0, 9, 4, "planet")
	e.expectReport("paid:3", va, "planet", "b1", a)
	// The void of a claim paid before, and a repeat of it.
	e.expectReport("voided:3", va, "planet", "b2", voidOf(a))
	e.expectReport("duplicate:0", va, "planet", "b3", voidOf(a))
	// A claim and its void in one report.
	e.expectReport("paid:2 voided:2", va, "planet", "b4", b, voidOf(b))
	// A void before its claim: it ingests the claim, which then comes as a duplicate.
	e.expectReport("voided:4", va, "planet", "b5", voidOf(c))
	e.expectReport("duplicate:0", va, "planet", "b6", c)
	if got := e.balance("v:planet"); got != 0 {
		t.Fatalf("vendor balance %d after voiding every claim, want 0", got)
	}
	if got := e.balance(uid); got != start+9 {
		t.Fatalf("user balance %d, want %d (9 tokens back)", got, start+9)
	}
	// A void takes back no more than its claim's p: a claim paid for
	// tokens a lost earlier claim skipped keeps those.
	d := w.claim(0, 20, 2, "planet") // paid 11 (10..20), of which p = 2 voided
	e.expectReport("paid:11 voided:2", va, "planet", "b7", d, voidOf(d))
	if got := e.balance("v:planet"); got != 9 {
		t.Fatalf("vendor balance %d, want 9", got)
	}
	// A void of a claim that was refused takes back nothing.
	forged := w.claim(1, 4, 4, "planet")
	forged.Token[0] ^= 1
	e.expectReport("invalid:0", va, "planet", "b8", forged)
	e.expectReport("voided:0", va, "planet", "b9", voidOf(forged))
	// Another vendor cannot void planet's claims: a void is of the
	// reporting vendor's own claim, which globe does not have.
	vb := e.vendor("globe")
	other := voidOf(w.claim(0, 24, 2, "planet"))
	if res, _ := e.report(vb, "globe", "b10", other); len(res.Results) != 1 || res.Results[0].Amount != 0 {
		t.Fatalf("globe voided planet's claim: %+v", res)
	}
	if got := e.balance("v:planet"); got != 9 {
		t.Fatalf("vendor balance %d after another vendor's void, want 9", got)
	}
	e.checkLedger()
}
