package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

func TestCRLIncrementalAndSigned(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", 10000)
	var serials []payword.Serial
	for range 3 {
		w := e.buy(alice, 128)
		serials = append(serials, w.cert.Serial)
	}
	admin := e.as("Bearer " + adminToken)
	revoke := func(q agentapi.Revoke, what string) *agentapi.Revoked {
		r, err := admin.Revoke(t.Context(), q)
		e.mustOK(err, what)
		return r
	}
	if !revoke(agentapi.Revoke{Serial: &serials[0]}, "revoke cert").Revoked {
		t.Fatal("active certificate not revoked")
	}
	if r := revoke(agentapi.Revoke{User: "alice"}, "revoke user"); !r.Revoked || r.Certificates != 2 {
		t.Fatalf("revoke user: %+v", r)
	}
	if revoke(agentapi.Revoke{Serial: &serials[0]}, "revoke twice").Revoked {
		t.Fatal("revoked twice")
	}
	page := func(since string) *payword.CRL {
		rec := e.raw("GET", "/v1/crl?since="+since, "")
		crl, err := payword.OpenCRL(rec.Body.Bytes(), e.a.Keys())
		if err != nil {
			t.Fatal(err)
		}
		return crl
	}
	if cc := e.raw("GET", "/v1/keys", "").Header().Get("Cache-Control"); cc != "public, max-age=300" {
		t.Fatalf("keys Cache-Control %q", cc)
	}
	all := page("0")
	if all.Last != 3 || len(all.Entries) != 3 || all.Entries[0].Serial != serials[0] || all.Entries[0].Reason != "admin" {
		t.Fatalf("CRL %+v", all)
	}
	if n := len(page("2").Entries); n != 1 {
		t.Fatalf("since=2 gave %d entries", n)
	}
	// The zset members are the contract's JSON CRLEntry.
	m, _ := e.rdb.ZRangeByScore(t.Context(), agentapi.CRLKey, &redis.ZRangeBy{Min: "1", Max: "1"}).Result()
	var entry payword.CRLEntry
	if len(m) != 1 || json.Unmarshal([]byte(m[0]), &entry) != nil || entry.Serial != serials[0] || entry.Seq != 1 {
		t.Fatalf("hw:crl member %q", m)
	}
	// A revoked vendor can no longer report.
	va := e.vendor("planet")
	revoke(agentapi.Revoke{Vendor: "planet"}, "revoke vendor")
	if _, code := e.report(va, "planet", "b1", payword.Claim{}); code != 403 {
		t.Fatalf("revoked vendor reported: %d", code)
	}
	// A revoked user can neither log in nor buy.
	if _, code := e.tryBuy(alice, 1); code != 403 {
		t.Fatalf("revoked user bought: %d", code)
	}
	e.checkLedger()
}

// TestRevocationVisibleToSubscriber measures the time from an admin
// revocation to a gateway-style subscriber receiving it (≤ 1 s required).
func TestRevocationVisibleToSubscriber(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.buy(e.user("alice", 1000), 128)
	sub := e.rdb.Subscribe(t.Context(), agentapi.CRLChannel)
	defer sub.Close()
	if _, err := sub.Receive(t.Context()); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	start := time.Now()
	if ok, err := e.a.Revoke(t.Context(), w.cert.Serial, "admin"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	select {
	case msg := <-sub.Channel():
		elapsed := time.Since(start)
		var entry payword.CRLEntry
		if err := json.Unmarshal([]byte(msg.Payload), &entry); err != nil || entry.Serial != w.cert.Serial {
			t.Fatalf("published %q", msg.Payload)
		}
		t.Logf("revocation visible to subscriber after %v", elapsed)
		if elapsed > time.Second {
			t.Fatalf("revocation took %v", elapsed)
		}
	case <-time.After(time.Second):
		t.Fatal("revocation not published within 1s")
	}
}
