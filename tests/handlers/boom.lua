-- boom: raises a plain error on line 4.
local function inner(what)
  if what then
    error("boom " .. what)
  end
end
return function(job, ctx)
  inner(job.payload.what or "here")
end
