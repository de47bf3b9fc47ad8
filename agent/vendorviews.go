package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
)

// What a vendor sees of its money beyond the statement: takings per day,
// per product, its claims and its disputes. The ingest script writes all
// of it (ingest_lua.go); these read it, a page at a time, for the API and
// the vendor's pages alike.

// Bounds of the views: the longest revenue period, and page sizes.
const (
	maxRevenueDays = 366
	defaultPage    = 50
	maxPage        = 500
	maxOffset      = 100_000 // the length of the lists that offsets page
)

// unixDay is the day number the ingest script keys takings by.
func unixDay(t time.Time) int64 { return t.Unix() / 86400 }

// VendorRevenue is the vendor's takings per UTC day, from the day of from
// to the day of to.
func (a *Agent) VendorRevenue(ctx context.Context, vendor string, from, to time.Time) (*agentapi.Revenue, error) {
	first, last := unixDay(from), unixDay(to)
	fields := make([]string, 0, 3*(last-first+1))
	for d := first; d <= last; d++ {
		fields = append(fields, fmt.Sprintf("n:%d", d), fmt.Sprintf("c:%d", d), fmt.Sprintf("v:%d", d))
	}
	got, err := a.rdb.HMGet(ctx, a.prefix+"vr:"+vendor, fields...).Result()
	if err != nil {
		return nil, err
	}
	num := func(v any) int64 {
		s, _ := v.(string)
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	rev := &agentapi.Revenue{Vendor: vendor, Currency: a.cfg.Currency,
		From: time.Unix(first*86400, 0).UTC().Format(time.DateOnly), To: time.Unix(last*86400, 0).UTC().Format(time.DateOnly),
		Days: make([]agentapi.RevenueDay, 0, last-first+1)}
	for i, d := 0, first; d <= last; i, d = i+3, d+1 {
		day := agentapi.RevenueDay{Day: time.Unix(d*86400, 0).UTC().Format(time.DateOnly),
			Claims: num(got[i]), Credited: num(got[i+1]), Voided: num(got[i+2])}
		day.Net = day.Credited - day.Voided
		rev.Days = append(rev.Days, day)
		rev.Claims += day.Claims
		rev.Credited += day.Credited
		rev.Voided += day.Voided
	}
	return rev, nil
}

// VendorProducts is a page of the vendor's products by what they earned.
func (a *Agent) VendorProducts(ctx context.Context, vendor string, offset, limit int) (*agentapi.Products, error) {
	zs, err := a.rdb.ZRevRangeWithScores(ctx, a.prefix+"vp:"+vendor, int64(offset), int64(offset+limit)).Result()
	if err != nil {
		return nil, err
	}
	out := &agentapi.Products{Currency: a.cfg.Currency, Products: make([]agentapi.ProductValue, 0, min(len(zs), limit))}
	for i, z := range zs {
		if i == limit {
			out.Next = offset + limit
			break
		}
		p, _ := z.Member.(string)
		out.Products = append(out.Products, agentapi.ProductValue{Product: p, Value: int64(z.Score)})
	}
	return out, nil
}

// VendorClaims is a page of the vendor's claims, newest first, before the
// stream id before ("": from the newest).
func (a *Agent) VendorClaims(ctx context.Context, vendor, before string, limit int) (*agentapi.Claims, error) {
	hi := "+"
	if before != "" {
		hi = "(" + before
	}
	msgs, err := a.rdb.XRevRangeN(ctx, a.prefix+"vc:"+vendor, hi, "-", int64(limit+1)).Result()
	if err != nil {
		return nil, err
	}
	out := &agentapi.Claims{Claims: make([]agentapi.ClaimRecord, 0, min(len(msgs), limit))}
	for i, m := range msgs {
		if i == limit {
			out.Next = msgs[i-1].ID
			break
		}
		out.Claims = append(out.Claims, claimRecord(m))
	}
	return out, nil
}

// claimRecord reads one entry of a claims stream (see ingest_lua.go).
func claimRecord(m redis.XMessage) agentapi.ClaimRecord {
	e, _ := m.Values["e"].(string)
	f := strings.SplitN(e, " ", 8)
	if len(f) != 8 {
		return agentapi.ClaimRecord{ID: m.ID}
	}
	num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	return agentapi.ClaimRecord{ID: m.ID, Time: num(f[0]), Serial: f[1], Segment: uint32(num(f[2])), Index: uint32(num(f[3])),
		Verdict: agentapi.Verdict(f[4]), Tokens: num(f[5]), Value: num(f[6]), Product: f[7]}
}

// VendorDisputes is a page of the fraud cases that concern the vendor,
// newest first.
func (a *Agent) VendorDisputes(ctx context.Context, vendor string, offset, limit int) (*agentapi.Disputes, error) {
	raw, err := a.rdb.LRange(ctx, a.prefix+"vf:"+vendor, int64(offset), int64(offset+limit)).Result()
	if err != nil {
		return nil, err
	}
	out := &agentapi.Disputes{Cases: make([]agentapi.FraudCase, 0, min(len(raw), limit))}
	for i, s := range raw {
		if i == limit {
			out.Next = offset + limit
			break
		}
		var c agentapi.FraudCase
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			return nil, fmt.Errorf("fraud case %q: %w", s, err)
		}
		out.Cases = append(out.Cases, c)
	}
	return out, nil
}

func (a *Agent) handleRevenue(w http.ResponseWriter, r *http.Request) error {
	vendor, err := a.vendorAuth(r)
	if err != nil {
		return err
	}
	from, to, err := a.revenuePeriod(r.URL.Query().Get("from"), r.URL.Query().Get("to"))
	if err != nil {
		return err
	}
	rev, err := a.VendorRevenue(r.Context(), vendor, from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rev)
	return nil
}

// revenuePeriod reads from and to (YYYY-MM-DD, UTC, both included;
// default the 30 days up to today), at most maxRevenueDays days.
func (a *Agent) revenuePeriod(fromQ, toQ string) (from, to time.Time, err error) {
	day := func(q string, def time.Time) (time.Time, error) {
		if q == "" {
			return def, nil
		}
		t, err := time.Parse(time.DateOnly, q)
		if err != nil {
			return t, fail(http.StatusBadRequest, agentapi.CodeInvalidPeriod, "a day is YYYY-MM-DD")
		}
		return t, nil
	}
	if to, err = day(toQ, a.now().UTC()); err != nil {
		return
	}
	if from, err = day(fromQ, to.AddDate(0, 0, -29)); err != nil {
		return
	}
	switch n := unixDay(to) - unixDay(from) + 1; {
	case n < 1:
		err = fail(http.StatusBadRequest, agentapi.CodeInvalidPeriod, "from must not be after to")
	case n > maxRevenueDays:
		err = fail(http.StatusBadRequest, agentapi.CodeInvalidPeriod, fmt.Sprintf("a period is at most %d days", maxRevenueDays))
	}
	return
}

func (a *Agent) handleProducts(w http.ResponseWriter, r *http.Request) error {
	return a.serveVendorList(w, r, "offset", func(ctx context.Context, vendor string, offset, limit int) (any, error) {
		return a.VendorProducts(ctx, vendor, offset, limit)
	})
}

func (a *Agent) handleClaims(w http.ResponseWriter, r *http.Request) error {
	return a.serveVendorList(w, r, "", func(ctx context.Context, vendor string, _, limit int) (any, error) {
		before := r.URL.Query().Get("before")
		if before != "" && !validStreamID(before) {
			return nil, fail(http.StatusBadRequest, agentapi.CodeMalformed, "before is a claim's id, as <ms>-<n>")
		}
		return a.VendorClaims(ctx, vendor, before, limit)
	})
}

func (a *Agent) handleDisputes(w http.ResponseWriter, r *http.Request) error {
	return a.serveVendorList(w, r, "offset", func(ctx context.Context, vendor string, offset, limit int) (any, error) {
		return a.VendorDisputes(ctx, vendor, offset, limit)
	})
}

// serveVendorList answers a page of one of the vendor's views: the
// vendor's token, the page's offset (named name, if any) and limit, then f.
func (a *Agent) serveVendorList(w http.ResponseWriter, r *http.Request, name string, f func(ctx context.Context, vendor string, offset, limit int) (any, error)) error {
	vendor, err := a.vendorAuth(r)
	if err != nil {
		return err
	}
	offset, limit, err := pageParams(r, name)
	if err != nil {
		return err
	}
	out, err := f(r.Context(), vendor, offset, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pageParams reads a page's limit (default defaultPage, at most maxPage)
// and, if name is not "", its offset (at most maxOffset).
func pageParams(r *http.Request, name string) (offset, limit int, err error) {
	q := r.URL.Query()
	limit = defaultPage
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxPage {
			return 0, 0, fail(http.StatusBadRequest, agentapi.CodeMalformed, fmt.Sprintf("limit is 1 to %d", maxPage))
		}
	}
	if s := q.Get(name); name != "" && s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 || offset > maxOffset {
			return 0, 0, fail(http.StatusBadRequest, agentapi.CodeMalformed, fmt.Sprintf("%s is 0 to %d", name, maxOffset))
		}
	}
	return offset, limit, nil
}

// validStreamID reports whether s is a Redis stream id, <ms>-<seq>.
func validStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}
