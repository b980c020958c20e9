-- noop.lua — the benchmark's no-op handler: measures jqrun, not the handler.
return function(job, ctx)
    return nil
end
