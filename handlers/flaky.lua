-- flaky: fails its first attempt, succeeds on the next one (shows retries).
return function(job, ctx)
  if job.attempt == 1 then
    error("flaky: first attempt fails")
  end
  return { ok = true, attempt = job.attempt }
end
