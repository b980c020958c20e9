-- pattern: one C call (string.find) that runs long; the count hook cannot
-- interrupt it, so the timeout is only noticed once it returns.
return function(job, ctx)
  local n = job.payload.n or 300
  local s = string.rep("a", n)
  local found = string.find(s, ".-.-.-b")
  return { found = found or false }
end
