-- extend.lua — extend the leases of jobs we still hold.
-- KEYS[1] queue key base   ARGV[1] now   ARGV[2] lease (ms)
-- ARGV[3..] pairs of (id, token)
-- Returns one deadline per pair, or 0 where the lease is no longer ours.
local base, now, lease = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = base .. ':job:' .. id
  local f = redis.call('HMGET', jk, 'status', 'leaseToken')
  if f[1] == 'processing' and f[2] == token then
    local deadline = now + lease
    -- ZREM first (it needs no memory): a script's first write decides
    -- whether a full Redis (maxmemory, noeviction) refuses it, so the lease
    -- of a running job is still extended when Redis is full.
    redis.call('ZREM', base .. ':active', id)
    redis.call('ZADD', base .. ':active', deadline, id)
    redis.call('HSET', jk, 'leaseExpiresAt', deadline)
    out[#out + 1] = deadline
  else
    out[#out + 1] = 0
  end
end
return out
