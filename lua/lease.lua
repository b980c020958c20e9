-- lease.lua — take up to N waiting jobs, best first, and lease them.
-- KEYS[1]  queue key base     ARGV[1] now (ms)   ARGV[2] lease (ms)
-- ARGV[3]  max jobs           ARGV[4] token base (random, per call)
-- ARGV[5]  event stream cap
-- Returns one flat [field, value, ...] array per leased job.  The attempt
-- is counted here, so a job whose lease expires has used an attempt.
local base, now, lease = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('HGET', base .. ':meta', 'paused') == '1' then
  return {}
end
local popped = redis.call('ZPOPMIN', base .. ':wait', ARGV[3])
local out, active = {}, {}
local deadline = now + lease
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = base .. ':job:' .. id
  local f = redis.call('HGETALL', jk)
  if #f > 0 then
    local attempts, jtype = 0, ''
    for k = 1, #f, 2 do
      if f[k] == 'attempts' then attempts = tonumber(f[k + 1]) end
      if f[k] == 'type' then jtype = f[k + 1] end
    end
    attempts = attempts + 1
    local token = ARGV[4] .. '.' .. i .. '.' .. attempts
    redis.call('HSET', jk, 'status', 'processing', 'attempts', attempts,
               'startedAt', now, 'updatedAt', now, 'leaseToken', token,
               'leaseExpiresAt', deadline)
    active[#active + 1] = deadline
    active[#active + 1] = id
    redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[5], '*',
               'jobId', id, 'status', 'processing', 'type', jtype, 'ts', ARGV[1],
               'attempt', attempts)
    -- Later fields override earlier ones when the reply is read.
    f[#f + 1] = 'status';         f[#f + 1] = 'processing'
    f[#f + 1] = 'attempts';       f[#f + 1] = tostring(attempts)
    f[#f + 1] = 'startedAt';      f[#f + 1] = ARGV[1]
    f[#f + 1] = 'updatedAt';      f[#f + 1] = ARGV[1]
    f[#f + 1] = 'leaseToken';     f[#f + 1] = token
    f[#f + 1] = 'leaseExpiresAt'; f[#f + 1] = tostring(deadline)
    out[#out + 1] = f
  end
end
-- One ZADD for the whole batch.
if #active > 0 then redis.call('ZADD', base .. ':active', unpack(active)) end
-- Pass the wake-up on: another fetcher may have free slots.
if #out > 0 and redis.call('ZCARD', base .. ':wait') > 0
   and redis.call('LLEN', base .. ':notify') == 0 then
  redis.call('RPUSH', base .. ':notify', '1')
end
return out
