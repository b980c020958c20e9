-- trim.lua — retention: delete finished jobs beyond a count or an age.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] max jobs deleted per call
-- ARGV[3] completed count  ARGV[4] completed age (ms)
-- ARGV[5] failed count     ARGV[6] failed age (ms)  (also used for canceled)
-- Returns the number of jobs deleted.
local base, now, budget = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local n = 0
local function drop(set, ids)
  for _, id in ipairs(ids) do
    local jk = base .. ':job:' .. id
    local key = redis.call('HGET', jk, 'idempotencyKey')
    if key then redis.call('HDEL', base .. ':idem', key) end
    redis.call('DEL', jk)
    redis.call('ZREM', set, id)
    n = n + 1
  end
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
