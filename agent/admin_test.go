package agent

import (
	"context"
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

	var me struct {
		Balance      int64
		Certificates []string
	}
	e.must(e.call("GET", "/v1/me", alice, nil, &me), 200, "me")
	if me.Balance != 1000-128 || len(me.Certificates) != 1 || me.Certificates[0] != w.cert.Serial.String() {
		t.Fatalf("me %+v", me)
	}
	admin := "Bearer " + adminToken
	var fraud struct{ Cases []map[string]any }
	e.must(e.call("GET", "/v1/admin/fraud", admin, nil, &fraud), 200, "fraud")
	if len(fraud.Cases) != 1 || fraud.Cases[0]["kind"] != "vendor_fraud" || fraud.Cases[0]["vendor"] != "planet" {
		t.Fatalf("fraud cases %+v", fraud.Cases)
	}
	var ok struct{ OK bool }
	e.must(e.call("GET", "/v1/admin/ledger/check", admin, nil, &ok), 200, "ledger check")
	// A statement of the second hour opens with the first hour's credit.
	from := e.clock.Now().Add(-time.Minute).Unix()
	var st agentapi.Statement
	e.must(e.call("GET", "/v1/admin/vendors/planet/statement?from="+itoa(from), admin, nil, &st), 200, "statement")
	if st.Opening != 3 || st.Credited != 2 || st.Closing != 5 {
		t.Fatalf("statement %+v", st)
	}
	e.must(e.call("GET", "/v1/admin/vendors/nobody/statement", admin, nil, nil), 404, "unknown vendor")
	e.must(e.call("GET", "/v1/admin/vendors/planet/statement?from=yesterday", admin, nil, nil), 400, "bad period")
	e.must(e.call("GET", "/v1/admin/fraud", va, nil, nil), 401, "vendor as admin")
	// A broken ledger is reported.
	e.rdb.HIncrBy(context.Background(), "hw:a:v:planet", "bal", 1)
	e.must(e.call("GET", "/v1/admin/ledger/check", admin, nil, nil), 500, "broken ledger")
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
