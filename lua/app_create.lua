-- app_create.lua — store a new application and the hash of its API key.
-- KEYS[1] the auth key base P:{@auth}
-- ARGV[1] app id   ARGV[2] SHA-256 (hex) of its key   ARGV[3] the record
-- (JSON, with keyHash = ARGV[2])
-- Returns 1, or 0 when the id or the key hash is already taken (random
-- 64- and 256-bit values: the caller just draws again).
local base = KEYS[1]
if redis.call('HEXISTS', base .. ':apps', ARGV[1]) == 1
   or redis.call('HEXISTS', base .. ':keys', ARGV[2]) == 1 then
  return 0
end
redis.call('HSET', base .. ':apps', ARGV[1], ARGV[3])
redis.call('HSET', base .. ':keys', ARGV[2], ARGV[1])
return 1
