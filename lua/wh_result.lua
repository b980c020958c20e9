-- wh_result.lua — record how one webhook delivery attempt went.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] delivery id
-- ARGV[3] 'ok' (2xx) | 'retry' (5xx, timeout, connection error) | 'fail'
-- ARGV[4] error ('' none)   ARGV[5] HTTP status ('' none)
-- ARGV[6] attempts allowed  ARGV[7] retry delay (ms, backoff with jitter)
-- ARGV[8] ms a delivered record is kept   ARGV[9] ms a failed one is kept
-- Returns {status, attempts}: status pending (retried later) | delivered |
-- failed | gone (the record no longer exists).
local base, now, id = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local k, box = base .. ':wh:' .. id, base .. ':outbox'
local st = redis.call('HGET', k, 'status')
if not st then
  redis.call('ZREM', box, id)
  return { 'gone', 0 }
end
-- Settled meanwhile by another process whose claim had run out: keep that.
if st ~= 'pending' then
  return { st, tonumber(redis.call('HGET', k, 'attempts')) or 0 }
end
local attempts = redis.call('HINCRBY', k, 'attempts', 1)
redis.call('HSET', k, 'updatedAt', ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', k, 'lastError', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', k, 'responseStatus', ARGV[5]) end
if ARGV[3] == 'retry' and attempts < tonumber(ARGV[6]) then
  redis.call('ZADD', box, string.format('%.0f', now + tonumber(ARGV[7])), id)
  return { 'pending', attempts }
end
st = ARGV[3] == 'ok' and 'delivered' or 'failed'
redis.call('HSET', k, 'status', st)
if st == 'delivered' then redis.call('HSET', k, 'deliveredAt', ARGV[1]) end
redis.call('ZREM', box, id)
redis.call('PEXPIRE', k, st == 'delivered' and ARGV[8] or ARGV[9])
return { st, attempts }
