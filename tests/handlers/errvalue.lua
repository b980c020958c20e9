-- errvalue: raises error values that are not strings.
return function(job, ctx)
  local k = job.payload.kind
  if k == "table" then error({ code = 1 }) end
  if k == "nil" then error(nil) end
  if k == "tostring" then
    error(setmetatable({}, { __tostring = function() return "custom error" end }))
  end
  if k == "number" then error(42) end
  if k == "bool" then error(false) end
  return "no error"
end
