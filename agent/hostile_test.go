package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// TestHostileRequests: each is refused with a precise 4xx and changes nothing.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	e.vendor("globe")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 128)
	pk := b64.EncodeToString(w.cert.UserKey[:])
	big := strings.Repeat("x", maxBody+1)
	bigReport := []byte(`{"vendor":"planet","batch":"b","claims":[` + strings.Repeat(" ", payword.MaxReportSize) + `]}`)
	unknown := w.claim(0, 1, 1, "planet")
	unknown.Serial[0] ^= 1
	cases := []refusal{
		{"wrong password", "POST", "/v1/sessions", "", map[string]string{"username": "alice", "password": "wrong horse"}, 401, "invalid_credentials"},
		{"unknown user", "POST", "/v1/sessions", "", map[string]string{"username": "mallory", "password": "correct horse"}, 401, "invalid_credentials"},
		{"basic auth wrong password", "POST", "/v1/certificates", "Basic " + b64std("alice:nope"), map[string]any{"tokens": 1, "public_key": pk}, 401, "invalid_credentials"},
		{"no session", "POST", "/v1/certificates", "Bearer hws_nope", map[string]any{"tokens": 1, "public_key": pk}, 401, "unauthorized"},
		{"negative N", "POST", "/v1/certificates", alice, map[string]any{"tokens": -5, "public_key": pk}, 400, "invalid_tokens"},
		{"zero N", "POST", "/v1/certificates", alice, map[string]any{"tokens": 0, "public_key": pk}, 400, "invalid_tokens"},
		{"huge N", "POST", "/v1/certificates", alice, map[string]any{"tokens": 1 << 40, "public_key": pk}, 400, "invalid_tokens"},
		{"N beyond int64", "POST", "/v1/certificates", alice, `{"tokens":1e30,"public_key":"` + pk + `"}`, 400, "malformed"},
		{"N over balance", "POST", "/v1/certificates", alice, map[string]any{"tokens": 1000, "public_key": pk}, 402, "insufficient_funds"},
		{"bad public key", "POST", "/v1/certificates", alice, map[string]any{"tokens": 1, "public_key": "AAAA"}, 400, "invalid_public_key"},
		{"unknown scope", "POST", "/v1/certificates", alice, map[string]any{"tokens": 1, "public_key": pk, "scope": "nobody"}, 400, "unknown_vendor"},
		{"malformed JSON", "POST", "/v1/certificates", alice, `{"tokens":`, 400, "malformed"},
		{"unknown field", "POST", "/v1/certificates", alice, `{"tokens":1,"public_key":"` + pk + `","free":true}`, 400, "malformed"},
		{"trailing data", "POST", "/v1/users", "", `{"username":"bob","password":"12345678"} {}`, 400, "malformed"},
		{"oversized JSON", "POST", "/v1/users", "", `{"username":"bob","password":"` + big + `"}`, 413, "too_large"},
		{"duplicate username", "POST", "/v1/users", "", map[string]string{"username": "alice", "password": "another one"}, 409, "username_taken"},
		{"short password", "POST", "/v1/users", "", map[string]string{"username": "bob", "password": "short"}, 400, "invalid_password"},
		{"vendor registration without admin", "POST", "/v1/vendors", "", map[string]string{"vendor": "evil"}, 401, "unauthorized"},
		{"report of another vendor", "POST", "/v1/reports", va, payword.Report{Vendor: "globe", Batch: "b", Claims: []payword.Claim{w.claim(0, 1, 1, "globe")}}, 403, "wrong_vendor"},
		{"report without token", "POST", "/v1/reports", "", payword.Report{Vendor: "planet", Batch: "b", Claims: []payword.Claim{w.claim(0, 1, 1, "planet")}}, 401, "unauthorized"},
		{"report with admin token", "POST", "/v1/reports", "Bearer " + adminToken, payword.Report{Vendor: "planet", Batch: "b", Claims: []payword.Claim{w.claim(0, 1, 1, "planet")}}, 401, "unauthorized"},
		{"malformed report", "POST", "/v1/reports", va, `{"vendor":"planet","batch":"b","claims":[{"serial":"zz"}]}`, 400, "malformed"},
		{"empty report", "POST", "/v1/reports", va, `{"vendor":"planet","batch":"b","claims":[]}`, 400, "malformed"},
		{"oversized report", "POST", "/v1/reports", va, bigReport, 413, "too_large"},
		{"credit without admin", "POST", "/v1/admin/credit", alice, map[string]any{"user": "alice", "amount": 5}, 401, "unauthorized"},
		{"negative credit", "POST", "/v1/admin/credit", "Bearer " + adminToken, map[string]any{"user": "alice", "amount": -5}, 400, "invalid_credit"},
		{"credit unknown user", "POST", "/v1/admin/credit", "Bearer " + adminToken, map[string]any{"user": "mallory", "amount": 5}, 404, "unknown_user"},
		{"bad CRL since", "GET", "/v1/crl?since=-1", "", nil, 400, "invalid_since"},
		{"unknown path", "GET", "/v1/nothing", "", nil, 404, "no_route"},
		{"wrong method", "DELETE", "/v1/reports", va, nil, 405, "no_route"},
		{"unsigned webhook", "POST", "/v1/webhooks/payment", "", map[string]any{"user": "alice", "amount": 5, "event": "e1"}, 401, "bad_signature"},
	}
	e.mustRefuse(t, cases)
	// Reports for unknown serials: the contract's per-claim verdict, nothing stored.
	before := e.snapshot()
	e.expectReport("unknown_certificate:0", va, "planet", "u1", unknown)
	if e.snapshot() != before {
		t.Fatal("a report of unknown serials changed the store")
	}
	e.checkLedger()
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestWebhookCreditsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("alice", 0)
	body := []byte(`{"user":"alice","amount":500,"event":"evt_1"}`)
	send := func(b []byte, secret string) int {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(b)
		req := httptest.NewRequest("POST", "/v1/webhooks/payment", bytes.NewReader(b))
		req.Header.Set(agentapi.SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
		rec := httptest.NewRecorder()
		e.a.ServeHTTP(rec, req)
		return rec.Code
	}
	e.must(send(body, "whsec"), 200, "webhook")
	e.must(send(body, "whsec"), 200, "redelivered webhook")
	e.must(send(body, "other"), 401, "wrong secret")
	e.must(send([]byte(`{"user":"alice","amount":500,"event":"evt_2"}`), "whsec"), 200, "second event")
	if got := e.balance("u:" + e.uid("alice")); got != 1000 {
		t.Fatalf("balance %d, want 1000", got)
	}
	e.checkLedger()
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("alice", 0)
	login := func(pw string) int {
		return e.call("POST", "/v1/sessions", "", map[string]string{"username": "alice", "password": pw}, nil)
	}
	for range maxFailures {
		e.must(login("wrong horse"), 401, "wrong password")
	}
	e.must(login("correct horse"), 429, "throttled, even with the right password")
	e.must(e.call("POST", "/v1/sessions", "", map[string]string{"username": "bob", "password": "x"}, nil), 401, "other user")
	e.clock.Add(failureWindow)
	e.must(login("correct horse"), 200, "after the window")
}

func TestTokenRotationAndLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	var out struct{ Token string }
	e.must(e.call("POST", "/v1/token", va, nil, &out), 200, "rotate")
	e.must(e.call("GET", "/v1/statement", va, nil, nil), 401, "old token")
	e.must(e.call("GET", "/v1/statement", "Bearer "+out.Token, nil, nil), 200, "new token")

	// With a grace period the replaced token keeps working until it ends,
	// so the vendor's gateways can be given the new one without a gap.
	ctx := context.Background()
	rot, err := e.as("Bearer "+out.Token).RotateToken(ctx, time.Second)
	e.mustOK(err, "rotate with grace")
	if rot.OldValidUntil < e.clock.Now().Unix()+1 {
		t.Fatalf("old_valid_until %d", rot.OldValidUntil)
	}
	if _, err := e.as("Bearer "+out.Token).Statement(ctx, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("the replaced token within its grace: %v", err)
	}
	if _, err := e.as("Bearer "+rot.Token).Statement(ctx, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("the new token: %v", err)
	}
	time.Sleep(2100 * time.Millisecond) // Redis expires the old token
	e.must(e.call("GET", "/v1/statement", "Bearer "+out.Token, nil, nil), 401, "old token after its grace")
	for _, body := range []string{`{"grace_seconds":-1}`, `{"grace_seconds":604801}`, `{"grace":1}`} {
		e.must(e.call("POST", "/v1/token", "Bearer "+rot.Token, []byte(body), nil), 400, "bad grace "+body)
	}

	alice := e.user("alice", 0)
	e.must(e.call("GET", "/v1/me", alice, nil, nil), 200, "session")
	e.must(e.call("DELETE", "/v1/sessions", alice, nil, nil), 204, "logout")
	e.must(e.call("GET", "/v1/me", alice, nil, nil), 401, "after logout")
	e.must(e.call("DELETE", "/v1/sessions", alice, nil, nil), 401, "logout twice")
}
