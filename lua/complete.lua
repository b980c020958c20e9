-- complete.lua — record a finished attempt: completed with its result.
-- KEYS[1] queue key base  ARGV[1] now  ARGV[2] event stream cap
-- ARGV[3] id  ARGV[4] lease token  ARGV[5] result (JSON)  ARGV[6] logs (JSON or '')
-- Returns {'completed'} | {'badtoken', state} | {'notfound'}
local base, now = KEYS[1], ARGV[1]
local id, token = ARGV[3], ARGV[4]
local jk = base .. ':job:' .. id
-- outbox queues a webhook delivery when the job asked for one on `event`
-- (its `webhooks` field, by event or "*"), in this same atomic step: a
-- crash right after the transition cannot lose the notification.  The
-- sender (src/webhook.c) posts it; GET /jobs/:id lists the job's last 50.
local function outbox(base, jk, id, hooks, event, now, body)
  local ok, w = pcall(cjson.decode, hooks or '')
  local t = ok and type(w) == 'table' and (w[event] or w['*'])
  if type(t) ~= 'table' or type(t.url) ~= 'string' then return end
  local did = 'wh_' .. id .. '_' .. redis.call('HINCRBY', jk, 'whSeq', 1)
  redis.call('HSET', base .. ':wh:' .. did, 'id', did, 'event', event, 'url', t.url,
             'headers', type(t.headers) == 'table' and cjson.encode(t.headers) or '',
             'body', body, 'jobId', id, 'attempts', 0, 'status', 'pending',
             'createdAt', now)
  redis.call('ZADD', base .. ':outbox', now, did)
  local ids = {}
  for x in ((redis.call('HGET', jk, 'whIds') or '') .. ' ' .. did):gmatch('%S+') do
    ids[#ids + 1] = x
  end
  while #ids > 50 do table.remove(ids, 1) end
  redis.call('HSET', jk, 'whIds', table.concat(ids, ' '))
end
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
