package agent

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// VendorStatement builds the settlement statement of vendor for [from, to).
func (a *Agent) VendorStatement(ctx context.Context, vendor string, from, to time.Time) (*agentapi.Statement, error) {
	acct := "v:" + vendor
	opening, err := a.balanceAt(ctx, acct, from.Unix())
	if err != nil {
		return nil, err
	}
	entries, err := a.Ledger(ctx, acct, from.Unix(), to.Unix())
	if err != nil {
		return nil, err
	}
	st := &agentapi.Statement{Vendor: vendor, From: from.Unix(), To: to.Unix(), Currency: a.cfg.Currency,
		Opening: opening, Entries: entries}
	for _, e := range entries {
		st.Credited += e.Amount
	}
	st.Closing = st.Opening + st.Credited
	return st, nil
}

func (a *Agent) handleVendorStatement(w http.ResponseWriter, r *http.Request) error {
	vendor, err := a.vendorAuth(r)
	if err != nil {
		return err
	}
	return a.serveStatement(w, r, vendor)
}

func (a *Agent) handleAdminStatement(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	vendor := r.PathValue("vendor")
	if !payword.ValidID(vendor) {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidVendor, "invalid vendor id")
	}
	n, err := a.rdb.Exists(r.Context(), a.prefix+"v:"+vendor).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return fail(http.StatusNotFound, agentapi.CodeUnknownVendor, "no such vendor")
	}
	return a.serveStatement(w, r, vendor)
}

// serveStatement answers ?from=&to= (Unix seconds or RFC 3339; default the
// last 30 days) as JSON, or CSV with ?format=csv.
func (a *Agent) serveStatement(w http.ResponseWriter, r *http.Request, vendor string) error {
	q := r.URL.Query()
	to, err := parseTime(q.Get("to"), a.now().Add(time.Second)) // up to now, inclusive
	if err != nil {
		return err
	}
	from, err := parseTime(q.Get("from"), to.Add(-30*24*time.Hour))
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return fail(http.StatusBadRequest, agentapi.CodeInvalidPeriod, "from must be before to")
	}
	st, err := a.VendorStatement(r.Context(), vendor, from, to)
	if err != nil {
		return err
	}
	if q.Get("format") != "csv" {
		writeJSON(w, http.StatusOK, st)
		return nil
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="statement-`+vendor+`.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"seq", "time", "kind", "ref", "amount", "balance", "currency"})
	cur := st.Currency
	cw.Write([]string{"", time.Unix(st.From, 0).UTC().Format(time.RFC3339), "opening", "", "", itoa(st.Opening), cur})
	for _, e := range st.Entries {
		cw.Write([]string{itoa(e.Seq), time.Unix(e.Time, 0).UTC().Format(time.RFC3339), e.Kind, e.Ref,
			itoa(e.Amount), itoa(e.Balance), cur})
	}
	cw.Write([]string{"", time.Unix(st.To, 0).UTC().Format(time.RFC3339), "closing", "", itoa(st.Credited), itoa(st.Closing), cur})
	cw.Flush()
	return cw.Error()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fail(http.StatusBadRequest, agentapi.CodeInvalidPeriod, "from/to must be Unix seconds or RFC 3339")
	}
	return t, nil
}

// SettleExpired refunds the unclaimed tokens of every certificate whose
// expiry plus the settlement window has passed: unbound segments and
// unspent tails, which nobody but the user and the agent can derive. Claims
// reported after that are refused. It returns the certificates settled and
// the value refunded.
func (a *Agent) SettleExpired(ctx context.Context) (int, int64, error) {
	if _, err := a.PruneCRL(ctx); err != nil {
		return 0, 0, err
	}
	cutoff := a.now().Add(-time.Duration(a.cfg.SettlementWindow)).Unix()
	var n int
	var total int64
	for {
		serials, err := a.rdb.ZRangeByScore(ctx, a.prefix+"expiry", &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(cutoff, 10), Count: 500,
		}).Result()
		if err != nil || len(serials) == 0 {
			return n, total, err
		}
		for _, s := range serials {
			v, err := a.run(ctx, settle, s, a.now().Unix()).Int64()
			if err != nil {
				return n, total, err
			}
			if v >= 0 {
				n++
				total += v
			}
		}
		a.log.Info("certificates settled", zap.Int("count", n), zap.Int64("refunded", total))
	}
}

// Run settles expired certificates every SettleInterval and credits the
// recoveries whose report window ended every RecoverInterval, until ctx
// ends. Several agents on one store may run it: both runs are idempotent.
func (a *Agent) Run(ctx context.Context) {
	settle := time.NewTicker(time.Duration(a.cfg.SettleInterval))
	defer settle.Stop()
	credit := time.NewTicker(a.RecoverInterval())
	defer credit.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-credit.C:
			if _, _, err := a.CreditRecovered(ctx); err != nil {
				a.log.Error("recovery credit run failed", zap.Error(err))
			}
		case <-settle.C:
			if _, _, err := a.SettleExpired(ctx); err != nil {
				a.log.Error("settlement run failed", zap.Error(err))
			}
		}
	}
}

func (a *Agent) handleSettle(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	n, total, err := a.SettleExpired(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agentapi.Settled{Settled: n, Refunded: total})
	return nil
}
