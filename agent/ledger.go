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
	bad, err := a.runNoWait(ctx, ledgerCheck).StringSlice()
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
		return fail(http.StatusInternalServerError, agentapi.CodeLedgerMismatch, err.Error())
	}
	writeJSON(w, http.StatusOK, agentapi.LedgerCheck{OK: true})
	return nil
}
