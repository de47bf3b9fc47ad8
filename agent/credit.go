package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

const maxCredit = 1 << 40

// checkCredit validates a credit of the admin (q) or of the webhook.
func checkCredit(q agentapi.Credit) error {
	if q.Amount < 1 || q.Amount > maxCredit || !payword.ValidID(q.User) ||
		(q.Ref != "" && !payword.ValidID(q.Ref)) || (q.Event != "" && !payword.ValidID(q.Event)) {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidCredit, "credit needs a username, an amount in 1..2^40 and id-shaped ref/event")
	}
	return nil
}

// Credit adds amount to a user's balance: step B of a purchase. event makes
// it idempotent; a credit with an event id seen before reports false.
func (a *Agent) Credit(ctx context.Context, username string, amount int64, kind, ref, event string) (bool, error) {
	uid, err := a.userID(ctx, username)
	if err != nil {
		return false, err
	}
	res, err := a.run(ctx, credit, "u:"+uid, amount, kind, ref, a.now().Unix(), event).Text()
	if err != nil {
		return false, err
	}
	switch res {
	case "ok":
		a.log.Info("balance credited", zap.String("user", uid), zap.Int64("amount", amount), zap.String("kind", kind))
		return true, nil
	case "duplicate":
		return false, nil
	}
	return false, fail(http.StatusNotFound, agentapi.CodeUnknownUser, "no such user")
}

func (a *Agent) handleAdminCredit(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var q agentapi.Credit
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	if _, err := a.adminCredit(r.Context(), q); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agentapi.Credited{Credited: q.Amount})
	return nil
}

// adminCredit is an operator's credit (POST /v1/admin/credit and the
// operator's credit page); it reports false for an event id seen before.
func (a *Agent) adminCredit(ctx context.Context, q agentapi.Credit) (bool, error) {
	if err := checkCredit(q); err != nil {
		return false, err
	}
	if q.Ref == "" {
		q.Ref = "admin"
	}
	return a.Credit(ctx, q.User, q.Amount, "admin_credit", q.Ref, q.Event)
}

// handleWebhook is where a payment processor reports a completed payment:
// the body is signed with the shared secret and credited once per event id.
func (a *Agent) handleWebhook(w http.ResponseWriter, r *http.Request) error {
	if len(a.cfg.WebhookSecret) == 0 {
		return fail(http.StatusNotFound, agentapi.CodeDisabled, "webhook not configured")
	}
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	sig, ok := strings.CutPrefix(r.Header.Get(agentapi.SignatureHeader), "sha256=")
	got, err := hex.DecodeString(sig)
	mac := hmac.New(sha256.New, a.cfg.WebhookSecret)
	mac.Write(body)
	if !ok || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return fail(http.StatusUnauthorized, agentapi.CodeBadSignature, "webhook signature does not match")
	}
	var q agentapi.PaymentEvent
	if err := unmarshalStrict(body, &q); err != nil {
		return err
	}
	if err := checkCredit(agentapi.Credit{User: q.User, Amount: q.Amount, Event: q.Event}); err != nil {
		return err
	}
	if q.Event == "" {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidCredit, "webhook needs an event id")
	}
	fresh, err := a.Credit(r.Context(), q.User, q.Amount, "payment", q.Event, q.Event)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agentapi.PaymentReceived{Event: q.Event, Duplicate: !fresh})
	return nil
}

func (a *Agent) userID(ctx context.Context, username string) (string, error) {
	if !payword.ValidID(username) {
		return "", fail(http.StatusBadRequest, agentapi.CodeInvalidUsername, "invalid username")
	}
	uid, err := a.rdb.Get(ctx, a.prefix+"uname:"+username).Result()
	if err == redis.Nil {
		return "", fail(http.StatusNotFound, agentapi.CodeUnknownUser, "no such user")
	}
	return uid, err
}
