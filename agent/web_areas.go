package agent

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
)

// What the vendors' and the operator's page areas share: a header of
// sections, a session of their own (cookie, token prefix, Redis key) and a
// log-in with a token behind the readers' log-in throttle.

// pageSection is a page of an area's header and overview.
type pageSection struct {
	Href, Name, About string
}

// area is the header of the area at home (its log-in home+"/login", its
// log-out home+"/logout"): its sections when who is logged in.
func (p *pageReq) area(name, home, who string, sections []pageSection) *web.Area {
	a := &web.Area{Name: name, Home: home + "/login", Logout: home + "/logout"}
	if who != "" {
		a.Home, a.Who = home, who
		for _, s := range sections {
			a.Links = append(a.Links, web.Link{Href: s.Href, Name: s.Name, Current: s.Href == p.r.URL.Path})
		}
	}
	return a
}

// areaSession is an area's session: its cookie, the prefix of its tokens
// (so that no token passes for another kind) and of its Redis keys, which
// hold a value the area checks on every request.
type areaSession struct {
	cookie         web.SessionCookie
	tokPrefix, key string
}

var (
	vendorSessions = areaSession{web.VendorSession, vendorSessionPrefix, "vsess:"}
	adminSessions  = areaSession{web.AdminSession, adminSessionPrefix, "asess:"}
)

// get is the value of the browser's session and its key, "" if none.
func (s areaSession) get(p *pageReq) (val, key string, err error) {
	tok := s.cookie.Token(p.r, p.secure)
	if !strings.HasPrefix(tok, s.tokPrefix) {
		return "", "", nil
	}
	key = p.a.prefix + s.key + tokenHash(tok)
	val, err = p.a.rdb.Get(p.r.Context(), key).Result()
	if err == redis.Nil {
		return "", "", nil
	}
	return val, key, err
}

// start opens a new session holding val for ttl and goes home; the
// session the browser came with, if any, is ended (no fixation).
func (s areaSession) start(p *pageReq, val string, ttl time.Duration, home string) error {
	if err := s.end(p); err != nil {
		return err
	}
	tok, hash := newToken(s.tokPrefix)
	if err := p.a.rdb.Set(p.r.Context(), p.a.prefix+s.key+hash, val, ttl).Err(); err != nil {
		return err
	}
	s.cookie.Set(p.w, tok, ttl, p.secure)
	return p.redirect(home)
}

// end deletes the session of the browser's cookie, live or not.
func (s areaSession) end(p *pageReq) error {
	if old := s.cookie.Token(p.r, p.secure); strings.HasPrefix(old, s.tokPrefix) {
		return p.a.rdb.Del(p.r.Context(), p.a.prefix+s.key+tokenHash(old)).Err()
	}
	return nil
}

// logout ends the session, clears its cookie and goes to the log-in.
func (s areaSession) logout(p *pageReq, login string) error {
	if err := s.end(p); err != nil {
		return err
	}
	s.cookie.Clear(p.w, p.secure)
	return p.redirect(login)
}

// tokenLogin runs check on a token typed in a log-in form behind the
// readers' log-in throttle, keyed by the client's address under kind's
// name (with a space, which no username has, so that it shares no counter
// with a reader). Failures count per address twice: under that name
// (maxFailures) and in the address's own counter (maxAddrFailures). check
// reports a wrong token with wrong true, which keeps its slot.
func (a *Agent) tokenLogin(ctx context.Context, r *http.Request, kind string, check func() (wrong bool, err error)) error {
	addr := a.clientAddr(r)
	name := kind + " token " + addr
	if err := a.reserveLogin(ctx, name, addr); err != nil {
		return err
	}
	wrong, err := check()
	if !wrong {
		a.releaseLogin(name, addr)
	}
	return err
}
