package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// The hosted wallet: a wallet the bank keeps for a reader who pays from its
// web pages (custodial). Its user key is sealed under the master key like
// certificate secrets; its certificates are bought from the reader's
// balance when it has no room for a payment; which tokens each payment
// spends is decided by one Lua script (hostedReserve), so concurrent
// payments never get the same tokens and a segment goes to one vendor only.
// The payment itself is built here, exactly as a wallet builds it
// (docs/protocol.md §7), and travels to the vendor's gateway in the
// reader's browser (web_pay.go).

const (
	hostedSegments   = 8                      // segments of a certificate the hosted wallet buys, at most
	hostedMaxCerts   = 32                     // certificates it holds at once
	hostedVendorSegs = 4                      // segments one vendor gets before payments share them
	hostedIdle       = 500 * time.Millisecond // a segment paid from longer ago takes the next payment at its vendor
	// A reservation answers its repeats (a reloaded pay page, a form sent
	// twice) this long on the agent's clock; a later one pays anew. Not
	// longer: a gateway keeps a payment's record only as long as its grant
	// lives, which may be shorter, and answers the same payment after that
	// as already spent.
	hostedRepeat        = time.Minute
	hostedHistory       = 1000 // payments kept for the account page
	hostedBuyLock       = 10 * time.Second
	hostedCacheEntries  = 4096
	hostedKeyAD         = "hashwall/hosted-key\x00"
	hostedReserveRounds = 4
)

// payOrder is one payment the reader asked for: a challenge, and where the
// payment goes back to.
type payOrder struct {
	Vendor, Product, Realm string
	Price                  uint32
	Origin                 string // of the return URL: one of the vendor's origins
	Return                 string // the article's absolute URL
	ReturnPath             string // its path and query
}

// errOverLimit: the payment is above what the reader lets this site take
// without asking.
var errOverLimit = errors.New("agent: over the automatic limit")

// errNoFunds: the balance does not cover a certificate of one segment.
var errNoFunds = fail(http.StatusPaymentRequired, agentapi.CodeInsufficientFunds, "balance does not cover the tokens")

// hostedReserve: ARGV uid, vendor, price, t, idempotency key, site
// ("<vendor> <origin>"), day, auto ("1": only within the site's limit),
// earliest expiry kept, t in ms, idle ms, history entry →
// "<serial> <g> <i> <p> <bind time>" | "over_limit" | "no_tokens" | "user_inactive".
//
// It picks, among the user's active hosted certificates with m ≥ price
// that do not expire within a minute: a segment bound to the vendor with
// room and idle (its last payment older than idle ms), else a new segment
// while the vendor has fewer than hostedVendorSegs with room, else the
// least recently paid one with room, else a new segment. A gateway refuses
// a payment of a segment older than the last it accepted (replay), so two
// payments in flight at one vendor go on two segments.
var hostedReserve = script(`
local uid, vendor, p, t = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local idem = P .. 'hn:' .. uid .. ':' .. ARGV[5]
local prev = redis.call('GET', idem)
if prev then
  local at, out = string.match(prev, '^(%d+) (.*)$')
  if at and t - tonumber(at) < ` + strconv.Itoa(int(hostedRepeat/time.Second)) + ` then return out end
end
if redis.call('HGET', P .. 'u:' .. uid, 'status') ~= 'active' then return 'user_inactive' end
local dk, site = P .. 'hday:' .. uid .. ':' .. ARGV[7], ARGV[6]
if ARGV[8] == '1' then
  local lim = tonumber(redis.call('HGET', P .. 'lim:' .. uid, site) or '0') or 0
  local spent = tonumber(redis.call('HGET', dk, site) or '0') or 0
  if spent + p > lim then return 'over_limit' end
end
local hc = P .. 'hc:' .. uid
redis.call('ZREMRANGEBYSCORE', hc, '-inf', '(' .. ARGV[9])
local tms, idle = tonumber(ARGV[10]), tonumber(ARGV[11])
local best, bestAt, free, withRoom = nil, 0, nil, 0
for _, s in ipairs(redis.call('ZRANGE', hc, 0, ` + strconv.Itoa(hostedMaxCerts-1) + `)) do
  if redis.call('HGET', P .. 'c:{' .. s .. '}', 'status') == 'active' then
    local hk = P .. 'hs:' .. s
    local h = redis.call('HMGET', hk, 'S', 'm', 'next', 'v:' .. vendor)
    local S, m, nx = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
    if m and m >= p then
      if h[4] then
        local keep = {}
        for g in string.gmatch(h[4], '%d+') do
          local st = redis.call('HMGET', hk, 'i:' .. g, 'at:' .. g)
          local i, at = tonumber(st[1]), tonumber(st[2])
          if i < m then table.insert(keep, g) end
          if m - i >= p then
            withRoom = withRoom + 1
            if not best or at < bestAt then best, bestAt = {s, g, i, hk}, at end
          end
        end
        if #keep == 0 then redis.call('HDEL', hk, 'v:' .. vendor)
        else redis.call('HSET', hk, 'v:' .. vendor, table.concat(keep, ' ')) end
      end
      if not free and nx < S then free = {s, nx, hk} end
    end
  end
end
local pick
if best and bestAt <= tms - idle then pick = best
elseif free and withRoom < ` + strconv.Itoa(hostedVendorSegs) + ` then pick = nil
elseif best then pick = best end
if not pick then
  if not free then return 'no_tokens' end
  local s, g, hk = free[1], free[2], free[3]
  local list = redis.call('HGET', hk, 'v:' .. vendor)
  redis.call('HSET', hk, 'next', g + 1, 'v:' .. vendor, list and (list .. ' ' .. g) or tostring(g),
    'i:' .. g, 0, 'at:' .. g, 0, 'bt:' .. g, t)
  pick = {s, tostring(g), 0, hk}
end
local s, g, i, hk = pick[1], pick[2], pick[3] + p, pick[4]
redis.call('HSET', hk, 'i:' .. g, i, 'at:' .. g, tms)
local out = s .. ' ' .. g .. ' ' .. i .. ' ' .. p .. ' ' .. redis.call('HGET', hk, 'bt:' .. g)
redis.call('SET', idem, t .. ' ' .. out, 'EX', ` + strconv.Itoa(int(hostedRepeat/time.Second)) + ` + 60)
redis.call('HINCRBY', dk, site, p)
redis.call('EXPIRE', dk, 172800)
redis.call('LPUSH', P .. 'hh:' .. uid, ARGV[12])
redis.call('LTRIM', P .. 'hh:' .. uid, 0, ` + strconv.Itoa(hostedHistory-1) + `)
return out
`)

// unlock: KEYS[1] prefix; ARGV key, token → deletes key if it holds token.
var unlock = script(`
if redis.call('GET', P .. ARGV[1]) == ARGV[2] then redis.call('DEL', P .. ARGV[1]) end
return 'ok'
`)

// hostedEntry is one payment in the reader's history.
type hostedEntry struct {
	Time    int64  `json:"t"`
	Vendor  string `json:"vendor"`
	Origin  string `json:"origin"`
	Product string `json:"product"`
	Realm   string `json:"realm,omitempty"`
	Tokens  uint32 `json:"p"`
}

// hostedPay pays o from the reader's hosted wallet and returns the payment
// as it follows "PayWord " in an Authorization header. auto: only within
// the site's automatic limit (errOverLimit otherwise). A repeat with the
// same idem within hostedRepeat returns the same payment, so a reloaded
// page or a retried form pays once; the gateway answers a repeated payment
// with its first grant.
func (a *Agent) hostedPay(ctx context.Context, uid string, o *payOrder, auto bool, idem string) (string, error) {
	priv, err := a.hostedKey(ctx, uid)
	if err != nil {
		return "", err
	}
	for range hostedReserveRounds {
		res, err := a.reserve(ctx, uid, o, auto, idem)
		if err != nil {
			return "", err
		}
		if res == "no_tokens" {
			if res, err = a.reserveOrBuy(ctx, uid, priv, o, auto, idem); err != nil {
				return "", err
			}
		}
		switch res {
		case "over_limit":
			return "", errOverLimit
		case "user_inactive":
			return "", fail(http.StatusForbidden, agentapi.CodeUserRevoked, "user account is revoked")
		case "no_tokens":
			continue // another payer is buying: try again
		}
		return a.hostedPayment(ctx, priv, o, res)
	}
	return "", fmt.Errorf("agent: hosted wallet of %s: no tokens after %d rounds", uid, hostedReserveRounds)
}

func (a *Agent) reserve(ctx context.Context, uid string, o *payOrder, auto bool, idem string) (string, error) {
	now := a.now()
	entry, _ := json.Marshal(hostedEntry{Time: now.Unix(), Vendor: o.Vendor, Origin: o.Origin, Product: o.Product, Realm: o.Realm, Tokens: o.Price})
	key := sha256.Sum256([]byte(idem))
	return a.run(ctx, hostedReserve, uid, o.Vendor, o.Price, now.Unix(), hex.EncodeToString(key[:16]),
		limitField(o.Vendor, o.Origin), now.UTC().Format("20060102"), hostedFlag(auto),
		now.Add(time.Minute).Unix(), now.UnixMilli(), hostedIdle.Milliseconds(), entry).Text()
}

// reserveOrBuy runs when the wallet had no room: under the user's buy lock
// it reserves again (another payer may have bought meanwhile) and else buys
// a certificate and reserves from it. Without the lock it waits for the
// buyer and answers "no_tokens", for the caller to try again.
func (a *Agent) reserveOrBuy(ctx context.Context, uid string, priv ed25519.PrivateKey, o *payOrder, auto bool, idem string) (string, error) {
	lock, tok := "hbuy:"+uid, randomHex(16)
	ok, err := a.rdb.SetNX(ctx, a.prefix+lock, tok, hostedBuyLock).Result()
	if err != nil {
		return "", err
	}
	if !ok {
		for deadline := time.Now().Add(hostedBuyLock); time.Now().Before(deadline); {
			n, err := a.rdb.Exists(ctx, a.prefix+lock).Result()
			if err != nil || n == 0 {
				return "no_tokens", err
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		return "no_tokens", nil
	}
	defer a.runNoWait(context.WithoutCancel(ctx), unlock, lock, tok)
	res, err := a.reserve(ctx, uid, o, auto, idem)
	if err != nil || res != "no_tokens" {
		return res, err
	}
	if err := a.hostedBuy(ctx, uid, priv); err != nil {
		return "", err
	}
	return a.reserve(ctx, uid, o, auto, idem)
}

// hostedBuy buys a generic certificate of up to hostedSegments segments
// from the balance for the hosted wallet.
func (a *Agent) hostedBuy(ctx context.Context, uid string, priv ed25519.PrivateKey) error {
	n, err := a.rdb.ZCard(ctx, a.prefix+"hc:"+uid).Result()
	if err != nil {
		return err
	}
	if n >= hostedMaxCerts {
		return fail(http.StatusConflict, agentapi.CodeInvalidTokens, "the web wallet holds as many certificates as it may")
	}
	if _, _, err := a.applyRecoveredFor(ctx, uid); err != nil {
		return err
	}
	bal, err := a.balance(ctx, uid)
	if err != nil {
		return err
	}
	seg := int64(a.cfg.UnitValue) * int64(a.cfg.SegmentLen)
	segments := min(int64(hostedSegments), bal/seg, int64(a.cfg.MaxTokens/a.cfg.SegmentLen))
	if segments < 1 {
		return errNoFunds
	}
	_, err = a.issueFor(ctx, uid, int(segments), priv.Public().(ed25519.PublicKey), payword.GenericScope, "", true)
	if e, ok := errors.AsType[*agentapi.Error](err); ok && e.Code == agentapi.CodeInsufficientFunds {
		return errNoFunds
	}
	return err
}

// hostedPayment builds the payment of a reservation.
func (a *Agent) hostedPayment(ctx context.Context, priv ed25519.PrivateKey, o *payOrder, res string) (string, error) {
	f := strings.Fields(res)
	if len(f) != 5 {
		return "", fmt.Errorf("agent: hosted reservation %q", res)
	}
	serial, err := payword.ParseSerial(f[0])
	if err != nil {
		return "", err
	}
	var n [4]int64
	for i := range n {
		if n[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return "", fmt.Errorf("agent: hosted reservation %q", res)
		}
	}
	hc, err := a.hostedCert(ctx, serial)
	if err != nil {
		return "", err
	}
	g := uint32(n[0])
	bind, err := hc.binding(priv, g, o.Vendor, n[3])
	if err != nil {
		return "", err
	}
	p := payword.NewPayment(hc.cert, hc.tree, hc.k, bind, g, uint32(n[1]), uint32(n[2]), o.Vendor, o.Product)
	return strings.TrimPrefix(p.Header(), "PayWord "), nil
}

// hostedCert is what payments of one certificate need, kept in memory:
// the tree costs S·m hashes to build.
type hostedCert struct {
	cert *payword.Certificate
	k    payword.Secret
	tree *payword.Tree

	mu    sync.Mutex
	binds map[uint32]*payword.Binding // by segment
}

func (a *Agent) hostedCert(ctx context.Context, s payword.Serial) (*hostedCert, error) {
	if hc, ok := a.hosted.certs.get(s); ok {
		return hc, nil
	}
	v, err := a.rdb.HMGet(ctx, a.certKey(s), "cert", "k").Result()
	if err != nil {
		return nil, err
	}
	raw, _ := v[0].(string)
	enc, _ := v[1].(string)
	der, err := payword.DecodeBase64(raw)
	if err != nil {
		return nil, fmt.Errorf("agent: hosted certificate %s: %w", s, err)
	}
	c, err := payword.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	k, err := a.master.open(s, enc)
	if err != nil {
		return nil, err
	}
	hc := &hostedCert{cert: c, k: k, binds: map[uint32]*payword.Binding{},
		tree: payword.NewTree(payword.Anchors(k, int(c.Segments), int(c.SegmentLen)))}
	a.hosted.certs.put(s, hc)
	return hc, nil
}

// binding is segment g's binding, signed at bind time t (the same bytes
// every time, so a repeated reservation is the same payment).
func (hc *hostedCert) binding(priv ed25519.PrivateKey, g uint32, vendor string, t int64) (*payword.Binding, error) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if b := hc.binds[g]; b != nil && b.Vendor == vendor && b.Time == t {
		return b, nil
	}
	b := &payword.Binding{Serial: hc.cert.Serial, Segment: g, Vendor: vendor, Time: t}
	if _, err := b.Sign(priv); err != nil {
		return nil, err
	}
	hc.binds[g] = b
	return b, nil
}

// hostedKey is the reader's hosted user key, made at the first payment.
func (a *Agent) hostedKey(ctx context.Context, uid string) (ed25519.PrivateKey, error) {
	if k, ok := a.hosted.keys.get(uid); ok {
		return k, nil
	}
	key, ad := a.prefix+"hk:"+uid, []byte(hostedKeyAD+uid)
	enc, err := a.rdb.HGet(ctx, key, "seed").Result()
	if err == redis.Nil {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		if _, err := a.rdb.HSetNX(ctx, key, "seed", a.master.sealBytes(ad, seed)).Result(); err != nil {
			return nil, err
		}
		enc, err = a.rdb.HGet(ctx, key, "seed").Result() // the first writer's, if another won
	}
	if err != nil {
		return nil, err
	}
	seed, err := a.master.openBytes(ad, enc)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("agent: hosted key of %s does not open", uid)
	}
	k := ed25519.NewKeyFromSeed(seed)
	a.hosted.keys.put(uid, k)
	return k, nil
}

func hostedFlag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// hostedState is what the agent keeps in memory for hosted wallets and
// their pages.
type hostedState struct {
	certs boundedMap[payword.Serial, *hostedCert]
	keys  boundedMap[string, ed25519.PrivateKey]
	names boundedMap[string, string] // usernames by uid, for the pages
}

// boundedMap is a map that empties itself when full: a cache whose misses
// only cost a recomputation.
type boundedMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (b *boundedMap[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

func (b *boundedMap[K, V]) put(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil || len(b.m) >= hostedCacheEntries {
		b.m = map[K]V{}
	}
	b.m[k] = v
}

// hostedBalance is what the hosted wallet holds: tokens it can spend at
// any site, and tokens of segments already bound to a site.
func (a *Agent) hostedBalance(ctx context.Context, uid string) (free, bound int64, err error) {
	serials, err := a.rdb.ZRangeByScore(ctx, a.prefix+"hc:"+uid, &redis.ZRangeBy{
		Min: strconv.FormatInt(a.now().Add(time.Minute).Unix(), 10), Max: "+inf", Count: hostedMaxCerts}).Result()
	if err != nil || len(serials) == 0 {
		return 0, 0, err
	}
	pipe := a.rdb.Pipeline()
	states := make([]*redis.MapStringStringCmd, len(serials))
	status := make([]*redis.StringCmd, len(serials))
	for i, s := range serials {
		states[i] = pipe.HGetAll(ctx, a.prefix+"hs:"+s)
		status[i] = pipe.HGet(ctx, a.prefix+"c:{"+s+"}", "status")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return 0, 0, err
	}
	for i := range serials {
		if status[i].Val() != "active" {
			continue
		}
		h := states[i].Val()
		n := func(k string) int64 { x, _ := strconv.ParseInt(h[k], 10, 64); return x }
		m := n("m")
		free += (n("S") - n("next")) * m
		for k, v := range h {
			if strings.HasPrefix(k, "v:") {
				for _, g := range strings.Fields(v) {
					bound += m - n("i:"+g)
				}
			}
		}
	}
	return free, bound, nil
}

// hostedPayments is the reader's last payments, newest first.
func (a *Agent) hostedPayments(ctx context.Context, uid string, n int64) ([]hostedEntry, error) {
	raw, err := a.rdb.LRange(ctx, a.prefix+"hh:"+uid, 0, n-1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]hostedEntry, 0, len(raw))
	for _, r := range raw {
		var e hostedEntry
		if json.Unmarshal([]byte(r), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}
