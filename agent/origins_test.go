package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// originsDoc fetches and opens vendor's published origins document.
func (e *env) originsDoc(vendor string) (*payword.VendorOrigins, string) {
	e.t.Helper()
	rec := e.raw("GET", "/v1/vendors/"+vendor+"/origins", "")
	if rec.Code != 200 {
		e.t.Fatalf("origins of %s: %d %s", vendor, rec.Code, rec.Body.String())
	}
	d, err := payword.OpenVendorOrigins(rec.Body.Bytes(), e.a.Keys())
	if err != nil {
		e.t.Fatalf("origins of %s: %v", vendor, err)
	}
	return d, rec.Header().Get("Cache-Control")
}

func TestVendorOriginsPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, admin := t.Context(), e.as("Bearer "+adminToken)
	reg, err := admin.RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: "planet",
		Origins: []string{"HTTPS://News.Example.com:443/", "http://127.0.0.1:8480"}})
	e.mustOK(err, "register with origins")
	if strings.Join(reg.Origins, " ") != "http://127.0.0.1:8480 https://news.example.com" {
		t.Fatalf("registration answered origins %q", reg.Origins)
	}
	d, cc := e.originsDoc("planet")
	if d.Vendor != "planet" || d.Kind != payword.OriginsKind || !d.Allows("https://news.example.com") || !d.Allows("http://127.0.0.1:8480") ||
		d.Allows("https://evil.example") || len(d.Origins) != 2 {
		t.Fatalf("document %+v", d)
	}
	if now := e.clock.Now().Unix(); d.Time != now || d.Expires != now+int64(originsTTL/time.Second) {
		t.Fatalf("document times %d..%d, now %d", d.Time, d.Expires, now)
	}
	if cc != "public, max-age=300" {
		t.Fatalf("Cache-Control %q", cc)
	}

	// The vendor changes them with its API token.
	planet := e.client().WithToken(reg.Token)
	set, err := planet.SetOrigins(ctx, "planet", []string{"https://planet.example"})
	e.mustOK(err, "update")
	if d, _ := e.originsDoc("planet"); strings.Join(d.Origins, " ") != "https://planet.example" || strings.Join(set.Origins, " ") != "https://planet.example" {
		t.Fatalf("after the update: %+v, answered %q", d, set.Origins)
	}
	// An empty list is allowed: no wallet pays the vendor then.
	_, err = planet.SetOrigins(ctx, "planet", nil)
	e.mustOK(err, "clear")
	if d, _ := e.originsDoc("planet"); len(d.Origins) != 0 {
		t.Fatalf("after clearing: %+v", d)
	}
	// A vendor registered without origins publishes an empty list.
	e.vendor("globe")
	if d, _ := e.originsDoc("globe"); len(d.Origins) != 0 || d.Origins == nil {
		t.Fatalf("vendor without origins: %+v", d)
	}
	// A revoked vendor is not published.
	_, err = admin.Revoke(ctx, agentapi.Revoke{Vendor: "globe"})
	e.mustOK(err, "revoke")
	_, _, err = e.client().VendorOrigins(ctx, "globe")
	if ae, ok := errors.AsType[*agentapi.Error](err); !ok || ae.Status != 404 || ae.Code != agentapi.CodeUnknownVendor {
		t.Fatalf("revoked vendor's origins: %v", err)
	}
}

// TestHostileOrigins: every bad origins request is refused with a precise
// 4xx and changes nothing.
func TestHostileOrigins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	e.vendor("globe")
	e.must(e.call("PUT", "/v1/vendors/planet/origins", va, map[string]any{"origins": []string{"https://planet.example"}}, nil), 200, "set")
	admin := "Bearer " + adminToken
	many := make([]string, payword.MaxOrigins+1)
	for i := range many {
		many[i] = "https://a" + strings.Repeat("a", i) + ".example"
	}
	reg := func(origins ...string) map[string]any { return map[string]any{"vendor": "evil", "origins": origins} }
	set := func(origins ...string) map[string]any { return map[string]any{"origins": origins} }
	cases := []refusal{
		{"ftp scheme", "POST", "/v1/vendors", admin, reg("ftp://evil.example"), 400, "invalid_origins"},
		{"javascript scheme", "POST", "/v1/vendors", admin, reg("javascript:alert(1)"), 400, "invalid_origins"},
		{"no scheme", "POST", "/v1/vendors", admin, reg("evil.example"), 400, "invalid_origins"},
		{"path", "POST", "/v1/vendors", admin, reg("https://evil.example/articles"), 400, "invalid_origins"},
		{"query", "POST", "/v1/vendors", admin, reg("https://evil.example?x"), 400, "invalid_origins"},
		{"userinfo", "POST", "/v1/vendors", admin, reg("https://planet.example@evil.example"), 400, "invalid_origins"},
		{"unicode host", "POST", "/v1/vendors", admin, reg("https://plаnet.example"), 400, "invalid_origins"},
		{"wildcard", "POST", "/v1/vendors", admin, reg("https://*.example"), 400, "invalid_origins"},
		{"bad port", "POST", "/v1/vendors", admin, reg("https://evil.example:99999"), 400, "invalid_origins"},
		{"too long", "POST", "/v1/vendors", admin, reg("https://" + strings.Repeat("a", 400) + ".example"), 400, "invalid_origins"},
		{"too many", "POST", "/v1/vendors", admin, reg(many...), 400, "invalid_origins"},
		{"one bad among good", "POST", "/v1/vendors", admin, reg("https://ok.example", "https://bad example"), 400, "invalid_origins"},
		{"not a list", "POST", "/v1/vendors", admin, `{"vendor":"evil","origins":"https://evil.example"}`, 400, "malformed"},
		{"not strings", "POST", "/v1/vendors", admin, `{"vendor":"evil","origins":[1]}`, 400, "malformed"},
		{"update: bad scheme", "PUT", "/v1/vendors/planet/origins", va, set("gopher://planet.example"), 400, "invalid_origins"},
		{"update: path", "PUT", "/v1/vendors/planet/origins", va, set("https://planet.example/x/"), 400, "invalid_origins"},
		{"update: userinfo", "PUT", "/v1/vendors/planet/origins", va, set("https://a:b@planet.example"), 400, "invalid_origins"},
		{"update: unicode", "PUT", "/v1/vendors/planet/origins", va, set("https://planet.exämple"), 400, "invalid_origins"},
		{"update: too many", "PUT", "/v1/vendors/planet/origins", va, set(many...), 400, "invalid_origins"},
		{"update: missing list", "PUT", "/v1/vendors/planet/origins", va, `{}`, 400, "invalid_origins"},
		{"update: null list", "PUT", "/v1/vendors/planet/origins", va, `{"origins":null}`, 400, "invalid_origins"},
		{"update: unknown field", "PUT", "/v1/vendors/planet/origins", va, `{"origins":[],"vendor":"globe"}`, 400, "malformed"},
		{"update: oversized", "PUT", "/v1/vendors/planet/origins", va, `{"origins":["` + strings.Repeat("a", maxBody) + `"]}`, 413, "too_large"},
		{"update: no token", "PUT", "/v1/vendors/planet/origins", "", set("https://evil.example"), 401, "unauthorized"},
		{"update: admin token", "PUT", "/v1/vendors/planet/origins", admin, set("https://evil.example"), 401, "unauthorized"},
		{"update: another vendor's", "PUT", "/v1/vendors/globe/origins", va, set("https://evil.example"), 403, "wrong_vendor"},
		{"publish: bad id", "GET", "/v1/vendors/a%20b/origins", "", nil, 400, "invalid_vendor"},
		{"publish: unknown vendor", "GET", "/v1/vendors/nobody/origins", "", nil, 404, "unknown_vendor"},
	}
	e.mustRefuse(t, cases)
	if o, err := e.a.vendorOrigins(context.Background(), "planet"); err != nil || strings.Join(o, " ") != "https://planet.example" {
		t.Fatalf("planet's origins after the attacks: %q %v", o, err)
	}
}

// FuzzOriginsRequest: the origins request parser never panics, and what it
// accepts is bounded and canonical.
func FuzzOriginsRequest(f *testing.F) {
	for _, s := range []string{`{"origins":["https://a.example"]}`, `{"origins":[]}`, `{"origins":["http://[::1]:80/"]}`,
		`{"origins":["https://u@h"]}`, `{"origins":null}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var q agentapi.Origins
		if unmarshalStrict(body, &q) != nil {
			return
		}
		out, err := canonicalOrigins(q.Origins)
		if err != nil {
			return
		}
		if len(out) > payword.MaxOrigins {
			t.Fatalf("accepted %d origins", len(out))
		}
		raw, _ := json.Marshal(out)
		for _, o := range out {
			if c, err := payword.ParseOrigin(o); err != nil || c != o {
				t.Fatalf("stored a non-canonical origin %q (%s)", o, raw)
			}
		}
	})
}
