package agent

import (
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// FuzzRequestParsers feeds one body to every JSON request parser of the
// agent: none may panic, and whatever they accept must be within bounds.
func FuzzRequestParsers(f *testing.F) {
	for _, s := range []string{
		`{"tokens":10000,"public_key":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","scope":"*"}`,
		`{"username":"alice","password":"correct horse","info":{"email":"a@example.com"}}`,
		`{"user":"alice","amount":500,"event":"evt_1"}`,
		`{"serial":"c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"}`,
		`{"bind":"SFdCAQ"}`, `{"tokens":-1}`, `{"tokens":1e300}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p agentapi.Purchase
		if unmarshalStrict(body, &p) == nil {
			if upk, err := checkPurchase(&p, 1_000_000); err == nil && (p.Tokens < 1 || p.Tokens > 1_000_000 || len(upk) != 32) {
				t.Fatalf("accepted %+v", p)
			}
		}
		var u agentapi.RegisterUser
		if unmarshalStrict(body, &u) == nil && checkUser(&u) == nil {
			if !payword.ValidID(u.Username) || len(u.Password) < minPassword || len(u.Info) > maxInfoKeys {
				t.Fatalf("accepted %+v", u)
			}
		}
		var c agentapi.Credit
		if unmarshalStrict(body, &c) == nil && checkCredit(c) == nil && (c.Amount < 1 || c.Amount > maxCredit) {
			t.Fatalf("accepted %+v", c)
		}
		var ev agentapi.PaymentEvent
		if unmarshalStrict(body, &ev) == nil && checkCredit(agentapi.Credit{User: ev.User, Amount: ev.Amount, Event: ev.Event}) == nil &&
			(ev.Amount < 1 || ev.Amount > maxCredit) {
			t.Fatalf("accepted %+v", ev)
		}
		var r agentapi.Revoke
		_ = unmarshalStrict(body, &r)
		var b agentapi.Bind
		if unmarshalStrict(body, &b) == nil {
			_, _ = payword.ParseBinding(b.Bind)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "0", "1796083200", "2026-12-01T00:00:00Z", "-1", "99999999999999999999", "2026-13-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseTime(s, time.Unix(0, 0))
	})
}
