package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// The vendor's sites: the origins the bank publishes for it (GET
// /v1/vendors/{vendor}/origins), and a form that replaces them through the
// API's own code (setVendorOrigins), one origin a line.

// publishedOrigins is the origins list of the vendor's signed document.
func (a *Agent) publishedOrigins(ctx context.Context, vendor string) ([]string, error) {
	doc, err := a.VendorOrigins(ctx, vendor)
	if err != nil {
		return nil, err
	}
	var body payword.VendorOrigins
	if err := json.Unmarshal(doc.Body, &body); err != nil {
		return nil, err
	}
	return body.Origins, nil
}

type originsView struct {
	Origins  []string
	Vendor   string
	Max, TTL int
}

func (a *Agent) pageVendorOrigins(p *vendorReq) error {
	ctx := p.r.Context()
	origins, err := a.publishedOrigins(ctx, p.vendor)
	if err != nil {
		return err
	}
	v := originsView{Origins: origins, Vendor: p.vendor, Max: payword.MaxOrigins, TTL: int(originsTTL.Minutes())}
	if p.r.Method == http.MethodGet {
		f := web.NewForm()
		f.Values["origins"] = strings.Join(origins, "\n")
		if p.r.URL.Query().Has("saved") {
			p.flash = "Saved. Wallets that cached the former list follow within an hour at most."
		}
		return p.render(http.StatusOK, "vendor_origins", "Sites", f, v)
	}
	f := p.form
	var list []string
	for _, line := range strings.Split(f.Get("origins"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			list = append(list, line)
		}
	}
	list = append([]string{}, list...) // never nil: an empty list is allowed (no wallet pays then)
	_, err = a.setVendorOrigins(ctx, p.vendor, list)
	if e, ok := errors.AsType[*agentapi.Error](err); ok && e.Code == agentapi.CodeInvalidOrigins {
		f.Fail("origins", sentence(e.Message))
		return p.render(http.StatusUnprocessableEntity, "vendor_origins", "Sites", f, v)
	}
	if err != nil {
		return err
	}
	return p.redirect("/vendor/origins?saved")
}
