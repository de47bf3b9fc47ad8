package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// faultWorld is a bank and two newspapers on loopback, every part its own
// process that a fault test can kill with SIGKILL and restart: the agent
// (`hashwall agent`) on its Redis, and two gateway processes (`hashwall run`,
// Caddy) each serving both vendors' sites from one vendor Redis.
//
// Both Redis servers run with the append-only file and `appendfsync
// always` (redistest.WithAOF): every write they acknowledge is on disk, the
// durability the agent and the gateways require of their stores.
type faultWorld struct {
	t          *testing.T
	dir        string
	agentRedis *redistest.Server
	vendRedis  *redistest.Server
	agent      *faultProc
	agentURL   string
	adminToken string
	gateways   []*faultProc
	// sites[vendor][i] is the base URL of vendor's site on gateway i.
	sites   map[string][]string
	vendors []string
	adb     *redis.Client // the agent's Redis, read by the checks
	vdb     *redis.Client // the vendors' Redis
}

// Prices of the fault world's sites: one path per reporting mode.
const (
	priceArticle = 2 // almost_online (the default)
	priceBatch   = 3 // batch, shipped every second
	priceOnline  = 1 // online: the segment's binding is registered first
)

func newFaultWorld(t *testing.T) *faultWorld {
	t.Helper()
	hw, _ := binaries(t)
	w := &faultWorld{t: t, dir: t.TempDir(), sites: map[string][]string{}, vendors: []string{"planet", "globe"}}
	w.agentRedis = redistest.Start(t, redistest.WithAOF())
	w.vendRedis = redistest.Start(t, redistest.WithAOF())
	w.adb = redis.NewClient(&redis.Options{Addr: w.agentRedis.Addr(), MaxRetries: -1})
	w.vdb = redis.NewClient(&redis.Options{Addr: w.vendRedis.Addr(), MaxRetries: -1})
	t.Cleanup(func() { w.adb.Close(); w.vdb.Close() })

	key := filepath.Join(w.dir, "agent.key")
	if out, err := exec.Command(hw, "agent", "keygen", "--out", key, "--kid", "agent-fault").CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	port := freePort(t)
	w.agentURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	w.adminToken = "admin-" + strings.Trim(randomB64(12), "=")
	w.agent = startFaultProc(t, "agent",
		[]string{"HASHWALL_MASTER_KEY=" + randomB64(32), "HASHWALL_ADMIN_TOKEN=" + w.adminToken},
		hw, "agent", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--redis", w.agentRedis.URL(), "--key", key)
	if err := waitStatus(context.Background(), w.agentURL+"/v1/keys", 200, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The gateways trust the agent key they are configured with, not one
	// learnt from a payment.
	keys, err := agentapi.NewClient(w.agentURL, nil).Keys(t.Context())
	if err != nil || len(keys.Keys) == 0 {
		t.Fatalf("agent keys: %v %v", err, keys)
	}
	agentKey, _ := keys.Keys[0].Public.MarshalText()

	const nGateways = 2
	ports := make([]map[string]int, nGateways)
	for i := range ports {
		ports[i] = map[string]int{}
	}
	var sites [nGateways]strings.Builder
	for _, vendor := range w.vendors {
		for i := range nGateways {
			p := freePort(t)
			ports[i][vendor] = p
			w.sites[vendor] = append(w.sites[vendor], fmt.Sprintf("http://127.0.0.1:%d", p))
		}
		// The vendor tells the bank the origins of its sites, where wallets
		// may pay it. An agent without origins refuses the field (unknown
		// fields are malformed): then it is registered without.
		reg, err := w.admin().RegisterVendor(t.Context(), agentapi.RegisterVendor{Vendor: vendor, Origins: w.sites[vendor]})
		if ae, ok := errors.AsType[*agentapi.Error](err); ok && ae.Status == http.StatusBadRequest {
			reg, err = w.admin().RegisterVendor(t.Context(), agentapi.RegisterVendor{Vendor: vendor})
		}
		if err != nil {
			t.Fatalf("registering vendor %s: %v", vendor, err)
		}
		grantKey := randomB64(32) // shared by the vendor's gateways
		for i := range nGateways {
			p := ports[i][vendor]
			fmt.Fprintf(&sites[i], `
http://127.0.0.1:%d {
	paywall {
		vendor    %s
		api_token %s
		agent     %s
		key       %s %s
		redis     %s
		grant_key %s
		ttl       1h
		price /articles/* %d
		price /batch/* %d {
			mode batch
		}
		price /online/* %d {
			mode online
		}
		free /index.html
		crl agent 1s
		batch_interval 1s
	}
	respond /index.html "front page"
	respond "page {path}"
}
`, p, vendor, reg.Token, w.agentURL, keys.Keys[0].KeyID, agentKey, w.vendRedis.URL(), grantKey,
				priceArticle, priceBatch, priceOnline)
		}
	}
	for i := range nGateways {
		caddyfile := filepath.Join(w.dir, fmt.Sprintf("Caddyfile.%d", i))
		config := fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tstorage file_system %s\n}\n",
			filepath.Join(w.dir, fmt.Sprintf("caddy-data-%d", i))) + sites[i].String()
		if err := os.WriteFile(caddyfile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		w.gateways = append(w.gateways, startFaultProc(t, fmt.Sprintf("gateway-%d", i), nil,
			hw, "run", "--config", caddyfile, "--adapter", "caddyfile"))
	}
	for i := range w.gateways {
		if err := w.gatewayReady(context.Background(), i, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// gatewayReady waits until gateway i serves both vendors' challenges.
func (w *faultWorld) gatewayReady(ctx context.Context, i int, d time.Duration) error {
	for _, v := range w.vendors {
		if err := waitStatus(ctx, w.sites[v][i]+"/articles/probe", http.StatusPaymentRequired, d); err != nil {
			return err
		}
	}
	return nil
}

// admin is a client of the agent with the admin token.
func (w *faultWorld) admin() *agentapi.Client {
	return agentapi.NewClient(w.agentURL, &http.Client{Timeout: 10 * time.Second}).WithToken(w.adminToken)
}

// backlog counts the claims of the vendors' report streams that the agent
// has not answered yet: entries never delivered to a gateway, and entries
// delivered and not acknowledged. stale counts entries acknowledged (so
// answered) but still in the stream, which no gateway will ship again.
func (w *faultWorld) backlog(ctx context.Context) (undelivered, unacked, stale int64, err error) {
	for _, v := range w.vendors {
		for _, stream := range reportStreams(v) {
			n, err := w.vdb.XLen(ctx, stream).Result()
			if err != nil {
				return 0, 0, 0, err
			}
			if n == 0 {
				continue
			}
			groups, err := w.vdb.XInfoGroups(ctx, stream).Result()
			if err != nil {
				return 0, 0, 0, err
			}
			var g *redis.XInfoGroup
			for i := range groups {
				if groups[i].Name == "reporters" {
					g = &groups[i]
				}
			}
			if g == nil {
				undelivered += n
				continue
			}
			after, err := w.vdb.XRangeN(ctx, stream, "("+g.LastDeliveredID, "+", 10000).Result()
			if err != nil {
				return 0, 0, 0, err
			}
			undelivered += int64(len(after))
			unacked += g.Pending
			stale += n - g.Pending - int64(len(after))
		}
	}
	return undelivered, unacked, stale, nil
}

// reportStreams are vendor v's report streams: one per mode and shard of
// the gateway's keys (docs/redis-keys.md).
func reportStreams(v string) []string {
	var out []string
	for n := range 16 {
		for _, s := range []string{"now", "batch"} {
			out = append(out, fmt.Sprintf("hw:g:{%s/%d}:r:%s", v, n, s))
		}
	}
	return out
}

// heldBy returns the claims of the report streams delivered to and not
// acknowledged by the gateway process pid (its consumer in the group is
// named "<host>-<pid>-<nanotime>"), by stream.
func (w *faultWorld) heldBy(ctx context.Context, pid int) map[string][]string {
	mark := fmt.Sprintf("-%d-", pid)
	out := map[string][]string{}
	for _, v := range w.vendors {
		for _, stream := range reportStreams(v) {
			pend, err := w.vdb.XPending(ctx, stream, "reporters").Result()
			if err != nil {
				continue
			}
			for name, c := range pend.Consumers {
				if c == 0 || !strings.Contains(name, mark) {
					continue
				}
				list, err := w.vdb.XPendingExt(ctx, &redis.XPendingExtArgs{
					Stream: stream, Group: "reporters", Start: "-", End: "+", Count: 10000, Consumer: name,
				}).Result()
				if err != nil {
					continue
				}
				for _, e := range list {
					out[stream] = append(out[stream], e.ID)
				}
			}
		}
	}
	return out
}

// stillPending returns how many of the claims ids (by stream) are still
// delivered and unacknowledged, whichever gateway holds them now.
func (w *faultWorld) stillPending(ctx context.Context, ids map[string][]string) (int, error) {
	n := 0
	for stream, list := range ids {
		for _, id := range list {
			got, err := w.vdb.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: stream, Group: "reporters", Start: id, End: id, Count: 1,
			}).Result()
			if err != nil {
				return 0, err
			}
			n += len(got)
		}
	}
	return n, nil
}
