-- complete.lua — record finished attempts: completed, with their results.
-- KEYS[1] queue key base  ARGV[1] now  ARGV[2] event stream cap
-- ARGV[3..] groups of four: id, lease token, result (JSON), logs (JSON or '')
-- Returns one reply per job: {'completed'} | {'badtoken', state} | {'notfound'}
-- A worker acknowledges a whole batch of one queue in one call.
local base, now = KEYS[1], ARGV[1]
--!include outbox
local out, ok, done = {}, {}, {}
for i = 3, #ARGV, 4 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', base .. ':job:' .. id, 'status', 'leaseToken', 'type', 'webhooks')
  if not f[1] then
    out[#out + 1] = { 'notfound' }
  elseif f[1] ~= 'processing' or f[2] ~= token then
    -- A stale worker (its lease expired and the job moved on) must not win.
    out[#out + 1] = { 'badtoken', f[1] }
  else
    out[#out + 1] = { 'completed' }
    ok[#ok + 1] = { i = i, type = f[3], hooks = f[4] }
    done[#done + 1] = id
  end
end
if #done == 0 then return out end
-- ZREM first: Redis refuses a script at its first write that may need
-- memory when maxmemory is reached (noeviction), and lets it finish once it
-- has written.  ZREM needs none, so finished jobs are still recorded when
-- Redis is full, instead of lapsing and running again (as fail.lua does).
redis.call('ZREM', base .. ':active', unpack(done))
local finished = {}
for _, j in ipairs(ok) do
  local id, result, logs = ARGV[j.i], ARGV[j.i + 2], ARGV[j.i + 3]
  local jk = base .. ':job:' .. id
  if logs ~= '' then
    redis.call('HSET', jk, 'status', 'completed', 'result', result,
               'completedAt', now, 'updatedAt', now, 'logs', logs)
  else
    redis.call('HSET', jk, 'status', 'completed', 'result', result,
               'completedAt', now, 'updatedAt', now)
  end
  redis.call('XADD', base .. ':events', 'MAXLEN', '~', ARGV[2], '*',
             'jobId', id, 'status', 'completed', 'type', j.type, 'ts', now)
  if j.hooks then
    outbox(base, jk, id, j.hooks, 'completed', now, '{"jobId":' .. cjson.encode(id) ..
           ',"status":"completed","type":' .. cjson.encode(j.type) .. ',"timestamp":' ..
           now .. ',"completedAt":' .. now .. ',"result":' ..
           (result ~= '' and result or 'null') .. '}')
  end
  finished[#finished + 1] = now
  finished[#finished + 1] = id
end
redis.call('ZADD', base .. ':completed', unpack(finished))
return out
