-- loop: never returns (the timeout must stop it).
return function(job, ctx)
  while true do end
end
