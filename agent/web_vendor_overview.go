package agent

import (
	"net/http"
)

// The vendor's overview: who is logged in, the balance, what the bank
// credited over the statement page's default period, the published sites,
// and the other pages.

type vendorOverview struct {
	Vendor, Balance, Credited string
	From, To                  string // the credited period's days, as the statement page shows them
	Days                      int
	Origins                   []string
	Sections                  []pageSection // the pages beside the overview
}

func (a *Agent) pageVendorOverview(p *vendorReq) error {
	ctx := p.r.Context()
	bal, err := a.rdb.HGet(ctx, a.prefix+"v:"+p.vendor, "bal").Int64()
	if err != nil {
		return err
	}
	from, to := a.defaultPeriod()
	opening, closing, err := a.statementTotals(ctx, p.vendor, from.Unix(), to.Unix())
	if err != nil {
		return err
	}
	origins, err := a.publishedOrigins(ctx, p.vendor)
	if err != nil {
		return err
	}
	v := vendorOverview{Vendor: p.vendor, Balance: a.money(bal), Credited: a.money(closing - opening),
		From: from.Format(dateLayout), To: to.AddDate(0, 0, -1).Format(dateLayout), Days: statementDays,
		Origins: origins, Sections: vendorSections[1:]}
	return p.render(http.StatusOK, "vendor_overview", "Overview", nil, v)
}
