package agent

import (
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
)

// The vendor's API token: replaced through the API's own code
// (rotateVendorToken), the old one stopping at once or after a grace. The
// new token is shown in the answer to the POST itself, not after a
// redirect: the bank keeps only its hash, so no later page could show it.
// This session is moved onto the new token and stays; every other session
// opened with the old token ends with it.

// tokenGraces are the form's choices: how long the old token keeps working.
var tokenGraces = []struct {
	Value, Label string
	Seconds      int64
}{
	{"0", "Stop the old token now", 0},
	{"3600", "Keep the old token working for one hour, while I update my sites", 3600},
	{"86400", "Keep it working for one day", 86400},
}

type newTokenView struct {
	Token, OldUntil string // OldUntil: "" if the old token stopped at once
}

func (a *Agent) pageVendorToken(p *vendorReq) error {
	if p.r.Method == http.MethodGet {
		f := web.NewForm()
		f.Values["grace"] = "0"
		return p.render(http.StatusOK, "vendor_token", "API token", f, tokenGraces)
	}
	f := p.form
	grace := int64(-1)
	for _, g := range tokenGraces {
		if f.Get("grace") == g.Value {
			grace = g.Seconds
		}
	}
	if grace < 0 {
		f.Fail("grace", "Choose when the old token stops working.")
		return p.render(http.StatusUnprocessableEntity, "vendor_token", "API token", f, tokenGraces)
	}
	ctx := p.r.Context()
	out, err := a.rotateVendorToken(ctx, p.vendor, grace)
	if err != nil {
		return err
	}
	// XX: a session ended meanwhile (log-out elsewhere) is not brought back.
	err = a.rdb.SetArgs(ctx, p.sessKey, p.vendor+" "+tokenHash(out.Token), redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	if err != nil && err != redis.Nil {
		return err
	}
	v := newTokenView{Token: out.Token}
	if out.OldValidUntil > 0 {
		v.OldUntil = time.Unix(out.OldValidUntil, 0).UTC().Format("2006-01-02 15:04 UTC")
	}
	return p.render(http.StatusOK, "vendor_token_new", "Your new API token", nil, v)
}
