-- failcaught: calls ctx.fail inside pcall and returns normally anyway.
return function(job, ctx)
  local ok, err = pcall(ctx.fail, "caught but final")
  return { ok = ok, err = tostring(err) }
end
