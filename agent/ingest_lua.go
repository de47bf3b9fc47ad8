package agent

// ingest applies the verdicts of one report batch atomically.
//
// ARGV: vendor, batch, t, n, ttl, then per claim: serial, seg, index, pre,
// auth. pre is Go's verdict from the signatures and K: "ok", "invalid",
// "vendor_fraud" or "unknown_certificate". Returns the response body; a batch
// id seen before returns the stored body and changes nothing.
//
// For a claim that passed Go's checks: the first vendor with a valid binding
// owns the segment; a vendor is paid the indices above the highest it was
// paid in that segment (never more than its highest claimed index); a
// non-owner is paid too but the user is charged (double-spend proven by two
// bindings) and the certificate revoked; owner claims against a recovered
// certificate are charged to the user, whose value was already credited back.
var ingest = script(`
local vendor, batch, t, n, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local bk = P .. 'batch:' .. vendor .. ':' .. batch
local prev = redis.call('GET', bk)
if prev then return prev end
local out, vcredit, charges, users = {}, 0, {}, {}
local function charge(uid, kind, v)
  local key = uid .. '|' .. kind
  if not charges[key] then charges[key] = 0; users[#users + 1] = {uid, kind} end
  charges[key] = charges[key] + v
end
for k = 0, n - 1 do
  local b = 6 + 5 * k
  local serial, seg, idx, verdict, auth = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4]
  local amount = 0
  if verdict ~= 'unknown_certificate' then
    local ck = P .. 'c:{' .. serial .. '}'
    local ckey = vendor .. '|' .. seg .. '|' .. idx
    if redis.call('HEXISTS', ck .. ':cl', ckey) == 1 then
      verdict = 'duplicate'
    else
      local c = redis.call('HMGET', ck, 'user', 'unit', 'recovered', 'settled')
      if c[4] == '1' then
        verdict = 'invalid' -- reported after the settlement window
      elseif verdict == 'ok' then
        local owner = redis.call('HGET', ck .. ':own', seg)
        if not owner then
          redis.call('HSET', ck .. ':own', seg, vendor)
          owner = vendor
        end
        local hk = vendor .. '|' .. seg
        local hi = tonumber(redis.call('HGET', ck .. ':hi', hk) or '0')
        if idx > hi then
          amount = idx - hi
          redis.call('HSET', ck .. ':hi', hk, idx)
        end
        local v = amount * tonumber(c[2])
        vcredit = vcredit + v
        if owner == vendor then
          verdict = 'paid'
          redis.call('HINCRBY', ck, 'claimed', amount)
          if c[3] == '1' and v > 0 then charge(c[1], 'late_claim', v) end
        else
          verdict = 'double_spend'
          if v > 0 then charge(c[1], 'double_spend', v) end
          if revoke(serial, 'double-spend', t) > 0 then
            fraud(t, 'double_spend', vendor, serial, tonumber(seg), c[1])
          end
        end
      else
        redis.call('HINCRBY', P .. 'v:' .. vendor, 'fraud', 1)
        fraud(t, verdict, vendor, serial, tonumber(seg), c[1])
      end
      redis.call('HSET', ck .. ':cl', ckey, verdict)
    end
  end
  out[#out + 1] = string.format('{"auth":"%s","verdict":"%s","amount":%d}', auth, verdict, amount)
end
if vcredit > 0 then post('v:' .. vendor, vcredit, 'claims', batch, t) end
for _, u in ipairs(users) do
  post('u:' .. u[1], -charges[u[1] .. '|' .. u[2]], u[2], batch, t)
end
local body = '{"batch":"' .. batch .. '","results":[' .. table.concat(out, ',') .. ']}'
redis.call('SET', bk, body, 'EX', ttl)
return body
`)
