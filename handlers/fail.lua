-- fail: fails permanently; ctx.fail is never retried.
return function(job, ctx)
  ctx.fail("this job always fails")
end
