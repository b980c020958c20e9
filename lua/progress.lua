-- progress.lua — store a processing job's progress (0..100).
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] event cap
-- ARGV[3] id   ARGV[4] lease token   ARGV[5] progress
-- Returns {'ok'} | {'badtoken', state} | {'notfound'}
local base, now, id = KEYS[1], ARGV[1], ARGV[3]
local jk = base .. ':job:' .. id
--!include outbox
local f = redis.call('HMGET', jk, 'status', 'leaseToken', 'type', 'webhooks')
if not f[1] then return { 'notfound' } end
if f[1] ~= 'processing' or f[2] ~= ARGV[4] then return { 'badtoken', f[1] } end
redis.call('HSET', jk, 'progress', ARGV[5], 'updatedAt', now)
redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
           'jobId', id, 'status', 'progress', 'type', f[3], 'ts', now,
           'progress', ARGV[5])
if f[4] then
  outbox(base, jk, id, f[4], 'progress', now, '{"jobId":' .. cjson.encode(id) ..
         ',"status":"progress","type":' .. cjson.encode(f[3]) .. ',"timestamp":' ..
         now .. ',"progress":' .. (tonumber(ARGV[5]) or 0) .. '}')
end
return { 'ok' }
