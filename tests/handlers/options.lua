-- options: a handler table with options.
return {
  timeout = 150,
  max_attempts = 5,
  backoff = 250,
  strategy = "fixed",
  concurrency = 2,
  handle = function(job, ctx)
    if job.payload.loop then while true do end end
    return { ok = true }
  end,
}
