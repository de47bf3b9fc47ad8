package agent

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hashwall/hashwall/agent/web"
)

// The operator's look-ups: readers and vendors by name and the figures of
// the last minutes, read by the functions of GET /v1/admin/users,
// /v1/admin/vendors and /v1/admin/stats, a page at a time.

type readersView struct {
	Q        string
	Readers  []readerRow
	NextURL  string
	FirstURL string
}

type readerRow struct {
	Username, ID, Balance, Status, Created string
	Certificates                           int64
}

// searchParams reads a search page's q and after; a bad one is refused
// with a message.
func searchParams(r *http.Request) (q, after string, err error) {
	q, after = r.URL.Query().Get("q"), r.URL.Query().Get("after")
	if !searchable(q) || !searchable(after) {
		return "", "", pageError(http.StatusBadRequest, fmt.Sprintf("Search for the start of a name: at most %d letters, digits or signs, without spaces.", maxSearch))
	}
	return q, after, nil
}

// searchLinks are a search page's links to its next page and its first.
func searchLinks(path, q, after, next string) (nextURL, firstURL string) {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if after != "" {
		firstURL = path + "?" + v.Encode()
	}
	if next != "" {
		v.Set("after", next)
		nextURL = path + "?" + v.Encode()
	}
	return nextURL, firstURL
}

func (a *Agent) pageAdminReaders(p *adminReq) error {
	q, after, err := searchParams(p.r)
	if err != nil {
		return err
	}
	us, err := a.Users(p.r.Context(), q, after, defaultPage)
	if err != nil {
		return err
	}
	v := readersView{Q: q}
	for _, u := range us.Users {
		v.Readers = append(v.Readers, readerRow{Username: u.Username, ID: u.ID, Balance: a.money(u.Balance), Status: u.Status,
			Certificates: u.Certificates, Created: when(u.Created)})
	}
	v.NextURL, v.FirstURL = searchLinks("/admin/readers", q, after, us.Next)
	return p.render(http.StatusOK, "admin_readers", "Readers", nil, v)
}

type vendorsView struct {
	Q        string
	Vendors  []vendorRow
	NextURL  string
	FirstURL string
}

type vendorRow struct {
	Vendor, Balance, Status, LastReport, Lag string
	Fraud                                    int64
	Late                                     bool // no report for an hour, or its claims an hour late
}

// lateAfter is when a vendor's reports look stuck: its gateway reports
// every few seconds while it takes payments.
const lateAfter = time.Hour

func (a *Agent) pageAdminVendors(p *adminReq) error {
	q, after, err := searchParams(p.r)
	if err != nil {
		return err
	}
	vs, err := a.VendorList(p.r.Context(), q, after, defaultPage)
	if err != nil {
		return err
	}
	v := vendorsView{Q: q}
	now := a.now().Unix()
	for _, x := range vs.Vendors {
		row := vendorRow{Vendor: x.Vendor, Balance: a.money(x.Balance), Status: x.Status, Fraud: x.Fraud, LastReport: "never", Lag: "–"}
		if x.LastReport > 0 {
			row.LastReport, row.Lag = when(x.LastReport), fmt.Sprintf("%d s", x.Lag)
			row.Late = now-x.LastReport > int64(lateAfter/time.Second) || x.Lag > int64(lateAfter/time.Second)
		}
		v.Vendors = append(v.Vendors, row)
	}
	v.NextURL, v.FirstURL = searchLinks("/admin/vendors", q, after, vs.Next)
	return p.render(http.StatusOK, "admin_vendors", "Vendors", nil, v)
}

// when is a Unix time as the operator reads it (UTC).
func when(t int64) string { return time.Unix(t, 0).UTC().Format("2006-01-02 15:04") }

// maxBars bounds the bars of a figures chart.
const maxBars = 120

type figuresView struct {
	Minutes                          int
	Claims, Paid                     int64
	Value                            string
	LagMean                          string
	LagMax                           int64
	CRL, Fraud, Readers, Vendors     int64
	ClaimsChart, PaidChart, LagChart web.Chart
}

func (a *Agent) pageAdminFigures(p *adminReq) error {
	minutes := defaultMinutes
	if s := p.r.URL.Query().Get("minutes"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxMinutes {
			return pageError(http.StatusBadRequest, fmt.Sprintf("Show 1 to %d minutes.", maxMinutes))
		}
		minutes = n
	}
	st, err := a.Stats(p.r.Context(), minutes)
	if err != nil {
		return err
	}
	v := figuresView{Minutes: minutes, CRL: st.CRLEntries, Fraud: st.FraudCases, Readers: st.Users, Vendors: st.Vendors}
	// A bar stands for one minute, or for several when there are more than
	// maxBars: a day's chart stays readable and quick to draw.
	per := (len(st.Minutes) + maxBars - 1) / maxBars
	bars := (len(st.Minutes) + per - 1) / per
	names := make([]string, bars)
	claims, paid, lag := make([]int64, bars), make([]int64, bars), make([]int64, bars)
	var value, lagsum, lagn int64
	for i, m := range st.Minutes {
		k := i / per
		if i%per == 0 {
			names[k] = time.Unix(m.Minute, 0).UTC().Format("15:04")
		}
		claims[k] += m.Claims
		paid[k] += m.Paid
		lag[k] = max(lag[k], m.LagMax)
		v.Claims += m.Claims
		v.Paid += m.Paid
		value += m.Value
		v.LagMax = max(v.LagMax, m.LagMax)
		if m.Claims > 0 {
			lagsum += int64(m.LagMean * float64(m.Claims))
			lagn += m.Claims
		}
	}
	v.Value = a.money(value)
	v.LagMean = "–"
	if lagn > 0 {
		v.LagMean = fmt.Sprintf("%.1f s", float64(lagsum)/float64(lagn))
	}
	count := func(n int64) string { return strconv.FormatInt(n, 10) }
	secs := func(n int64) string { return fmt.Sprintf("%d s", n) }
	unit := "minute"
	if per > 1 {
		unit = fmt.Sprintf("%d minutes", per)
	}
	v.ClaimsChart = web.BarChart("Claims recorded per "+unit+" (UTC)", names, claims, count)
	v.PaidChart = web.BarChart("Payments (claims paid) per "+unit+" (UTC)", names, paid, count)
	v.LagChart = web.BarChart("Largest claim delivery delay per "+unit+", seconds (UTC)", names, lag, secs)
	return p.render(http.StatusOK, "admin_figures", "Figures", nil, v)
}
