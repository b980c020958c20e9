-- badctx: misuses ctx; payload.what picks how.
return function(job, ctx)
  local w = job.payload.what
  if w == "progress" then ctx.progress(150) end
  if w == "progress-nan" then ctx.progress(0 / 0) end
  if w == "enqueue-type" then ctx.enqueue("bad type!", {}) end
  if w == "enqueue-array" then ctx.enqueue("x", { 1, 2 }) end
  if w == "enqueue-host" then ctx.enqueue("refuse", {}) end
  if w == "http" then return ctx.http.get("http://127.0.0.1:1/") end
  if w == "http-url" then return ctx.http.request({ method = "GET" }) end
  return "ok"
end
