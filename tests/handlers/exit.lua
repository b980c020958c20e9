-- exit: tries to end the whole process.
return function(job, ctx)
  os.exit(3)
end
