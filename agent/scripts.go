package agent

import (
	"context"

	"github.com/redis/go-redis/v9"
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
//	hw:a:v:<vid>           vendor hash (kind, bal, status, fraud)
//	hw:a:uname:<name>      username -> uid
//	hw:a:vtok:<sha256>     vendor token hash -> vid
//	hw:a:sess:<sha256>     session token hash -> uid (expires)
//	hw:a:led:<acct>        ledger of account "u:<uid>" / "v:<vid>": zset of
//	                       entries by time, for statements of any period;
//	                       hw:a:ledseq numbers the entries of all ledgers
//	hw:a:accounts          set of every account
//	hw:a:ucerts:<uid>      set of the user's active certificates
//	hw:a:c:{<serial>}      certificate hash; :own seg -> owner vendor,
//	                       :hi "vendor|seg" -> highest paid index,
//	                       :cl "vendor|seg|index" -> verdict (idempotency)
//	hw:a:expiry            zset serial by expiry, for refunds
//	hw:a:batch:<vid>:<id>  stored response of an ingested batch
//	hw:a:evt:<id>          webhook event already credited
//	hw:a:req:<uid>:<id>    purchase request id -> serial (a day)
//	hw:a:fraud             list of fraud cases
//	hw:a:crlseq, hw:crl    CRL sequence and entries (zset, and channel)
//	hw:a:crlexp            the same entries by certificate expiry, for pruning
const luaPrelude = `
local P = KEYS[1]
local function post(acct, amt, kind, ref, t)
  local bal = redis.call('HINCRBY', P .. acct, 'bal', amt)
  local seq = redis.call('INCR', P .. 'ledseq')
  redis.call('ZADD', P .. 'led:' .. acct, t, string.format(
    '{"seq":%d,"t":%d,"amt":%d,"kind":"%s","ref":"%s","bal":%d}', seq, t, amt, kind, ref, bal))
  return bal
end
local function fraud(t, kind, vendor, serial, seg, user)
  redis.call('RPUSH', P .. 'fraud', string.format(
    '{"t":%d,"kind":"%s","vendor":"%s","serial":"%s","seg":%d,"user":"%s"}',
    t, kind, vendor, serial, seg, user))
  redis.call('LTRIM', P .. 'fraud', -100000, -1)
end
-- pruneCRL drops up to n entries of certificates expired at or before cutoff.
local function pruneCRL(cutoff, n)
  local old = redis.call('ZRANGEBYSCORE', P .. 'crlexp', '-inf', cutoff, 'LIMIT', 0, n)
  for _, e in ipairs(old) do
    redis.call('ZREM', 'hw:crl', e)
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
  redis.call('ZADD', 'hw:crl', seq, e)
  if exp > 0 then redis.call('ZADD', P .. 'crlexp', exp, e) end
  pruneCRL(t - 3600, 2) -- payword.CRLKeep: each revocation drops up to two expired ones
  redis.call('PUBLISH', 'hw:crl', e)
  return seq
end
`

func script(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// run runs a script on the agent's keyspace.
func (a *Agent) run(ctx context.Context, s *redis.Script, args ...any) *redis.Cmd {
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
return 'ok'
`)

// registerVendor: ARGV vid, kind, tokenhash, t → "ok" | "taken".
var registerVendor = script(`
local vid = ARGV[1]
if redis.call('EXISTS', P .. 'v:' .. vid) == 1 then return 'taken' end
redis.call('HSET', P .. 'v:' .. vid, 'kind', ARGV[2], 'bal', 0, 'status', 'active',
  'fraud', 0, 'ctime', ARGV[4], 'tok', ARGV[3])
redis.call('SET', P .. 'vtok:' .. ARGV[3], vid)
redis.call('SADD', P .. 'accounts', 'v:' .. vid)
return 'ok'
`)

// rotateToken: ARGV vid, new token hash → "ok". The old token stops
// working in the same step.
var rotateToken = script(`
local vk = P .. 'v:' .. ARGV[1]
local old = redis.call('HGET', vk, 'tok')
if old then redis.call('DEL', P .. 'vtok:' .. old) end
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
// upk, t, request id, certificate → "replay:<serial>" (request id seen in the
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
return 'ok'
`)

// recoverCerts: ARGV uid, t → {value credited back (minor units), revoked}.
// Revokes every active, unexpired certificate of the user and credits their
// unclaimed tokens; later claims against them are charged to the user.
var recoverCerts = script(`
local uid, t = ARGV[1], tonumber(ARGV[2])
if redis.call('HGET', P .. 'u:' .. uid, 'status') ~= 'active' then return {-1, 0} end
local total = 0
for _, serial in ipairs(redis.call('SMEMBERS', P .. 'ucerts:' .. uid)) do
  local ck = P .. 'c:{' .. serial .. '}'
  local c = redis.call('HMGET', ck, 'tokens', 'claimed', 'unit', 'exp')
  if tonumber(c[4]) > t then
    revoke(serial, 'recovered', t)
    redis.call('HSET', ck, 'recovered', 1)
    local v = (tonumber(c[1]) - tonumber(c[2])) * tonumber(c[3])
    if v > 0 then post('u:' .. uid, v, 'recovery', serial, t) end
    total = total + v
  end
end
return {total, revoked}
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
  fraud(t, 'double_bind', vendor, serial, tonumber(seg), redis.call('HGET', ck, 'user'))
  revoke(serial, 'double-spend', t)
end
return {owner, revoked}
`)

// settle: ARGV serial, t → refund credited (minor units), or -1 if already
// settled. Refunds the unclaimed tokens of an expired certificate to its
// user; a recovered certificate's value was already moved.
var settle = script(`
local serial, t = ARGV[1], tonumber(ARGV[2])
local ck = P .. 'c:{' .. serial .. '}'
redis.call('ZREM', P .. 'expiry', serial)
local c = redis.call('HMGET', ck, 'settled', 'recovered', 'tokens', 'claimed', 'unit', 'user')
if c[1] == '1' or not c[3] then return -1 end
redis.call('HSET', ck, 'settled', 1)
redis.call('SREM', P .. 'ucerts:' .. c[6], serial)
-- Claims are refused from now on: their idempotency records can go.
redis.call('DEL', ck .. ':cl', ck .. ':hi', ck .. ':own')
if c[2] == '1' then return 0 end
local v = (tonumber(c[3]) - tonumber(c[4])) * tonumber(c[5])
if v > 0 then post('u:' .. c[6], v, 'refund', serial, t) end
return v
`)
