-- wh_claim.lua — claim the due webhook deliveries of one queue for sending.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] max deliveries
-- ARGV[3] claim (ms)
-- A claim moves the delivery's due time forward by the claim time, so no
-- other process sends it meanwhile; should this process die mid-send, the
-- delivery comes due again when the claim runs out (at-least-once).
-- Returns one {id, url, headers, body, attempts, event, jobId} per claim.
local base, now = KEYS[1], tonumber(ARGV[1])
local box = base .. ':outbox'
local ids = redis.call('ZRANGEBYSCORE', box, '-inf', now, 'LIMIT', 0, ARGV[2])
local claimed = string.format('%.0f', now + tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', base .. ':wh:' .. id, 'url', 'headers', 'body',
                       'attempts', 'event', 'jobId', 'status')
  if f[1] and f[7] == 'pending' then
    redis.call('ZADD', box, claimed, id)
    out[#out + 1] = { id, f[1], f[2] or '', f[3] or '', f[4] or '0', f[5] or '',
                      f[6] or '' }
  else
    -- The record expired or was settled by another sender: drop the entry.
    redis.call('ZREM', box, id)
  end
end
return out
