package agent

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
)

// Every read-modify-write of the agent's state is one of these Lua scripts,
// run with EVALSHA (go-redis falls back to EVAL after a Redis restart). A
// balance only changes through post(), which appends the ledger entry in the
// same script, so a balance always equals the sum of its ledger.
//
// Key layout (all under the prefix P, "hw:a:" — see keyPrefix — except the
// contract's hw:crl):
//
//	P = KEYS[1]; every script is called with the prefix as its one key, which
//	also routes it to the right node of a Cluster.
//
//	hw:a:u:<uid>           user hash (name, pw, info, bal, status)
//	hw:a:v:<vid>           vendor hash (kind, bal, status, fraud, origins)
//	hw:a:uname:<name>      username -> uid
//	hw:a:unames, hw:a:vnames  zsets (score 0) of usernames and vendor ids,
//	                       for the operator's search (operatorviews.go)
//	hw:a:st:<minute>       the claims of a minute (Unix minutes), for the
//	                       operator's figures (ingest_lua.go); two days
//	hw:a:vtok:<sha256>     vendor token hash -> vid
//	hw:a:sess:<sha256>     session token hash -> uid (expires)
//	hw:a:vsess:<sha256>    a vendor's page session -> "<vid> <API token
//	                       hash>"; hw:a:asess:<sha256> the operator's ->
//	                       admin token hash (web_vendor.go, web_admin.go)
//	hw:a:revnote           serial or account -> the operator's note on
//	                       its revocation (web_admin_actions.go)
//	hw:a:led:<acct>        ledger of account "u:<uid>" / "v:<vid>": zset of
//	                       entries by time, for statements of any period;
//	                       hw:a:ledseq numbers the entries of all ledgers
//	hw:a:accounts          set of every account
//	hw:a:ucerts:<uid>      set of the user's active certificates
//	hw:a:c:{<serial>}      certificate hash; :own seg -> owner vendor,
//	                       :hi "vendor|seg" -> highest paid index,
//	                       :cl "vendor|seg|index" -> verdict (idempotency),
//	                       :pa the same -> tokens the claim was paid,
//	                       :vd the same -> tokens its void took back
//	hw:a:expiry            zset serial by expiry, for refunds
//	hw:a:batch:<vid>:<id>  stored response of an ingested batch
//	hw:a:rpend:<uid>       zset serial by due: recovered certificates whose
//	                       value is not credited yet; hw:a:rpend indexes the
//	                       users by their earliest due, for the loop
//	hw:a:recov:<uid>       time of the user's last recovery (expires)
//	hw:a:lf:u:<name>, hw:a:lf:a:<address>  login throttle windows (expire)
//	hw:a:su:<address>      sign-ups of a client address this hour (expires)
//	hw:a:evt:<id>          webhook event already credited
//	hw:a:co:<id>           a web top-up's checkout (web_topup.go, a day)
//	hw:a:lim:<uid>         the reader's daily automatic limits (web_limits.go)
//	hw:a:hk:<uid>          the hosted wallet's user key, sealed (hosted.go)
//	hw:a:hc:<uid>          zset of its certificates by expiry; hw:a:hs:<serial>
//	                       their spending state; hw:a:hn:<uid>:<key> a
//	                       payment's reservation ("<time> <reservation>", repeats for a minute);
//	                       hw:a:hday:<uid>:<day> tokens paid per site that
//	                       day; hw:a:hh:<uid> the payments, newest first
//	hw:a:req:<uid>:<id>    purchase request id -> serial (a day)
//	hw:a:fraud             list of fraud cases; hw:a:vf:<vid> those of one
//	                       vendor, newest first
//	hw:a:vc:<vid>          stream of the vendor's claims with their
//	                       verdicts (ingest_lua.go); hw:a:vr:<vid> its takings
//	                       per UTC day, hw:a:vp:<vid> zset of product ->
//	                       value earned
//	hw:a:crlseq, hw:crl    CRL sequence and entries (zset, and channel)
//	hw:a:crlexp            the same entries by certificate expiry, for pruning
const luaPrelude = `
local P = KEYS[1]
local CRL, CRLCHANNEL = '` + agentapi.CRLKey + `', '` + agentapi.CRLChannel + `'
local function post(acct, amt, kind, ref, t)
  local bal = redis.call('HINCRBY', P .. acct, 'bal', amt)
  local seq = redis.call('INCR', P .. 'ledseq')
  redis.call('ZADD', P .. 'led:' .. acct, t, string.format(
    '{"seq":%d,"t":%d,"amt":%d,"kind":"%s","ref":"%s","bal":%d}', seq, t, amt, kind, ref, bal))
  return bal
end
-- fraud records a case: in the bank's list, and newest first in the list
-- of each vendor it concerns (vendor, and other if given: a segment's
-- owner when another vendor's claim proved its double-spend).
local function fraud(t, kind, vendor, serial, seg, user, other)
  local e = string.format(
    '{"t":%d,"kind":"%s","vendor":"%s","serial":"%s","seg":%d,"user":"%s","owner":"%s"}',
    t, kind, vendor, serial, seg, user, other or '')
  redis.call('RPUSH', P .. 'fraud', e)
  redis.call('LTRIM', P .. 'fraud', -100000, -1)
  for _, v in ipairs({vendor, other}) do
    redis.call('LPUSH', P .. 'vf:' .. v, e)
    redis.call('LTRIM', P .. 'vf:' .. v, 0, 99999)
  end
end
-- pruneCRL drops up to n entries of certificates expired at or before cutoff.
local function pruneCRL(cutoff, n)
  local old = redis.call('ZRANGEBYSCORE', P .. 'crlexp', '-inf', cutoff, 'LIMIT', 0, n)
  for _, e in ipairs(old) do
    redis.call('ZREM', CRL, e)
    redis.call('ZREM', P .. 'crlexp', e)
  end
  return #old
end
local revoked = 0 -- certificates this script revoked, for the metrics
local function revoke(serial, reason, t)
  local ck = P .. 'c:{' .. serial .. '}'
  if redis.call('HGET', ck, 'status') ~= 'active' then return 0 end
  revoked = revoked + 1
  redis.call('HSET', ck, 'status', 'revoked', 'reason', reason)
  redis.call('SREM', P .. 'ucerts:' .. redis.call('HGET', ck, 'user'), serial)
  local exp = tonumber(redis.call('HGET', ck, 'exp')) or 0
  local seq = redis.call('INCR', P .. 'crlseq')
  local e = string.format('{"seq":%d,"serial":"%s","time":%d,"exp":%d,"reason":"%s"}', seq, serial, t, exp, reason)
  redis.call('ZADD', CRL, seq, e)
  if exp > 0 then redis.call('ZADD', P .. 'crlexp', exp, e) end
  pruneCRL(t - 3600, 2) -- payword.CRLKeep: each revocation drops up to two expired ones
  redis.call('PUBLISH', CRLCHANNEL, e)
  return seq
end
`

func script(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// run runs a script on the agent's keyspace and waits until the configured
// replicas hold what it wrote (and everything written before): the agent
// acknowledges a purchase, a credit, a report, a binding or a revocation
// only then, so that a Sentinel failover cannot lose it. A repeat of a
// request its record answers waits the same way. Short of replicas the
// error is redisurl.ErrNotReplicated, answered 503 store_unavailable.
func (a *Agent) run(ctx context.Context, s *redis.Script, args ...any) *redis.Cmd {
	return a.rep.Run(ctx, a.rdb, s, a.pkeys, args...)
}

// runNoWait runs a script that acknowledges nothing (a check, the login
// throttle, the pruning of expired revocations) without waiting for replicas.
func (a *Agent) runNoWait(ctx context.Context, s *redis.Script, args ...any) *redis.Cmd {
	return s.Run(ctx, a.rdb, a.pkeys, args...)
}

// clusterTag is a hash tag whose slot is hw:crl's (11616), found by search:
// on a Redis Cluster every agent key carries it, so that each script,
// revocations included, touches a single slot. Without a Cluster the
// contract's layout (hw:a:, certificates tagged {serial}) is used as is.
const clusterTag = "{hw-agent-13708}"

// keyPrefix returns the prefix of every agent key for rdb.
func keyPrefix(rdb redis.UniversalClient) string {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return "hw:a:" + clusterTag + ":"
	}
	return "hw:a:"
}

// registerUser: ARGV name, uid, pwhash, info, t → "ok" | "taken".
var registerUser = script(`
local name, uid = ARGV[1], ARGV[2]
if redis.call('SETNX', P .. 'uname:' .. name, uid) == 0 then return 'taken' end
redis.call('HSET', P .. 'u:' .. uid, 'name', name, 'pw', ARGV[3], 'info', ARGV[4],
  'bal', 0, 'status', 'active', 'ctime', ARGV[5])
redis.call('SADD', P .. 'accounts', 'u:' .. uid)
redis.call('ZADD', P .. 'unames', 0, name)
return 'ok'
`)

// registerVendor: ARGV vid, kind, tokenhash, t, origins (JSON list) → "ok" | "taken".
var registerVendor = script(`
local vid = ARGV[1]
if redis.call('EXISTS', P .. 'v:' .. vid) == 1 then return 'taken' end
redis.call('HSET', P .. 'v:' .. vid, 'kind', ARGV[2], 'bal', 0, 'status', 'active',
  'fraud', 0, 'ctime', ARGV[4], 'tok', ARGV[3], 'origins', ARGV[5], 'otime', ARGV[4])
redis.call('SET', P .. 'vtok:' .. ARGV[3], vid)
redis.call('SADD', P .. 'accounts', 'v:' .. vid)
redis.call('ZADD', P .. 'vnames', 0, vid)
return 'ok'
`)

// rotateToken: ARGV vid, new token hash, grace seconds → "ok". The old
// token stops working in the same step, or when its grace has passed.
var rotateToken = script(`
local vk = P .. 'v:' .. ARGV[1]
local old = redis.call('HGET', vk, 'tok')
local grace = tonumber(ARGV[3])
if old and grace > 0 then
  redis.call('EXPIRE', P .. 'vtok:' .. old, grace)
elseif old then
  redis.call('DEL', P .. 'vtok:' .. old)
end
redis.call('HSET', vk, 'tok', ARGV[2])
redis.call('SET', P .. 'vtok:' .. ARGV[2], ARGV[1])
return 'ok'
`)

// credit: ARGV acct, amount, kind, ref, t, event → "ok" | "no_account" | "duplicate".
// A non-empty event id makes the credit idempotent (webhooks are redelivered).
var credit = script(`
local acct, amt, evt = ARGV[1], tonumber(ARGV[2]), ARGV[6]
if redis.call('EXISTS', P .. acct) == 0 then return 'no_account' end
if evt ~= '' and redis.call('SETNX', P .. 'evt:' .. evt, acct) == 0 then return 'duplicate' end
post(acct, amt, ARGV[3], ARGV[4], tonumber(ARGV[5]))
return 'ok'
`)

// purchase: ARGV uid, serial, cost, tokens, S, m, unit, scope, iat, exp, kenc,
// upk, t, request id, certificate, hosted ("1": for the hosted wallet) → "replay:<serial>" (request id seen in the
// last day: the purchase already happened) | "ok" | "user_inactive" | "insufficient_funds" | "vendor_unknown" |
// "vendor_generic" (specific certificates are sold for vendors of the specific system only).
// The certificate is only recorded if the balance covered it: steps B and C
// of the paper happen atomically.
var purchase = script(`
local uid, serial, cost, req = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[14]
local uk = P .. 'u:' .. uid
if req ~= '' then
  req = P .. 'req:' .. uid .. ':' .. req
  local prev = redis.call('GET', req)
  if prev then return 'replay:' .. prev end
end
if redis.call('HGET', uk, 'status') ~= 'active' then return 'user_inactive' end
local scope = ARGV[8]
if scope ~= '*' then
  local v = redis.call('HMGET', P .. 'v:' .. scope, 'status', 'kind')
  if v[1] ~= 'active' then return 'vendor_unknown' end
  if v[2] ~= 'specific' then return 'vendor_generic' end
end
if tonumber(redis.call('HGET', uk, 'bal')) < cost then return 'insufficient_funds' end
post('u:' .. uid, -cost, 'purchase', serial, tonumber(ARGV[13]))
redis.call('HSET', P .. 'c:{' .. serial .. '}', 'user', uid, 'tokens', ARGV[4],
  'S', ARGV[5], 'm', ARGV[6], 'unit', ARGV[7], 'scope', scope, 'iat', ARGV[9],
  'exp', ARGV[10], 'k', ARGV[11], 'upk', ARGV[12], 'status', 'active', 'claimed', 0, 'cert', ARGV[15])
if req ~= '' then redis.call('SET', req, serial, 'EX', 86400) end
redis.call('SADD', P .. 'ucerts:' .. uid, serial)
redis.call('ZADD', P .. 'expiry', ARGV[10], serial)
if ARGV[16] == '1' then -- bought for the user's hosted wallet (hosted.go)
  local hs = P .. 'hs:' .. serial
  redis.call('HSET', hs, 'S', ARGV[5], 'm', ARGV[6], 'next', 0)
  redis.call('EXPIREAT', hs, tonumber(ARGV[10]) + 86400)
  redis.call('ZADD', P .. 'hc:' .. uid, ARGV[10], serial)
end
return 'ok'
`)

// recoverCerts: ARGV uid, t, due, advance, every → {value credited at once,
// revoked, value pending until due, seconds to wait}. The first value is -1
// for a revoked user and -2 when the account recovered less than every
// seconds ago (nothing changes then).
//
// Revokes every active, unexpired certificate of the user at once, but
// credits their unclaimed value only at due (applyRecovered), when every
// claim a gateway may still hold has arrived: until then a batch-mode vendor
// can still be owed any of it. Up to advance of it is credited at once.
// rcredit is what was credited back of a certificate; its outstanding value
// is (tokens - claimed) * unit - rcredit, which later claims consume before
// any is charged to the user (see ingest).
var recoverCerts = script(`
local uid, t, due, adv, every = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('HGET', P .. 'u:' .. uid, 'status') ~= 'active' then return {-1, 0, 0, 0} end
local rk = P .. 'recov:' .. uid
local last = tonumber(redis.call('GET', rk) or '')
if last and t - last < every then return {-2, 0, 0, last + every - t} end
local credited, pending = 0, 0
local pk = P .. 'rpend:' .. uid
for _, serial in ipairs(redis.call('SMEMBERS', P .. 'ucerts:' .. uid)) do
  local ck = P .. 'c:{' .. serial .. '}'
  local c = redis.call('HMGET', ck, 'tokens', 'claimed', 'unit', 'exp')
  if tonumber(c[4]) > t and revoke(serial, 'recovered', t) > 0 then
    local v = (tonumber(c[1]) - tonumber(c[2])) * tonumber(c[3])
    local now = math.min(v, adv)
    adv = adv - now
    redis.call('HSET', ck, 'recovered', 1, 'rcredit', now, 'rdue', due)
    if now > 0 then post('u:' .. uid, now, 'recovery', serial, t) end
    redis.call('ZADD', pk, due, serial)
    credited, pending = credited + now, pending + v - now
  end
end
if revoked > 0 then
  if every > 0 then redis.call('SET', rk, t, 'EX', every) end
  -- The loop's index keeps each user's earliest due.
  redis.call('ZADD', P .. 'rpend', 'NX', due, uid)
end
return {credited, revoked, pending, 0}
`)

// applyRecovered: ARGV uid, t → {value credited, value still pending, next
// due or 0}. Credits the outstanding value of the user's recovered
// certificates whose due has passed, each once (it leaves rpend in the same
// script), and updates the loop's index.
var applyRecovered = script(`
local uid, t = ARGV[1], tonumber(ARGV[2])
local pk = P .. 'rpend:' .. uid
local function outstanding(ck)
  local c = redis.call('HMGET', ck, 'tokens', 'claimed', 'unit', 'rcredit', 'settled')
  if not c[1] or c[5] == '1' then return 0 end
  return (tonumber(c[1]) - tonumber(c[2])) * tonumber(c[3]) - tonumber(c[4] or '0')
end
local credited = 0
for _, serial in ipairs(redis.call('ZRANGEBYSCORE', pk, '-inf', t)) do
  local ck = P .. 'c:{' .. serial .. '}'
  redis.call('ZREM', pk, serial)
  local v = outstanding(ck)
  if v > 0 then
    redis.call('HINCRBY', ck, 'rcredit', v)
    post('u:' .. uid, v, 'recovery', serial, t)
    credited = credited + v
  end
end
local pending = 0
for _, serial in ipairs(redis.call('ZRANGE', pk, 0, -1)) do
  pending = pending + math.max(0, outstanding(P .. 'c:{' .. serial .. '}'))
end
local nxt = redis.call('ZRANGE', pk, 0, 0, 'WITHSCORES')
if nxt[2] then
  redis.call('ZADD', P .. 'rpend', nxt[2], uid)
  return {credited, pending, tonumber(nxt[2])}
end
redis.call('ZREM', P .. 'rpend', uid)
return {credited, pending, 0}
`)

// revokeCert: ARGV serial, reason, t → CRL seq, or 0 if not active.
var revokeCert = script(`
return revoke(ARGV[1], ARGV[2], tonumber(ARGV[3]))
`)

// revokeAccount: ARGV acct ("u:<uid>" | "v:<vid>"), t → number of
// certificates revoked, or -1 if there is no such account.
var revokeAccount = script(`
local acct, t = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', P .. acct) == 0 then return -1 end
redis.call('HSET', P .. acct, 'status', 'revoked')
local n = 0
if string.sub(acct, 1, 2) == 'u:' then
  for _, serial in ipairs(redis.call('SMEMBERS', P .. 'ucerts:' .. string.sub(acct, 3))) do
    if revoke(serial, 'admin', t) > 0 then n = n + 1 end
  end
end
return n
`)

// bind: ARGV serial, seg, vendor, t → {owner of the segment, revoked}. A
// different owner proves the user bound one segment twice: the certificate
// is revoked.
var bind = script(`
local serial, seg, vendor, t = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ck = P .. 'c:{' .. serial .. '}'
if redis.call('EXISTS', ck) == 0 then return {'', 0} end
local owner = redis.call('HGET', ck .. ':own', seg)
if not owner then
  redis.call('HSET', ck .. ':own', seg, vendor)
  return {vendor, 0}
end
if owner ~= vendor then
  fraud(t, 'double_bind', vendor, serial, tonumber(seg), redis.call('HGET', ck, 'user'), owner)
  revoke(serial, 'double-spend', t)
end
return {owner, revoked}
`)

// settle: ARGV serial, t → refund credited (minor units), or -1 if already
// settled. Refunds the unclaimed tokens of an expired certificate to its
// user; of a recovered one, only what its recovery did not credit back.
var settle = script(`
local serial, t = ARGV[1], tonumber(ARGV[2])
local ck = P .. 'c:{' .. serial .. '}'
redis.call('ZREM', P .. 'expiry', serial)
local c = redis.call('HMGET', ck, 'settled', 'recovered', 'tokens', 'claimed', 'unit', 'user', 'rcredit')
if c[1] == '1' or not c[3] then return -1 end
redis.call('HSET', ck, 'settled', 1)
redis.call('SREM', P .. 'ucerts:' .. c[6], serial)
-- Claims are refused from now on: their idempotency records can go.
redis.call('DEL', ck .. ':cl', ck .. ':hi', ck .. ':own', ck .. ':pa', ck .. ':vd')
-- A recovered certificate refunds what was not credited back yet (none
-- when its recovery credit ran; a recovery from before rcredit existed
-- credited everything at once).
local v = (tonumber(c[3]) - tonumber(c[4])) * tonumber(c[5])
if c[2] == '1' then
  redis.call('ZREM', P .. 'rpend:' .. c[6], serial)
  v = c[7] and v - tonumber(c[7]) or 0
end
if v > 0 then
  if c[2] == '1' then redis.call('HINCRBY', ck, 'rcredit', v) end
  post('u:' .. c[6], v, 'refund', serial, t)
end
return math.max(v, 0)
`)
