package agent

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
)

// The vendor's money pages: takings per day and per product (GET
// /v1/revenue, /v1/revenue/products), its claims with their verdicts (GET
// /v1/claims) and its disputes in words (GET /v1/disputes), each read by
// the same functions as the API and a page at a time.

const productsPage = 20 // products a page of the ranking

type revenueView struct {
	From, To                        string
	Claims                          int64
	Credited, Voided, Net           string
	Chart                           web.Chart
	Days                            []revenueDayView
	Products                        web.Ranking
	MoreProductsURL, TopProductsURL string
}

type revenueDayView struct {
	Day, Credited, Voided, Net string
	Claims                     int64
}

func (a *Agent) pageVendorRevenue(p *vendorReq) error {
	q := p.r.URL.Query()
	form := web.NewForm()
	form.Values["from"], form.Values["to"] = q.Get("from"), q.Get("to")
	from, to, err := a.revenuePeriod(q.Get("from"), q.Get("to"))
	if err != nil {
		form.Fail("from", "Give the first and last day as YYYY-MM-DD, at most a year apart, the first not after the last.")
		from, to, _ = a.revenuePeriod("", "")
	}
	offset := pageOffset(q.Get("p"))
	ctx := p.r.Context()
	rev, err := a.VendorRevenue(ctx, p.vendor, from, to)
	if err != nil {
		return err
	}
	prods, err := a.VendorProducts(ctx, p.vendor, offset, productsPage)
	if err != nil {
		return err
	}
	if form.OK() {
		form.Values["from"], form.Values["to"] = rev.From, rev.To
	}
	v := revenueView{From: rev.From, To: rev.To, Claims: rev.Claims, Credited: a.money(rev.Credited),
		Voided: a.money(rev.Voided), Net: a.money(rev.Credited - rev.Voided)}
	names, nets := make([]string, len(rev.Days)), make([]int64, len(rev.Days))
	for i, d := range rev.Days {
		names[i], nets[i] = d.Day, d.Net
		if d.Claims != 0 || d.Credited != 0 || d.Voided != 0 {
			v.Days = append(v.Days, revenueDayView{Day: d.Day, Claims: d.Claims, Credited: a.money(d.Credited), Voided: a.money(d.Voided), Net: a.money(d.Net)})
		}
	}
	v.Chart = web.BarChart(fmt.Sprintf("Net takings per day, %s to %s (UTC)", rev.From, rev.To), names, nets, a.money)
	pn, pv := make([]string, len(prods.Products)), make([]int64, len(prods.Products))
	for i, pr := range prods.Products {
		pn[i], pv[i] = pr.Product, pr.Value
	}
	title := "What each article earned since your first claim, net of voids"
	if offset > 0 {
		title += fmt.Sprintf(" (from the %s)", ordinal(offset+1))
	}
	v.Products = web.RankChart(title, pn, pv, a.money)
	period := url.Values{"from": {rev.From}, "to": {rev.To}}
	if prods.Next != 0 {
		period.Set("p", strconv.Itoa(prods.Next))
		v.MoreProductsURL = "/vendor/revenue?" + period.Encode()
	}
	if offset > 0 {
		period.Del("p")
		v.TopProductsURL = "/vendor/revenue?" + period.Encode()
	}
	return p.render(http.StatusOK, "vendor_revenue", "Revenue", form, v)
}

// pageOffset reads a page's offset: 0 unless it is 0 to maxOffset.
func pageOffset(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxOffset {
		return 0
	}
	return n
}

// ordinal is 1st, 2nd, 3rd, 4th…
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

type claimsView struct {
	Claims              []claimView
	OlderURL, NewestURL string
}

type claimView struct {
	When, Product, Serial, Verdict, Tokens, Value string
	Short                                         string // the serial's start, shown
	Segment, Index                                uint32
	Bad, Debit                                    bool
}

// verdictWords says what a claim's verdict did, for the vendor.
var verdictWords = map[agentapi.Verdict]string{
	agentapi.VerdictPaid:        "paid",
	agentapi.VerdictDoubleSpend: "paid; the reader had spent these tokens at another site first, and pays for it",
	agentapi.VerdictInvalid:     "refused: the token is not one of this certificate's",
	agentapi.VerdictVendorFraud: "refused: the reader never bound this segment to you",
	"voided":                    "voided: taken back, the page was not served",
}

func (a *Agent) pageVendorClaims(p *vendorReq) error {
	before := p.r.URL.Query().Get("before")
	if before != "" && !validStreamID(before) {
		return pageError(http.StatusBadRequest, "That is not a page of your claims.")
	}
	cl, err := a.VendorClaims(p.r.Context(), p.vendor, before, defaultPage)
	if err != nil {
		return err
	}
	v := claimsView{}
	for _, c := range cl.Claims {
		words, ok := verdictWords[c.Verdict]
		if !ok {
			words = string(c.Verdict)
		}
		v.Claims = append(v.Claims, claimView{When: time.Unix(c.Time, 0).UTC().Format("2006-01-02 15:04"), Product: c.Product,
			Serial: c.Serial, Short: c.Serial[:min(8, len(c.Serial))], Segment: c.Segment, Index: c.Index, Verdict: words, Tokens: strconv.FormatInt(c.Tokens, 10),
			Value: a.money(c.Value), Bad: c.Verdict == agentapi.VerdictInvalid || c.Verdict == agentapi.VerdictVendorFraud, Debit: c.Value < 0})
	}
	if cl.Next != "" {
		v.OlderURL = "/vendor/claims?before=" + url.QueryEscape(cl.Next)
	}
	if before != "" {
		v.NewestURL = "/vendor/claims"
	}
	return p.render(http.StatusOK, "vendor_claims", "Claims", nil, v)
}

type disputesView struct {
	Cases              []disputeView
	OlderURL, NewerURL string
}

type disputeView struct {
	When, Title, Words string
	Against            bool // a case against this vendor's own claims
}

// disputeWords tells a fraud case as the vendor sees it.
func disputeWords(vendor string, c agentapi.FraudCase) disputeView {
	seg := fmt.Sprintf("segment %d of certificate %s", c.Seg, c.Serial)
	d := disputeView{When: time.Unix(c.Time, 0).UTC().Format("2006-01-02 15:04")}
	switch {
	case c.Kind == "double_spend" && c.Owner == vendor:
		d.Title = "A reader spent your tokens again elsewhere"
		d.Words = fmt.Sprintf("The reader bound %s to you, then paid %s with it too: proven by the reader's two signed bindings of that segment. The bank revoked the certificate and charged the reader; what you were paid stays yours.", seg, c.Vendor)
	case c.Kind == "double_spend":
		d.Title = "You were paid with tokens spent before"
		d.Words = fmt.Sprintf("The reader had bound %s to %s before paying you with it: proven by the reader's two signed bindings of that segment. You were paid; the bank charged the reader and revoked the certificate.", seg, c.Owner)
	case c.Kind == "double_bind":
		d.Title = "A reader bound one segment to two sites"
		d.Words = fmt.Sprintf("The reader signed bindings of %s to %s and to %s: the bank revoked the certificate.", seg, c.Owner, c.Vendor)
	case c.Kind == string(agentapi.VerdictInvalid):
		d.Title, d.Against = "A claim of yours was refused", true
		d.Words = fmt.Sprintf("Your claim on %s carried a token the certificate does not derive. Nothing was paid, and the bank counts it against you.", seg)
	case c.Kind == string(agentapi.VerdictVendorFraud):
		d.Title, d.Against = "A claim of yours was refused", true
		d.Words = fmt.Sprintf("Your claim on %s had no valid binding of that segment to you, signed by the reader. Nothing was paid, and the bank counts it against you.", seg)
	default:
		d.Title, d.Words = c.Kind, seg
	}
	return d
}

func (a *Agent) pageVendorDisputes(p *vendorReq) error {
	offset := pageOffset(p.r.URL.Query().Get("p"))
	ds, err := a.VendorDisputes(p.r.Context(), p.vendor, offset, defaultPage)
	if err != nil {
		return err
	}
	v := disputesView{}
	for _, c := range ds.Cases {
		v.Cases = append(v.Cases, disputeWords(p.vendor, c))
	}
	if ds.Next != 0 {
		v.OlderURL = "/vendor/disputes?p=" + strconv.Itoa(ds.Next)
	}
	if offset > 0 {
		v.NewerURL = "/vendor/disputes?p=" + strconv.Itoa(max(0, offset-defaultPage))
	}
	return p.render(http.StatusOK, "vendor_disputes", "Disputes", nil, v)
}
