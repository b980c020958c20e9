-- ok: succeeds, echoing its payload.
return function(job, ctx)
  return { ok = true, payload = job.payload }
end
