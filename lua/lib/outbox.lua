-- lib/outbox.lua — shared by the scripts whose transitions notify webhooks
-- (complete, fail, progress, reclaim); tools/embed.sh pastes it where a
-- script says `--!include outbox`, since Redis scripts cannot require.
--
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
