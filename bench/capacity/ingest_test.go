package capacity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// reportBatch is the gateway's report size (claims per POST /v1/reports).
const reportBatch = 500

// BenchmarkCapacityIngest is the bank's report ingestion, for
// docs/scaling.md: a real agent served over loopback HTTP on a real
// redis-server (AOF, appendfsync always, on /dev/shm), b.N reports of 500
// claims posted by 4 gateways at once, every claim paid. It reports
// claims/s, the CPU of this process (the agent, and the clients' sending)
// and of Redis's main thread per claim, and the agent's Redis memory per
// certificate sold and per claim ingested (batch records apart).
//
//   - readers: every claim of a report is another reader's (500
//     certificates) and opens a segment: a binding signature to check and
//     a certificate's records to read per claim, as 10^7 readers give.
//
//   - grouped: 8 claims per segment and one certificate per 7,000 segments,
//     as agent's BenchmarkIngest: the cheapest case.
//
//     go test ./bench/capacity -run '^$' -bench CapacityIngest -benchtime 100x
func BenchmarkCapacityIngest(b *testing.B) {
	b.Run("readers", func(b *testing.B) {
		benchIngest(b, reportBatch, func(k int) (int, uint32, uint32) {
			return k % reportBatch, uint32(k / reportBatch), price
		})
	})
	b.Run("grouped", func(b *testing.B) {
		const perSeg, segs, p = 8, 7000, 16
		certs := (b.N*reportBatch/perSeg + segs - 1) / segs
		benchIngest(b, certs, func(k int) (int, uint32, uint32) {
			seg := k / perSeg
			return seg / segs, uint32(seg % segs), uint32(k%perSeg+1) * p
		})
	})
}

// claimAt places claim k: its certificate, segment and index. Each
// claim pays the tokens since the one before it in the segment.
type claimAt func(k int) (cert int, seg, index uint32)

func benchIngest(b *testing.B, ncerts int, at claimAt) {
	ctx := context.Background()
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	const admin = "bench-admin-token"
	a, err := agent.New(ctx, agent.Config{
		Redis: rdb, SigningKeys: []payword.SigningKey{{ID: "bench", Key: ed25519.NewKeyFromSeed(make([]byte, 32))}},
		MasterKey: bytes.Repeat([]byte{9}, 32), AdminToken: admin,
		Argon: agent.ArgonParams{Time: 1, Memory: 64, Threads: 1},
	})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(a)
	defer hs.Close()
	api := agentapi.NewClient(hs.URL, nil)
	v, err := api.WithToken(admin).RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: vendor})
	if err != nil {
		b.Fatal(err)
	}

	// The certificates: as many segments as the claims use.
	n := b.N * reportBatch
	segs := make([]int, ncerts)
	for k := range n {
		c, g, _ := at(k)
		segs[c] = max(segs[c], int(g)+1)
	}
	user := newReader(b, api, admin, segs)
	mem0 := UsedMemory(b, rdb)
	wallets := buy(b, user, segs)
	perCert := float64(UsedMemory(b, rdb)-mem0) / float64(ncerts)

	bodies := make([][]byte, b.N)
	claims := make([]payword.Claim, n)
	now := time.Now()
	parallel(n, func(k int) {
		c, g, i := at(k)
		w := wallets[c]
		prev := uint32(0)
		if k > 0 {
			if pc, pg, pi := at(k - 1); pc == c && pg == g {
				prev = pi
			}
		}
		bind, err := payword.Bind(w.cert, w.user, g, vendor, now)
		if err != nil {
			panic(err)
		}
		claims[k] = payword.Claim{
			Serial: w.cert.Serial, Segment: g, Binding: bind.Raw(), Index: i, Amount: i - prev,
			Token: payword.TokenAt(w.k, g, int(i), int(w.cert.SegmentLen)), Product: Product,
			Auth: "0123456789abcdef." + strconv.FormatInt(int64(k), 36), Time: now.Unix(),
		}
	})
	for r := range b.N {
		id := sha256.Sum256([]byte(strconv.Itoa(r)))
		bodies[r], _ = json.Marshal(payword.Report{Vendor: vendor, Batch: "r-" + hex.EncodeToString(id[:20]),
			Claims: claims[r*reportBatch : (r+1)*reportBatch]})
	}

	hc := &http.Client{Timeout: time.Minute}
	mem1 := UsedMemory(b, rdb)
	b.ResetTimer()
	m := StartMeter(b, rdb)
	took, lat, err := Run(Split(bodies, 4), func(body []byte) error {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/reports", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+v.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var res agentapi.ReportResult
		if resp.StatusCode != 200 || json.Unmarshal(raw, &res) != nil || len(res.Results) != reportBatch {
			return fmt.Errorf("%d %.200s", resp.StatusCode, raw)
		}
		for _, r := range res.Results {
			if r.Verdict != agentapi.VerdictPaid {
				return fmt.Errorf("claim %s: %s", r.Auth, r.Verdict)
			}
		}
		return nil
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	ReportRate(b, n, took, lat, "claims") // latencies are of whole reports
	if ncerts >= 100 {                    // fewer would mostly weigh the first one's tables
		b.ReportMetric(perCert, "B/cert")
	}
	m.Report(b, n, "claim")
	if err := a.CheckLedger(ctx); err != nil {
		b.Fatal(err)
	}

	// Batch records are the strings kept longer than a certificate lives.
	mem2 := UsedMemory(b, rdb)
	var batches []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if t, _ := rdb.Type(ctx, iter.Val()).Result(); t == "string" {
			if ttl, _ := rdb.TTL(ctx, iter.Val()).Result(); ttl > 60*24*time.Hour {
				batches = append(batches, iter.Val())
			}
		}
	}
	if len(batches) != b.N {
		b.Fatalf("%d batch records for %d reports", len(batches), b.N)
	}
	if err := rdb.Del(ctx, batches...).Err(); err != nil {
		b.Fatal(err)
	}
	mem3 := UsedMemory(b, rdb)
	b.ReportMetric(float64(mem2-mem3)/float64(n), "batch-B/claim")
	b.ReportMetric(float64(mem3-mem1)/float64(n), "records-B/claim")
}

// ingestWallet is a certificate bought from the agent, with what a
// wallet keeps to spend it.
type ingestWallet struct {
	cert *payword.Certificate
	k    payword.Secret
	user ed25519.PrivateKey
}

// newReader registers a reader with the credit to buy certificates of
// segs segments, and returns its client, logged in.
func newReader(b *testing.B, api *agentapi.Client, admin string, segs []int) *agentapi.Client {
	ctx := context.Background()
	const name, pw = "reader", "correct horse battery"
	total := int64(0)
	for _, s := range segs {
		total += int64(s) * payword.DefaultSegmentLen
	}
	if _, err := api.RegisterUser(ctx, agentapi.RegisterUser{Username: name, Password: pw}); err != nil {
		b.Fatal(err)
	}
	if _, err := api.WithToken(admin).Credit(ctx, agentapi.Credit{User: name, Amount: total}); err != nil {
		b.Fatal(err)
	}
	s, err := api.Login(ctx, name, pw)
	if err != nil {
		b.Fatal(err)
	}
	return api.WithToken(s.Token)
}

// buy buys one certificate of segs[i] segments for each i.
func buy(b *testing.B, user *agentapi.Client, segs []int) []*ingestWallet {
	ctx := context.Background()
	out := make([]*ingestWallet, len(segs))
	errs := make([]error, len(segs))
	parallel(len(segs), func(i int) {
		_, priv, _ := ed25519.GenerateKey(nil)
		bundle, err := user.Buy(ctx, int64(segs[i])*payword.DefaultSegmentLen, priv.Public().(ed25519.PublicKey), "")
		if err != nil {
			errs[i] = err
			return
		}
		raw, _ := base64.RawURLEncoding.DecodeString(bundle.Certificate)
		cert, err := payword.ParseCertificate(raw)
		w := &ingestWallet{cert: cert, user: priv}
		k, _ := base64.RawURLEncoding.DecodeString(bundle.Secret)
		copy(w.k[:], k)
		out[i], errs[i] = w, err
	})
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}
