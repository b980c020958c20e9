-- release.lua — give a job we hold back to waiting without using up the
-- attempt (graceful shutdown).  It goes first among its priority.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] event cap
-- ARGV[3] id   ARGV[4] lease token
-- Returns {'waiting'} | {'badtoken', state} | {'notfound'}
local base, now, id = KEYS[1], ARGV[1], ARGV[3]
local jk = base .. ':job:' .. id
local f = redis.call('HMGET', jk, 'status', 'leaseToken', 'attempts', 'priority', 'type')
if not f[1] then return { 'notfound' } end
if f[1] ~= 'processing' or f[2] ~= ARGV[4] then return { 'badtoken', f[1] } end
local attempts = (tonumber(f[3]) or 1) - 1
if attempts < 0 then attempts = 0 end
redis.call('ZREM', base .. ':active', id)
redis.call('HSET', jk, 'status', 'waiting', 'attempts', attempts, 'updatedAt', now)
redis.call('HDEL', jk, 'leaseToken', 'leaseExpiresAt')
local score = (10 - (tonumber(f[4]) or 0)) * 140737488355328
redis.call('ZADD', base .. ':wait', string.format('%.0f', score), id)
if redis.call('HGET', base .. ':meta', 'paused') ~= '1'
   and redis.call('LLEN', base .. ':notify') == 0 then
  redis.call('RPUSH', base .. ':notify', '1')
end
redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
           'jobId', id, 'status', 'waiting', 'type', f[5], 'ts', now)
return { 'waiting' }
