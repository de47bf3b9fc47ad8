package agent

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/payword"
)

// The account page: balance in tokens and money, certificates, the ledger
// page by page, and a chart of the spending of the last days.

const (
	ledgerPage    = 20   // entries a page
	chartDays     = 30   // days of the spending chart
	chartEntries  = 5000 // ledger entries the chart reads at most
	maxCertsShown = 100
)

type accountView struct {
	Tokens, Money      string
	Pending, PendingAt string
	Days               int
	Chart              web.Chart
	Certs              []certView
	Entries            []entryView
	WalletFree         int64 // tokens of the web wallet for any site
	WalletBound        int64 // and those set aside for sites already paid
	Payments           []paymentView
	Page, Pages        int
	Newer, Older       int // page numbers, 0: none
}

type certView struct {
	Serial, Scope, Expires string
	Tokens, Claimed        int64
	exp                    int64
}

type paymentView struct {
	When, Site, Realm, Product string
	Tokens                     uint32
}

type entryView struct {
	When, What, Ref, Amount, Balance string
	Debit                            bool
}

func (a *Agent) pageAccount(p *pageReq) error {
	ctx := p.r.Context()
	pending, next, err := a.applyRecoveredFor(ctx, p.uid) // a due recovery credit first, as GET /v1/me
	if err != nil {
		return err
	}
	bal, err := a.balance(ctx, p.uid)
	if err != nil {
		return err
	}
	v := accountView{Tokens: a.tokensOf(bal), Money: a.money(bal), Days: chartDays}
	if pending > 0 {
		v.Pending, v.PendingAt = a.money(pending), time.Unix(next, 0).UTC().Format("2006-01-02 15:04 UTC")
	}
	if v.Certs, err = a.certViews(ctx, p.uid); err != nil {
		return err
	}
	if v.Chart, err = a.spendingChart(ctx, p.uid); err != nil {
		return err
	}
	if v.WalletFree, v.WalletBound, err = a.hostedBalance(ctx, p.uid); err != nil {
		return err
	}
	v.Tokens = strconv.FormatInt(bal/int64(a.cfg.UnitValue)+v.WalletFree+v.WalletBound, 10)
	paid, err := a.hostedPayments(ctx, p.uid, ledgerPage)
	if err != nil {
		return err
	}
	for _, e := range paid {
		v.Payments = append(v.Payments, paymentView{When: time.Unix(e.Time, 0).UTC().Format("2006-01-02 15:04"),
			Site: e.Origin, Realm: e.Realm, Product: e.Product, Tokens: e.Tokens})
	}
	acct := a.prefix + "led:u:" + p.uid
	n, err := a.rdb.ZCard(ctx, acct).Result()
	if err != nil {
		return err
	}
	v.Pages = max(1, int((n+ledgerPage-1)/ledgerPage))
	v.Page = 1
	if s := p.r.URL.Query().Get("page"); s != "" { // anything else than a page number shows the first
		if k, err := strconv.Atoi(s); err == nil && k >= 1 && k <= v.Pages {
			v.Page = k
		}
	}
	if v.Page > 1 {
		v.Newer = v.Page - 1
	}
	if v.Page < v.Pages {
		v.Older = v.Page + 1
	}
	start := int64(v.Page-1) * ledgerPage
	raw, err := a.rdb.ZRevRange(ctx, acct, start, start+ledgerPage-1).Result()
	if err != nil {
		return err
	}
	entries, err := decodeEntries("u:"+p.uid, raw)
	if err != nil {
		return err
	}
	for i := len(entries) - 1; i >= 0; i-- { // newest first
		e := entries[i]
		v.Entries = append(v.Entries, entryView{
			When: time.Unix(e.Time, 0).UTC().Format("2006-01-02 15:04"), What: entryKind(e.Kind), Ref: e.Ref,
			Amount: a.money(e.Amount), Balance: a.money(e.Balance), Debit: e.Amount < 0,
		})
	}
	return p.render(http.StatusOK, "account", "Your account", nil, v)
}

func (a *Agent) balance(ctx context.Context, uid string) (int64, error) {
	return a.rdb.HGet(ctx, a.prefix+"u:"+uid, "bal").Int64()
}

// entryKind names a ledger entry's kind for a reader.
func entryKind(k string) string {
	switch k {
	case "payment":
		return "Top-up"
	case "admin_credit":
		return "Credit from the bank"
	case "purchase":
		return "Tokens for a wallet (certificate)"
	case "recovery":
		return "Lost wallet: value returned"
	case "refund":
		return "Unused tokens of an expired certificate"
	case "late_claim":
		return "Paid by a cancelled certificate before it stopped"
	}
	return k
}

// certViews lists the reader's active certificates, soonest expiry first.
func (a *Agent) certViews(ctx context.Context, uid string) ([]certView, error) {
	serials, err := a.rdb.SRandMemberN(ctx, a.prefix+"ucerts:"+uid, maxCertsShown).Result()
	if err != nil {
		return nil, err
	}
	pipe := a.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, 0, len(serials))
	var shown []string
	for _, s := range serials {
		sn, err := payword.ParseSerial(s)
		if err != nil {
			continue
		}
		cmds = append(cmds, pipe.HMGet(ctx, a.certKey(sn), "tokens", "claimed", "scope", "exp"))
		shown = append(shown, s)
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]certView, 0, len(cmds))
	for i, c := range cmds {
		f := make([]string, 4)
		for j, x := range c.Val() {
			f[j], _ = x.(string)
		}
		n := func(s string) int64 { x, _ := strconv.ParseInt(s, 10, 64); return x }
		scope := f[2]
		if scope == payword.GenericScope {
			scope = "every site"
		}
		out = append(out, certView{Serial: shown[i], Scope: scope, Tokens: n(f[0]), Claimed: n(f[1]),
			Expires: time.Unix(n(f[3]), 0).UTC().Format("2006-01-02"), exp: n(f[3])})
	}
	slices.SortFunc(out, func(x, y certView) int { return cmp.Or(cmp.Compare(x.exp, y.exp), cmp.Compare(x.Serial, y.Serial)) })
	return out, nil
}

// spendingChart sums the tokens spent per UTC day over the last chartDays
// days: what left the balance (tokens bought for the reader's own wallets,
// late claims) and the web wallet's payments.
func (a *Agent) spendingChart(ctx context.Context, uid string) (web.Chart, error) {
	now := a.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from := today.AddDate(0, 0, -(chartDays - 1))
	raw, err := a.rdb.ZRangeByScore(ctx, a.prefix+"led:u:"+uid, &redis.ZRangeBy{
		Min: strconv.FormatInt(from.Unix(), 10), Max: "+inf", Count: chartEntries,
	}).Result()
	if err != nil {
		return web.Chart{}, err
	}
	entries, err := decodeEntries("u:"+uid, raw)
	if err != nil {
		return web.Chart{}, err
	}
	// Certificates of the web wallet are not spending: its payments are.
	pipe := a.rdb.Pipeline()
	hosted := make(map[string]*redis.IntCmd)
	for _, e := range entries {
		if e.Kind == "purchase" {
			hosted[e.Ref] = pipe.Exists(ctx, a.prefix+"hs:"+e.Ref)
		}
	}
	if len(hosted) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return web.Chart{}, err
		}
	}
	day := func(t int64) int { return int(time.Unix(t, 0).UTC().Sub(from) / (24 * time.Hour)) }
	spent := make([]int64, chartDays)
	for _, e := range entries {
		d := day(e.Time)
		if e.Amount < 0 && d >= 0 && d < chartDays && !(e.Kind == "purchase" && hosted[e.Ref].Val() == 1) {
			spent[d] -= e.Amount
		}
	}
	names := make([]string, chartDays)
	for i := range names {
		names[i] = from.AddDate(0, 0, i).Format("2006-01-02")
		spent[i] /= int64(a.cfg.UnitValue)
	}
	paid, err := a.hostedPayments(ctx, uid, hostedHistory)
	if err != nil {
		return web.Chart{}, err
	}
	for _, e := range paid {
		if d := day(e.Time); d >= 0 && d < chartDays {
			spent[d] += int64(e.Tokens)
		}
	}
	return web.BarChart(fmt.Sprintf("Tokens spent per day, %s to %s (UTC)", names[0], names[chartDays-1]),
		names, spent, func(v int64) string { return strconv.FormatInt(v, 10) + " tokens" }), nil
}

// tokensOf is how many whole tokens minor units buy.
func (a *Agent) tokensOf(minor int64) string {
	return strconv.FormatInt(minor/int64(a.cfg.UnitValue), 10)
}

// money formats minor units of the agent's currency, two decimals (cents).
func (a *Agent) money(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, a.cfg.Currency)
}
