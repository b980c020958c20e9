-- echo: returns the payload it was given, as {echo = payload}.
return function(job, ctx)
  return { echo = job.payload }
end
