-- membomb: allocates until something stops it.
return function(job, ctx)
  local t = {}
  while true do
    t[#t + 1] = string.rep("x", 1024 * 1024) .. #t
  end
end
