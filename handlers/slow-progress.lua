-- slow-progress: takes payload.ms milliseconds in total (default 2000),
-- reporting progress 25, 50, 75 and 100 along the way.
return function(job, ctx)
  local total = tonumber(job.payload.ms) or 2000
  for step = 1, 4 do
    ctx.sleep(total / 4)
    ctx.progress(step * 25)
  end
  return { slept = total }
end
