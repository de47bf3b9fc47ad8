package agent

import (
	"net/http"
	"strconv"

	"github.com/hashwall/hashwall/agentapi"
)

// The operator's overview: how many fraud cases and revocations the bank
// holds, the ledger check on demand, and the other pages. The check reads
// every ledger entry in one script, which holds Redis while it runs (as
// GET /v1/admin/ledger/check does): the overview runs it when the operator
// asks (?check=1), not on every view.

type adminOverview struct {
	Fraud, Revocations int64
	Checked            bool // the ledger check ran for this view
	Ledger             ledgerView
	Sections           []pageSection
}

type ledgerView struct {
	Pass              bool
	Accounts, Entries string
	Readers, Vendors  string
	Bad               []string
}

func (a *Agent) pageAdminOverview(p *adminReq) error {
	ctx := p.r.Context()
	pipe := a.rdb.Pipeline()
	fraud := pipe.LLen(ctx, a.prefix+"fraud")
	crl := pipe.ZCard(ctx, agentapi.CRLKey)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	v := adminOverview{Fraud: fraud.Val(), Revocations: crl.Val(), Sections: adminSections[1:]}
	if p.r.URL.Query().Get("check") == "1" {
		t, err := a.LedgerCheck(ctx)
		if err != nil {
			return err
		}
		v.Checked = true
		v.Ledger = ledgerView{Pass: len(t.Bad) == 0, Accounts: strconv.FormatInt(t.Accounts, 10),
			Entries: strconv.FormatInt(t.Entries, 10), Readers: a.money(t.Readers), Vendors: a.money(t.Vendors), Bad: t.Bad}
	}
	return p.render(http.StatusOK, "admin_overview", "Overview", nil, v)
}
