package agent

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// handleMe shows a user its balance and active certificates.
func (a *Agent) handleMe(w http.ResponseWriter, r *http.Request) error {
	uid, err := a.userAuth(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	pending, next, err := a.applyRecoveredFor(ctx, uid) // a due recovery credit first
	if err != nil {
		return err
	}
	bal, err := a.rdb.HGet(ctx, a.prefix+"u:"+uid, "bal").Int64()
	if err != nil {
		return err
	}
	certs, err := a.rdb.SMembers(ctx, a.prefix+"ucerts:"+uid).Result()
	if err != nil {
		return err
	}
	out := map[string]any{"user": uid, "balance": bal, "currency": a.cfg.Currency, "certificates": certs, "pending_credit": pending}
	if next > 0 {
		out["pending_until"] = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleFraud lists the latest fraud cases for the admin.
func (a *Agent) handleFraud(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if n <= 0 || n > 1000 {
		n = 100
	}
	raw, err := a.rdb.LRange(r.Context(), a.prefix+"fraud", int64(-n), -1).Result()
	if err != nil {
		return err
	}
	cases := make([]json.RawMessage, len(raw))
	for i, s := range raw {
		cases[i] = json.RawMessage(s)
	}
	writeJSON(w, http.StatusOK, map[string]any{"cases": cases})
	return nil
}
