package paywall

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// TestE2ECluster: the world of e2e_world_test.go with the vendor's store
// on a Redis Cluster of three primaries and the bank's on another, two
// gateways of the vendor: payments in the three modes, grants, upstream
// prices, an issue's pass, replays and retries, revocation (crl agent),
// voids, and the money under load across both gateways, the vendor's
// payment state spread over the Cluster's masters.
func TestE2ECluster(t *testing.T) {
	w := newWorld(t, worldOpts{cluster: true, second: true})
	t.Run("402, pay, grant reuse, grant expiry", func(t *testing.T) { e2ePayAndGrant(t, w) })
	t.Run("upstream price", func(t *testing.T) { e2eUpstreamPrice(t, w) })
	t.Run("replay and idempotent retry", func(t *testing.T) { e2eReplayAndRetry(t, w) })
	t.Run("online, batch and an issue's pass", func(t *testing.T) { e2eModes(t, w) })
	t.Run("revocation within a second", func(t *testing.T) { e2eRevocation(t, w) })
	t.Run("answers not charged are voided", func(t *testing.T) { e2eVoids(t, w) })
	t.Run("money under load on two gateways", func(t *testing.T) { e2eMoneyUnderLoad(t, w) })
	t.Run("the vendor's payments over the masters", func(t *testing.T) { e2eKeysSpread(t, w) })
	if l := w.cms.leaked(); len(l) > 0 {
		t.Fatalf("priced articles reached the CMS unpaid: %q", l)
	}
	w.ledgerOK()
}

// TestE2EClusterSharedStore: the bank and the vendor on one Cluster, the
// gateways following the bank's revocation list there (crl redis).
func TestE2EClusterSharedStore(t *testing.T) {
	w := newWorld(t, worldOpts{shared: true})
	t.Run("replay and idempotent retry", func(t *testing.T) { e2eReplayAndRetry(t, w) })
	t.Run("online, batch and an issue's pass", func(t *testing.T) { e2eModes(t, w) })
	t.Run("revocation within a second", func(t *testing.T) { e2eRevocation(t, w) })
	w.ledgerOK()
}

// e2eModes: an online page (the segment registered at the bank before the
// payment is taken), a batch page (its claim shipped on the batch
// interval), and an issue's pass (one payment for every page of an issue).
func e2eModes(t *testing.T, w *world) {
	wal := w.buy(3 * 128)
	resp, body := w.fetch(nil, "GET", w.news+"/live/score", "Authorization", wal.Header(t, 0, 1, 1, testVendor, "/live/score"))
	if resp.StatusCode != 200 || body != w.content("/live/score") {
		t.Fatalf("online: %d %q", resp.StatusCode, resp.Header.Get(payword.ErrorHeader))
	}
	owner, err := w.agentRDB.HGet(t.Context(), w.agentKey("c:{"+wal.Serial.String()+"}:own"), "0").Result()
	if err != nil || owner != testVendor {
		t.Fatalf("the online segment's owner at the bank: %q %v", owner, err)
	}
	resp, body = w.fetch(nil, "GET", w.news+"/digest/monday", "Authorization", wal.Header(t, 1, 1, 1, testVendor, "/digest/monday"))
	if resp.StatusCode != 200 || body != w.content("/digest/monday") {
		t.Fatalf("batch: %d %q", resp.StatusCode, resp.Header.Get(payword.ErrorHeader))
	}
	const issue = "/issues/2026-12-01/"
	resp, _ = w.fetch(nil, "GET", w.news+issue+"p1", "Authorization", wal.Header(t, 2, 5, 5, testVendor, issue))
	pass := resp.Header.Get(payword.ReceiptHeader)
	if resp.StatusCode != 200 || pass == "" {
		t.Fatalf("the issue: %d %q", resp.StatusCode, resp.Header.Get(payword.ErrorHeader))
	}
	if resp, body = w.fetch(nil, "GET", w.news+issue+"p2", "Authorization", "Bearer "+pass); resp.StatusCode != 200 || body != w.content(issue+"p2") {
		t.Fatalf("another page of the issue on its pass: %d", resp.StatusCode)
	}
	if resp, _ = w.fetch(nil, "GET", w.news+"/issues/2026-12-02/p1", "Authorization", "Bearer "+pass); resp.StatusCode != 402 {
		t.Fatalf("another issue on the pass: %d", resp.StatusCode)
	}
	claims := w.waitClaims(wal.Serial, 3, 5*time.Second)
	for _, k := range []string{"|0|1", "|1|1", "|2|5"} {
		if claims[testVendor+k] != "paid" {
			t.Fatalf("claims %v lack %s", claims, k)
		}
	}
}

// accepted is a payment a gateway answered with a grant.
type accepted struct {
	serial               payword.Serial
	seg, index, amount   uint32
	auth, product, where string
}

// e2eMoneyUnderLoad: wallets pay at once across both gateways, articles
// (almost_online) and digests (batch); a third of the payments are sent
// with the same tokens for two pages to both gateways at once (a double
// spend), some again unchanged to the other gateway (a retry after a lost
// answer). Then every accepted payment has exactly one paid claim at the
// bank and no other, no token is accepted twice, and the vendor is
// credited exactly what its gateways accepted.
func e2eMoneyUnderLoad(t *testing.T, w *world) {
	const wallets, rounds = 16, 30
	w.drained()
	credited := w.credited()
	wals := make([]*paytest.Cert, wallets)
	for i := range wals {
		wals[i] = w.buy(128)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	send := func(base, path, hdr string) (int, string, error) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", hdr)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get(payword.ReceiptHeader), nil
	}
	var (
		mu      sync.Mutex
		took    []accepted
		fails   []string
		races   int
		retries int
	)
	fail := func(format string, a ...any) {
		mu.Lock()
		fails = append(fails, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	accept := func(wal *paytest.Cert, seg, index, amount uint32, product, where, receipt string) {
		auth, _ := grantPayload(t, receipt)["jti"].(string)
		mu.Lock()
		took = append(took, accepted{wal.Serial, seg, index, amount, auth, product, where})
		mu.Unlock()
	}
	bases := []string{w.news, w.news2}
	start := time.Now()
	var wg sync.WaitGroup
	for i, wal := range wals {
		wg.Go(func() {
			idx := uint32(0)
			for r := range rounds {
				amount, dir := uint32(2), "/articles/"
				if r%4 == 3 {
					amount, dir = 1, "/digest/"
				}
				idx += amount
				if r%3 == 0 {
					// The same tokens for two pages at both gateways at once.
					var got [2]struct {
						status  int
						receipt string
						err     error
					}
					var race sync.WaitGroup
					for k, base := range bases {
						p := fmt.Sprintf("%sw%d-r%d-%c", dir, i, r, 'a'+k)
						hdr := wal.Header(t, 0, idx, amount, testVendor, p)
						race.Go(func() { got[k].status, got[k].receipt, got[k].err = send(base, p, hdr) })
					}
					race.Wait()
					won := 0
					for k := range got {
						switch {
						case got[k].err != nil:
							fail("wallet %d round %d at gateway %d: %v", i, r, k, got[k].err)
						case got[k].status == 200:
							won++
							accept(wal, 0, idx, amount, fmt.Sprintf("%sw%d-r%d-%c", dir, i, r, 'a'+k), bases[k], got[k].receipt)
						case got[k].status != http.StatusConflict:
							fail("wallet %d round %d at gateway %d: %d", i, r, k, got[k].status)
						}
					}
					if won != 1 {
						fail("wallet %d round %d: %d of two payments with the same tokens accepted", i, r, won)
					}
					mu.Lock()
					races++
					mu.Unlock()
					continue
				}
				p := fmt.Sprintf("%sw%d-r%d", dir, i, r)
				hdr := wal.Header(t, 0, idx, amount, testVendor, p)
				base := bases[(i+r)%2]
				status, receipt, err := send(base, p, hdr)
				if err != nil || status != 200 {
					fail("wallet %d round %d: %d %v", i, r, status, err)
					continue
				}
				accept(wal, 0, idx, amount, p, base, receipt)
				if r%5 == 1 {
					// A retry after a lost answer, at the other gateway.
					again, receipt2, err := send(bases[(i+r+1)%2], p, hdr)
					if err != nil || again != 200 || receipt2 != receipt {
						fail("wallet %d round %d retried: %d %v, same grant %v", i, r, again, err, receipt2 == receipt)
					}
					mu.Lock()
					retries++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(fails) > 0 {
		t.Fatalf("%d failures, first: %s", len(fails), strings.Join(fails[:min(5, len(fails))], "; "))
	}

	// The bank has exactly the accepted payments, each paid once.
	w.drained()
	bySerial := map[payword.Serial][]accepted{}
	auths := map[string]int{}
	var tokens int64
	for _, a := range took {
		bySerial[a.serial] = append(bySerial[a.serial], a)
		auths[a.auth]++
		tokens += int64(a.amount)
	}
	for s, list := range bySerial {
		claims := w.waitClaims(s, len(list), 10*time.Second)
		sort.Slice(list, func(i, j int) bool { return list[i].index < list[j].index })
		for k, a := range list {
			if v := claims[fmt.Sprintf("%s|%d|%d", testVendor, a.seg, a.index)]; v != "paid" {
				t.Fatalf("accepted payment %+v has claim %q at the bank", a, v)
			}
			if k > 0 && a.index-a.amount < list[k-1].index {
				t.Fatalf("tokens accepted twice: %+v and %+v", list[k-1], a)
			}
		}
	}
	for auth, n := range auths {
		if n != 1 || !payword.ValidID(auth) {
			t.Fatalf("authorization %q given to %d accepted payments", auth, n)
		}
	}
	if got := w.credited() - credited; got != tokens*int64(wals[0].UnitValue) {
		t.Fatalf("the vendor was credited %d for %d tokens accepted", got, tokens)
	}
	if f := w.fraud(); len(f) != 0 {
		t.Fatalf("fraud cases against honest wallets: %+v", f)
	}
	t.Logf("%d payments accepted across two gateways on the Cluster in %v (%d double spends refused, %d retries answered with their grant)",
		len(took), elapsed.Round(time.Millisecond), races, retries)
}

// e2eKeysSpread: the vendor's payment state lies on several slots of
// several masters (the slot as Redis computes it).
func e2eKeysSpread(t *testing.T, w *world) {
	cc, ok := w.newsRDB.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("the vendor's store is a %T", w.newsRDB)
	}
	var mu sync.Mutex
	slots, masters := map[int]bool{}, map[string]int{}
	var sample string
	err := cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "hw:g:{"+testVendor+"/*}:s:*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			slots[redistest.Slot(it.Val())] = true
			masters[c.Options().Addr]++
			sample = it.Val()
			mu.Unlock()
		}
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cc.ClusterKeySlot(t.Context(), sample).Result(); err != nil || int(got) != redistest.Slot(sample) {
		t.Fatalf("CLUSTER KEYSLOT %s = %d %v, want %d", sample, got, err, redistest.Slot(sample))
	}
	if len(slots) < 3 || len(masters) < 2 {
		t.Fatalf("the vendor's payment state is on %d slots of %d masters (%v)", len(slots), len(masters), masters)
	}
	t.Logf("the vendor's segment states: %d slots, by master %v", len(slots), masters)
}
