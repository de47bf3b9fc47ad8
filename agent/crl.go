package agent

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// crlPage: ARGV since, limit → {last, entries...}: the entries in
// (since, last], read in one script with last so that none is beyond it.
var crlPage = script(`
local last = tonumber(redis.call('GET', P .. 'crlseq') or '0')
local e = {}
if tonumber(ARGV[1]) < last then
  e = redis.call('ZRANGEBYSCORE', CRL, '(' .. ARGV[1], last, 'LIMIT', 0, tonumber(ARGV[2]))
end
table.insert(e, 1, last)
return e
`)

// pruneCRL: ARGV cutoff, limit → entries dropped: those whose certificate
// expired at or before cutoff (revoke() indexes them by expiry).
var pruneCRL = script(`
return pruneCRL(tonumber(ARGV[1]), tonumber(ARGV[2]))
`)

// CRLPage returns the signed page of revocations after since: at most
// payword.MaxCRLEntries of them, with next = the since to ask with next.
func (a *Agent) CRLPage(ctx context.Context, since uint64) (payword.Signed, error) {
	res, err := a.run(ctx, crlPage, since, payword.MaxCRLEntries).Slice()
	if err != nil {
		return payword.Signed{}, err
	}
	crl := payword.CRL{Type: payword.CRLType, Since: since, Time: a.now().Unix(), Entries: make([]payword.CRLEntry, 0, len(res)-1)}
	crl.Last = uint64(res[0].(int64))
	for _, m := range res[1:] {
		var e payword.CRLEntry
		if s, ok := m.(string); ok && json.Unmarshal([]byte(s), &e) == nil {
			crl.Entries = append(crl.Entries, e)
		}
	}
	switch {
	case since >= crl.Last:
		// Nothing after since. A client ahead of the head (whose store
		// outlived the agent's?) sees the head went back and stops.
		crl.Next = since
	case len(res)-1 < payword.MaxCRLEntries:
		crl.Next = crl.Last
	default:
		crl.Next = crl.Entries[len(crl.Entries)-1].Seq
	}
	body, err := json.Marshal(crl)
	if err != nil {
		return payword.Signed{}, err
	}
	return payword.Seal(a.signer, body), nil
}

// PruneCRL drops the revocations of certificates expired for
// payword.CRLKeep: they are refused anyway. revoke() prunes a few on each
// new revocation; the settlement run calls this for the rest.
func (a *Agent) PruneCRL(ctx context.Context) (int, error) {
	cutoff := a.now().Add(-payword.CRLKeep).Unix()
	total := 0
	for {
		n, err := a.runNoWait(ctx, pruneCRL, cutoff, 1000).Int()
		total += n
		if err != nil || n < 1000 {
			if total > 0 {
				a.log.Info("expired revocations pruned", zap.Int("count", total))
			}
			return total, err
		}
	}
}

func (a *Agent) handleCRL(w http.ResponseWriter, r *http.Request) error {
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		var err error
		if since, err = strconv.ParseUint(s, 10, 63); err != nil {
			return fail(http.StatusBadRequest, agentapi.CodeInvalidSince, "since must be a sequence number")
		}
	}
	if err := a.limitCRL(w, r); err != nil {
		return err
	}
	page, err := a.CRLPage(r.Context(), since)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// Page rate limits of GET /v1/crl, per client address (IPv6: per /64) and,
// for requests carrying a vendor's API token, per vendor. A page is at
// most payword.MaxCRLEntries entries (about 150 kB).
const (
	crlAnonRate    = 5 // pages a second
	crlAnonBurst   = 50
	crlVendorRate  = 50
	crlVendorBurst = 1000 // a new gateway's first sync of a million entries
	crlLimitKeys   = 1 << 16
)

// crlLimits are the agent's page limiters, made on first use.
type crlLimits struct {
	once         sync.Once
	anon, vendor *rateLimiter
}

var errRateLimited = fail(http.StatusTooManyRequests, agentapi.CodeRateLimited, "too many revocation list pages; slow down")

func (a *Agent) limitCRL(w http.ResponseWriter, r *http.Request) error {
	a.crlRate.once.Do(func() {
		a.crlRate.anon = newRateLimiter(crlAnonRate, crlAnonBurst, crlLimitKeys)
		a.crlRate.vendor = newRateLimiter(crlVendorRate, crlVendorBurst, crlLimitKeys)
	})
	l, key := a.crlRate.anon, clientKey(r.RemoteAddr)
	if _, ok := bearer(r); ok {
		if vid, err := a.vendorAuth(r); err == nil {
			l, key = a.crlRate.vendor, vid
		}
	}
	if ok, wait := l.allow(key, a.now()); !ok {
		return retryLater(errRateLimited, wait)
	}
	return nil
}

// clientKey is the rate-limited unit of a remote address: the IP, or the
// /64 of an IPv6 address (one host usually holds a whole /64).
func clientKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// rateLimiter is a token bucket per key, in memory and so per agent
// process. Its map is bounded: when full, buckets that have refilled (and
// so say nothing a new one would not) are swept, at most once a second;
// keys that still find no room share one overflow bucket, so that many
// addresses can slow each other but never empty anyone's bucket.
type rateLimiter struct {
	mu        sync.Mutex
	rate      float64
	burst     float64
	max       int
	m         map[string]*bucket
	overflow  bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(rate, burst float64, max int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, max: max, m: map[string]*bucket{}, overflow: bucket{tokens: burst}}
}

// allow takes one token of key's bucket; if there is none it says how long
// until there is.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= l.max && now.Sub(l.lastSweep) >= time.Second {
			l.lastSweep = now
			for k, b := range l.m {
				if l.level(b, now) >= l.burst {
					delete(l.m, k)
				}
			}
		}
		if len(l.m) < l.max {
			b = &bucket{tokens: l.burst, at: now}
			l.m[key] = b
		} else {
			b = &l.overflow
		}
	}
	b.tokens, b.at = l.level(b, now), now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

func (l *rateLimiter) level(b *bucket, now time.Time) float64 {
	return min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
}

// handleKeys lists the agent's keys, and announces them in a document
// signed by each of them: a verifier learns a new key only through a
// signature of a key it already trusts.
func (a *Agent) handleKeys(w http.ResponseWriter, r *http.Request) error {
	out := agentapi.Keys{Keys: make([]agentapi.Key, 0, len(a.cfg.SigningKeys)), Signed: payword.AnnounceKeys(a.cfg.SigningKeys, a.now())}
	for _, k := range a.cfg.SigningKeys {
		out.Keys = append(out.Keys, agentapi.Key{KeyID: k.ID, Public: payword.Bytes(k.Public())})
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Revoke revokes one certificate; it reports whether it was active.
func (a *Agent) Revoke(ctx context.Context, s payword.Serial, reason string) (bool, error) {
	seq, err := a.run(ctx, revokeCert, s.String(), reason, a.now().Unix()).Int64()
	if err != nil || seq == 0 {
		return false, err
	}
	a.metrics.revocations.WithLabelValues(reason).Inc()
	a.log.Info("certificate revoked", zap.String("serial", s.String()), zap.String("reason", reason), zap.Int64("seq", seq))
	return true, nil
}

func (a *Agent) handleAdminRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var q agentapi.Revoke
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	out, err := a.adminRevoke(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// adminRevoke is an operator's revocation of a certificate or an account
// (POST /v1/admin/revoke and the operator's revoke page).
func (a *Agent) adminRevoke(ctx context.Context, q agentapi.Revoke) (agentapi.Revoked, error) {
	switch {
	case q.Serial != nil && q.User == "" && q.Vendor == "":
		ok, err := a.Revoke(ctx, *q.Serial, "admin")
		if err != nil {
			return agentapi.Revoked{}, err
		}
		return agentapi.Revoked{Revoked: ok}, nil
	case q.Serial == nil && (q.User == "") != (q.Vendor == ""):
		acct := "v:" + q.Vendor
		if q.User != "" {
			uid, err := a.userID(ctx, q.User)
			if err != nil {
				return agentapi.Revoked{}, err
			}
			acct = "u:" + uid
		}
		n, err := a.run(ctx, revokeAccount, acct, a.now().Unix()).Int64()
		if err != nil {
			return agentapi.Revoked{}, err
		}
		if n < 0 {
			return agentapi.Revoked{}, fail(http.StatusNotFound, agentapi.CodeUnknownAccount, "no such user or vendor")
		}
		a.metrics.revocations.WithLabelValues("admin").Add(float64(n))
		a.log.Info("account revoked", zap.String("account", acct), zap.Int64("certificates", n))
		return agentapi.Revoked{Revoked: true, Certificates: int(n)}, nil
	}
	return agentapi.Revoked{}, fail(http.StatusBadRequest, agentapi.CodeMalformed, "give exactly one of serial, user, vendor")
}
