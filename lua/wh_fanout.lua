-- wh_fanout.lua — queue the subscription deliveries of one job event and
-- acknowledge the event, in one step: a crash before it leaves the event
-- pending in the consumer group (taken over later), a crash after it has
-- every delivery in the outbox.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] consumer group
-- ARGV[3] stream entry id
-- ARGV[4..] groups of 7: delivery id, url, headers (JSON or ''), body,
--           event, jobId, subscription id
-- Returns the number of deliveries queued.
local base, now = KEYS[1], ARGV[1]
local n = 0
for i = 4, #ARGV - 6, 7 do
  local id = ARGV[i]
  local k = base .. ':wh:' .. id
  -- Ids are derived from the event and the subscription: an event handled
  -- twice (taken over from a consumer that died) queues nothing twice.
  if redis.call('EXISTS', k) == 0 then
    redis.call('HSET', k, 'id', id, 'url', ARGV[i + 1], 'headers', ARGV[i + 2],
               'body', ARGV[i + 3], 'event', ARGV[i + 4], 'jobId', ARGV[i + 5],
               'subscription', ARGV[i + 6], 'attempts', 0, 'status', 'pending',
               'createdAt', now)
    redis.call('ZADD', base .. ':outbox', now, id)
    n = n + 1
  end
end
redis.call('XACK', base .. ':events', ARGV[2], ARGV[3])
return n
