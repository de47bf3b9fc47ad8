package agent

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// The operator's two actions, each through the API's own code: a credit
// (adminCredit, POST /v1/admin/credit) and a revocation (adminRevoke, POST
// /v1/admin/revoke). A credit's form carries an event id made when it was
// shown, so that the form sent twice credits once (the API's idempotent
// event). A revocation carries the operator's reason: the revocation list
// itself says "admin", as the API's (its reasons are the protocol's); the
// words are kept beside it, in P revnote, which the revocations page shows.

const maxNote = 200 // bytes of a revocation's reason

// creditEvent is the credit's event id of a credit form.
func creditEvent(id string) string { return "admin-page-" + id }

type creditView struct {
	Currency, TokenValue string
}

func (a *Agent) pageAdminCredit(p *adminReq) error {
	v := creditView{Currency: a.cfg.Currency, TokenValue: a.money(int64(a.cfg.UnitValue))}
	if p.r.Method == http.MethodGet {
		f := web.NewForm()
		f.Values["event"], f.Values["unit"] = randomHex(16), "money"
		return p.render(http.StatusOK, "admin_credit", "Credit a reader", f, v)
	}
	f := p.form
	user, ref, event := f.Trimmed("username"), f.Trimmed("ref"), f.Get("event")
	f.Values["username"], f.Values["ref"] = user, ref
	if !payword.ValidID(user) {
		f.Fail("username", "Enter the reader's username: 1 to 64 characters of A-Z a-z 0-9 . _ - : @.")
	}
	var amount int64
	var msg string
	switch f.Get("unit") {
	case "money":
		amount, msg = parseMoney(f.Get("amount"), maxCredit)
	case "tokens":
		var n int64
		n, msg = parseTokens(f.Get("amount"), maxCredit/int64(a.cfg.UnitValue))
		amount = n * int64(a.cfg.UnitValue)
	default:
		f.Fail("unit", "Choose money or tokens.")
	}
	if msg != "" {
		f.Fail("amount", msg)
	}
	if ref != "" && !payword.ValidID(ref) {
		f.Fail("ref", "A reference is 1 to 64 characters of A-Z a-z 0-9 . _ - : @, without spaces.")
	}
	if len(event) != 32 || strings.Trim(event, "0123456789abcdef") != "" {
		f.Fail("", "This form has expired: check it and send it again.")
		f.Values["event"] = randomHex(16)
	}
	if !f.OK() {
		return p.render(http.StatusUnprocessableEntity, "admin_credit", "Credit a reader", f, v)
	}
	_, err := a.adminCredit(p.r.Context(), agentapi.Credit{User: user, Amount: amount, Ref: ref, Event: creditEvent(event)})
	if e, ok := errors.AsType[*agentapi.Error](err); ok && e.Code == agentapi.CodeUnknownUser {
		f.Fail("username", "No reader has this username.")
		return p.render(http.StatusUnprocessableEntity, "admin_credit", "Credit a reader", f, v)
	}
	if err != nil {
		return err
	}
	// Sent twice, the second is the event's duplicate: the same page.
	return p.redirect("/admin/credit/done?event=" + event)
}

// parseMoney reads a positive amount of money with at most two decimals,
// in minor units up to most, or says what is wrong with it.
func parseMoney(s string, most int64) (int64, string) {
	s = strings.TrimSpace(s)
	whole, frac, dot := strings.Cut(strings.Replace(s, ",", ".", 1), ".")
	digits := func(x string) bool { return strings.Trim(x, "0123456789") == "" }
	switch {
	case s == "":
		return 0, "Enter an amount."
	case !digits(whole) || !digits(frac) || (whole == "" && frac == "") || (dot && frac == ""):
		return 0, "Enter an amount as 12.50: digits, at most two after the point."
	case len(frac) > 2:
		return 0, "At most two digits after the point (cents)."
	case len(whole) > 15:
		return 0, fmt.Sprintf("At most %s.", minorText(most))
	}
	w, _ := strconv.ParseInt("0"+whole, 10, 64)
	c, _ := strconv.ParseInt((frac + "00")[:2], 10, 64)
	n := w*100 + c
	switch {
	case n < 1:
		return 0, "Enter an amount of at least 0.01."
	case n > most:
		return 0, fmt.Sprintf("At most %s.", minorText(most))
	}
	return n, ""
}

// minorText is minor units as a number with two decimals, no currency.
func minorText(n int64) string { return fmt.Sprintf("%d.%02d", n/100, n%100) }

type creditDoneView struct {
	Username, UID, Balance, Tokens string
	Entries                        []entryView
}

// creditShown is how many of the reader's latest entries the confirmation shows.
const creditShown = 5

// pageAdminCreditDone confirms a credit from the store, not from the URL:
// the event's account, its balance and its latest ledger entries.
func (a *Agent) pageAdminCreditDone(p *adminReq) error {
	event := p.r.URL.Query().Get("event")
	notFound := pageError(http.StatusNotFound, "There is no such credit.")
	if len(event) != 32 || strings.Trim(event, "0123456789abcdef") != "" {
		return notFound
	}
	ctx := p.r.Context()
	acct, err := a.rdb.Get(ctx, a.prefix+"evt:"+creditEvent(event)).Result()
	if err == redis.Nil || !strings.HasPrefix(acct, "u:") {
		return notFound
	}
	if err != nil {
		return err
	}
	pipe := a.rdb.Pipeline()
	u := pipe.HMGet(ctx, a.prefix+acct, "name", "bal")
	led := pipe.ZRevRange(ctx, a.prefix+"led:"+acct, 0, creditShown-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	name, _ := u.Val()[0].(string)
	bal, _ := u.Val()[1].(string)
	minor, _ := strconv.ParseInt(bal, 10, 64)
	entries, err := decodeEntries(acct, led.Val())
	if err != nil {
		return err
	}
	v := creditDoneView{Username: name, UID: strings.TrimPrefix(acct, "u:"), Balance: a.money(minor), Tokens: a.tokensOf(minor)}
	for i := len(entries) - 1; i >= 0; i-- { // newest first
		e := entries[i]
		v.Entries = append(v.Entries, entryView{When: time.Unix(e.Time, 0).UTC().Format("2006-01-02 15:04"), What: entryKind(e.Kind),
			Ref: e.Ref, Amount: a.money(e.Amount), Balance: a.money(e.Balance), Debit: e.Amount < 0})
	}
	p.flash = "Credited."
	return p.render(http.StatusOK, "admin_credit_done", "Credited", nil, v)
}

func (a *Agent) pageAdminRevoke(p *adminReq) error {
	if p.r.Method == http.MethodGet {
		return p.render(http.StatusOK, "admin_revoke", "Revoke", nil, nil)
	}
	f := p.form
	serial, user, vendor, note := f.Trimmed("serial"), f.Trimmed("username"), f.Trimmed("vendor"), f.Trimmed("reason")
	f.Values["serial"], f.Values["username"], f.Values["vendor"], f.Values["reason"] = serial, user, vendor, note
	var q agentapi.Revoke
	given := 0
	for _, v := range []string{serial, user, vendor} {
		if v != "" {
			given++
		}
	}
	switch {
	case given != 1:
		f.Fail("", "Give one of a certificate's serial, a reader's username or a vendor's id.")
	case vendor != "":
		if !payword.ValidID(vendor) {
			f.Fail("vendor", "Enter the vendor's id: 1 to 64 characters of A-Z a-z 0-9 . _ - : @.")
		}
		q.Vendor = vendor
	case serial != "":
		s, err := payword.ParseSerial(serial)
		if err != nil {
			f.Fail("serial", "A serial is 32 hexadecimal digits, as the revocation list and the reader's account show it.")
		}
		q.Serial = &s
	default:
		if !payword.ValidID(user) {
			f.Fail("username", "Enter the reader's username: 1 to 64 characters of A-Z a-z 0-9 . _ - : @.")
		}
		q.User = user
	}
	switch {
	case note == "":
		f.Fail("reason", "Say why: the reason is kept with the revocation.")
	case len(note) > maxNote || strings.ContainsFunc(note, unicode.IsControl) || !utf8.ValidString(note):
		f.Fail("reason", fmt.Sprintf("At most %d bytes on one line.", maxNote))
	}
	if !f.OK() {
		return p.render(http.StatusUnprocessableEntity, "admin_revoke", "Revoke", f, nil)
	}
	ctx := p.r.Context()
	out, err := a.adminRevoke(ctx, q)
	if e, ok := errors.AsType[*agentapi.Error](err); ok && (e.Code == agentapi.CodeUnknownUser || e.Code == agentapi.CodeUnknownAccount) {
		if vendor != "" {
			f.Fail("vendor", "No vendor has this id.")
		} else {
			f.Fail("username", "No reader has this username.")
		}
		return p.render(http.StatusUnprocessableEntity, "admin_revoke", "Revoke", f, nil)
	}
	if err != nil {
		return err
	}
	if !out.Revoked {
		f.Fail("serial", "No active certificate has this serial: it is unknown, expired or revoked already.")
		return p.render(http.StatusUnprocessableEntity, "admin_revoke", "Revoke", f, nil)
	}
	var field string
	var done url.Values
	switch {
	case q.Serial != nil:
		field, done = "c:"+q.Serial.String(), url.Values{"serial": {q.Serial.String()}}
	case vendor != "":
		field, done = "v:"+vendor, url.Values{"vendor": {vendor}}
	default:
		uid, err := a.userID(ctx, user)
		if err != nil {
			return err
		}
		field, done = "u:"+uid, url.Values{"user": {user}}
	}
	if err := a.rdb.HSet(ctx, a.prefix+"revnote", field, note).Err(); err != nil {
		return err
	}
	return p.redirect("/admin/revocations?" + done.Encode())
}

// revokedFlash confirms a revocation the revocations page was sent to
// after it, from the store: "" unless the certificate or account is
// revoked.
func (a *Agent) revokedFlash(p *adminReq) (string, error) {
	ctx := p.r.Context()
	q := p.r.URL.Query()
	if s := q.Get("serial"); s != "" {
		serial, err := payword.ParseSerial(s)
		if err != nil {
			return "", nil
		}
		st, err := a.rdb.HGet(ctx, a.prefix+"c:{"+serial.String()+"}", "status").Result()
		if err != nil && err != redis.Nil {
			return "", err
		}
		if st == "revoked" {
			return "Certificate " + serial.String() + " is revoked: it is on the list below, and gateways refuse it once they read the list.", nil
		}
	}
	if u := q.Get("user"); u != "" && payword.ValidID(u) {
		uid, err := a.rdb.Get(ctx, a.prefix+"uname:"+u).Result()
		if err == redis.Nil {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		st, err := a.rdb.HGet(ctx, a.prefix+"u:"+uid, "status").Result()
		if err != nil && err != redis.Nil {
			return "", err
		}
		if st == "revoked" {
			return "The account of " + u + " is revoked: it can neither log in nor buy, and its certificates are on the list below.", nil
		}
	}
	if v := q.Get("vendor"); v != "" && payword.ValidID(v) {
		st, err := a.rdb.HGet(ctx, a.prefix+"v:"+v, "status").Result()
		if err != nil && err != redis.Nil {
			return "", err
		}
		if st == "revoked" {
			return "Vendor " + v + " is revoked: its API token and pages stop working, and the bank takes no more of its reports.", nil
		}
	}
	return "", nil
}
