package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// crlPage: ARGV since, limit → {last, entries...}, read in one script so that
// Last is never below an entry's seq.
var crlPage = script(`
local last = tonumber(redis.call('GET', P .. 'crlseq') or '0')
local e = redis.call('ZRANGEBYSCORE', 'hw:crl', '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
table.insert(e, 1, last)
return e
`)

// CRLPage returns the signed page of revocations after since.
func (a *Agent) CRLPage(ctx context.Context, since uint64) (payword.Signed, error) {
	res, err := a.run(ctx, crlPage, since, payword.MaxCRLEntries).Slice()
	if err != nil {
		return payword.Signed{}, err
	}
	crl := payword.CRL{Since: since, Time: a.now().Unix(), Entries: make([]payword.CRLEntry, 0, len(res)-1)}
	crl.Last = uint64(res[0].(int64))
	for _, m := range res[1:] {
		var e payword.CRLEntry
		if s, ok := m.(string); ok && json.Unmarshal([]byte(s), &e) == nil {
			crl.Entries = append(crl.Entries, e)
		}
	}
	body, err := json.Marshal(crl)
	if err != nil {
		return payword.Signed{}, err
	}
	return payword.Seal(a.signer, body), nil
}

func (a *Agent) handleCRL(w http.ResponseWriter, r *http.Request) error {
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		var err error
		if since, err = strconv.ParseUint(s, 10, 63); err != nil {
			return fail(http.StatusBadRequest, "invalid_since", "since must be a sequence number")
		}
	}
	page, err := a.CRLPage(r.Context(), since)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

type keyJSON struct {
	KeyID  string        `json:"kid"`
	Public payword.Bytes `json:"public"`
}

func (a *Agent) handleKeys(w http.ResponseWriter, r *http.Request) error {
	keys := make([]keyJSON, 0, len(a.cfg.SigningKeys))
	for _, k := range a.cfg.SigningKeys {
		keys = append(keys, keyJSON{KeyID: k.ID, Public: payword.Bytes(k.Public())})
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
	return nil
}

// Revoke revokes one certificate; it reports whether it was active.
func (a *Agent) Revoke(ctx context.Context, s payword.Serial, reason string) (bool, error) {
	seq, err := a.run(ctx, revokeCert, s.String(), reason, a.now().Unix()).Int64()
	if err != nil || seq == 0 {
		return false, err
	}
	a.metrics.revocations.WithLabelValues(reason).Inc()
	a.log.Info("certificate revoked", zap.String("serial", s.String()), zap.String("reason", reason), zap.Int64("seq", seq))
	return true, nil
}

type revokeReq struct {
	Serial *payword.Serial `json:"serial,omitempty"`
	User   string          `json:"user,omitempty"` // username
	Vendor string          `json:"vendor,omitempty"`
}

func (a *Agent) handleAdminRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var q revokeReq
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	ctx := r.Context()
	switch {
	case q.Serial != nil && q.User == "" && q.Vendor == "":
		ok, err := a.Revoke(ctx, *q.Serial, "admin")
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"revoked": ok})
		return nil
	case q.Serial == nil && (q.User == "") != (q.Vendor == ""):
		acct := "v:" + q.Vendor
		if q.User != "" {
			uid, err := a.userID(ctx, q.User)
			if err != nil {
				return err
			}
			acct = "u:" + uid
		}
		n, err := a.run(ctx, revokeAccount, acct, a.now().Unix()).Int64()
		if err != nil {
			return err
		}
		if n < 0 {
			return fail(http.StatusNotFound, "unknown_account", "no such user or vendor")
		}
		a.metrics.revocations.WithLabelValues("admin").Add(float64(n))
		a.log.Info("account revoked", zap.String("account", acct), zap.Int64("certificates", n))
		writeJSON(w, http.StatusOK, map[string]any{"revoked": true, "certificates": n})
		return nil
	}
	return fail(http.StatusBadRequest, "malformed", "give exactly one of serial, user, vendor")
}
