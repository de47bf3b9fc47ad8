package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// recoverAs recovers the certificates of the user of auth to a fresh
// wallet key.
func (e *env) recoverAs(auth string) (code int, out agentapi.Recovery, priv ed25519.PrivateKey) {
	e.t.Helper()
	_, priv, _ = ed25519.GenerateKey(nil)
	res, err := e.as(auth).Recover(context.Background(), priv.Public().(ed25519.PublicKey))
	if err != nil {
		return status(err, 200), out, priv
	}
	return 200, *res, priv
}

// me is the account of the user of auth.
func (e *env) me(auth string) *agentapi.Account {
	e.t.Helper()
	me, err := e.as(auth).Me(context.Background())
	e.mustOK(err, "me")
	return me
}

// spendAll builds the claims of every token of w at vendor, as a batch-mode
// gateway holds them until its next batch.
func spendAll(w *wallet, vendor string) []payword.Claim {
	var cs []payword.Claim
	for g := range w.cert.Segments {
		cs = append(cs, w.claim(g, w.cert.SegmentLen, w.cert.SegmentLen, vendor))
	}
	return cs
}

// TestRecoveryCannotLaunderSpentTokens is issue 9 item 2: a reader spends
// a certificate at a batch-mode vendor, recovers before the claims arrive,
// spends what the recovery gave, and so on. Whatever the cycle, the content
// consumed (what vendors were paid) never exceeds what the reader paid in
// plus the configured advance, and the ledger holds.
func TestRecoveryCannotLaunderSpentTokens(t *testing.T) {
	t.Parallel()
	for _, advance := range []int64{0, 128} {
		t.Run(map[int64]string{0: "no advance", 128: "advance 128"}[advance], func(t *testing.T) {
			e := newEnv(t)
			e.cfg.RecoverAdvance = advance
			e.restartAgent()
			va := e.vendor("planet")
			const paid = 256
			alice := e.user("alice", paid)
			w := e.buy(alice, paid) // 2 segments of 128, balance 0
			batch := 0
			for cycle := range 4 {
				held := spendAll(w, "planet") // consumed, claims not yet reported
				code, out, priv := e.recoverAs(alice)
				e.must(code, 200, "recover")
				w = nil
				if out.Bundle != nil {
					w = walletFrom(t, out.Bundle, priv)
				} else if nw, code := e.tryBuy(alice, 128); code == 201 {
					w = nw
				}
				// The batch arrives inside the report window.
				e.clock.Add(time.Minute)
				batch++
				res, code := e.report(va, "planet", "b"+string(rune('a'+batch)), held...)
				e.must(code, 200, "report")
				for _, r := range res.Results {
					if r.Verdict != "paid" {
						t.Fatalf("cycle %d: %s", cycle, e.verdicts(res))
					}
				}
				e.clock.Add(time.Hour) // past the window and the recovery limit
				e.me(alice)
				if w == nil {
					break
				}
			}
			consumed := e.balance("v:planet")
			if consumed > paid+advance {
				t.Fatalf("consumed %d for %d paid (advance %d)", consumed, paid, advance)
			}
			t.Logf("consumed %d for %d paid, balance %d", consumed, paid, e.balance("u:"+e.uid("alice")))
			e.checkLedger()
		})
	}
}

// TestRecoveryCreditWaitsForTheWindow: the unclaimed value of a recovered
// certificate is pending until the report window ends; claims that arrive
// inside it reduce it; it is credited once, by a read, a purchase or the
// agent's loop, whichever comes first.
func TestRecoveryCreditWaitsForTheWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	alice := e.user("alice", 512)
	uid := e.uid("alice")
	old := e.buy(alice, 384) // 3 segments; balance 128
	e.expectReport("paid:10", va, "planet", "r1", old.claim(0, 10, 10, "planet"))

	code, out, _ := e.recoverAs(alice)
	e.must(code, 200, "recover")
	if out.RecoveredValue != 0 || out.PendingCredit != 374 || out.Bundle != nil || out.CreditAt != e.clock.Now().Add(10*time.Minute).Unix() {
		t.Fatalf("recover: %+v; want 374 pending for 10 minutes, nothing at once", out)
	}
	if !e.revoked(old.cert.Serial) {
		t.Fatal("not revoked at once")
	}
	me := e.me(alice)
	if me.Balance != 128 || me.PendingCredit != 374 || me.PendingUntil != out.CreditAt {
		t.Fatalf("me before the window: %+v", me)
	}
	// A claim inside the window is paid from the certificate's value.
	e.clock.Add(5 * time.Minute)
	e.expectReport("paid:20", va, "planet", "r2", old.claim(1, 20, 20, "planet"))
	if got := e.balance("u:" + uid); got != 128 {
		t.Fatalf("claim inside the window charged the balance: %d", got)
	}
	if me = e.me(alice); me.PendingCredit != 354 {
		t.Fatalf("pending after a claim in the window: %+v", me)
	}
	// The window ends: the agent's loop credits 354, once.
	e.clock.Add(5 * time.Minute)
	n, v, err := e.a.CreditRecovered(context.Background())
	if err != nil || n != 1 || v != 354 {
		t.Fatalf("loop: %d users, %d credited, %v", n, v, err)
	}
	if n, v, _ := e.a.CreditRecovered(context.Background()); n != 0 || v != 0 {
		t.Fatalf("credited twice: %d %d", n, v)
	}
	if me = e.me(alice); me.Balance != 128+354 || me.PendingCredit != 0 {
		t.Fatalf("me after the window: %+v", me)
	}
	// A claim after the window is still paid and charged to the user.
	e.expectReport("paid:30", va, "planet", "r3", old.claim(2, 30, 30, "planet"))
	if got := e.balance("u:" + uid); got != 128+354-30 {
		t.Fatalf("late claim: balance %d", got)
	}
	e.checkLedger()
	// Settlement adds nothing: the value was already credited.
	e.clock.Add(time.Duration(e.cfg.CertTTL + e.cfg.SettlementWindow))
	if _, total, err := e.a.SettleExpired(context.Background()); err != nil || total != 0 {
		t.Fatalf("settle: %d %v", total, err)
	}
	e.checkLedger()
}

// TestRecoveryRateLimit: an account recovers at most once per recover_every,
// so a loop of recoveries cannot grow the revocation list (issue 9 item 11).
func TestRecoveryRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", 100000)
	e.buy(alice, 128)
	e.buy(alice, 128)
	code, _, _ := e.recoverAs(alice)
	e.must(code, 200, "first recovery")
	crl := func() int {
		n, _ := e.rdb.ZCard(context.Background(), agentapi.CRLKey).Result()
		return int(n)
	}
	if crl() != 2 {
		t.Fatalf("%d revocations", crl())
	}
	for range 50 {
		e.buy(alice, 128)
		_, priv, _ := ed25519.GenerateKey(nil)
		req := httptest.NewRequest("POST", "/v1/certificates/recover",
			jsonBody(map[string]string{"public_key": b64.EncodeToString(priv.Public().(ed25519.PublicKey))}))
		req.Header.Set("Authorization", alice)
		rec := httptest.NewRecorder()
		e.a.ServeHTTP(rec, req)
		if rec.Code != 429 || rec.Header().Get("Retry-After") == "" || !contains(rec.Body.String(), `"code":"recover_too_often"`) {
			t.Fatalf("recovery loop: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
	}
	if crl() != 2 {
		t.Fatalf("a refused recovery revoked: %d revocations", crl())
	}
	e.clock.Add(time.Hour)
	code, _, _ = e.recoverAs(alice)
	e.must(code, 200, "recovery an hour later")
	if crl() != 52 {
		t.Fatalf("%d revocations", crl())
	}
	e.checkLedger()
}

func jsonBody(v any) *bytes.Reader {
	j, _ := json.Marshal(v)
	return bytes.NewReader(j)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
