-- app_delete.lua — revoke an application: its record, its key and its
-- rate-limit bucket go in one step, so the key stops working at once.
-- The application's jobs stay (the master key still sees them).
-- KEYS[1] the auth key base P:{@auth}   ARGV[1] app id
-- Returns the record (JSON) as it was, or false when there is none.
local base = KEYS[1]
local rec = redis.call('HGET', base .. ':apps', ARGV[1])
if not rec then return false end
local hash = cjson.decode(rec).keyHash
if hash then
  redis.call('HDEL', base .. ':keys', hash)
  redis.call('DEL', base .. ':rl:' .. hash)
end
redis.call('HDEL', base .. ':apps', ARGV[1])
return rec
