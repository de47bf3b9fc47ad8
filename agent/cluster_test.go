package agent

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// startCluster starts a three-master Redis Cluster on loopback.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redistest.StartCluster(t, 3).Addrs()})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestCluster runs the agent on a real three-node Redis Cluster: purchase,
// reports with a double-spend (a revocation, so hw:crl's slot too),
// recovery and settlement, with the ledger checked at the end.
func TestCluster(t *testing.T) {
	t.Parallel()
	if slot := redistest.Slot(agentapi.CRLKey); slot != redistest.Slot(clusterTag) {
		t.Fatalf("the cluster tag's slot is not hw:crl's (%d)", slot)
	}
	cc := startCluster(t)
	e := envOn(t, cc)
	va, vb := e.vendor("planet"), e.vendor("globe")
	alice := e.user("alice", 2000)
	w := e.buy(alice, 256)
	e.expectReport("paid:3 vendor_fraud:0", va, "planet", "b1", w.claim(0, 3, 3, "planet"), w.claim(1, 1, 1, ""))
	e.expectReport("double_spend:4", vb, "globe", "b1", w.claim(0, 4, 4, "globe"))
	if !e.revoked(w.cert.Serial) {
		t.Fatal("not revoked")
	}
	// The gateway reads the contract's hw:crl on the cluster.
	if n, err := cc.ZCard(context.Background(), agentapi.CRLKey).Result(); err != nil || n != 1 {
		t.Fatalf("hw:crl holds %d (%v)", n, err)
	}
	w2 := e.buy(alice, 128)
	code, _, _ := e.recoverAs(alice)
	e.must(code, 200, "recover")
	e.expectReport("paid:5", va, "planet", "b2", w2.claim(0, 5, 5, "planet"))
	e.clock.Add(time.Duration(e.a.cfg.CertTTL+e.a.cfg.SettlementWindow) + time.Hour)
	e.settle()
	_, err := e.as("Bearer "+adminToken).Revoke(context.Background(), agentapi.Revoke{Serial: &payword.Serial{}})
	e.mustOK(err, "revoke")
	e.checkLedger()
}
