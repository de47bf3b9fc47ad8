package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
)

// The operator's lists: the bank's fraud cases (hw:a:fraud, read by the
// function of GET /v1/admin/fraud) and the revocation list (the zset of GET
// /v1/crl), each newest first and a page at a time, told in words.

const adminRows = 50 // rows a page

// readerNames maps the readers' ids of a page to their usernames, "" for
// none, in one round trip.
func (a *Agent) readerNames(p *adminReq, uids []string) (map[string]string, error) {
	ctx := p.r.Context()
	pipe := a.rdb.Pipeline()
	cmds := map[string]*redis.StringCmd{}
	for _, u := range uids {
		if _, ok := cmds[u]; !ok && u != "" {
			cmds[u] = pipe.HGet(ctx, a.prefix+"u:"+u, "name")
		}
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, err
		}
	}
	names := map[string]string{}
	for u, c := range cmds {
		names[u] = c.Val()
	}
	return names, nil
}

// readerWords names a reader: "alice (u-…)", or the id alone.
func readerWords(uid, name string) string {
	if name == "" {
		return "reader " + uid
	}
	return fmt.Sprintf("reader %s (%s)", name, uid)
}

// adminDisputeWords tells a fraud case as the bank sees it.
func adminDisputeWords(c agentapi.FraudCase, name string) disputeView {
	seg := fmt.Sprintf("segment %d of certificate %s", c.Seg, c.Serial)
	who := readerWords(c.User, name)
	d := disputeView{When: time.Unix(c.Time, 0).UTC().Format("2006-01-02 15:04")}
	switch c.Kind {
	case "double_spend":
		d.Title = "Double-spend"
		d.Words = fmt.Sprintf("The %s double-spent %s at %s then %s, proven by the reader's two signed bindings of that segment; certificate revoked, the reader charged, both vendors keep what they were paid.", who, seg, c.Owner, c.Vendor)
	case "double_bind":
		d.Title = "One segment bound to two sites"
		d.Words = fmt.Sprintf("The %s bound %s to %s and to %s; certificate revoked.", who, seg, c.Owner, c.Vendor)
	case string(agentapi.VerdictInvalid):
		d.Title, d.Against = "A vendor's claim refused", true
		d.Words = fmt.Sprintf("%s claimed %s (the %s) with a token the certificate does not derive; nothing paid, counted against %s.", c.Vendor, seg, who, c.Vendor)
	case string(agentapi.VerdictVendorFraud):
		d.Title, d.Against = "A vendor's claim refused", true
		d.Words = fmt.Sprintf("%s claimed %s (the %s) without the reader's signed binding of that segment to %s; nothing paid, counted against %s.", c.Vendor, seg, who, c.Vendor, c.Vendor)
	default:
		d.Title, d.Words = c.Kind, fmt.Sprintf("%s, %s, vendor %s", who, seg, c.Vendor)
	}
	return d
}

// fraudPage is a page of the bank's fraud cases, newest first, after the
// offset newest; next is the offset of the next page, 0 at the end.
func (a *Agent) fraudPage(p *adminReq, offset, limit int) ([]agentapi.FraudCase, int, error) {
	// One more than the page, to know whether there is another.
	cases, err := a.fraudRange(p.r.Context(), -int64(offset+limit+1), -int64(offset+1))
	if err != nil {
		return nil, 0, err
	}
	next := 0
	if len(cases) > limit {
		cases, next = cases[1:], offset+limit
	}
	slices.Reverse(cases)
	return cases, next, nil
}

func (a *Agent) pageAdminDisputes(p *adminReq) error {
	offset := pageOffset(p.r.URL.Query().Get("p"))
	cases, next, err := a.fraudPage(p, offset, adminRows)
	if err != nil {
		return err
	}
	uids := make([]string, len(cases))
	for i, c := range cases {
		uids[i] = c.User
	}
	names, err := a.readerNames(p, uids)
	if err != nil {
		return err
	}
	v := disputesView{}
	for _, c := range cases {
		v.Cases = append(v.Cases, adminDisputeWords(c, names[c.User]))
	}
	if next != 0 {
		v.OlderURL = "/admin/disputes?p=" + strconv.Itoa(next)
	}
	if offset > 0 {
		v.NewerURL = "/admin/disputes?p=" + strconv.Itoa(max(0, offset-adminRows))
	}
	return p.render(http.StatusOK, "admin_disputes", "Disputes", nil, v)
}

// crlEntry is a stored revocation as the page reads it: the serial as
// text, so that an entry the page cannot parse is still shown.
type crlEntry struct {
	Seq    uint64 `json:"seq"`
	Serial string `json:"serial"`
	Time   int64  `json:"time"`
	Exp    int64  `json:"exp"`
	Reason string `json:"reason"`
}

// reasonWords says why a certificate was revoked (revoke() in scripts.go).
var reasonWords = map[string]string{
	"double-spend": "double-spend: the reader spent a segment twice",
	"recovered":    "recovered: the reader replaced a lost wallet",
	"admin":        "an operator revoked it",
}

type revocationsView struct {
	Total               int64
	Entries             []revocationView
	OlderURL, NewestURL string
}

type revocationView struct {
	Seq                          uint64
	When, Expires, Serial, Short string
	Reason, Note                 string
	Reader, ReaderID             string // the username ("" if none) and the id
}

func (a *Agent) pageAdminRevocations(p *adminReq) error {
	flash, err := a.revokedFlash(p)
	if err != nil {
		return err
	}
	p.flash = flash
	ctx := p.r.Context()
	top := "+inf"
	before := p.r.URL.Query().Get("before")
	if before != "" {
		n, err := strconv.ParseUint(before, 10, 63)
		if err != nil {
			return pageError(http.StatusBadRequest, "That is not a page of the revocation list.")
		}
		top = "(" + strconv.FormatUint(n, 10)
	}
	pipe := a.rdb.Pipeline()
	total := pipe.ZCard(ctx, agentapi.CRLKey)
	page := pipe.ZRevRangeByScore(ctx, agentapi.CRLKey, &redis.ZRangeBy{Max: top, Min: "-inf", Count: adminRows + 1})
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	raw := page.Val()
	v := revocationsView{Total: total.Val()}
	if len(raw) > adminRows {
		raw = raw[:adminRows]
	}
	entries := make([]crlEntry, len(raw))
	for i, s := range raw {
		if err := json.Unmarshal([]byte(s), &entries[i]); err != nil {
			return fmt.Errorf("revocation %q: %w", s, err)
		}
	}
	uids, names, notes, err := a.revocationReaders(p, entries)
	if err != nil {
		return err
	}
	for i, e := range entries {
		words, ok := reasonWords[e.Reason]
		if !ok {
			words = e.Reason
		}
		r := revocationView{Seq: e.Seq, When: time.Unix(e.Time, 0).UTC().Format("2006-01-02 15:04"),
			Serial: e.Serial, Short: e.Serial[:min(8, len(e.Serial))], Reason: words, Reader: names[uids[i]], ReaderID: uids[i], Note: notes[i]}
		if e.Exp > 0 {
			r.Expires = time.Unix(e.Exp, 0).UTC().Format("2006-01-02")
		}
		v.Entries = append(v.Entries, r)
	}
	if len(page.Val()) > adminRows {
		v.OlderURL = "/admin/revocations?before=" + strconv.FormatUint(entries[len(entries)-1].Seq, 10)
	}
	if before != "" {
		v.NewestURL = "/admin/revocations"
	}
	return p.render(http.StatusOK, "admin_revocations", "Revocations", nil, v)
}

// revocationReaders are the readers of a page's certificates (their ids,
// and the usernames of the ids) and the operator's notes on the
// revocations (P revnote, pageAdminRevoke).
func (a *Agent) revocationReaders(p *adminReq, entries []crlEntry) ([]string, map[string]string, []string, error) {
	ctx := p.r.Context()
	pipe := a.rdb.Pipeline()
	users := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		users[i] = pipe.HGet(ctx, a.prefix+"c:{"+e.Serial+"}", "user")
	}
	if len(entries) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, nil, nil, err
		}
	}
	uids := make([]string, len(entries))
	fields := make([]string, 0, 2*len(entries))
	for i, c := range users {
		uids[i] = c.Val()
		fields = append(fields, "c:"+entries[i].Serial, "u:"+uids[i])
	}
	names, err := a.readerNames(p, uids)
	if err != nil {
		return nil, nil, nil, err
	}
	var vals []any
	if len(fields) > 0 {
		if vals, err = a.rdb.HMGet(ctx, a.prefix+"revnote", fields...).Result(); err != nil {
			return nil, nil, nil, err
		}
	}
	notes := make([]string, len(entries))
	for i := range entries {
		if entries[i].Reason != "admin" {
			continue // a note is on an operator's revocation only
		}
		for _, v := range vals[2*i : 2*i+2] {
			if s, ok := v.(string); ok && notes[i] == "" {
				notes[i] = s
			}
		}
	}
	return uids, names, notes, nil
}
