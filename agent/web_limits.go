package agent

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/payword"
)

// Automatic payment limits: "pay this site automatically up to N tokens a
// day", per reader, per vendor and origin (one of the vendor's registered
// origins). Stored in the hash P lim:<uid>, field "<vendor> <origin>" →
// tokens; the pay page reads them with DailyLimit.

const maxLimits = 64 // sites with a limit, per reader

func limitField(vendor, origin string) string { return vendor + " " + origin }

// DailyLimit is the reader's automatic limit for a vendor's origin, in
// tokens a day (0: none).
func (a *Agent) DailyLimit(ctx context.Context, uid, vendor, origin string) (int64, error) {
	n, err := a.rdb.HGet(ctx, a.prefix+"lim:"+uid, limitField(vendor, origin)).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}

// limit is one limit as the form gives it and the page lists it.
type limit struct {
	Vendor, Origin string
	Tokens         int64
}

// checkLimitForm validates the limit form's fields alone (no store).
func checkLimitForm(f *web.Form, most int64) limit {
	var l limit
	o := f.Trimmed("origin")
	if o == "" {
		f.Fail("origin", "Enter the site, as https://news.example.com.")
	} else if c, err := payword.ParseOrigin(o); err != nil {
		f.Fail("origin", "A site is scheme://host[:port], as https://news.example.com, without a path.")
	} else {
		l.Origin = c
	}
	l.Vendor = f.Trimmed("vendor")
	if !payword.ValidID(l.Vendor) {
		f.Fail("vendor", "A vendor id is 1 to 64 characters of A-Z a-z 0-9 . _ - : @.")
	}
	var msg string
	if l.Tokens, msg = parseTokens(f.Get("tokens"), most); msg != "" {
		f.Fail("tokens", msg)
	}
	return l
}

type limitsView struct {
	Limits []limit
	Range  string
}

func (a *Agent) limitsView(ctx context.Context, uid string) (limitsView, error) {
	m, err := a.rdb.HGetAll(ctx, a.prefix+"lim:"+uid).Result()
	if err != nil {
		return limitsView{}, err
	}
	v := limitsView{Range: fmt.Sprintf("1 to %d", a.cfg.MaxTokens)}
	for k, s := range m {
		vendor, origin, _ := strings.Cut(k, " ")
		n, _ := strconv.ParseInt(s, 10, 64)
		v.Limits = append(v.Limits, limit{Vendor: vendor, Origin: origin, Tokens: n})
	}
	slices.SortFunc(v.Limits, func(x, y limit) int { return strings.Compare(x.Origin+" "+x.Vendor, y.Origin+" "+y.Vendor) })
	return v, nil
}

func (a *Agent) pageLimits(p *pageReq) error {
	ctx := p.r.Context()
	v, err := a.limitsView(ctx, p.uid)
	if err != nil {
		return err
	}
	if p.r.Method == http.MethodGet {
		return p.render(http.StatusOK, "limits", "Automatic payments", nil, v)
	}
	f := p.form
	l := checkLimitForm(f, int64(a.cfg.MaxTokens))
	if f.OK() {
		origins, err := a.vendorOrigins(ctx, l.Vendor)
		if err != nil {
			return err
		}
		status, err := a.rdb.HGet(ctx, a.prefix+"v:"+l.Vendor, "status").Result()
		if err != nil && err != redis.Nil {
			return err
		}
		switch {
		case status != "active":
			f.Fail("vendor", "No vendor of that id takes payments at this bank.")
		case !slices.Contains(origins, l.Origin):
			f.Fail("origin", "This site is not registered for that vendor: the bank pays a vendor only on its own sites.")
		case len(v.Limits) >= maxLimits && !slices.ContainsFunc(v.Limits, func(x limit) bool { return x.Vendor == l.Vendor && x.Origin == l.Origin }):
			f.Fail("", fmt.Sprintf("At most %d sites have a limit: remove one first.", maxLimits))
		}
	}
	if !f.OK() {
		return p.render(http.StatusUnprocessableEntity, "limits", "Automatic payments", f, v)
	}
	if err := a.rdb.HSet(ctx, a.prefix+"lim:"+p.uid, limitField(l.Vendor, l.Origin), l.Tokens).Err(); err != nil {
		return err
	}
	return p.redirect("/limits")
}

func (a *Agent) pageLimitDelete(p *pageReq) error {
	vendor, origin := p.form.Get("vendor"), p.form.Get("origin")
	if !payword.ValidID(vendor) || len(origin) > payword.MaxOriginLen {
		return pageError(http.StatusBadRequest, "There is no such limit.")
	}
	if err := a.rdb.HDel(p.r.Context(), a.prefix+"lim:"+p.uid, limitField(vendor, origin)).Err(); err != nil {
		return err
	}
	return p.redirect("/limits")
}
