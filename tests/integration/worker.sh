#!/bin/bash
# worker.sh — real `jqrun worker` processes running Lua handlers: results,
# retries, limits, hot reload, crash recovery, leases and graceful drain.
source tests/lib.sh
redis_start
export JQRUN_PREFIX=wt
H=$T/handlers
mkdir -p "$H"
cat > "$T/jqrun.conf" <<CONF
handlers = "$H"
queues   = { default = { concurrency = 2 } }
lease    = 1000
defaults = { max_attempts = 3, backoff = 100, timeout = 5000 }
shutdown_grace = 5000
limits   = { memory = 16 * 1024 * 1024 }
CONF
export JQRUN_CONFIG=$T/jqrun.conf

cat > "$H/echo.lua" <<'LUA'
return function(job, ctx) return { echo = job.payload, attempt = job.attempt } end
LUA
cat > "$H/boom.lua" <<'LUA'
return function(job, ctx)
  error("boom on attempt " .. job.attempt)
end
LUA
cat > "$H/loop.lua" <<'LUA'
return function(job, ctx) while true do end end
LUA
cat > "$H/bomb.lua" <<'LUA'
return function(job, ctx)
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 1024) .. i end
end
LUA
cat > "$H/exit.lua" <<'LUA'
return function(job, ctx) os.exit(1) end
LUA
cat > "$H/badresult.lua" <<'LUA'
return function(job, ctx) return { f = function() end } end
LUA
cat > "$H/sleepy.lua" <<'LUA'
return function(job, ctx)
  ctx.sleep(job.payload.ms)
  ctx.progress(100)
  return { slept = job.payload.ms }
end
LUA
cat > "$H/single.lua" <<'LUA'
return { concurrency = 1, handle = function(job, ctx)
  ctx.log("info", "start")
  ctx.sleep(300)
  ctx.log("info", "end")
  return true
end }
LUA
cat > "$H/hot.lua" <<'LUA'
return function(job, ctx) return "v1" end
LUA

status() { $JQRUN get "$1" | jq -r .status; }
field() { $JQRUN get "$1" | jq -r "$2"; }
done_job() { local s; s=$(status "$1"); [ "$s" = completed ] || [ "$s" = failed ]; }

jq_start worker
W1=$JQ_PID

# A job runs and stores its result.
id=$($JQRUN enqueue echo '{"hello":"world"}')
check "echo completes" wait_for 5 done_job "$id"
expect_eq "echo status" "$(status "$id")" completed
expect_eq "echo result" "$(field "$id" .result.echo.hello)" world
expect_eq "echo attempt" "$(field "$id" .result.attempt)" 1

# Errors are retried with backoff, then failed with the message and file:line.
id=$($JQRUN enqueue boom '{}')
check "boom ends" wait_for 10 bash -c "[ \"\$($JQRUN get $id | jq -r .status)\" = failed ]"
expect_eq "boom attempts" "$(field "$id" .attempts)" 3
expect_match "boom error has file:line" "$(field "$id" .error)" "boom.lua:2: boom on attempt 3"
expect_match "boom keeps a traceback" "$(field "$id" .stack)" "boom.lua"

# An endless loop times out; the next job still runs.
id=$($JQRUN enqueue loop '{}' --timeout 300 --attempts 1)
check "loop ends" wait_for 10 done_job "$id"
expect_match "loop times out" "$(field "$id" .error)" "timeout after 300 ms"
id2=$($JQRUN enqueue echo '{"after":"loop"}')
check "job after loop completes" wait_for 5 done_job "$id2"
expect_eq "job after loop ok" "$(status "$id2")" completed

# A memory bomb hits the memory limit; the next job runs.
id=$($JQRUN enqueue bomb '{}' --attempts 1)
check "bomb ends" wait_for 20 done_job "$id"
expect_match "bomb hits the limit" "$(field "$id" .error)" "memory limit exceeded"
id2=$($JQRUN enqueue echo '{"after":"bomb"}')
check "job after bomb completes" wait_for 5 done_job "$id2"

# os.exit cannot end the process.
id=$($JQRUN enqueue exit '{}' --attempts 1)
check "exit job ends" wait_for 5 done_job "$id"
expect_eq "exit job failed" "$(status "$id")" failed
check "worker alive after os.exit" kill -0 "$W1"

# A result that is not JSON fails clearly.
id=$($JQRUN enqueue badresult '{}' --attempts 1)
check "badresult ends" wait_for 5 done_job "$id"
expect_match "badresult message" "$(field "$id" .error)" "not JSON-serializable"

# No handler for a type.
id=$($JQRUN enqueue nosuch '{}' --attempts 1)
check "nosuch ends" wait_for 5 done_job "$id"
expect_match "no handler message" "$(field "$id" .error)" "no handler for type 'nosuch'"

# Hot reload: edit -> next job sees v2; syntax error -> v2 keeps serving;
# delete -> no handler.  No restart in between.
id=$($JQRUN enqueue hot '{}'); wait_for 5 done_job "$id"
expect_eq "hot v1" "$(field "$id" .result)" v1
printf 'return function(job, ctx) return "v2" end\n' > "$H/hot.lua.tmp" && mv "$H/hot.lua.tmp" "$H/hot.lua"
sleep 1
id=$($JQRUN enqueue hot '{}'); wait_for 5 done_job "$id"
expect_eq "hot v2 after edit" "$(field "$id" .result)" v2
printf 'return function(job, ctx) return "v3" end end\n' > "$H/hot.lua"
sleep 1
id=$($JQRUN enqueue hot '{}'); wait_for 5 done_job "$id"
expect_eq "syntax error keeps v2" "$(field "$id" .result)" v2
check "compile error is logged" grep -q "hot.lua" "$T/jqrun.log"
rm "$H/hot.lua"
sleep 1
id=$($JQRUN enqueue hot '{}' --attempts 1); wait_for 5 done_job "$id"
expect_match "deleted handler" "$(field "$id" .error)" "no handler for type 'hot'"

# A handler's `concurrency = 1` holds even though the queue runs 2 at once:
# the runs of its three jobs never overlap.
s1=$($JQRUN enqueue single '{}'); s2=$($JQRUN enqueue single '{}'); s3=$($JQRUN enqueue single '{}')
check "single jobs complete" wait_for 10 bash -c "for i in $s1 $s2 $s3; do [ \"\$($JQRUN get \$i | jq -r .status)\" = completed ] || exit 1; done"
spans=$(for i in $s1 $s2 $s3; do $JQRUN get "$i" | jq -r '"\(.logs[0].ts) \(.logs[1].ts)"'; done | sort -n)
overlap=$(awk 'NR > 1 && $1 < end { o++ } { end = $2 } END { print o + 0 }' <<<"$spans")
expect_eq "handler concurrency 1: no overlapping runs" "$overlap" 0
check "single spans recorded" test "$(wc -l <<<"$spans")" -eq 3

# A handler longer than the lease keeps its job: run once, attempts 1.
id=$($JQRUN enqueue sleepy '{"ms":2500}')
check "long job completes" wait_for 10 done_job "$id"
expect_eq "long job completed" "$(status "$id")" completed
expect_eq "long job ran once" "$(field "$id" .attempts)" 1
runs=$(rcli XRANGE "wt:{default}:events" - + | grep -A0 -c "^$id$" || true)
expect_eq "long job leased exactly once" "$(rcli XRANGE 'wt:{default}:events' - + | tr '\n' ' ' | grep -o "jobId $id status processing" | wc -l)" 1

# kill -9 of a worker mid-job: the job completes elsewhere after the lease
# expires, with attempts = 2.
id=$($JQRUN enqueue sleepy '{"ms":1500}')
wait_for 5 bash -c "[ \"\$($JQRUN get $id | jq -r .status)\" = processing ]"
kill -9 "$W1"; wait "$W1" 2>/dev/null
jq_start worker
W2=$JQ_PID
check "killed job completes elsewhere" wait_for 15 done_job "$id"
expect_eq "killed job completed" "$(status "$id")" completed
expect_eq "killed job attempts" "$(field "$id" .attempts)" 2

# SIGTERM drains: the running job finishes, the process exits 0.
id=$($JQRUN enqueue sleepy '{"ms":1500}')
wait_for 5 bash -c "[ \"\$($JQRUN get $id | jq -r .status)\" = processing ]"
kill -TERM "$W2"; wait "$W2"; rc=$?
expect_eq "worker exits 0 on SIGTERM" $rc 0
expect_eq "running job finished during drain" "$(status "$id")" completed

# Idle worker: blocked in Redis, ~0% CPU.
jq_start worker
W3=$JQ_PID
sleep 2
t0=$(awk '{print $14+$15}' /proc/$W3/stat); sleep 2; t1=$(awk '{print $14+$15}' /proc/$W3/stat)
check "idle worker uses ~0% CPU ($((t1-t0)) ticks in 2s)" test $((t1 - t0)) -le 10
jq_stop

# exec and check as processes (no Redis needed).
out=$(JQRUN_REDIS=unix:///nonexistent $JQRUN exec "$H/echo.lua" '{"a":1}')
expect_eq "exec prints the result" "$(jq -c .echo <<<"$out")" '{"a":1}'
JQRUN_REDIS=unix:///nonexistent $JQRUN exec "$H/boom.lua" '{}' >/dev/null 2>"$T/err"; rc=$?
expect_eq "exec of a failing handler exits 1" $rc 1
expect_match "exec prints the error" "$(cat "$T/err")" "boom.lua:2"
$JQRUN exec "$H/echo.lua" '{bad' >/dev/null 2>&1; expect_eq "exec bad JSON exits 2" $? 2
check "check passes on good handlers" $JQRUN check
printf 'return function( end\n' > "$H/broken.lua"
out=$($JQRUN check 2>&1); rc=$?
expect_eq "check fails on a broken handler" $rc 1
expect_match "check names file:line" "$out" "broken.lua:1"
finish
