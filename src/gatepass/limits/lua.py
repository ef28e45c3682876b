"""The Redis backend's Lua scripts: each one a single atomic step (see `backend`).

Keys per scope, all under the key's hash tag so one script's keys share a cluster slot:
  {prefix}{k<id>}[:u:<user hash>]:res          hash  request id → "until_ms window minute tokens nano"
  {prefix}{k<id>}[:u:<user hash>]:b:<window>   hash  tokens, nano (spent this window), seeded
  {prefix}{k<id>}[:u:<user hash>]:m:<minute>   hash  r (requests admitted), t (tokens used)
Numbers travel as decimal strings and are summed as Lua doubles, exact below 2^53
(nano-USD: about $9 million per window).
"""

from __future__ import annotations

# ARGV: now_ms, request id, hold_until_ms, tokens, nano, minute, minute_end_ms, n, peek,
#       then per scope: max_concurrent, rpm, tpm, budget_tokens, budget_nano, window id,
#       window_end_ms, lease_ms ('' where there is no limit).
# Returns {allowed (0/1), {unseeded scope indexes}, {tokens, nano per scope},
#          {scope, reason code, retry seconds per refusal}}.
ADMIT = r"""
local now = tonumber(ARGV[1])
local minute = ARGV[6]
local minute_end = tonumber(ARGV[7])
local n = tonumber(ARGV[8])
local want_t = tonumber(ARGV[4])
local want_n = tonumber(ARGV[5])
local function limit(v) if v == '' then return nil end return tonumber(v) end
local function wait(moment)
  local s = math.ceil((moment - now) / 1000)
  if s < 1 then s = 1 end
  return s
end
local unseeded, used, refusals = {}, {}, {}
for i = 1, n do
  local b = 10 + 8 * (i - 1)
  if ARGV[b + 3] ~= '' or ARGV[b + 4] ~= '' then
    local v = redis.call('HMGET', KEYS[3 * i - 1], 'tokens', 'nano', 'seeded')
    if not v[3] then table.insert(unseeded, i - 1) end
    table.insert(used, tonumber(v[1] or '0'))
    table.insert(used, tonumber(v[2] or '0'))
  else
    table.insert(used, 0)
    table.insert(used, 0)
  end
end
if #unseeded > 0 or ARGV[9] == '1' then return {0, unseeded, used, refusals} end
local function refuse(i, code, s)
  table.insert(refusals, i - 1)
  table.insert(refusals, code)
  table.insert(refusals, s)
end
local function check(i, count, held, want, lim, code, reset)
  if lim == nil then return end
  if count >= lim then refuse(i, code, wait(reset))
  elseif held > 0 and count + held + want > lim then refuse(i, 3, 1) end
end
for i = 1, n do
  local b = 10 + 8 * (i - 1)
  local res = KEYS[3 * i - 2]
  local window = ARGV[b + 5]
  local live, held_m, held_t, held_n = 0, 0, 0, 0
  local entries = redis.call('HGETALL', res)
  for j = 1, #entries, 2 do
    local u, w, m, t, c = string.match(entries[j + 1], '^(%d+) (%S+) (%d+) (%d+) (%d+)$')
    if (not u) or tonumber(u) <= now then
      redis.call('HDEL', res, entries[j])
    else
      live = live + 1
      if m == minute then held_m = held_m + tonumber(t) end
      if w == window then
        held_t = held_t + tonumber(t)
        held_n = held_n + tonumber(c)
      end
    end
  end
  local counts = redis.call('HMGET', KEYS[3 * i], 'r', 't')
  local max_c, rpm, tpm = limit(ARGV[b]), limit(ARGV[b + 1]), limit(ARGV[b + 2])
  if max_c ~= nil and live >= max_c then refuse(i, 0, 1) end
  if rpm ~= nil and tonumber(counts[1] or '0') >= rpm then refuse(i, 1, wait(minute_end)) end
  check(i, tonumber(counts[2] or '0'), held_m, want_t, tpm, 2, minute_end)
  local reset = tonumber(ARGV[b + 6])
  check(i, used[2 * i - 1], held_t, want_t, limit(ARGV[b + 3]), 4, reset)
  check(i, used[2 * i], held_n, want_n, limit(ARGV[b + 4]), 5, reset)
end
if #refusals > 0 then return {0, unseeded, used, refusals} end
for i = 1, n do
  local b = 10 + 8 * (i - 1)
  local hold = ARGV[3] .. ' ' .. ARGV[b + 5] .. ' ' .. minute .. ' ' .. ARGV[4] .. ' ' .. ARGV[5]
  redis.call('HSET', KEYS[3 * i - 2], ARGV[2], hold)
  redis.call('PEXPIRE', KEYS[3 * i - 2], ARGV[b + 7])
  if ARGV[b + 1] ~= '' then
    redis.call('HINCRBY', KEYS[3 * i], 'r', 1)
    redis.call('EXPIRE', KEYS[3 * i], 120)
  end
end
return {1, unseeded, used, refusals}
"""

# ARGV: request id, first ('1'/'0'), tokens, nano, n, then per scope: has budget ('1'/'0'),
#       has tpm ('1'/'0'), budget ttl_ms.
SETTLE = r"""
local n = tonumber(ARGV[5])
for i = 1, n do
  local b = 6 + 3 * (i - 1)
  local removed = redis.call('HDEL', KEYS[3 * i - 2], ARGV[1])
  if removed == 1 or ARGV[2] == '1' then
    if ARGV[b] == '1' then
      redis.call('HINCRBY', KEYS[3 * i - 1], 'tokens', ARGV[3])
      redis.call('HINCRBY', KEYS[3 * i - 1], 'nano', ARGV[4])
      redis.call('PEXPIRE', KEYS[3 * i - 1], ARGV[b + 2])
    end
    if ARGV[b + 1] == '1' then
      redis.call('HINCRBY', KEYS[3 * i], 't', ARGV[3])
      redis.call('EXPIRE', KEYS[3 * i], 120)
    end
  end
end
return 1
"""

# KEYS: the budget window; ARGV: tokens, nano, ttl_ms. Adds the spend once per window.
SEED = r"""
if redis.call('HSETNX', KEYS[1], 'seeded', 1) == 1 then
  redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'nano', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
