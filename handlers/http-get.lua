-- http-get: fetches payload.url and reports the status and the body size.
-- A transport error (connection refused, timeout) fails the attempt and is
-- retried; a missing url can never succeed, so it fails for good.
return function(job, ctx)
  local url = job.payload.url
  if type(url) ~= "string" then
    ctx.fail("payload.url must be a string")
  end
  local r = ctx.http.get(url)
  return { status = r.status, bytes = #r.body }
end
