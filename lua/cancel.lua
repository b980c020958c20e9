-- cancel.lua — cancel a waiting or delayed job.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] event stream cap   ARGV[3] id
-- Returns {'canceled', fields...} | {'conflict', state} | {'notfound'}
local base, now, id = KEYS[1], ARGV[1], ARGV[3]
local jk = base .. ':job:' .. id
local f = redis.call('HMGET', jk, 'status', 'type')
if not f[1] then return { 'notfound' } end
if f[1] == 'waiting' then
  redis.call('ZREM', base .. ':wait', id)
elseif f[1] == 'delayed' then
  redis.call('ZREM', base .. ':delayed', id)
else
  return { 'conflict', f[1] }
end
redis.call('HSET', jk, 'status', 'canceled', 'updatedAt', now)
redis.call('ZADD', base .. ':canceled', now, id)
redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
           'jobId', id, 'status', 'canceled', 'type', f[2], 'ts', now)
return { 'canceled', redis.call('HGETALL', jk) }
