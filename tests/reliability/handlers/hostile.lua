-- hostile: misbehaves the way payload.what asks; the runner must fail the
-- attempt with a message and go on with the next job.
local function down(n) return down(n + 1) + 1 end
local hostile = {
  loop = function() while true do end end,
  pcall_loop = function()          -- swallows every error it can
    while true do pcall(function() while true do end end) end
  end,
  membomb = function()
    local t = {}
    while true do t[#t + 1] = string.rep("x", 1024 * 1024) .. #t end
  end,
  deep = function() return down(1) end,
  err_table = function() error({ code = 42 }) end,
  err_nil = function() error(nil) end,
  err_tostring_loop = function()
    error(setmetatable({}, { __tostring = function() while true do end end }))
  end,
  err_tostring_err = function()
    error(setmetatable({}, { __tostring = function() error("again") end }))
  end,
  err_binary = function(job, ctx)  -- bytes that are not UTF-8
    ctx.log("warn", "bytes \255\254")
    error("bad \255\254 bytes")
  end,
  yield_outside = function() coroutine.yield(1) end,
  coro_loop = function() coroutine.wrap(function() while true do end end)() end,
  coro_dead = function()
    local f = coroutine.wrap(function() end)
    f()
    f()
  end,
  huge_result = function() return string.rep("x", 256 * 1024 * 1024) end,
  big_result = function() return { s = string.rep("x", 4 * 1024 * 1024) } end,
  deep_result = function()
    local t = {}
    local cur = t
    for _ = 1, 100000 do cur.x = {}; cur = cur.x end
    return t
  end,
  cyclic_result = function() local t = {}; t.t = t; return t end,
  global_write = function() new_global = 1; return "wrote" end,
  global_clobber = function() string = nil; return "clobbered" end,
  exit = function() os.exit(3) end,
  pattern = function(job)
    -- one C call: about n^4/24 steps, that no hook can interrupt
    local s = string.rep("a", job.payload.n or 300)
    return { found = string.find(s, ".-.-.-b") or false }
  end,
}
return function(job, ctx)
  local f = hostile[job.payload.what]
  if not f then error("unknown what: " .. tostring(job.payload.what)) end
  return f(job, ctx)
end
