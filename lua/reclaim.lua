-- reclaim.lua — take back jobs whose lease expired (their worker died or
-- hung): back to waiting, or failed when that was their last attempt.  The
-- attempt was counted when the job was leased.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] max jobs   ARGV[3] event cap
-- Returns the number of jobs taken back.
local base, now = KEYS[1], ARGV[1]
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
