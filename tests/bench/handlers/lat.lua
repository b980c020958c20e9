-- lat.lua — the latency benchmark's handler.  Lua has no sub-second wall
-- clock, so the handler reports its start by writing the job id to the
-- FIFO named in the payload; the benchmark timestamps each line (µs) as it
-- arrives.  Where the sandbox has no io library it does nothing, and the
-- benchmark falls back to the lease event and the ms job fields.
local out
return function(job, ctx)
    local path = job.payload.fifo
    if path and io and io.open then
        if not out then
            out = io.open(path, "w")
        end
        if out then
            out:write(job.id, "\n")
            out:flush()
        end
    end
    return nil
end
