package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// TestRecoveryWithLateClaims: with an advance that covers it (a bank that
// takes the risk), a lost certificate's unclaimed value moves to a new one
// at once; claims that arrive later are paid and charged to the user, whose
// negative balance then blocks purchases. (By default the value waits for
// the report window: TestRecoveryCreditWaitsForTheWindow.)
func TestRecoveryWithLateClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.RecoverAdvance = 1 << 40
	e.restartAgent()
	va := e.vendor("planet")
	alice := e.user("alice", 512)
	uid := e.uid("alice")
	old := e.buy(alice, 384) // 3 segments; balance 128
	e.report(va, "planet", "r1", old.claim(0, 10, 10, "planet"))

	code, out, priv := e.recoverAs(alice)
	e.must(code, 200, "recover")
	// 374 unclaimed tokens buy 2 whole segments; the rest stays on the balance.
	if out.RecoveredValue != 374 || out.Bundle == nil || out.Bundle.Tokens != 256 {
		t.Fatalf("recovered %d, bundle %+v; want 374 and a 256-token certificate", out.RecoveredValue, out.Bundle)
	}
	if !e.revoked(old.cert.Serial) {
		t.Fatal("lost certificate not revoked")
	}
	if got := e.balance("u:" + uid); got != 128+374-256 {
		t.Fatalf("balance after recovery %d", got)
	}
	// Tokens the thief (or the user) spent before the CRL reached vendors.
	res, _ := e.report(va, "planet", "r2", old.claim(0, 128, 118, "planet"),
		old.claim(1, 128, 128, "planet"), old.claim(2, 128, 128, "planet"))
	if got := e.verdicts(res); got != "paid:118 paid:128 paid:128" {
		t.Fatal(got)
	}
	if got := e.balance("u:" + uid); got != 246-374 {
		t.Fatalf("late claims not charged: balance %d", got)
	}
	if got := e.balance("v:planet"); got != 384 {
		t.Fatalf("vendor balance %d", got)
	}
	if _, code := e.tryBuy(alice, 1); code != 402 {
		t.Fatalf("negative balance bought a certificate: %d", code)
	}
	// The new certificate works.
	nw := walletFrom(t, out.Bundle, priv)
	e.expectReport("paid:5", va, "planet", "r3", nw.claim(1, 5, 5, "planet"))
	e.checkLedger()
}

func TestAgentRestartBetweenPurchaseAndReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 128)
	e.restartAgent() // empty caches: K must come back from Redis, decrypted
	res, code := e.report(va, "planet", "b1", w.claim(0, 9, 9, "planet"))
	e.must(code, 200, "report after restart")
	if got := e.verdicts(res); got != "paid:9" {
		t.Fatal(got)
	}
	e.checkLedger()
}

// TestRedisRestartKeepsAcknowledged kills Redis (AOF, fsync always) after
// acknowledged writes and checks that all of them survive.
func TestRedisRestartKeepsAcknowledged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, redistest.WithAOF())
	e.cfg.Ephemeral = false
	e.restartAgent() // durable store accepted without Ephemeral
	va := e.vendor("planet")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 128)
	first, _ := e.report(va, "planet", "b1", w.claim(0, 9, 9, "planet"))
	e.srv.Kill()
	var down agentapi.Error
	if code := e.call("POST", "/v1/reports", va, payword.Report{Vendor: "planet", Batch: "b9",
		Claims: []payword.Claim{w.claim(0, 10, 1, "planet")}}, &down); code != 503 || down.Code != "store_unavailable" {
		t.Fatalf("Redis down: %d %+v, want 503", code, down)
	}
	e.srv.Restart()
	if got := e.balance("v:planet"); got != 9 {
		t.Fatalf("vendor credit lost: %d", got)
	}
	if got := e.balance("u:" + e.uid("alice")); got != 1000-128 {
		t.Fatalf("purchase lost: %d", got)
	}
	again, _ := e.report(va, "planet", "b1", w.claim(0, 9, 9, "planet"))
	if e.verdicts(again) != e.verdicts(first) {
		t.Fatalf("batch record lost: %s", e.verdicts(again))
	}
	e.expectReport("paid:3", va, "planet", "b2", w.claim(0, 12, 3, "planet"))
	e.checkLedger()
}

func TestRefusesRedisWithoutAOF(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithoutAOF())
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	cfg := testConfig(rdb, &clock{t: time.Now()})
	cfg.Ephemeral = false
	if _, err := New(context.Background(), cfg); err == nil {
		t.Fatal("agent started on a Redis with AOF off")
	}
}

func TestSettlementRefundsAndStatements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	alice := e.user("alice", 1000)
	uid := e.uid("alice")
	w := e.buy(alice, 256) // balance 744
	e.report(va, "planet", "b1", w.claim(0, 10, 10, "planet"))
	e.clock.Add(time.Hour)
	e.report(va, "planet", "b2", w.claim(0, 30, 20, "planet"))

	n := e.settle()
	if n.Settled != 0 {
		t.Fatal("settled before expiry")
	}
	e.clock.Add(time.Duration(e.a.cfg.CertTTL + e.a.cfg.SettlementWindow))
	n = e.settle()
	// 256 tokens, 30 claimed: 226 refunded (unbound segment 1 and the tail of 0).
	if n.Settled != 1 || n.Refunded != 226 || e.balance("u:"+uid) != 744+226 {
		t.Fatalf("settled %+v, balance %d", n, e.balance("u:"+uid))
	}
	if n = e.settle(); n.Settled != 0 {
		t.Fatal("settled twice")
	}
	e.expectReport("invalid:0", va, "planet", "b3", w.claim(0, 40, 10, "planet"))
	if n, _ := e.rdb.Exists(t.Context(), e.a.certKey(w.cert.Serial)+":cl").Result(); n != 0 {
		t.Fatal("idempotency records of a settled certificate kept")
	}

	from := e.clock.Now().Add(-time.Duration(e.a.cfg.CertTTL+e.a.cfg.SettlementWindow) - time.Hour - time.Minute).Unix()
	st, err := e.as("Bearer "+adminToken).VendorStatement(t.Context(), "planet", time.Unix(from, 0), time.Unix(from+1800, 0))
	e.mustOK(err, "statement")
	if st.Opening != 0 || st.Credited != 10 || st.Closing != 10 || len(st.Entries) != 1 {
		t.Fatalf("statement %+v", st)
	}
	rec := e.raw("GET", "/v1/statement?format=csv&from="+itoa(from), va)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %d %q", rec.Code, rec.Body.String())
	}
	if got := rec.Body.String(); !strings.Contains(got, ",claims,b1,10,10,EUR") || !strings.Contains(got, ",claims,b2,20,30,EUR") {
		t.Fatalf("csv:\n%s", got)
	}
	e.checkLedger()
}

func TestOnlineBindings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va, vb := e.vendor("planet"), e.vendor("globe")
	w := e.buy(e.user("alice", 1000), 256)
	bindOf := func(g uint32, vendor string) []byte {
		b, _ := payword.Bind(w.cert, w.key, g, vendor, time.Unix(1, 0))
		return b.Raw()
	}
	bind := func(auth string, raw []byte) (int, error) {
		_, err := e.as(auth).Bind(t.Context(), raw)
		return status(err, 200), err
	}
	code, _ := bind(va, bindOf(0, "planet"))
	e.must(code, 200, "first binding")
	code, _ = bind(va, bindOf(0, "planet"))
	e.must(code, 200, "same owner again")
	code, _ = bind(vb, bindOf(1, "planet"))
	e.must(code, 403, "another vendor's binding")
	if e.revoked(w.cert.Serial) {
		t.Fatal("revoked too early")
	}
	code, err := bind(vb, bindOf(0, "globe"))
	e.must(code, 409, "second vendor")
	if ae, _ := errors.AsType[*agentapi.Error](err); ae.Owner != "planet" || ae.Code != agentapi.CodeSegmentOwned {
		t.Fatalf("409 body %+v", ae)
	}
	if !e.revoked(w.cert.Serial) {
		t.Fatal("double binding did not revoke")
	}
	forged := bindOf(1, "globe")
	forged[len(forged)-1] ^= 1
	code, _ = bind(vb, forged)
	e.must(code, 400, "forged")
	unknown := *w.cert
	unknown.Serial[0] ^= 1
	b, _ := payword.Bind(&unknown, w.key, 0, "globe", time.Unix(1, 0))
	code, _ = bind(vb, b.Raw())
	e.must(code, 404, "unknown")
	// A report by the registered owner is paid; the other is a double-spend.
	e.expectReport("paid:3", va, "planet", "b1", w.claim(0, 3, 3, "planet"))
	e.checkLedger()
}

func TestMasterKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	w := e.buy(e.user("alice", 1000), 128)
	old := e.cfg.MasterKey
	e.cfg.MasterKey = bytes.Repeat([]byte{10}, 32)
	e.restartAgent() // without the old key, the secret cannot be opened
	if _, code := e.report(va, "planet", "b1", w.claim(0, 1, 1, "planet")); code != 500 {
		t.Fatalf("report without the old master key: %d", code)
	}
	e.cfg.OldMasterKeys = [][]byte{old}
	e.restartAgent()
	e.expectReport("paid:1", va, "planet", "b1", w.claim(0, 1, 1, "planet"))
	w2 := e.buy(e.user("bob", 1000), 128) // sealed under the new key
	e.expectReport("paid:1", va, "planet", "b2", w2.claim(0, 1, 1, "planet"))
	e.checkLedger()
}

// TestRetriedPurchase: a purchase retried with the same request id (its
// answer was lost) returns the same certificate and charges once.
func TestRetriedPurchase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", 1000)
	_, priv, _ := ed25519.GenerateKey(nil)
	req := map[string]any{"tokens": 200, "request_id": "buy-1",
		"public_key": b64.EncodeToString(priv.Public().(ed25519.PublicKey))}
	var first, again agentapi.Bundle
	e.must(e.call("POST", "/v1/certificates", alice, req, &first), 201, "buy")
	e.must(e.call("POST", "/v1/certificates", alice, req, &again), 201, "retry")
	if first != again {
		t.Fatalf("retry returned another bundle:\n%+v\n%+v", first, again)
	}
	if got := e.balance("u:" + e.uid("alice")); got != 1000-256 {
		t.Fatalf("charged twice: balance %d", got)
	}
	walletFrom(t, &again, priv)
	e.checkLedger()
}
