package agent

import (
	"context"
	"net"
	"strconv"
	"strings"
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
	ctx := context.Background()
	var nodes []*redistest.Server
	var buses []string
	for range 3 {
		port, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		bus := strconv.Itoa(port)
		buses = append(buses, bus)
		nodes = append(nodes, redistest.Start(t, redistest.WithArgs(
			"--cluster-enabled", "yes", "--cluster-port", bus, "--cluster-config-file", "nodes.conf")))
	}
	per := 16384 / len(nodes)
	var addrs []string
	for i, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		last := (i+1)*per - 1
		if i == len(nodes)-1 {
			last = 16383
		}
		if err := c.ClusterAddSlotsRange(ctx, i*per, last).Err(); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(n.Addr())
			first := redis.NewClient(&redis.Options{Addr: nodes[0].Addr()})
			if err := first.Do(ctx, "CLUSTER", "MEET", host, port, buses[i]).Err(); err != nil {
				t.Fatal(err)
			}
			first.Close()
		}
		c.Close()
		addrs = append(addrs, n.Addr())
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, _ := c.ClusterInfo(ctx).Result()
			if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ready: %s", info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestCluster runs the agent on a real three-node Redis Cluster: purchase,
// reports with a double-spend (a revocation, so hw:crl's slot too),
// recovery and settlement, with the ledger checked at the end.
func TestCluster(t *testing.T) {
	t.Parallel()
	if slot := redisSlot(agentapi.CRLKey); slot != redisSlot(clusterTag) {
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

// redisSlot is Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag.
func redisSlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}
