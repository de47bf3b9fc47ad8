package agent

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
)

// The vendor's statement page: the settlement statement of GET
// /v1/statement for a period of whole UTC days, its entries a page at a
// time, and its JSON and CSV served by the API's own code (serveStatement)
// through the vendor's session.

const (
	statementPage = 50 // entries a page
	statementDays = 30 // the default period, today included
	dateLayout    = "2006-01-02"
)

// statementTotals is the opening and closing balance of the vendor's
// statement of [from, to), as VendorStatement gives them, without reading
// the period's entries: its closing (the opening plus the entries) is the
// balance after the last entry before to.
func (a *Agent) statementTotals(ctx context.Context, vendor string, from, to int64) (opening, closing int64, err error) {
	if opening, err = a.balanceAt(ctx, "v:"+vendor, from); err != nil {
		return 0, 0, err
	}
	closing, err = a.balanceAt(ctx, "v:"+vendor, to)
	return opening, closing, err
}

// statementRange is the ledger key and score range of a statement's
// period [from, to), as Ledger reads it.
func (a *Agent) statementRange(vendor string, from, to int64) (key, min, max string) {
	return a.prefix + "led:v:" + vendor, strconv.FormatInt(from, 10), "(" + strconv.FormatInt(to, 10)
}

// statementCount is the number of entries of the period.
func (a *Agent) statementCount(ctx context.Context, vendor string, from, to int64) (int64, error) {
	key, min, max := a.statementRange(vendor, from, to)
	return a.rdb.ZCount(ctx, key, min, max).Result()
}

// statementEntries is up to n entries of the period from the offset-th,
// in the ledger's order (by time; within a page by sequence number, as
// the statement lists them).
func (a *Agent) statementEntries(ctx context.Context, vendor string, from, to, offset, n int64) ([]agentapi.LedgerEntry, error) {
	key, min, max := a.statementRange(vendor, from, to)
	raw, err := a.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: min, Max: max, Offset: offset, Count: n}).Result()
	if err != nil {
		return nil, err
	}
	return decodeEntries("v:"+vendor, raw)
}

// defaultPeriod is the last statementDays UTC days, today included, as
// [from, to) with to at the end of today.
func (a *Agent) defaultPeriod() (from, to time.Time) {
	now := a.now().UTC()
	to = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	return to.AddDate(0, 0, -statementDays), to
}

type statementView struct {
	From, To                   string // the period's first and last day
	Opening, Closing, Credited string
	Count                      int64
	Entries                    []vendorEntryView
	Page, Pages                int
	NewerURL, OlderURL         string // "" on the first or last page
	JSONURL, CSVURL, FileName  string
}

type vendorEntryView struct {
	When, What, Ref, Amount, Balance string
	Seq                              int64
	Debit                            bool
}

// checkPeriod reads the form's from and to days (inclusive); empty fields
// are the default period.
func (a *Agent) checkPeriod(f *web.Form) (from, to time.Time) {
	from, to = a.defaultPeriod()
	day := func(name string, def time.Time) time.Time {
		s := f.Trimmed(name)
		if s == "" {
			f.Values[name] = def.Format(dateLayout)
			return def
		}
		t, err := time.Parse(dateLayout, s)
		if err != nil || t.Year() < 1970 {
			f.Fail(name, "A day is written 2026-01-31 (year, month, day), from 1970 on.")
		}
		return t
	}
	from = day("from", from)
	to = day("to", to.AddDate(0, 0, -1)).AddDate(0, 0, 1) // the last day included
	if f.OK() && !from.Before(to) {
		f.Fail("to", "The period ends before it starts.")
	}
	return from, to
}

func (a *Agent) pageVendorStatement(p *vendorReq) error {
	ctx := p.r.Context()
	q := p.r.URL.Query()
	f := web.NewForm()
	f.Values["from"], f.Values["to"] = bounded(q.Get("from")), bounded(q.Get("to"))
	from, to := a.checkPeriod(f)
	if !f.OK() {
		return p.render(http.StatusUnprocessableEntity, "vendor_statement", "Statements", f, nil)
	}
	v := statementView{From: f.Values["from"], To: f.Values["to"], Page: 1}
	opening, closing, err := a.statementTotals(ctx, p.vendor, from.Unix(), to.Unix())
	if err != nil {
		return err
	}
	v.Opening, v.Closing, v.Credited = a.money(opening), a.money(closing), a.money(closing-opening)
	if v.Count, err = a.statementCount(ctx, p.vendor, from.Unix(), to.Unix()); err != nil {
		return err
	}
	v.Pages = max(1, int((v.Count+statementPage-1)/statementPage))
	if k, err := strconv.Atoi(q.Get("page")); err == nil && k > 1 { // anything else is the first page
		v.Page = min(k, v.Pages) // past the end: the last
	}
	entries, err := a.statementEntries(ctx, p.vendor, from.Unix(), to.Unix(), int64(v.Page-1)*statementPage, statementPage)
	if err != nil {
		return err
	}
	for _, e := range entries {
		v.Entries = append(v.Entries, vendorEntryView{
			When: time.Unix(e.Time, 0).UTC().Format("2006-01-02 15:04:05"), What: vendorEntryKind(e.Kind), Ref: e.Ref,
			Amount: a.money(e.Amount), Balance: a.money(e.Balance), Seq: e.Seq, Debit: e.Amount < 0,
		})
	}
	link := func(path string, kv ...string) string {
		u := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			u.Set(kv[i], kv[i+1])
		}
		return path + "?" + u.Encode()
	}
	if v.Page > 1 {
		v.NewerURL = link("/vendor/statements", "from", v.From, "to", v.To, "page", strconv.Itoa(v.Page-1))
	}
	if v.Page < v.Pages {
		v.OlderURL = link("/vendor/statements", "from", v.From, "to", v.To, "page", strconv.Itoa(v.Page+1))
	}
	period := []string{"from", itoa(from.Unix()), "to", itoa(to.Unix())}
	v.JSONURL = link("/vendor/statements/download", period...)
	v.CSVURL = link("/vendor/statements/download", append(period, "format", "csv")...)
	v.FileName = "statement-" + p.vendor + "-" + v.From + "-" + v.To
	return p.render(http.StatusOK, "vendor_statement", "Statements", f, v)
}

// bounded cuts a query value shown back in a form to a form field's bound.
func bounded(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// pageVendorStatementFile is GET /v1/statement's answer (?from=&to=, Unix
// seconds or RFC 3339; &format=csv) for the session's vendor: the same code.
func (a *Agent) pageVendorStatementFile(p *vendorReq) error {
	return a.serveStatement(p.w, p.r, p.vendor)
}

// vendorEntryKind names a vendor ledger entry's kind.
func vendorEntryKind(k string) string {
	switch k {
	case "claims":
		return "Claims paid"
	case "void":
		return "Claims taken back"
	case "admin_credit":
		return "Credit from the bank"
	}
	return k
}
