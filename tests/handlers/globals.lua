-- globals: top-level globals are fine; writing new ones from a job is not.
counter = 0
helper = function() return "helped" end
return function(job, ctx)
  counter = counter + 1
  if job.payload.leak then
    leaked = true
  end
  if job.payload.clobber then
    _G.print = nil
  end
  if job.payload.lib then
    string.upper = nil
  end
  return { counter = counter, helper = helper(), string_ok = string.upper("a") }
end
