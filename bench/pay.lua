-- wrk script: each thread sends its own file of pre-generated payments, one
-- per request, in order (run with as many connections as threads, so the
-- payments of a segment arrive in order).
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  payments = {}
  for line in io.lines(args[1] .. "/payments-" .. id .. ".txt") do
    payments[#payments + 1] = line
  end
  n = 0
  path = args[2]
end

function request()
  n = n + 1
  local p = payments[n]
  if p == nil then
    p = payments[#payments] -- out of payments: replays, counted as non-2xx
  end
  return wrk.format("GET", path, { ["Authorization"] = p })
end
