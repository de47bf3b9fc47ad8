package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hashwall/hashwall/agentapi"
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
	out := agentapi.Account{User: uid, Balance: bal, Currency: a.cfg.Currency, Certificates: certs,
		PendingCredit: pending, PendingUntil: next}
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
	cases, err := a.fraudRange(r.Context(), int64(-n), -1)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agentapi.FraudCases{Cases: cases})
	return nil
}

// fraudRange decodes the bank's fraud cases start to stop (LRANGE
// indexes: the list is oldest first, -1 the newest).
func (a *Agent) fraudRange(ctx context.Context, start, stop int64) ([]agentapi.FraudCase, error) {
	raw, err := a.rdb.LRange(ctx, a.prefix+"fraud", start, stop).Result()
	if err != nil {
		return nil, err
	}
	cases := make([]agentapi.FraudCase, len(raw))
	for i, s := range raw {
		if err := json.Unmarshal([]byte(s), &cases[i]); err != nil {
			return nil, fmt.Errorf("fraud case %q: %w", s, err)
		}
	}
	return cases, nil
}
