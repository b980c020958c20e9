-- reclaim.lua — take back jobs whose lease expired (their worker died or
-- hung): back to waiting, or failed when that was their last attempt.  The
-- attempt was counted when the job was leased.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] max jobs   ARGV[3] event cap
-- Returns the number of jobs taken back.
local base, now = KEYS[1], ARGV[1]
--!include outbox
local ids = redis.call('ZRANGEBYSCORE', base .. ':active', '-inf', now,
                       'LIMIT', 0, ARGV[2])
local woke = false
for _, id in ipairs(ids) do
  local jk = base .. ':job:' .. id
  local f = redis.call('HMGET', jk, 'attempts', 'maxAttempts', 'priority', 'type',
                       'webhooks')
  local msg = 'lease expired: the worker stopped answering'
  redis.call('ZREM', base .. ':active', id)
  if (tonumber(f[1]) or 0) >= (tonumber(f[2]) or 1) then
    redis.call('HSET', jk, 'status', 'failed', 'error', msg, 'failedAt', now,
               'updatedAt', now)
    redis.call('ZADD', base .. ':failed', now, id)
    redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[3], '*',
               'jobId', id, 'status', 'failed', 'type', f[4] or '', 'ts', now,
               'error', msg)
    if f[5] then
      outbox(base, jk, id, f[5], 'failed', now, '{"jobId":' .. cjson.encode(id) ..
             ',"status":"failed","type":' .. cjson.encode(f[4] or '') .. ',"timestamp":' ..
             now .. ',"failedAt":' .. now .. ',"attempts":' .. (tonumber(f[1]) or 0) ..
             ',"error":' .. cjson.encode(msg) .. '}')
    end
  else
    local seq = redis.call('HINCRBY', base .. ':meta', 'seq', 1)
    local score = (10 - (tonumber(f[3]) or 0)) * 140737488355328 + seq
    redis.call('HSET', jk, 'status', 'waiting', 'error', msg, 'updatedAt', now)
    redis.call('ZADD', base .. ':wait', string.format('%.0f', score), id)
    redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[3], '*',
               'jobId', id, 'status', 'waiting', 'type', f[4] or '', 'ts', now,
               'error', msg)
    woke = true
  end
end
if woke and redis.call('HGET', base .. ':meta', 'paused') ~= '1'
   and redis.call('LLEN', base .. ':notify') == 0 then
  redis.call('RPUSH', base .. ':notify', '1')
end
return #ids
