-- enqueue.lua — store new jobs of one queue, all or nothing.
-- KEYS[1]  the queue's key base "P:{q}" (every key below shares its tag)
-- ARGV[1]  now (ms)    ARGV[2]  event stream cap
-- ARGV[3..] one JSON object per job: the hash fields to store, all strings,
--           among them id, type, priority, runAt, createdAt, idempotencyKey?
-- Returns one {id, status, createdAt, existed, type} per job.
local base, now, cap = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local jobs, fresh = {}, 0
for i = 3, #ARGV do
  jobs[#jobs + 1] = cjson.decode(ARGV[i])
end

-- One HINCRBY reserves a FIFO sequence number for every job of the call.
local seq = tonumber(redis.call('HINCRBY', base .. ':meta', 'seq', #jobs)) - #jobs
local out, woke = {}, false

for _, j in ipairs(jobs) do
  local existing = false
  if j.idempotencyKey then
    existing = redis.call('HGET', base .. ':idem', j.idempotencyKey)
    if existing and redis.call('EXISTS', base .. ':job:' .. existing) == 0 then
      existing = false -- the earlier job was trimmed: the key is free again
    end
  end
  if existing then
    local f = redis.call('HMGET', base .. ':job:' .. existing, 'status', 'createdAt', 'type')
    out[#out + 1] = { existing, f[1], f[2], 1, f[3] }
  else
    seq = seq + 1
    local id, status = j.id, 'waiting'
    if tonumber(j.runAt) > now then status = 'delayed' end
    j.status = status
    local fields = {}
    for k, v in pairs(j) do
      fields[#fields + 1] = k
      fields[#fields + 1] = v
    end
    redis.call('HSET', base .. ':job:' .. id, unpack(fields))
    if status == 'delayed' then
      redis.call('ZADD', base .. ':delayed', j.runAt, id)
    else
      -- Higher priority first, FIFO within a priority (see queue.h).
      local score = (10 - tonumber(j.priority)) * 140737488355328 + seq
      redis.call('ZADD', base .. ':wait', string.format('%.0f', score), id)
      woke = true
    end
    if j.idempotencyKey then
      redis.call('HSET', base .. ':idem', j.idempotencyKey, id)
    end
    redis.call('XADD', base .. ':events', 'MAXLEN', '~', cap, '*',
               'jobId', id, 'status', status, 'type', j.type, 'ts', ARGV[1],
               'created', '1')
    out[#out + 1] = { id, status, j.createdAt, 0, j.type }
  end
end

-- Wake one blocked fetcher; it passes the token on while work remains.
-- (Waking the fetcher of a paused queue is harmless: lease.lua checks.)
if woke and redis.call('LLEN', base .. ':notify') == 0 then
  redis.call('RPUSH', base .. ':notify', '1')
end
return out
