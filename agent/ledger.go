package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
)

// Ledger returns an account's entries ("u:<uid>" or "v:<vid>") dated in
// [from, to), in order.
func (a *Agent) Ledger(ctx context.Context, acct string, from, to int64) ([]agentapi.LedgerEntry, error) {
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
func decodeEntries(acct string, raw []string) ([]agentapi.LedgerEntry, error) {
	out := make([]agentapi.LedgerEntry, len(raw))
	for i, s := range raw {
		if err := json.Unmarshal([]byte(s), &out[i]); err != nil {
			return nil, fmt.Errorf("ledger %s entry %d: %w", acct, i, err)
		}
	}
	slices.SortFunc(out, func(x, y agentapi.LedgerEntry) int { return cmp.Compare(x.Seq, y.Seq) })
	return out, nil
}

// ledgerCheck: → {accounts, entries, readers' balances, vendors' balances,
// {accounts whose balance differs from the sum of their ledger}}, checked
// in one script so it sees a consistent snapshot.
var ledgerCheck = script(`
local bad, n, entries, users, vendors = {}, 0, 0, 0, 0
for _, acct in ipairs(redis.call('SMEMBERS', P .. 'accounts')) do
  local sum = 0
  local led = redis.call('ZRANGE', P .. 'led:' .. acct, 0, -1)
  for _, e in ipairs(led) do
    sum = sum + cjson.decode(e).amt
  end
  local bal = tonumber(redis.call('HGET', P .. acct, 'bal'))
  if sum ~= bal then bad[#bad + 1] = acct end
  n, entries = n + 1, entries + #led
  if string.sub(acct, 1, 2) == 'u:' then users = users + (bal or 0) else vendors = vendors + (bal or 0) end
end
return {n, entries, users, vendors, bad}
`)

// LedgerTotals is what the ledger check read: every account, every entry.
type LedgerTotals struct {
	Accounts, Entries int64
	Readers, Vendors  int64    // the sums of the readers' and the vendors' balances
	Bad               []string // accounts whose balance is not the sum of their ledger
}

// LedgerCheck sums every ledger (GET /v1/admin/ledger/check and the
// operator's overview).
func (a *Agent) LedgerCheck(ctx context.Context) (LedgerTotals, error) {
	res, err := a.runNoWait(ctx, ledgerCheck).Slice()
	if err != nil {
		return LedgerTotals{}, err
	}
	if len(res) != 5 {
		return LedgerTotals{}, fmt.Errorf("agent: ledger check answered %v", res)
	}
	var t LedgerTotals
	for i, p := range []*int64{&t.Accounts, &t.Entries, &t.Readers, &t.Vendors} {
		*p, _ = res[i].(int64)
	}
	bad, _ := res[4].([]any)
	for _, b := range bad {
		s, _ := b.(string)
		t.Bad = append(t.Bad, s)
	}
	return t, nil
}

// CheckLedger verifies that every balance equals the sum of its ledger.
func (a *Agent) CheckLedger(ctx context.Context) error {
	t, err := a.LedgerCheck(ctx)
	if err != nil {
		return err
	}
	if len(t.Bad) > 0 {
		return fmt.Errorf("agent: ledger does not sum to the balance of %v", t.Bad)
	}
	return nil
}

func (a *Agent) handleLedgerCheck(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	if err := a.CheckLedger(r.Context()); err != nil {
		return fail(http.StatusInternalServerError, agentapi.CodeLedgerMismatch, err.Error())
	}
	writeJSON(w, http.StatusOK, agentapi.LedgerCheck{OK: true})
	return nil
}
