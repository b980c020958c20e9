-- counts.lua — the number of jobs in each state, and the paused flag, as
-- one consistent snapshot.  KEYS[1] queue key base.
-- Returns {waiting, delayed, processing, completed, failed, canceled, paused}
local base = KEYS[1]
return {
  redis.call('ZCARD', base .. ':wait'),
  redis.call('ZCARD', base .. ':delayed'),
  redis.call('ZCARD', base .. ':active'),
  redis.call('ZCARD', base .. ':completed'),
  redis.call('ZCARD', base .. ':failed'),
  redis.call('ZCARD', base .. ':canceled'),
  redis.call('HGET', base .. ':meta', 'paused') == '1' and 1 or 0,
}
