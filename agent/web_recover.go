package agent

import (
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
)

// The recovery page: the API's recovery (recoverAccount) for the logged-in
// reader, confirmed with the password (through login(), so throttled), for
// a reader who lost a command-line or extension wallet. No certificate is
// issued here: the value returns to the balance, and a new wallet buys.

type recoverView struct {
	Certs                  int64
	Window, Advance, Every string
	Bank                   string
	Result                 string
}

func (a *Agent) pageRecover(p *pageReq) error {
	ctx := p.r.Context()
	n, err := a.rdb.SCard(ctx, a.prefix+"ucerts:"+p.uid).Result()
	if err != nil && err != redis.Nil {
		return err
	}
	scheme := "http"
	if p.secure {
		scheme = "https"
	}
	v := recoverView{Certs: n, Window: time.Duration(a.cfg.ReportWindow).String(), Every: time.Duration(a.cfg.RecoverEvery).String(),
		Bank: scheme + "://" + p.r.Host}
	if a.cfg.RecoverAdvance > 0 {
		v.Advance = a.money(a.cfg.RecoverAdvance)
	}
	if p.r.Method == http.MethodGet {
		return p.render(http.StatusOK, "recover", "Lost wallet", nil, v)
	}
	f := p.form
	if f.Get("password") == "" {
		f.Fail("password", "Enter your password to confirm.")
		return p.render(http.StatusUnprocessableEntity, "recover", "Lost wallet", f, v)
	}
	uid, err := a.login(ctx, p.r, p.user, f.Get("password"))
	if err == nil && uid != p.uid {
		err = errCredentials // the username now names another account
	}
	if err != nil {
		return p.loginRefused(f, "recover", "Lost wallet", v, err)
	}
	rec, err := a.recoverAccount(ctx, p.uid)
	if err != nil {
		return err
	}
	v.Certs = 0
	v.Result = fmt.Sprintf("Done: your wallet's certificates are cancelled. %s is back on your balance now", a.money(rec.RecoveredValue))
	if rec.PendingCredit > 0 {
		v.Result += fmt.Sprintf(", and up to %s more on %s, less what sites report they were paid meanwhile",
			a.money(rec.PendingCredit), time.Unix(rec.CreditAt, 0).UTC().Format("2006-01-02 15:04 UTC"))
	}
	v.Result += "."
	return p.render(http.StatusOK, "recover", "Lost wallet", nil, v)
}
