-- pause.lua — pause (ARGV[1] = '1') or resume ('0') a queue.  A paused
-- queue leases nothing; resuming wakes a fetcher if jobs are waiting.
-- KEYS[1] queue key base.  Returns the new flag.
local base = KEYS[1]
redis.call('HSET', base .. ':meta', 'paused', ARGV[1])
if ARGV[1] == '0' and redis.call('ZCARD', base .. ':wait') > 0
   and redis.call('LLEN', base .. ':notify') == 0 then
  redis.call('RPUSH', base .. ':notify', '1')
end
return tonumber(ARGV[1])
