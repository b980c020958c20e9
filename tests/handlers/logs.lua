-- logs: writes payload.n log lines.
return function(job, ctx)
  for i = 1, job.payload.n do
    ctx.log("debug", "line", i)
  end
  return { n = job.payload.n }
end
