package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
)

// Top-ups through a checkout. The page's form carries a checkout id made
// when it was shown; submitting it records the checkout (reader, tokens,
// provider) once, and the provider completes it by crediting the account
// with the event id "topup-<id>": the webhook's idempotency (Credit), so a
// completion delivered again, or the form sent twice, credits once. A real
// processor completes through the signed webhook (POST
// /v1/webhooks/payment) with that event id; the built-in "test" provider,
// on only with the test_topups setting, completes at once for free.

const checkoutTTL = 24 * time.Hour

// checkout is one top-up of a reader.
type checkout struct {
	ID       string
	UID      string
	User     string // username, whom Credit credits
	Tokens   int64
	Provider string
}

// checkoutProvider takes the reader's money for a checkout: begin starts
// it and returns where the browser goes next.
type checkoutProvider interface {
	Name() string
	Label() string
	begin(ctx context.Context, co checkout) (string, error)
}

// testProvider completes every checkout at once, without payment.
type testProvider struct{ a *Agent }

func (testProvider) Name() string  { return "test" }
func (testProvider) Label() string { return "Test payment (free; this bank runs in test mode)" }
func (t testProvider) begin(ctx context.Context, co checkout) (string, error) {
	if _, err := t.a.completeCheckout(ctx, co); err != nil {
		return "", err
	}
	return "/topup/" + co.ID, nil
}

func (a *Agent) providers() []checkoutProvider {
	if a.cfg.TestTopups {
		return []checkoutProvider{testProvider{a}}
	}
	return nil
}

// checkoutEvent is the credit's event id of a checkout.
func checkoutEvent(id string) string { return "topup-" + id }

// completeCheckout credits a checkout's tokens once; it reports whether
// this call credited them.
func (a *Agent) completeCheckout(ctx context.Context, co checkout) (bool, error) {
	ev := checkoutEvent(co.ID)
	return a.Credit(ctx, co.User, co.Tokens*int64(a.cfg.UnitValue), "payment", ev, ev)
}

// maxTopup is the most tokens of one top-up.
func (a *Agent) maxTopup() int64 {
	return min(int64(a.cfg.MaxTokens), maxCredit/int64(a.cfg.UnitValue))
}

// parseTokens reads a whole positive number of tokens up to most, or says
// what is wrong with it.
func parseTokens(s string, most int64) (int64, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return 0, "Enter a number of tokens."
	case strings.HasPrefix(s, "-"):
		return 0, "Enter a number of at least 1."
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, "Enter a whole number of tokens, digits only."
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil || n > most:
		return 0, fmt.Sprintf("At most %d tokens.", most)
	case n < 1:
		return 0, "Enter a number of at least 1."
	}
	return n, ""
}

type topupView struct {
	Tokens, Money, TokenValue, Range string
	Providers                        []checkoutProvider
}

func (a *Agent) pageTopup(p *pageReq) error {
	ctx := p.r.Context()
	bal, err := a.balance(ctx, p.uid)
	if err != nil {
		return err
	}
	v := topupView{Tokens: a.tokensOf(bal), Money: a.money(bal), TokenValue: a.money(int64(a.cfg.UnitValue)),
		Range: fmt.Sprintf("1 to %d", a.maxTopup()), Providers: a.providers()}
	if p.r.Method == http.MethodGet {
		f := web.NewForm()
		f.Values["checkout"] = randomHex(16)
		f.Values["provider"] = "test"
		return p.render(http.StatusOK, "topup", "Top up", f, v)
	}
	f := p.form
	co := checkout{UID: p.uid, User: p.user, ID: f.Get("checkout")}
	if b, err := hex.DecodeString(co.ID); err != nil || len(b) != 16 {
		f.Fail("", "This form is out of date: reload the page.")
	}
	var msg string
	if co.Tokens, msg = parseTokens(f.Get("tokens"), a.maxTopup()); msg != "" {
		f.Fail("tokens", msg)
	}
	var prov checkoutProvider
	for _, pr := range v.Providers {
		if pr.Name() == f.Get("provider") {
			prov = pr
		}
	}
	if prov == nil {
		f.Fail("provider", "Choose how to pay.")
	} else {
		co.Provider = prov.Name()
	}
	if !f.OK() {
		return p.render(http.StatusUnprocessableEntity, "topup", "Top up", f, v)
	}
	// The first submission records the checkout; a repeat of the same form
	// goes on with it, any other use of its id is refused.
	rec := co.UID + " " + strconv.FormatInt(co.Tokens, 10) + " " + co.Provider
	key := a.prefix + "co:" + co.ID
	fresh, err := a.rdb.SetNX(ctx, key, rec, checkoutTTL).Result()
	if err != nil {
		return err
	}
	if !fresh {
		prev, err := a.rdb.Get(ctx, key).Result()
		if err != nil && err != redis.Nil {
			return err
		}
		if prev != rec {
			f.Fail("", "This form was already used for another top-up: reload the page.")
			f.Values["checkout"] = randomHex(16)
			return p.render(http.StatusConflict, "topup", "Top up", f, v)
		}
	}
	next, err := prov.begin(ctx, co)
	if err != nil {
		return err
	}
	return p.redirect(next)
}

type topupDoneView struct {
	Status, Tokens, Money, Provider, Balance string
}

func (a *Agent) pageTopupDone(p *pageReq) error {
	ctx := p.r.Context()
	id := p.r.PathValue("id")
	notFound := pageError(http.StatusNotFound, "There is no such top-up.")
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
		return notFound
	}
	rec, err := a.rdb.Get(ctx, a.prefix+"co:"+id).Result()
	if err == redis.Nil {
		return notFound
	}
	if err != nil {
		return err
	}
	f := strings.Fields(rec)
	if len(f) != 3 || f[0] != p.uid { // another reader's
		return notFound
	}
	tokens, _ := strconv.ParseInt(f[1], 10, 64)
	done, err := a.rdb.Exists(ctx, a.prefix+"evt:"+checkoutEvent(id)).Result()
	if err != nil {
		return err
	}
	bal, err := a.balance(ctx, p.uid)
	if err != nil {
		return err
	}
	v := topupDoneView{Status: "pending", Tokens: f[1], Money: a.money(tokens * int64(a.cfg.UnitValue)),
		Provider: f[2], Balance: a.tokensOf(bal) + " tokens (" + a.money(bal) + ")"}
	if done == 1 {
		v.Status = "complete"
	}
	return p.render(http.StatusOK, "topup_done", "Top-up "+v.Status, nil, v)
}
