-- slow: like count, but sleeps payload.ms in slices of 100 ms and reports
-- progress, so a long job shows it is alive.
return {
  timeout = 120000,
  handle = function(job, ctx)
    ctx.log("info", "RUN")
    local left = job.payload.ms or 1000
    while left > 0 do
      local step = left < 100 and left or 100
      ctx.sleep(step)
      left = left - step
    end
    return { attempt = job.attempt }
  end,
}
