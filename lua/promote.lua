-- promote.lua — move delayed jobs whose runAt has come to waiting.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] max jobs   ARGV[3] event cap
-- Returns the number of jobs moved.
local base, now = KEYS[1], ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', base .. ':delayed', '-inf', now,
                       'LIMIT', 0, ARGV[2])
if #ids == 0 then return 0 end
local seq = tonumber(redis.call('HINCRBY', base .. ':meta', 'seq', #ids)) - #ids
for i, id in ipairs(ids) do
  local jk = base .. ':job:' .. id
  local f = redis.call('HMGET', jk, 'priority', 'type')
  redis.call('ZREM', base .. ':delayed', id)
  local score = (10 - (tonumber(f[1]) or 0)) * 140737488355328 + seq + i
  redis.call('ZADD', base .. ':wait', string.format('%.0f', score), id)
  redis.call('HSET', jk, 'status', 'waiting', 'updatedAt', now)
  redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[3], '*',
             'jobId', id, 'status', 'waiting', 'type', f[2] or '', 'ts', now)
end
if redis.call('HGET', base .. ':meta', 'paused') ~= '1'
   and redis.call('LLEN', base .. ':notify') == 0 then
  redis.call('RPUSH', base .. ':notify', '1')
end
return #ids
