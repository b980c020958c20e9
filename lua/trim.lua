-- trim.lua — retention: delete finished jobs beyond a count or an age.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] max jobs deleted per call
-- ARGV[3] completed count  ARGV[4] completed age (ms)
-- ARGV[5] failed count     ARGV[6] failed age (ms)  (also used for canceled)
-- Returns the number of jobs deleted.
--
-- Each batch is deleted with one DEL and one ZREM, and idempotency keys
-- are only looked up when the queue has any: trimming costs a few
-- commands per batch, not per job.
local base, now, budget = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local has_idem = redis.call('HLEN', base .. ':idem') > 0
local n = 0
local function drop(set, ids)
  if #ids == 0 then return end
  local keys = {}
  for i, id in ipairs(ids) do
    keys[i] = base .. ':job:' .. id
    if has_idem then
      local key = redis.call('HGET', keys[i], 'idempotencyKey')
      if key then redis.call('HDEL', base .. ':idem', key) end
    end
  end
  -- unpack is bounded: the caller's budget keeps #ids within Lua's limits.
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', set, unpack(ids))
  n = n + #ids
end
local function trim(set, count, age)
  if budget - n <= 0 then return end
  -- Oldest first: by age, then whatever exceeds the count.
  drop(set, redis.call('ZRANGEBYSCORE', set, '-inf', now - age, 'LIMIT', 0, budget - n))
  local excess = redis.call('ZCARD', set) - count
  if excess > 0 and budget - n > 0 then
    if excess > budget - n then excess = budget - n end
    drop(set, redis.call('ZRANGE', set, 0, excess - 1))
  end
end
trim(base .. ':completed', tonumber(ARGV[3]), tonumber(ARGV[4]))
trim(base .. ':failed', tonumber(ARGV[5]), tonumber(ARGV[6]))
trim(base .. ':canceled', tonumber(ARGV[5]), tonumber(ARGV[6]))
return n
