-- pipeline: hands its payload on to a follow-up "echo" job.
return function(job, ctx)
  local id = ctx.enqueue("echo", { from = job.id, payload = job.payload })
  ctx.log("info", "enqueued follow-up echo job", id)
  return { next = id }
end
