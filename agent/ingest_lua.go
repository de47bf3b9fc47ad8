package agent

// ingest applies the verdicts of one report batch atomically.
//
// ARGV: vendor, batch, t, n, ttl, then per claim: serial, seg, index, pre,
// auth, void ("1" for the void of a claim, else "0"), p (the tokens the
// payment carried), product; then the digest of the batch's claims (64 hex
// digits); last, the sum, count and largest of the claims' delivery delays
// (seconds from their acceptance at the gateway to now). pre is Go's
// verdict from the signatures and K: "ok", "invalid", "vendor_fraud" or
// "unknown_certificate". Returns {response body, certificates revoked,
// value credited to the vendor for claims, value taken back by voids}. A
// batch id seen before with the same digest returns the stored body (and
// zeros) and changes nothing; with another digest it returns
// {"", 0, 0, 0, 1} (refused: batch_mismatch) and changes nothing. A stored body without a digest (from
// before digests) cannot be matched to claims: the batch is ingested again,
// claim by claim, which is idempotent.
//
// For a claim that passed Go's checks: the first vendor with a valid binding
// owns the segment; a vendor is paid the indices above the highest it was
// paid in that segment (never more than its highest claimed index); a
// non-owner is paid too but the user is charged (double-spend proven by two
// bindings) and the certificate revoked; owner claims against a recovered
// certificate are paid from its outstanding value (not yet credited back)
// and the rest is charged to the user.
//
// A void (a claim whose answer was not charged, see docs/protocol.md §8)
// takes back from the vendor what its claim was paid, at most its p tokens,
// and credits it to the user: the tokens stay spent (the certificate's
// claimed count keeps them, so no refund pays them again). A void that
// comes before its claim ingests the claim first; the claim, when it comes,
// is a duplicate. Each claim is voided at most once (:vd); what a claim
// was paid is kept for its void (:pa).
//
// State is read with a few HMGETs per certificate into local tables and
// written back at the end: a batch costs a few calls per certificate, not
// per claim or segment.
//
// What the vendor's pages and GET /v1/claims, /v1/revenue show is written
// in the same script, so it always agrees with the ledger: each claim
// recorded (not a duplicate, not refused after the settlement window) and
// each void is one entry of the vendor's claims stream vc:<vid> (at most
// maxClaimsLog, the oldest trimmed), its one field e "<t> <serial> <seg>
// <index> <verdict> <tokens> <value> <product>" (a product has no spaces); the day's claims paid, value credited
// and value voided go to vr:<vid> (fields n:<day>, c:<day>, v:<day>, day =
// Unix days of t); each product's net value to vp:<vid>.
// maxClaimsLog bounds a vendor's claims stream (XADD MAXLEN ~): about
// 100 bytes an entry, so some 50 MB of Redis for a vendor at the bound.
const maxClaimsLog = "500000"

var ingest = script(`
local vendor, batch, t, n, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local bk = P .. 'batch:' .. vendor .. ':' .. batch
local digest = ARGV[6 + 8 * n]
local prev = redis.call('GET', bk)
if prev and string.sub(prev, 1, 1) ~= '{' then
  if string.sub(prev, 1, 64) ~= digest then return {'', 0, 0, 0, 1} end
  return {string.sub(prev, 65), 0, 0, 0}
end

-- Pass 1: per certificate, its claims seen, segment owners, this vendor's
-- highs and its record, in four HMGETs.
local certs, order = {}, {}
for k = 0, n - 1 do
  local b = 6 + 8 * k
  local serial = ARGV[b]
  if ARGV[b + 3] ~= 'unknown_certificate' then
    local c = certs[serial]
    if not c then
      c = {key = P .. 'c:{' .. serial .. '}', fields = {}, seen = {}, new = {}, segs = {}, own = {},
        newown = {}, hi = {}, dirty = {}, claimed = 0, vfields = {}, voided = {}, paid = {}, newvd = {}, newpa = {}}
      certs[serial] = c
      order[#order + 1] = serial
    end
    local seg = ARGV[b + 1]
    c.fields[#c.fields + 1] = vendor .. '|' .. seg .. '|' .. ARGV[b + 2]
    if ARGV[b + 5] == '1' then c.vfields[#c.vfields + 1] = c.fields[#c.fields] end
    if not c.own[seg] then
      c.own[seg] = false
      c.segs[#c.segs + 1] = seg
    end
  end
end
for _, serial in ipairs(order) do
  local c = certs[serial]
  local got = redis.call('HMGET', c.key .. ':cl', unpack(c.fields))
  for i, f in ipairs(c.fields) do
    if got[i] then c.seen[f] = true end
  end
  if #c.vfields > 0 then
    local vd = redis.call('HMGET', c.key .. ':vd', unpack(c.vfields))
    local pa = redis.call('HMGET', c.key .. ':pa', unpack(c.vfields))
    for i, f in ipairs(c.vfields) do
      if vd[i] then c.voided[f] = true end
      c.paid[f] = tonumber(pa[i] or '0')
    end
  end
  local owners = redis.call('HMGET', c.key .. ':own', unpack(c.segs))
  local hks = {}
  for i, seg in ipairs(c.segs) do
    c.own[seg] = owners[i]
    hks[i] = vendor .. '|' .. seg
  end
  local his = redis.call('HMGET', c.key .. ':hi', unpack(hks))
  for i, hk in ipairs(hks) do
    c.hi[hk] = tonumber(his[i] or '0')
  end
  local m = redis.call('HMGET', c.key, 'user', 'unit', 'recovered', 'settled', 'tokens', 'claimed', 'rcredit')
  if m[1] then
    c.user, c.unit, c.recovered, c.settled = m[1], tonumber(m[2]), m[3] == '1', m[4] == '1'
    -- A recovered certificate's outstanding value (recoverCerts) pays its
    -- claims first; only the rest is charged to the user. None is left
    -- once its recovery credit ran (or for a recovery from before rcredit).
    c.rout = 0
    if c.recovered and m[7] then
      c.rout = (tonumber(m[5]) - tonumber(m[6])) * c.unit - tonumber(m[7])
    end
  else
    certs[serial] = nil -- known to Go's cache but gone from the store
  end
end

-- Pass 2: verdicts.
local out, vcredit, vdebit, charges, users = {}, 0, 0, {}, {}
local vc, paidn, logged, prodv, prods = P .. 'vc:' .. vendor, 0, 0, {}, {}
-- logClaim adds a recorded claim or void to the vendor's claims stream
-- and its value to its product's.
local function logClaim(serial, seg, idx, product, verdict, amount, value)
  logged = logged + 1
  redis.call('XADD', vc, 'MAXLEN', '~', ` + maxClaimsLog + `, '*', 'e',
    t .. ' ' .. serial .. ' ' .. seg .. ' ' .. idx .. ' ' .. verdict .. ' ' .. amount .. ' ' .. value .. ' ' .. product)
  if value ~= 0 then
    if not prodv[product] then prodv[product] = 0; prods[#prods + 1] = product end
    prodv[product] = prodv[product] + value
  end
end
local function charge(uid, kind, v)
  local key = uid .. '|' .. kind
  if not charges[key] then charges[key] = 0; users[#users + 1] = {uid, kind} end
  charges[key] = charges[key] + v
end
-- claim judges the claim of vendor at (seg, idx) of certificate c, with
-- Go's verdict pre, and records it; returns its verdict and the tokens paid.
local function claim(c, serial, seg, idx, verdict, product)
  local ckey = vendor .. '|' .. seg .. '|' .. idx
  if c.settled then
    return 'invalid', 0 -- reported after the settlement window: refused, not recorded
  elseif c.seen[ckey] then
    return 'duplicate', 0
  end
  local amount = 0
  if verdict == 'ok' then
    local owner = c.own[seg]
    if not owner then
      owner = vendor
      c.own[seg] = vendor
      c.newown[#c.newown + 1] = seg
      c.newown[#c.newown + 1] = vendor
    end
    local hk = vendor .. '|' .. seg
    local hi = c.hi[hk]
    if idx > hi then
      amount = idx - hi
      hi = idx
      c.dirty[hk] = true
    end
    c.hi[hk] = hi
    local v = amount * c.unit
    vcredit = vcredit + v
    if owner == vendor then
      verdict = 'paid'
      c.claimed = c.claimed + amount
      if c.recovered and v > 0 then
        local covered = math.max(0, math.min(v, c.rout))
        c.rout = c.rout - v
        if v > covered then charge(c.user, 'late_claim', v - covered) end
      end
    else
      verdict = 'double_spend'
      if v > 0 then charge(c.user, 'double_spend', v) end
      if revoke(serial, 'double-spend', t) > 0 then
        fraud(t, 'double_spend', vendor, serial, tonumber(seg), c.user, owner)
      end
    end
  else
    redis.call('HINCRBY', P .. 'v:' .. vendor, 'fraud', 1)
    fraud(t, verdict, vendor, serial, tonumber(seg), c.user)
  end
  c.seen[ckey] = true
  c.new[#c.new + 1] = ckey
  c.new[#c.new + 1] = verdict
  if amount > 0 then -- for its void
    c.paid[ckey] = amount
    c.newpa[#c.newpa + 1] = ckey
    c.newpa[#c.newpa + 1] = amount
    paidn = paidn + 1
  end
  logClaim(serial, seg, idx, product, verdict, amount, amount * (c.unit or 0))
  return verdict, amount
end
-- void takes back what the claim at (seg, idx) was paid, at most p tokens.
local function void(c, serial, seg, idx, p, product)
  local ckey = vendor .. '|' .. seg .. '|' .. idx
  if c.voided[ckey] then return 'duplicate', 0 end
  c.voided[ckey] = true
  local amount = math.min(c.paid[ckey] or 0, p)
  c.newvd[#c.newvd + 1] = ckey
  c.newvd[#c.newvd + 1] = amount
  if amount > 0 then
    vdebit = vdebit + amount * c.unit
    charge(c.user, 'void', -amount * c.unit)
  end
  logClaim(serial, seg, idx, product, 'voided', amount, -amount * c.unit)
  return 'voided', amount
end
for k = 0, n - 1 do
  local b = 6 + 8 * k
  local serial, seg, idx, verdict, auth = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4]
  local isvoid, p, product = ARGV[b + 5] == '1', tonumber(ARGV[b + 6]), ARGV[b + 7]
  local amount = 0
  local c = certs[serial]
  if not c then
    verdict = 'unknown_certificate'
  elseif not isvoid then
    verdict, amount = claim(c, serial, seg, idx, verdict, product)
  else
    local ckey = vendor .. '|' .. seg .. '|' .. idx
    if not c.seen[ckey] then
      verdict = claim(c, serial, seg, idx, verdict, product) -- the void came first
    end
    if c.seen[ckey] then
      verdict, amount = void(c, serial, seg, idx, p, product)
    end
  end
  out[#out + 1] = string.format('{"auth":"%s","verdict":"%s","amount":%d}', auth, verdict, amount)
end

-- Write back.
for _, serial in ipairs(order) do
  local c = certs[serial] or {new = {}, newown = {}, newvd = {}, newpa = {}, dirty = {}, claimed = 0}
  if #c.new > 0 then redis.call('HSET', c.key .. ':cl', unpack(c.new)) end
  if #c.newown > 0 then redis.call('HSET', c.key .. ':own', unpack(c.newown)) end
  if #c.newvd > 0 then redis.call('HSET', c.key .. ':vd', unpack(c.newvd)) end
  if #c.newpa > 0 then redis.call('HSET', c.key .. ':pa', unpack(c.newpa)) end
  local hi = {}
  for hk in pairs(c.dirty) do hi[#hi + 1] = hk; hi[#hi + 1] = c.hi[hk] end
  if #hi > 0 then redis.call('HSET', c.key .. ':hi', unpack(hi)) end
  if c.claimed > 0 then redis.call('HINCRBY', c.key, 'claimed', c.claimed) end
end
local day = math.floor(t / 86400)
local vr = {}
if paidn > 0 then vr[#vr + 1] = {'n:' .. day, paidn} end
if vcredit > 0 then vr[#vr + 1] = {'c:' .. day, vcredit} end
if vdebit > 0 then vr[#vr + 1] = {'v:' .. day, vdebit} end
for _, f in ipairs(vr) do redis.call('HINCRBY', P .. 'vr:' .. vendor, f[1], f[2]) end
for _, pr in ipairs(prods) do
  if prodv[pr] ~= 0 then redis.call('ZINCRBY', P .. 'vp:' .. vendor, prodv[pr], pr) end
end
if vcredit > 0 then post('v:' .. vendor, vcredit, 'claims', batch, t) end
if vdebit > 0 then post('v:' .. vendor, -vdebit, 'void', batch, t) end
for _, u in ipairs(users) do
  post('u:' .. u[1], -charges[u[1] .. '|' .. u[2]], u[2], batch, t)
end
local body = '{"batch":"' .. batch .. '","results":[' .. table.concat(out, ',') .. ']}'
if #order > 0 then -- a batch of unknown certificates only changes nothing
  redis.call('SET', bk, digest .. body, 'EX', ttl)
  -- The operator's figures: this minute's claims, and the vendor's last
  -- report and how late its oldest claim came.
  local lagsum, lagn, lagmax = tonumber(ARGV[7 + 8 * n]), tonumber(ARGV[8 + 8 * n]), tonumber(ARGV[9 + 8 * n])
  local st = P .. 'st:' .. math.floor(t / 60)
  redis.call('HINCRBY', st, 'claims', logged)
  redis.call('HINCRBY', st, 'paid', paidn)
  redis.call('HINCRBY', st, 'value', vcredit - vdebit)
  redis.call('HINCRBY', st, 'lagsum', lagsum)
  redis.call('HINCRBY', st, 'lagn', lagn)
  if lagmax > tonumber(redis.call('HGET', st, 'lagmax') or '0') then redis.call('HSET', st, 'lagmax', lagmax) end
  redis.call('EXPIRE', st, 172800)
  redis.call('HSET', P .. 'v:' .. vendor, 'lastrep', t, 'lag', lagmax)
end
return {body, revoked, vcredit, vdebit}
`)
