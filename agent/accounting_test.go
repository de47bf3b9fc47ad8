package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// TestRandomizedAccounting drives the agent with a seeded random mix of
// credits, purchases, honest and fraudulent reports, redeliveries,
// recoveries and settlements, and checks after every step that money is
// conserved: the balances plus the unclaimed value of live certificates
// equal everything ever credited; and that every ledger sums to its balance.
func TestRandomizedAccounting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(1, 2))
	vendors := []string{"planet", "globe", "sun"}
	vauth := map[string]string{}
	for _, v := range vendors {
		vauth[v] = e.vendor(v)
	}
	users := []string{"alice", "bob"}
	uauth := map[string]string{}
	for _, u := range users {
		uauth[u] = e.user(u, 0)
	}
	var credited int64
	var wallets []*wallet
	var sent []payword.Report
	seen := map[agentapi.Verdict]int{}
	ctx := context.Background()

	conserved := func(step int, op string) {
		t.Helper()
		var sum int64
		for _, u := range users {
			sum += e.balance("u:" + e.uid(u))
		}
		for _, v := range vendors {
			sum += e.balance("v:" + v)
		}
		for _, w := range wallets {
			f, err := e.rdb.HMGet(ctx, e.a.certKey(w.cert.Serial), "tokens", "claimed", "unit", "rcredit", "settled").Result()
			if err != nil {
				t.Fatal(err)
			}
			if f[4] == "1" {
				continue
			}
			n, _ := strconv.ParseInt(f[0].(string), 10, 64)
			c, _ := strconv.ParseInt(f[1].(string), 10, 64)
			u, _ := strconv.ParseInt(f[2].(string), 10, 64)
			// A recovered certificate still holds what was not credited
			// back; claims beyond that were charged to the user.
			rc, _ := f[3].(string)
			r, _ := strconv.ParseInt(rc, 10, 64)
			sum += max(0, (n-c)*u-r)
		}
		if sum != credited {
			t.Fatalf("step %d (%s): balances and outstanding value %d, credited %d", step, op, sum, credited)
		}
		e.checkLedger()
	}

	for step := range 150 {
		op := ""
		switch r := rng.IntN(100); {
		case r < 15:
			u, amt := users[rng.IntN(len(users))], int64(rng.IntN(600)+1)
			op = fmt.Sprintf("credit %s %d", u, amt)
			_, err := e.as("Bearer "+adminToken).Credit(ctx, agentapi.Credit{User: u, Amount: amt})
			e.mustOK(err, op)
			credited += amt
		case r < 30:
			u := users[rng.IntN(len(users))]
			op = "buy " + u
			if w, code := e.tryBuy(uauth[u], rng.IntN(400)+1); code == 201 {
				wallets = append(wallets, w)
			} else if code != 402 {
				t.Fatalf("%s: %d", op, code)
			}
		case r < 80 && len(wallets) > 0:
			v := vendors[rng.IntN(len(vendors))]
			rep := payword.Report{Vendor: v, Batch: fmt.Sprint("b", step)}
			for range rng.IntN(5) + 1 {
				w := wallets[rng.IntN(len(wallets))]
				g := uint32(rng.IntN(int(w.cert.Segments)))
				i := uint32(rng.IntN(int(w.cert.SegmentLen)) + 1)
				bindTo := v
				if rng.IntN(10) == 0 {
					bindTo = ""
				}
				c := w.claim(g, i, 1, bindTo)
				if rng.IntN(10) == 0 {
					c.Token[0] ^= 1
				}
				rep.Claims = append(rep.Claims, c)
			}
			if len(sent) > 0 && rng.IntN(10) == 0 {
				rep = sent[rng.IntN(len(sent))] // redelivery
			}
			op = fmt.Sprintf("report %s %s", rep.Vendor, rep.Batch)
			res, code := e.report(vauth[rep.Vendor], rep.Vendor, rep.Batch, rep.Claims...)
			if code != 200 {
				t.Fatalf("%s: %d", op, code)
			}
			for _, r := range res.Results {
				seen[r.Verdict]++
			}
			sent = append(sent, rep)
		case r < 88:
			u := users[rng.IntN(len(users))]
			op = "recover " + u
			code, out, priv := e.recoverAs(uauth[u])
			if code == 429 { // once per recover_every
				seen["recover_too_often"]++
				break
			}
			if code != 200 {
				t.Fatalf("%s: %d", op, code)
			}
			seen["recovered"]++
			if out.Bundle != nil {
				wallets = append(wallets, walletFrom(t, out.Bundle, priv))
			}
		default:
			op = "time passes, settle"
			e.clock.Add(time.Duration(rng.IntN(20)) * 24 * time.Hour)
			e.settle()
		}
		conserved(step, op)
	}
	t.Logf("verdicts: %v; %d certificates", seen, len(wallets))
	for _, v := range []agentapi.Verdict{"paid", "duplicate", "double_spend", "vendor_fraud", "invalid", "recovered"} {
		if seen[v] == 0 {
			t.Errorf("the random walk never produced %s", v)
		}
	}
	// Per segment, no vendor was paid beyond its highest claimed index.
	for _, w := range wallets {
		his, _ := e.rdb.HGetAll(ctx, e.a.certKey(w.cert.Serial)+":hi").Result()
		for k, v := range his {
			if n, _ := strconv.Atoi(v); n > int(w.cert.SegmentLen) {
				t.Fatalf("%s %s paid up to %d > m", w.cert.Serial, k, n)
			}
		}
	}
}
