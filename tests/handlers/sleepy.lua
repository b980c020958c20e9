-- sleepy: ctx.sleep(payload.ms), then reports how long it slept.
return function(job, ctx)
  ctx.sleep(job.payload.ms)
  return { ms = job.payload.ms }
end
