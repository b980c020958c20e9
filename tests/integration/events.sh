#!/bin/bash
# events.sh — live events: GET /events as Server-Sent Events (filters,
# resuming with Last-Event-ID, bad parameters) and `jqrun watch`.
source tests/lib.sh
redis_start
export JQRUN_PREFIX=ev
H=$T/handlers
mkdir -p "$H"
cat > "$T/jqrun.conf" <<CONF
listen   = "127.0.0.1:0"
handlers = "$H"
queues   = { sse = { concurrency = 1 }, w = { concurrency = 1 } }
defaults = { max_attempts = 1, backoff = 100, timeout = 5000 }
CONF
export JQRUN_CONFIG=$T/jqrun.conf
cat > "$H/echo.lua" <<'LUA'
return function(job, ctx) ctx.progress(30) return { ok = true } end
LUA
cat > "$H/other.lua" <<'LUA'
return function(job, ctx) return 1 end
LUA

jq_start run
wait_for 10 grep -q 'api: listening on http://' "$T/jqrun.log" || { echo "jqrun did not start"; cat "$T/jqrun.log"; }
U=$(grep -o 'api: listening on http://[^ ]*' "$T/jqrun.log" | head -n 1 | sed 's/.* on //')
post() { curl -s -X POST "$U$1" -H 'Content-Type: application/json' -d "$2"; }
status() { curl -s "$U/jobs/$1" | jq -r .status; }
# data OUT prints the JSON of every event in an SSE capture, one a line.
data() { sed -n 's/^data: //p' "$1"; }

# A stream of queue sse sees the transitions of its jobs, in order.
curl -sN --max-time 4 "$U/events?queue=sse" -D "$T/sse1.h" >"$T/sse1" &
C1=$!
curl -sN --max-time 4 "$U/events?queue=sse&status=completed&type=echo" >"$T/sse2" &
C2=$!
sleep 0.5
j1=$(post /jobs '{"type":"echo","queue":"sse","payload":{}}' | jq -r .id)
j2=$(post /jobs '{"type":"other","queue":"sse","payload":{}}' | jq -r .id)
post /jobs '{"type":"echo","queue":"elsewhere","payload":{}}' >/dev/null
wait_for 5 bash -c "[ \"\$(curl -s $U/jobs/$j2 | jq -r .status)\" = completed ]"
wait $C1 $C2
expect_match "content type" "$(tr -d '\r' <"$T/sse1.h" | tr A-Z a-z)" "content-type: text/event-stream"
expect_eq "j1 transitions" "$(data "$T/sse1" | jq -r "select(.jobId == \"$j1\") | .status" | tr '\n' ' ')" "waiting processing progress completed "
expect_eq "j2 completes too" "$(data "$T/sse1" | jq -r "select(.jobId == \"$j2\") | .status" | tail -n 1)" completed
expect_eq "other queues left out" "$(data "$T/sse1" | jq -r .queue | sort -u)" sse
expect_eq "progress value" "$(data "$T/sse1" | jq -r "select(.status == \"progress\") | .progress" | head -n 1)" 30
check "every message has an id" bash -c "[ \$(grep -c '^id: ' $T/sse1) = \$(grep -c '^data: ' $T/sse1) ]"
check "ids are the event ids" bash -c "[ \"\$(grep '^id: ' $T/sse1 | head -n 1 | cut -c5-)\" = \"\$(sed -n 's/^data: //p' $T/sse1 | head -n 1 | jq -r .id)\" ]"
expect_eq "filtered stream: completed echo only" "$(data "$T/sse2" | jq -r '"\(.jobId) \(.status)"')" "$j1 completed"

# Resuming with Last-Event-ID replays what came after that event, only.
first=$(data "$T/sse1" | head -n 1 | jq -r .id)
curl -sN --max-time 1 "$U/events?queue=sse" -H "Last-Event-ID: $first" >"$T/sse3"
expect_eq "resume skips the event it names" "$(data "$T/sse3" | head -n 1 | jq -r .id)" "$(data "$T/sse1" | sed -n 2p | jq -r .id)"
expect_eq "resume replays the rest" "$(data "$T/sse3" | wc -l)" "$(( $(data "$T/sse1" | wc -l) - 1 ))"
curl -sN --max-time 1 "$U/events?since=$first" >"$T/sse4"
check "since= resumes across all queues" grep -q '"queue":"elsewhere"' "$T/sse4"

# Bad parameters are 400 naming them, not streams.
r=$(curl -s "$U/events?status=finished")
expect_eq "bad status: 400" "$(jq -r .statusCode <<<"$r")" 400
expect_match "bad status named" "$(jq -r .message <<<"$r")" "'status'"
r=$(curl -s "$U/events?queue=bad%20name")
expect_match "bad queue named" "$(jq -r .message <<<"$r")" "'queue'"
r=$(curl -s "$U/events?bogus=1")
expect_match "unknown parameter named" "$(jq -r .message <<<"$r")" "'bogus'"
r=$(curl -s "$U/events" -H 'Last-Event-ID: yesterday')
expect_match "bad Last-Event-ID named" "$(jq -r .message <<<"$r")" "Last-Event-ID"

# A client that goes away does not keep the server from stopping.
curl -sN --max-time 1 "$U/events" >/dev/null

# jqrun watch prints one line per transition.
$JQRUN watch --queue w >"$T/watch1" 2>&1 &
W1=$!
$JQRUN watch --queue w --type other >"$T/watch2" 2>&1 &
W2=$!
PIDS="$PIDS $W1 $W2"
sleep 0.5
k1=$($JQRUN enqueue echo '{}' --queue w)
k2=$($JQRUN enqueue other '{}' --queue w)
wait_for 5 bash -c "grep -q '$k2.*completed' $T/watch1"
sleep 0.3
kill $W1 $W2 2>/dev/null
expect_eq "watch: one line per transition of k1" "$(grep -c "$k1" "$T/watch1")" 4
check "watch line: time queue id type status" grep -qE "^20[0-9-]+T[0-9:.]+Z  w  $k1  echo  completed" "$T/watch1"
check "watch shows the attempt" grep -qE "$k1  echo  processing  attempt=1" "$T/watch1"
check "watch marks the enqueue" grep -qE "$k1  echo  waiting  created" "$T/watch1"
expect_eq "watch --type filters" "$(grep -c "$k1" "$T/watch2")" 0
expect_eq "watch --type keeps its type" "$(grep -c "$k2" "$T/watch2")" 3
$JQRUN watch --status nope >/dev/null 2>&1
expect_eq "watch: bad status is a usage error" "$?" 2

# Stopping with a stream open ends the stream and the process promptly.
curl -sN --max-time 10 "$U/events" >/dev/null &
C3=$!
sleep 0.5
t0=$(date +%s%N)
jq_stop
t1=$(date +%s%N)
check "stops within 3 s with a stream open" test $(( (t1 - t0) / 1000000 )) -lt 3000
check "the stream ended with the server" wait_for 2 bash -c "! kill -0 $C3"

finish
