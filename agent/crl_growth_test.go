package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// crlPageAt fetches and decodes /v1/crl?since= from remote address addr.
func (e *env) crlPageAt(since uint64, addr, auth string) (*payword.CRL, *httptest.ResponseRecorder) {
	e.t.Helper()
	req := httptest.NewRequest("GET", fmt.Sprintf("/v1/crl?since=%d", since), nil)
	req.RemoteAddr = addr
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.a.ServeHTTP(rec, req)
	if rec.Code != 200 {
		return nil, rec
	}
	crl, err := payword.OpenCRL(rec.Body.Bytes(), e.a.Keys())
	if err != nil {
		e.t.Fatal(err)
	}
	return crl, rec
}

// fakeCerts records n active certificates expiring at exp directly in the
// agent's store, and returns their serials: revocations need nothing else.
func (e *env) fakeCerts(n int, exp int64, tag byte) []payword.Serial {
	e.t.Helper()
	out := make([]payword.Serial, n)
	pipe := e.rdb.Pipeline()
	for i := range out {
		out[i][0], out[i][1], out[i][2] = tag, byte(i>>8), byte(i)
		pipe.HSet(context.Background(), e.a.certKey(out[i]), "user", "nobody", "status", "active", "exp", exp)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// The list is served in pages of at most payword.MaxCRLEntries with a
// next cursor; each page binds the question, the head and the time.
func TestCRLPaged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	exp := e.clock.Now().Add(time.Hour).Unix()
	serials := e.fakeCerts(payword.MaxCRLEntries+5, exp, 0xa0)
	for _, s := range serials {
		if ok, err := e.a.Revoke(t.Context(), s, "admin"); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	first, rec := e.crlPageAt(0, "192.0.2.1:1000", "")
	if first == nil {
		t.Fatalf("page: %d %s", rec.Code, rec.Body)
	}
	t.Logf("a full page is %d bytes", rec.Body.Len())
	if len(first.Entries) != payword.MaxCRLEntries || first.Complete() || first.Since != 0 ||
		first.Next != first.Entries[len(first.Entries)-1].Seq || first.Last != uint64(len(serials)) ||
		first.Time != e.clock.Now().Unix() || first.Entries[0].Exp != exp || rec.Body.Len() > 256<<10 {
		t.Fatalf("first page: %d entries, since %d next %d last %d time %d, %d bytes",
			len(first.Entries), first.Since, first.Next, first.Last, first.Time, rec.Body.Len())
	}
	second, _ := e.crlPageAt(first.Next, "192.0.2.1:1000", "")
	if len(second.Entries) != 5 || !second.Complete() || second.Since != first.Next {
		t.Fatalf("second page: %d entries, since %d next %d last %d", len(second.Entries), second.Since, second.Next, second.Last)
	}
	cur, err := payword.CRLCursor{}.Accept(first, e.clock.Now(), time.Minute)
	if err == nil {
		cur, err = cur.Accept(second, e.clock.Now(), time.Minute)
	}
	if err != nil || cur.Since != second.Last {
		t.Fatalf("cursor %+v, %v", cur, err)
	}
	// A since beyond the head: answered, and refused by a client.
	ahead, _ := e.crlPageAt(second.Last+10, "192.0.2.1:1000", "")
	if _, err := (payword.CRLCursor{Since: second.Last + 10, Last: second.Last + 10}).Accept(ahead, e.clock.Now(), time.Minute); err == nil {
		t.Fatal("a head behind the client was accepted")
	}
}

// A recovery loop fills the list, but every entry carries its
// certificate's expiry and leaves the list (and its index) once that has
// passed by payword.CRLKeep: new revocations prune a few, the settlement
// run the rest.
func TestCRLEntriesExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", 100000)
	for range 20 { // the recovery loop of issue 9
		e.buy(alice, 128)
		code, _, _ := e.recoverAs(alice)
		e.must(code, 200, "recover")
		e.clock.Add(time.Duration(e.a.cfg.RecoverEvery)) // an account recovers once per RecoverEvery
	}
	n, _ := e.rdb.ZCard(t.Context(), agentapi.CRLKey).Result()
	if n < 20 {
		t.Fatalf("%d revocations after 20 recoveries", n)
	}
	page, _ := e.crlPageAt(0, "192.0.2.1:1", "")
	for _, x := range page.Entries {
		if x.Exp <= e.clock.Now().Unix() {
			t.Fatalf("entry without its certificate's expiry: %+v", x)
		}
	}

	// Past expiry + CRLKeep: two new revocations drop four old entries.
	e.clock.Add(time.Duration(e.a.cfg.CertTTL) + payword.CRLKeep + time.Minute)
	fresh := e.fakeCerts(2, e.clock.Now().Add(time.Hour).Unix(), 0xb0)
	for _, s := range fresh {
		if ok, err := e.a.Revoke(t.Context(), s, "admin"); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if m, _ := e.rdb.ZCard(t.Context(), agentapi.CRLKey).Result(); m != n+2-4 {
		t.Fatalf("%d entries after two revocations, want %d", m, n+2-4)
	}
	if _, _, err := e.a.SettleExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	page, _ = e.crlPageAt(0, "192.0.2.1:1", "")
	if len(page.Entries) != 2 || page.Entries[0].Serial != fresh[0] || page.Last != uint64(n)+2 || !page.Complete() {
		t.Fatalf("after settlement: %+v", page)
	}
	if m, _ := e.rdb.ZCard(t.Context(), e.a.prefix+"crlexp").Result(); m != 2 {
		t.Fatalf("%d entries in the expiry index", m)
	}
	e.checkLedger()
}

// GET /v1/crl is rate-limited per client address (IPv6 per /64), and per
// vendor for requests with a vendor's token; an invalid token counts as
// anonymous.
func TestCRLRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	vendor := e.vendor("planet")
	code := func(addr, auth string) int {
		_, rec := e.crlPageAt(0, addr, auth)
		if rec.Code == http.StatusTooManyRequests && rec.Header().Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		return rec.Code
	}
	burst := func(addr, auth string) int {
		n := 0
		for range 2000 {
			if code(addr, auth) != 200 {
				break
			}
			n++
		}
		return n
	}
	if n := burst("198.51.100.7:4000", ""); n != crlAnonBurst { // the test clock stands still
		t.Fatalf("an address got %d pages in a burst, want %d", n, crlAnonBurst)
	}
	if c := code("198.51.100.7:4001", ""); c != http.StatusTooManyRequests {
		t.Fatalf("same address, another port: %d", c)
	}
	if c := code("198.51.100.8:4000", ""); c != 200 {
		t.Fatalf("another address: %d", c)
	}
	if n := burst("[2001:db8::1]:1", ""); n < crlAnonBurst {
		t.Fatalf("v6: %d", n)
	}
	if c := code("[2001:db8::ffff]:1", ""); c != http.StatusTooManyRequests {
		t.Fatalf("same /64: %d", c)
	}
	if c := code("198.51.100.7:4000", "Bearer hwv_wrong"); c != http.StatusTooManyRequests {
		t.Fatalf("a wrong token: %d", c)
	}
	if n := burst("198.51.100.7:4000", vendor); n != crlVendorBurst {
		t.Fatalf("the vendor got %d pages", n)
	}
	// Buckets refill at their rate.
	e.clock.Add(time.Second)
	if n := burst("198.51.100.7:4000", ""); n != crlAnonRate {
		t.Fatalf("%d pages a second later", n)
	}
}

// The bucket map stays bounded whatever the number of addresses, and a
// flood of new addresses never refills a limited one.
func TestRateLimiterBounded(t *testing.T) {
	t.Parallel()
	l := newRateLimiter(1, 2, 100)
	now := time.Unix(1000, 0)
	for range 2 {
		if ok, _ := l.allow("victim", now); !ok {
			t.Fatal("burst")
		}
	}
	for i := range 10000 {
		l.allow(fmt.Sprint("flood", i), now.Add(time.Duration(i)*time.Microsecond))
	}
	if len(l.m) > 100 {
		t.Fatalf("%d buckets", len(l.m))
	}
	if ok, wait := l.allow("victim", now.Add(10*time.Millisecond)); ok || wait <= 0 {
		t.Fatal("the flood refilled a limited bucket")
	}
	if ok, _ := l.allow("victim", now.Add(2*time.Second)); !ok {
		t.Fatal("no refill")
	}
}

// /v1/keys announces every key signed by each of them: a gateway trusting
// the old key learns the new one; nothing else can be learnt.
func TestKeysAnnouncedForRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	next := payword.SigningKey{ID: "agent-next", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))}
	e.cfg.SigningKeys = []payword.SigningKey{next, testKey}
	e.restartAgent()
	out, err := e.client().Keys(t.Context())
	if err != nil || len(out.Keys) != 2 || len(out.Signed) != 2 {
		t.Fatalf("/v1/keys: %+v, %v", out, err)
	}
	learnt, err := payword.OpenKeys(out.Signed, payword.KeySet{testKey.ID: testKey.Public()})
	if err != nil || !learnt[next.ID].Equal(next.Public()) {
		t.Fatalf("learnt %v, %v", learnt, err)
	}
}

// The Lua prelude prunes with the same margin as payword.CRLKeep.
func TestCRLKeepInLua(t *testing.T) {
	t.Parallel()
	if !strings.Contains(luaPrelude, fmt.Sprintf("pruneCRL(t - %d, 2)", int(payword.CRLKeep/time.Second))) {
		t.Fatal("the prelude's pruning margin is not payword.CRLKeep")
	}
}
