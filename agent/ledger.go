package agent

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// maxCredit bounds one credit so that balances stay exact in Lua's doubles.
const maxCredit = 1 << 40

// LedgerEntry is one line of an account's append-only ledger.
type LedgerEntry struct {
	Seq     int64  `json:"seq"`
	Time    int64  `json:"t"`
	Amount  int64  `json:"amt"` // minor units, signed
	Kind    string `json:"kind"`
	Ref     string `json:"ref"`
	Balance int64  `json:"bal"` // after this entry
}

type creditReq struct {
	User   string `json:"user"` // username
	Amount int64  `json:"amount"`
	Ref    string `json:"ref,omitempty"`
	Event  string `json:"event,omitempty"` // webhook only: the provider's event id
}

func (q *creditReq) check() error {
	if q.Amount < 1 || q.Amount > maxCredit || !payword.ValidID(q.User) ||
		(q.Ref != "" && !payword.ValidID(q.Ref)) || (q.Event != "" && !payword.ValidID(q.Event)) {
		return fail(http.StatusBadRequest, "invalid_credit", "credit needs a username, an amount in 1..2^40 and id-shaped ref/event")
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
	return false, fail(http.StatusNotFound, "unknown_user", "no such user")
}

func (a *Agent) handleAdminCredit(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var q creditReq
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	if err := q.check(); err != nil {
		return err
	}
	if q.Ref == "" {
		q.Ref = "admin"
	}
	if _, err := a.Credit(r.Context(), q.User, q.Amount, "admin_credit", q.Ref, q.Event); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"credited": q.Amount})
	return nil
}

// SignatureHeader carries the webhook's "sha256=<hex HMAC-SHA256 of the body>".
const SignatureHeader = "Hashwall-Signature"

// handleWebhook is where a payment processor reports a completed payment:
// the body is signed with the shared secret and credited once per event id.
func (a *Agent) handleWebhook(w http.ResponseWriter, r *http.Request) error {
	if len(a.cfg.WebhookSecret) == 0 {
		return fail(http.StatusNotFound, "disabled", "webhook not configured")
	}
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	sig, ok := strings.CutPrefix(r.Header.Get(SignatureHeader), "sha256=")
	got, err := hex.DecodeString(sig)
	mac := hmac.New(sha256.New, a.cfg.WebhookSecret)
	mac.Write(body)
	if !ok || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return fail(http.StatusUnauthorized, "bad_signature", "webhook signature does not match")
	}
	var q creditReq
	if err := unmarshalStrict(body, &q); err != nil {
		return err
	}
	if err := q.check(); err != nil {
		return err
	}
	if q.Event == "" {
		return fail(http.StatusBadRequest, "invalid_credit", "webhook needs an event id")
	}
	fresh, err := a.Credit(r.Context(), q.User, q.Amount, "payment", q.Event, q.Event)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": q.Event, "duplicate": !fresh})
	return nil
}

func (a *Agent) userID(ctx context.Context, username string) (string, error) {
	if !payword.ValidID(username) {
		return "", fail(http.StatusBadRequest, "invalid_username", "invalid username")
	}
	uid, err := a.rdb.Get(ctx, a.prefix+"uname:"+username).Result()
	if err == redis.Nil {
		return "", fail(http.StatusNotFound, "unknown_user", "no such user")
	}
	return uid, err
}

// Ledger returns an account's entries ("u:<uid>" or "v:<vid>") dated in
// [from, to), in order.
func (a *Agent) Ledger(ctx context.Context, acct string, from, to int64) ([]LedgerEntry, error) {
	raw, err := a.rdb.ZRangeByScore(ctx, a.prefix+"led:"+acct, &redis.ZRangeBy{
		Min: strconv.FormatInt(from, 10), Max: "(" + strconv.FormatInt(to, 10),
	}).Result()
	if err != nil {
		return nil, err
	}
	return decodeEntries(acct, raw)
}

// balanceAt returns the balance after the last entry dated before t.
func (a *Agent) balanceAt(ctx context.Context, acct string, t int64) (int64, error) {
	raw, err := a.rdb.ZRevRangeByScore(ctx, a.prefix+"led:"+acct, &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(t, 10), Count: maxSameSecond,
	}).Result()
	if err != nil || len(raw) == 0 {
		return 0, err
	}
	entries, err := decodeEntries(acct, raw)
	if err != nil {
		return 0, err
	}
	return entries[len(entries)-1].Balance, nil
}

// maxSameSecond bounds how many entries of one second balanceAt orders by
// sequence number; more in one second would be a statement's off-by-some.
const maxSameSecond = 1000

// decodeEntries decodes ledger members, ordered by sequence number (entries
// of the same second sort by their text otherwise).
func decodeEntries(acct string, raw []string) ([]LedgerEntry, error) {
	out := make([]LedgerEntry, len(raw))
	for i, s := range raw {
		if err := json.Unmarshal([]byte(s), &out[i]); err != nil {
			return nil, fmt.Errorf("ledger %s entry %d: %w", acct, i, err)
		}
	}
	slices.SortFunc(out, func(x, y LedgerEntry) int { return cmp.Compare(x.Seq, y.Seq) })
	return out, nil
}

// ledgerCheck: → list of accounts whose balance differs from the sum of
// their ledger, checked in one script so it sees a consistent snapshot.
var ledgerCheck = script(`
local bad = {}
for _, acct in ipairs(redis.call('SMEMBERS', P .. 'accounts')) do
  local sum = 0
  for _, e in ipairs(redis.call('ZRANGE', P .. 'led:' .. acct, 0, -1)) do
    sum = sum + cjson.decode(e).amt
  end
  if sum ~= tonumber(redis.call('HGET', P .. acct, 'bal')) then bad[#bad + 1] = acct end
end
return bad
`)

// CheckLedger verifies that every balance equals the sum of its ledger.
func (a *Agent) CheckLedger(ctx context.Context) error {
	bad, err := a.run(ctx, ledgerCheck).StringSlice()
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("agent: ledger does not sum to the balance of %v", bad)
	}
	return nil
}

func (a *Agent) handleLedgerCheck(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if err := a.CheckLedger(r.Context()); err != nil {
		return fail(http.StatusInternalServerError, "ledger_mismatch", err.Error())
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (a *Agent) handleMe(w http.ResponseWriter, r *http.Request) error {
	uid, err := a.userAuth(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	bal, err := a.rdb.HGet(ctx, a.prefix+"u:"+uid, "bal").Int64()
	if err != nil {
		return err
	}
	certs, err := a.rdb.SMembers(ctx, a.prefix+"ucerts:"+uid).Result()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": uid, "balance": bal, "currency": a.cfg.Currency, "certificates": certs})
	return nil
}

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
