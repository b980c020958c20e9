-- auth.lua — who holds this API key, and may it make one more request now?
-- One call per authenticated request: the key lookup and the rate limit
-- (a token bucket per key) are one atomic step, and nothing is cached in
-- jqrun, so a revoked key is refused by the very next request.
-- KEYS[1] the auth key base P:{@auth}
-- ARGV[1] SHA-256 (hex) of the presented key
-- ARGV[2] '1' when the caller already matched the key with the master key
-- ARGV[3] bucket capacity in requests ('0' = no rate limit)
-- ARGV[4] ms to refill a whole bucket   ARGV[5] now (ms)
-- Returns {'ok', app id ('' for the master key), stored key hash ('' for
-- the master key)} | {'unknown'} | {'limited', ms until a request fits}
local base, hash = KEYS[1], ARGV[1]
local app, stored = '', ''
if ARGV[2] ~= '1' then
  app = redis.call('HGET', base .. ':keys', hash)
  if not app then return { 'unknown' } end
  local rec = redis.call('HGET', base .. ':apps', app)
  if not rec then return { 'unknown' } end
  stored = cjson.decode(rec).keyHash or ''
end
local cap, per, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if cap > 0 and per > 0 then
  local bucket = base .. ':rl:' .. hash
  local b = redis.call('HMGET', bucket, 'tokens', 'ts')
  local tokens, ts = tonumber(b[1]) or cap, tonumber(b[2]) or now
  -- Servers' clocks may differ a little: time never runs backwards here.
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(cap, tokens + elapsed * cap / per)
  if tokens < 1 then
    return { 'limited', math.ceil((1 - tokens) * per / cap) }
  end
  redis.call('HSET', bucket, 'tokens', tostring(tokens - 1), 'ts', tostring(now))
  -- An idle bucket is full again after `per` ms: then it need not exist.
  redis.call('PEXPIRE', bucket, math.ceil(per) + 1000)
end
return { 'ok', app, stored }
