-- syntax: does not compile.
return function(job, ctx)
  local x = = 1
end
