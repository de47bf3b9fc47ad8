package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

func TestAdminViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 128)
	e.expectReport("paid:3", va, "planet", "b1", w.claim(0, 3, 3, "planet"))
	e.clock.Add(time.Hour)
	e.expectReport("vendor_fraud:0", va, "planet", "b2", w.claim(0, 4, 1, ""))
	e.expectReport("paid:2", va, "planet", "b3", w.claim(0, 5, 1, "planet"))

	if me := e.me(alice); me.Balance != 1000-128 || len(me.Certificates) != 1 || me.Certificates[0] != w.cert.Serial.String() {
		t.Fatalf("me %+v", me)
	}
	ctx, admin := t.Context(), e.as("Bearer "+adminToken)
	fraud, err := admin.Fraud(ctx, 0)
	e.mustOK(err, "fraud")
	if len(fraud.Cases) != 1 || fraud.Cases[0].Kind != string(agentapi.VerdictVendorFraud) || fraud.Cases[0].Vendor != "planet" ||
		fraud.Cases[0].Serial != w.cert.Serial.String() {
		t.Fatalf("fraud cases %+v", fraud.Cases)
	}
	_, err = admin.CheckLedger(ctx)
	e.mustOK(err, "ledger check")
	// A statement of the second hour opens with the first hour's credit.
	st, err := admin.VendorStatement(ctx, "planet", e.clock.Now().Add(-time.Minute), e.clock.Now().Add(time.Second))
	e.mustOK(err, "statement")
	if st.Opening != 3 || st.Credited != 2 || st.Closing != 5 {
		t.Fatalf("statement %+v", st)
	}
	_, err = admin.VendorStatement(ctx, "nobody", time.Time{}, time.Time{})
	e.must(status(err, 200), 404, "unknown vendor")
	e.must(e.call("GET", "/v1/admin/vendors/planet/statement?from=yesterday", "Bearer "+adminToken, nil, nil), 400, "bad period")
	_, err = e.as(va).Fraud(ctx, 0)
	e.must(status(err, 200), 401, "vendor as admin")
	// A broken ledger is reported.
	e.rdb.HIncrBy(context.Background(), "hw:a:v:planet", "bal", 1)
	_, err = admin.CheckLedger(ctx)
	if ae, ok := errors.AsType[*agentapi.Error](err); !ok || ae.Status != 500 || ae.Code != agentapi.CodeLedgerMismatch {
		t.Fatalf("broken ledger: %v", err)
	}
}

// TestDurabilityWithoutCONFIG: managed servers often disable CONFIG; the
// agent then reads INFO persistence, which tells whether the AOF is on but
// not its fsync policy, so it refuses both (the message says which).
func TestDurabilityWithoutCONFIG(t *testing.T) {
	t.Parallel()
	for _, aof := range []bool{true, false} {
		opts := []redistest.Option{redistest.WithArgs("--rename-command", "CONFIG", "")}
		want := "appendfsync always cannot be verified"
		if !aof {
			opts, want = append(opts, redistest.WithoutAOF()), "append-only file is off"
		}
		srv := redistest.Start(t, opts...)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		cfg := testConfig(rdb, &clock{t: time.Now()})
		cfg.Ephemeral = false
		_, err := New(context.Background(), cfg)
		rdb.Close()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("aof=%v: %v, want %q", aof, err, want)
		}
	}
}
