-- count: records every run as a "RUN" log line (the reliability scenarios
-- count them per job id), sleeps payload.ms, and returns the attempt.
return function(job, ctx)
  ctx.log("info", "RUN")
  local ms = job.payload.ms or 0
  if ms > 0 then ctx.sleep(ms) end
  return { attempt = job.attempt }
end
