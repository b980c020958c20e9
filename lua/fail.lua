-- fail.lua — record a failed attempt: retry later (delayed) or failed.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] event stream cap
-- ARGV[3] id  ARGV[4] lease token  ARGV[5] error  ARGV[6] stack ('' none)
-- ARGV[7] logs ('' none)  ARGV[8] permanent ('1' never retry)
-- ARGV[9] maxAttempts ('' = the job's)  ARGV[10] backoff ms ('' = the job's)
-- ARGV[11] strategy ('' = the job's)
-- Returns {'delayed', runAt} | {'failed'} | {'badtoken', state} | {'notfound'}
local base, now = KEYS[1], tonumber(ARGV[1])
local id, token = ARGV[3], ARGV[4]
local jk = base .. ':job:' .. id
--!include outbox
local f = redis.call('HMGET', jk, 'status', 'leaseToken', 'type', 'attempts',
                     'maxAttempts', 'backoff', 'strategy', 'webhooks')
if not f[1] then return { 'notfound' } end
if f[1] ~= 'processing' or f[2] ~= token then return { 'badtoken', f[1] } end
local attempts = tonumber(f[4]) or 1
local max = tonumber(ARGV[9]) or tonumber(f[5]) or 1
local backoff = tonumber(ARGV[10]) or tonumber(f[6]) or 0
local strategy = ARGV[11] ~= '' and ARGV[11] or (f[7] or 'exponential')
redis.call('ZREM', base .. ':active', id)
redis.call('HSET', jk, 'error', ARGV[5], 'updatedAt', ARGV[1])
if ARGV[6] ~= '' then redis.call('HSET', jk, 'stack', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', jk, 'logs', ARGV[7]) end
if ARGV[8] == '1' or attempts >= max then
  redis.call('HSET', jk, 'status', 'failed', 'failedAt', ARGV[1])
  redis.call('ZADD', base .. ':failed', ARGV[1], id)
  redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
             'jobId', id, 'status', 'failed', 'type', f[3], 'ts', ARGV[1],
             'error', ARGV[5])
  if f[8] then
    outbox(base, jk, id, f[8], 'failed', ARGV[1], '{"jobId":' .. cjson.encode(id) ..
           ',"status":"failed","type":' .. cjson.encode(f[3]) .. ',"timestamp":' ..
           ARGV[1] .. ',"failedAt":' .. ARGV[1] .. ',"attempts":' .. attempts ..
           ',"error":' .. cjson.encode(ARGV[5]) .. '}')
  end
  return { 'failed' }
end
-- backoff * 2^(attempt-1) for exponential, backoff for fixed; at most a day.
local delay = backoff
if strategy ~= 'fixed' then delay = backoff * 2 ^ (attempts - 1) end
if delay > 86400000 then delay = 86400000 end
local runAt = string.format('%.0f', now + delay)
redis.call('HSET', jk, 'status', 'delayed', 'runAt', runAt)
redis.call('ZADD', base .. ':delayed', runAt, id)
redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
           'jobId', id, 'status', 'delayed', 'type', f[3], 'ts', ARGV[1],
           'error', ARGV[5], 'runAt', runAt)
return { 'delayed', runAt }
