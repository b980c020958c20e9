-- swallow: tries to survive its timeout with pcall.
-- payload.mode "loop": keeps catching inside an endless loop;
-- otherwise catches once and returns as if nothing happened.
return function(job, ctx)
  if job.payload.mode == "loop" then
    while true do
      pcall(function() while true do end end)
    end
  end
  pcall(function() while true do end end)
  return { survived = true }
end
