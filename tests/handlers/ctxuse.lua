-- ctxuse: uses every ctx call that reaches the host.
return function(job, ctx)
  ctx.progress(10)
  ctx.log("info", "hello", 42, true)
  ctx.log("plain message")
  local id = ctx.enqueue("child", { n = 1, tags = { "a", "b" } }, { delay = 5 })
  ctx.progress(100)
  return { id = id, attempt = job.attempt, meta = job.metadata, queue = job.queue,
           ints = math.type(job.payload.n) }
end
