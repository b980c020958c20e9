-- remove.lua — delete waiting and/or delayed jobs of a type.
-- KEYS[1] queue key base   ARGV[1] type ('' = any)
-- ARGV[2] 'waiting' | 'delayed' | '' (both)
-- Returns the number of jobs deleted.  O(jobs in those states).
local base, jtype, which = KEYS[1], ARGV[1], ARGV[2]
local n = 0
local function sweep(set)
  local ids = redis.call('ZRANGE', set, 0, -1)
  for _, id in ipairs(ids) do
    local jk = base .. ':job:' .. id
    local f = redis.call('HMGET', jk, 'type', 'idempotencyKey')
    if jtype == '' or f[1] == jtype then
      redis.call('ZREM', set, id)
      redis.call('DEL', jk)
      if f[2] then redis.call('HDEL', base .. ':idem', f[2]) end
      n = n + 1
    end
  end
end
if which == '' or which == 'waiting' then sweep(base .. ':wait') end
if which == '' or which == 'delayed' then sweep(base .. ':delayed') end
return n
