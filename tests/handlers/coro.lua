-- coro: loops forever inside a coroutine (the hook must follow it there).
return function(job, ctx)
  local co = coroutine.wrap(function() while true do end end)
  co()
end
