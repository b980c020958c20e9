-- retry.lua — put a failed or canceled job back to waiting, attempts anew.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] event stream cap   ARGV[3] id
-- Returns {'waiting', fields...} | {'conflict', state} | {'notfound'}
local base, now, id = KEYS[1], ARGV[1], ARGV[3]
local jk = base .. ':job:' .. id
local f = redis.call('HMGET', jk, 'status', 'type', 'priority')
if not f[1] then return { 'notfound' } end
if f[1] == 'failed' then
  redis.call('ZREM', base .. ':failed', id)
elseif f[1] == 'canceled' then
  redis.call('ZREM', base .. ':canceled', id)
else
  return { 'conflict', f[1] }
end
local seq = redis.call('HINCRBY', base .. ':meta', 'seq', 1)
local score = (10 - (tonumber(f[3]) or 0)) * 140737488355328 + seq
redis.call('HSET', jk, 'status', 'waiting', 'attempts', 0, 'updatedAt', now, 'runAt', now)
redis.call('HDEL', jk, 'failedAt', 'leaseToken', 'leaseExpiresAt')
redis.call('ZADD', base .. ':wait', string.format('%.0f', score), id)
if redis.call('HGET', base .. ':meta', 'paused') ~= '1'
   and redis.call('LLEN', base .. ':notify') == 0 then
  redis.call('RPUSH', base .. ':notify', '1')
end
redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
           'jobId', id, 'status', 'waiting', 'type', f[2], 'ts', now)
return { 'waiting', redis.call('HGETALL', jk) }
