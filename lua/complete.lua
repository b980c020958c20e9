-- complete.lua — record a finished attempt: completed with its result.
-- KEYS[1] queue key base  ARGV[1] now  ARGV[2] event stream cap
-- ARGV[3] id  ARGV[4] lease token  ARGV[5] result (JSON)  ARGV[6] logs (JSON or '')
-- Returns {'completed'} | {'badtoken', state} | {'notfound'}
local base, now = KEYS[1], ARGV[1]
local id, token = ARGV[3], ARGV[4]
local jk = base .. ':job:' .. id
--!include outbox
local f = redis.call('HMGET', jk, 'status', 'leaseToken', 'type', 'webhooks')
if not f[1] then return { 'notfound' } end
-- A stale worker (its lease expired and the job moved on) must not win.
if f[1] ~= 'processing' or f[2] ~= token then return { 'badtoken', f[1] } end
-- ZREM first: Redis refuses a script at its first write that may need
-- memory when maxmemory is reached (noeviction), and lets it finish once it
-- has written.  ZREM needs none, so a finished job is still recorded when
-- Redis is full, instead of lapsing and running again (as fail.lua does).
redis.call('ZREM', base .. ':active', id)
redis.call('HSET', jk, 'status', 'completed', 'result', ARGV[5],
           'completedAt', now, 'updatedAt', now)
if ARGV[6] ~= '' then redis.call('HSET', jk, 'logs', ARGV[6]) end
redis.call('ZADD', base .. ':completed', now, id)
redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
           'jobId', id, 'status', 'completed', 'type', f[3], 'ts', now)
if f[4] then
  outbox(base, jk, id, f[4], 'completed', now, '{"jobId":' .. cjson.encode(id) ..
         ',"status":"completed","type":' .. cjson.encode(f[3]) .. ',"timestamp":' ..
         now .. ',"completedAt":' .. now .. ',"result":' ..
         (ARGV[5] ~= '' and ARGV[5] or 'null') .. '}')
end
return { 'completed' }
