package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// Vendor origins (docs/protocol.md; the endpoints in docs/agent-api.md): a vendor tells the bank the origins of its
// sites; the bank publishes them per vendor in a signed document, and a
// wallet pays a challenge only on an origin its vendor published.

const (
	// originsTTL is how long a signed origins document may be used: a
	// removed origin stops being paid by wallets within this time at most.
	originsTTL = time.Hour
	// originsMaxAge is the document's Cache-Control max-age (seconds), and
	// what wallets cache it for.
	originsMaxAge = 300
)

// canonicalOrigins validates a request's origins into their stored form.
func canonicalOrigins(list []string) ([]string, error) {
	out, err := payword.CanonicalOrigins(list)
	if err != nil {
		return nil, fail(http.StatusBadRequest, agentapi.CodeInvalidOrigins,
			"origins must be at most 16 scheme://host[:port] of http or https, ASCII hosts (xn-- for IDNs), no path, query or userinfo: "+err.Error())
	}
	return out, nil
}

func originsJSON(list []string) string {
	if list == nil {
		list = []string{}
	}
	raw, _ := json.Marshal(list)
	return string(raw)
}

// VendorOrigins returns the signed origins document of an active vendor, or
// a 404 for an unknown or revoked one.
func (a *Agent) VendorOrigins(ctx context.Context, vendor string) (payword.Signed, error) {
	if !payword.ValidID(vendor) {
		return payword.Signed{}, fail(http.StatusBadRequest, agentapi.CodeInvalidVendor, "vendor must be an id")
	}
	v, err := a.rdb.HMGet(ctx, a.prefix+"v:"+vendor, "status", "origins").Result()
	if err != nil {
		return payword.Signed{}, err
	}
	if s, _ := v[0].(string); s != "active" {
		return payword.Signed{}, fail(http.StatusNotFound, agentapi.CodeUnknownVendor, "no active vendor of that id")
	}
	var origins []string
	if s, _ := v[1].(string); s != "" {
		if err := json.Unmarshal([]byte(s), &origins); err != nil {
			return payword.Signed{}, errors.New("stored origins of " + vendor + " are not JSON")
		}
	}
	now := a.now()
	body, err := json.Marshal(payword.VendorOrigins{Kind: payword.OriginsKind, Vendor: vendor, Origins: append([]string{}, origins...),
		Time: now.Unix(), Expires: now.Add(originsTTL).Unix()})
	if err != nil {
		return payword.Signed{}, err
	}
	return payword.Seal(a.signer, body), nil
}

// handleOrigins publishes a vendor's origins: public, signed, cacheable.
func (a *Agent) handleOrigins(w http.ResponseWriter, r *http.Request) error {
	doc, err := a.VendorOrigins(r.Context(), r.PathValue("vendor"))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(originsMaxAge))
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// handleSetOrigins replaces the origins of the vendor whose API token
// authenticates the request. An empty list is allowed: no wallet pays the
// vendor then.
func (a *Agent) handleSetOrigins(w http.ResponseWriter, r *http.Request) error {
	vendor, err := a.vendorAuth(r)
	if err != nil {
		return err
	}
	if r.PathValue("vendor") != vendor {
		return fail(http.StatusForbidden, agentapi.CodeWrongVendor, "a vendor sets only its own origins")
	}
	var q agentapi.Origins
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	if q.Origins == nil {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidOrigins, `give "origins": a list, possibly empty`)
	}
	origins, err := a.setVendorOrigins(r.Context(), vendor, q.Origins)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agentapi.VendorOrigins{Vendor: vendor, Origins: origins})
	return nil
}

// setVendorOrigins validates and stores the origins of an authenticated
// vendor (the API's and the vendor's origins page), and returns them in
// their stored form.
func (a *Agent) setVendorOrigins(ctx context.Context, vendor string, list []string) ([]string, error) {
	origins, err := canonicalOrigins(list)
	if err != nil {
		return nil, err
	}
	// The caller authenticated the vendor, so its hash exists; vendors are
	// never deleted, so this one write cannot recreate a missing one.
	if err := a.rdb.HSet(ctx, a.prefix+"v:"+vendor, "origins", originsJSON(origins), "otime", a.now().Unix()).Err(); err != nil {
		return nil, err
	}
	a.log.Info("vendor origins set", zap.String("vendor", vendor), zap.Strings("origins", origins))
	return origins, nil
}

// vendorOrigins reads a vendor's stored origins (for tests and the admin).
func (a *Agent) vendorOrigins(ctx context.Context, vendor string) ([]string, error) {
	s, err := a.rdb.HGet(ctx, a.prefix+"v:"+vendor, "origins").Result()
	if err == redis.Nil || s == "" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	return out, json.Unmarshal([]byte(s), &out)
}
