package agent

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/hashwall/hashwall/agentapi"
)

// The login throttle slows password guessing, per account and per client
// address, across every agent instance on one Redis. An attempt reserves a
// slot before argon2 runs (one script, so concurrent guesses cannot all pass
// the check); a wrong password keeps its slot, a right one (or a request that
// never got to the check) gives it back. After maxFailures slots of one
// username, or maxAddrFailures of one address, within failureWindow, logins
// are refused with 429 until the window ends, the right password included.
// The state is two small hashes per window, expiring with it: nothing grows
// in the process, and no flood of names can clear a lockout.
const (
	maxFailures     = 10
	maxAddrFailures = 100
	failureWindow   = 15 * time.Minute
)

var errThrottled = fail(http.StatusTooManyRequests, agentapi.CodeTooManyAttempts, "too many failed logins; try again later")

// Sign-ups are counted per client address in an hour's window (P su:<address>),
// before argon2 runs, so that no address can fill the store with accounts or
// the argon2 slots with hashes.
const signupWindow = time.Hour

var errSignupThrottled = fail(http.StatusTooManyRequests, agentapi.CodeRateLimited, "too many sign-ups from this address; try again later")

// Keys: P lf:u:<username> and P lf:a:<address>, hashes {n, since (ms)}.
// Time comes from the agent's clock, so that every instance agrees on the
// window; the expiry only collects the key.
const throttlePrelude = `
local t, win = tonumber(ARGV[3]), tonumber(ARGV[4])
local ks, lim = {P .. 'lf:u:' .. ARGV[1]}, {tonumber(ARGV[5])}
if ARGV[2] ~= '' then ks[2] = P .. 'lf:a:' .. ARGV[2]; lim[2] = tonumber(ARGV[6]) end
`

// loginReserve: ARGV user, addr, t (ms), window (ms), max per user, max per
// address → 0 (slot reserved) or the milliseconds until the lockout ends.
var loginReserve = script(throttlePrelude + `
local cur = {}
for i, k in ipairs(ks) do
  local f = redis.call('HMGET', k, 'n', 'since')
  local n, since = tonumber(f[1] or '0'), tonumber(f[2] or '0')
  if t - since >= win then n, since = 0, t end
  if n >= lim[i] then return since + win - t end
  cur[i] = {n + 1, since}
end
for i, k in ipairs(ks) do
  redis.call('HSET', k, 'n', cur[i][1], 'since', cur[i][2])
  redis.call('PEXPIRE', k, cur[i][2] + win - t)
end
return 0
`)

// loginRelease: same ARGV → gives back a slot of the current window.
var loginRelease = script(throttlePrelude + `
for _, k in ipairs(ks) do
  local f = redis.call('HMGET', k, 'n', 'since')
  if f[1] and tonumber(f[1]) > 0 and t - tonumber(f[2]) < win then redis.call('HINCRBY', k, 'n', -1) end
end
return 0
`)

// signupReserve: ARGV address, t (ms), window (ms), max → 0 (counted) or
// the milliseconds until the window ends.
var signupReserve = script(`
local k, t, win = P .. 'su:' .. ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local f = redis.call('HMGET', k, 'n', 'since')
local n, since = tonumber(f[1] or '0'), tonumber(f[2] or '0')
if t - since >= win then n, since = 0, t end
if n >= tonumber(ARGV[4]) then return since + win - t end
redis.call('HSET', k, 'n', n + 1, 'since', since)
redis.call('PEXPIRE', k, since + win - t)
return 0
`)

// reserveSignup counts a sign-up of r's client address, or fails with 429.
// A request without a usable address counts with every other such one.
func (a *Agent) reserveSignup(ctx context.Context, r *http.Request) error {
	wait, err := a.runNoWait(ctx, signupReserve, a.clientAddr(r), a.now().UnixMilli(), signupWindow.Milliseconds(), a.cfg.SignupsPerHour).Int64()
	if err != nil {
		return err
	}
	if wait > 0 {
		return retryLater(errSignupThrottled, time.Duration(wait)*time.Millisecond)
	}
	return nil
}

// reserveLogin reserves an attempt of username from addr, or fails with 429.
func (a *Agent) reserveLogin(ctx context.Context, username, addr string) error {
	wait, err := a.runNoWait(ctx, loginReserve, a.throttleArgs(username, addr)...).Int64()
	if err != nil {
		return err
	}
	if wait > 0 {
		return retryLater(errThrottled, time.Duration(wait)*time.Millisecond)
	}
	return nil
}

// releaseLogin gives the slot back: the password was right, or never checked.
func (a *Agent) releaseLogin(username, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.runNoWait(ctx, loginRelease, a.throttleArgs(username, addr)...) // a lost release only costs the user one slot
}

func (a *Agent) throttleArgs(username, addr string) []any {
	return []any{username, addr, a.now().UnixMilli(), failureWindow.Milliseconds(), maxFailures, maxAddrFailures}
}

// clientAddr is the throttle's key of a client: its IP address, an IPv6
// one cut to its /64 (one host usually holds a whole /64).
func (a *Agent) clientAddr(r *http.Request) string {
	var s string
	if a.cfg.ClientIP != nil {
		s = a.cfg.ClientIP(r)
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		s = host
	} else {
		s = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
