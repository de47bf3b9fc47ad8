package agent

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// hostedVerifier checks hosted payments as a gateway would: every check of
// the protocol, with the vendor's state per (serial, segment).
type hostedVerifier struct {
	t     testing.TB
	v     *payword.Verifier
	mu    sync.Mutex
	state map[string]payword.State // "<serial>/<g>"
	owner map[string]string        // "<serial>/<g>" → vendor
}

func newHostedVerifier(t testing.TB) *hostedVerifier {
	return &hostedVerifier{t: t, v: payword.NewVerifier(payword.KeySet{testKey.ID: testKey.Public()}),
		state: map[string]payword.State{}, owner: map[string]string{}}
}

// accept verifies a payment for o at now and advances the vendor's state.
func (hv *hostedVerifier) accept(b64pay string, o *payOrder, now time.Time) *payword.Payment {
	hv.t.Helper()
	p, err := payword.ParseAuthorization("PayWord " + b64pay)
	if err != nil {
		hv.t.Fatalf("payment does not parse: %v", err)
	}
	key := fmt.Sprintf("%s/%d", p.Cert.Serial, p.Segment)
	hv.mu.Lock()
	defer hv.mu.Unlock()
	var last *payword.State
	if s, ok := hv.state[key]; ok {
		last = &s
	}
	st, err := hv.v.Verify(p, payword.Request{Vendor: o.Vendor, Product: o.Product, Price: o.Price, Now: now}, last)
	if err != nil {
		hv.t.Fatalf("payment %s i=%d p=%d refused: %v", key, p.Index, p.Amount, err)
	}
	if err := payword.CheckSegment(p); err != nil {
		hv.t.Fatalf("segment proof: %v", err)
	}
	if v, ok := hv.owner[key]; ok && v != o.Vendor {
		hv.t.Fatalf("segment %s paid to %s and %s", key, v, o.Vendor)
	}
	hv.owner[key], hv.state[key] = o.Vendor, st
	return p
}

func hostedOrder(vendor, product string, price uint32) *payOrder {
	return &payOrder{Vendor: vendor, Product: product, Price: price, Origin: "https://" + vendor + ".example",
		Return: "https://" + vendor + ".example" + product, ReturnPath: product}
}

func TestHostedPay(t *testing.T) {
	e := newEnv(t)
	e.vendor("daily")
	e.vendor("weekly")
	e.user("ann", 300) // two segments of 128
	uid := e.uid("ann")
	ctx := context.Background()
	hv := newHostedVerifier(t)

	daily := hostedOrder("daily", "/a", 3)
	pay := func(o *payOrder, auto bool, idem string) (string, error) {
		return e.a.hostedPay(ctx, uid, o, auto, idem)
	}

	first, err := pay(daily, false, "c1")
	if err != nil {
		t.Fatal(err)
	}
	p1 := hv.accept(first, daily, e.clock.Now())
	if p1.Index != 3 || p1.Amount != 3 || p1.Binding == nil {
		t.Fatalf("first payment: i=%d p=%d bind=%v", p1.Index, p1.Amount, p1.Binding != nil)
	}
	if again, _ := pay(daily, false, "c1"); again != first {
		t.Fatal("a repeated reservation is not the same payment")
	}

	if e.balance("u:"+uid) != 300-256 {
		t.Fatalf("balance %d: the wallet should have bought two segments", e.balance("u:"+uid))
	}
	e.clock.Add(2 * hostedIdle)
	second, _ := pay(hostedOrder("daily", "/b", 2), false, "c2")
	p2 := hv.accept(second, hostedOrder("daily", "/b", 2), e.clock.Now())
	if p2.Segment != p1.Segment || p2.Index != 5 {
		t.Fatalf("an idle segment takes the next payment at its vendor: g=%d i=%d", p2.Segment, p2.Index)
	}
	weekly := hostedOrder("weekly", "/w", 1)
	w1, _ := pay(weekly, false, "c3")
	if pw := hv.accept(w1, weekly, e.clock.Now()); pw.Segment == p1.Segment {
		t.Fatal("two vendors got one segment")
	}

	// Automatic payments: only within the site's daily limit.
	if _, err := pay(hostedOrder("daily", "/c", 1), true, "a1"); !errors.Is(err, errOverLimit) {
		t.Fatalf("no limit set: %v, want errOverLimit", err)
	}
	e.rdb.HSet(ctx, e.a.prefix+"lim:"+uid, limitField("daily", "https://daily.example"), 7)
	if _, err := pay(hostedOrder("daily", "/c", 2), true, "a2"); err != nil { // 5 + 2 = 7
		t.Fatal(err)
	}
	if _, err := pay(hostedOrder("daily", "/d", 1), true, "a3"); !errors.Is(err, errOverLimit) {
		t.Fatalf("over the limit: %v, want errOverLimit", err)
	}

	// Both segments bound, nothing left to buy with: no tokens.
	if _, err := pay(hostedOrder("monthly", "/m", 1), false, "c4"); !errors.Is(err, errNoFunds) {
		t.Fatalf("a third vendor with no segment free and no balance: %v", err)
	}
	free, bound, err := e.a.hostedBalance(ctx, uid)
	if err != nil || free != 0 || bound != 2*128-8 {
		t.Fatalf("hosted balance free=%d bound=%d err=%v", free, bound, err)
	}
	hist, _ := e.a.hostedPayments(ctx, uid, 10)
	if len(hist) != 4 || hist[0].Product != "/c" || hist[3].Product != "/a" {
		t.Fatalf("history %+v", hist)
	}

	// A restarted agent (empty caches) continues the same chains.
	e.restartAgent()
	e.rdb.HSet(ctx, e.a.prefix+"lim:"+uid, limitField("daily", "https://daily.example"), 100)
	e.clock.Add(2 * hostedIdle)
	next, err := e.a.hostedPay(ctx, uid, hostedOrder("daily", "/e", 1), true, "a4")
	if err != nil {
		t.Fatal(err)
	}
	if p := hv.accept(next, hostedOrder("daily", "/e", 1), e.clock.Now()); p.Index != 8 {
		t.Fatalf("after a restart: i=%d, want 8", p.Index)
	}
}

// TestHostedRepeat: a repeat of a reservation within hostedRepeat is the
// same payment; a minute on it is a new one, since the gateway may have
// dropped the first payment's record with its short grant and would answer
// the same payment as already spent.
func TestHostedRepeat(t *testing.T) {
	e := newEnv(t)
	e.vendor("daily")
	e.user("ann", 200)
	uid := e.uid("ann")
	hv := newHostedVerifier(t)
	o := hostedOrder("daily", "/live", 3)
	pay := func() string {
		t.Helper()
		p, err := e.a.hostedPay(context.Background(), uid, o, false, "c1")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := pay()
	e.clock.Add(hostedRepeat - time.Second)
	if pay() != first {
		t.Fatal("a repeat within the minute is not the same payment")
	}
	e.clock.Add(time.Second)
	later := pay()
	if later == first {
		t.Fatal("a repeat a minute later is the same payment")
	}
	if p := hv.accept(first, o, e.clock.Now()); p.Index != 3 {
		t.Fatalf("first: i=%d", p.Index)
	}
	if p := hv.accept(later, o, e.clock.Now()); p.Index != 6 {
		t.Fatalf("a minute later: i=%d, want the next tokens, 6", p.Index)
	}
}

// TestHostedConcurrent races 64 payers of one account at three vendors:
// no token is handed out twice, no segment goes to two vendors, and the
// tokens spent are the sum of the prices paid.
func TestHostedConcurrent(t *testing.T) {
	e := newEnv(t)
	vendors := []string{"v1", "v2", "v3"}
	for _, v := range vendors {
		e.vendor(v)
	}
	e.user("ann", 1_000_000)
	uid := e.uid("ann")
	const payers, each = 64, 20
	type paid struct {
		p *payword.Payment
		o *payOrder
	}
	var mu sync.Mutex
	var all []paid
	var wg sync.WaitGroup
	errs := make(chan error, payers)
	for w := range payers {
		wg.Go(func() {
			for k := range each {
				o := hostedOrder(vendors[(w+k)%3], fmt.Sprintf("/p/%d/%d", w, k), uint32(1+(w+k)%5))
				hdr, err := e.a.hostedPay(context.Background(), uid, o, false, fmt.Sprintf("w%d-%d", w, k))
				if err != nil {
					errs <- err
					return
				}
				p, err := payword.ParseAuthorization("PayWord " + hdr)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				all = append(all, paid{p, o})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[tokenAt]bool{}
	owner := map[tokenAt]string{} // segment (i = 0) → vendor
	var prices, spent int
	for _, x := range all {
		prices += int(x.o.Price)
		if x.p.Amount != x.o.Price || x.p.Vendor != x.o.Vendor || x.p.Product != x.o.Product {
			t.Fatalf("payment %+v for order %+v", x.p, x.o)
		}
		seg := tokenAt{x.p.Cert.Serial, x.p.Segment, 0}
		if v, ok := owner[seg]; ok && v != x.o.Vendor {
			t.Fatalf("segment %v paid to %s and %s", seg, v, x.o.Vendor)
		}
		owner[seg] = x.o.Vendor
		for i := x.p.Index - x.p.Amount + 1; i <= x.p.Index; i++ {
			k := tokenAt{x.p.Cert.Serial, x.p.Segment, i}
			if seen[k] {
				t.Fatalf("token %v handed out twice", k)
			}
			seen[k] = true
			spent++
		}
		if got := payword.TokenAt(e.a.mustHosted(t, x.p.Cert.Serial).k, x.p.Segment, int(x.p.Index), int(x.p.Cert.SegmentLen)); got != x.p.Token {
			t.Fatal("a payment's token is not its chain's")
		}
	}
	if len(all) != payers*each || spent != prices {
		t.Fatalf("%d payments, %d tokens spent, %d paid", len(all), spent, prices)
	}
	// Each segment's payments, delivered in the order of their indexes,
	// verify as a gateway verifies them.
	hv := newHostedVerifier(t)
	slices.SortFunc(all, func(x, y paid) int {
		return cmp.Or(bytes.Compare(x.p.Cert.Serial[:], y.p.Cert.Serial[:]), cmp.Compare(x.p.Segment, y.p.Segment), cmp.Compare(x.p.Index, y.p.Index))
	})
	for _, x := range all {
		hv.accept(strings.TrimPrefix(x.p.Header(), "PayWord "), x.o, e.clock.Now())
	}
}

func (a *Agent) mustHosted(t testing.TB, s payword.Serial) *hostedCert {
	hc, err := a.hostedCert(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}
