#!/bin/bash
# hung_worker.sh — a worker that stops answering (SIGSTOP) while it holds a
# job: the lease lapses, another process runs the job to completion, and
# when the hung worker comes back (SIGCONT) its outcome is refused by its
# stale lease token; the job keeps exactly one accepted completion and
# jqrun_lease_rejected_total counts the refusal.  The same for an external
# worker over HTTP.  Then a long job under a short lease, kept alive by the
# keeper's lease extensions, is never delivered twice.
#   long: a 20 s job under a 5 s lease   short: a 4 s job under a 1 s lease
source tests/lib.sh
source tests/reliability/common.sh
export JQRUN_PREFIX=hw
P=hw
rredis_start
trap 'kill -CONT "${w1_PID:-0}" 2>/dev/null; cleanup' EXIT
cat > "$T/jqrun.conf" <<CONF
listen   = "127.0.0.1:0"
handlers = "$PWD/$REL/handlers"
queues   = { default = { concurrency = 2 } }
lease    = 1000
defaults = { max_attempts = 5, backoff = 50, timeout = 30000 }
shutdown_grace = 2000
CONF
export JQRUN_CONFIG=$T/jqrun.conf
post() { curl -s -m 5 -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$1$2" -d "$3"; }
code() { curl -s -m 5 -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
              "http://127.0.0.1:$1$2" -d "$3"; }
# Ask a process that is not stopped: a SIGSTOPped server accepts
# connections (the kernel does) but never answers.
job() { curl -s -m 5 "http://127.0.0.1:${JOBPORT:-$PORT1}/jobs/$1"; }
status_is() { [ "$(job "$1" | jq -r .status)" = "$2" ]; }
rejected() { curl -s -m 5 "http://127.0.0.1:$1/metrics" | awk '/^jqrun_lease_rejected_total/ {print $2}'; }
ran() { grep -c "job $1 \[.*\]: RUN\$" "$T/$2.log"; }
# events ID STATUS counts the entries of ID with STATUS in queue $Q's stream.
events() {
    rcli xrange "$P:{$Q}:events" - + | awk -v id="$1" -v st="$2" '
        /^[0-9]+-[0-9]+$/ { j = "" }
        prev == "jobId"   { j = $0 }
        prev == "status"  { if (j == id && $0 == st) n++ }
        { prev = $0 }
        END { print n + 0 }'
}
completions() { events "$1" completed; }

rstart w1 run
PORT1=$(rport w1)
check "w1 is up" test -n "$PORT1"

# ---- a hung in-process worker ----
ID=$(post "$PORT1" /jobs '{"type":"count","payload":{"ms":2500}}' | jq -r .id)
check "w1 runs the job" wait_for 5 sh -c "grep -q 'job $ID .*RUN' '$T/w1.log'"
kill -STOP "$w1_PID"
stopped_at=$(date +%s%N)
rstart w2 run
PORT2=$(rport w2)
check "w2 is up" test -n "$PORT2"
JOBPORT=$PORT2
check "the job completes elsewhere" wait_for 15 status_is "$ID" completed
took=$(( ($(date +%s%N) - stopped_at) / 1000000 ))
before=$(job "$ID")
expect_eq "the second attempt completed it" "$(echo "$before" | jq -r .result.attempt)" 2
expect_eq "w2 ran it once" "$(ran "$ID" w2)" 1
kill -CONT "$w1_PID"
check "w1 answers again" wait_for 10 sh -c "[ -n \"\$(curl -s -m 1 http://127.0.0.1:$PORT1/health)\" ]"
check "the stale outcome is refused and counted" wait_for 10 sh -c \
    "curl -s -m 1 http://127.0.0.1:$PORT1/metrics | grep -qx 'jqrun_lease_rejected_total 1'"
check "w1 logs the refusal" grep -q "job $ID: outcome refused" "$T/w1.log"
after=$(job "$ID")
expect_eq "the job is unchanged by the stale outcome" "$after" "$before"
expect_eq "exactly one accepted completion" "$(completions "$ID")" 1
expect_eq "w1 ran it once" "$(ran "$ID" w1)" 1
W1REJ=$(rejected "$PORT1")
figure "hung worker: reclaimed and completed elsewhere after ${took} ms (lease 1000 ms)," \
       "stale outcome rejected=$W1REJ completions=$(completions "$ID")"

# ---- a hung external worker (HTTP lease) ----
EID=$(post "$PORT1" /jobs '{"type":"ext","queue":"ext","payload":{}}' | jq -r .id)
TOK1=$(post "$PORT1" /queues/ext/lease '' | jq -r .leaseToken)
check "first lease" test -n "$TOK1" -a "$TOK1" != null
check "the lease lapses and the job waits again" wait_for 5 status_is "$EID" waiting
TOK2=$(post "$PORT2" /queues/ext/lease '' | jq -r .leaseToken)
check "second lease" test -n "$TOK2" -a "$TOK2" != null -a "$TOK2" != "$TOK1"
r2before=$(rejected "$PORT2")
expect_eq "stale complete is refused" "$(code "$PORT2" "/jobs/$EID/complete" "{\"leaseToken\":\"$TOK1\",\"result\":1}")" 409
check "refusal is a JSON error" "$RELCLIENT" check <(echo 409) "$T/body"
expect_eq "stale fail is refused" "$(code "$PORT2" "/jobs/$EID/fail" "{\"leaseToken\":\"$TOK1\",\"error\":\"x\"}")" 409
expect_eq "stale heartbeat is refused" "$(code "$PORT2" "/jobs/$EID/heartbeat" "{\"leaseToken\":\"$TOK1\"}")" 409
expect_eq "current complete is accepted" "$(code "$PORT2" "/jobs/$EID/complete" "{\"leaseToken\":\"$TOK2\",\"result\":2}")" 200
expect_eq "late complete after completion is refused" "$(code "$PORT2" "/jobs/$EID/complete" "{\"leaseToken\":\"$TOK2\",\"result\":3}")" 409
expect_eq "the current result stands" "$(job "$EID" | jq -c '[.status, .result]')" '["completed",2]'
expect_eq "metric counts the 4 refusals" "$(( $(rejected "$PORT2") - r2before ))" 4
expect_eq "external: one accepted completion" "$(Q=ext completions "$EID")" 1

# ---- heartbeats: a long job under a short lease ----
HB_MS=$(pick 4000 20000)
HB_LEASE=$(pick 1000 5000)
cat > "$T/hb.conf" <<CONF
listen   = "127.0.0.1:0"
handlers = "$PWD/$REL/handlers"
queues   = { hb = { concurrency = 1 } }
lease    = $HB_LEASE
defaults = { max_attempts = 5, backoff = 50, timeout = 60000 }
shutdown_grace = 2000
CONF
JQRUN_CONFIG=$T/hb.conf rstart hb1 worker
JQRUN_CONFIG=$T/hb.conf rstart hb2 worker
sleep 0.5
HID=$(post "$PORT1" /jobs "{\"type\":\"count\",\"queue\":\"hb\",\"payload\":{\"ms\":$HB_MS}}" | jq -r .id)
check "the long job completes" wait_for $((HB_MS / 1000 + 15)) status_is "$HID" completed
hj=$(job "$HID")
expect_eq "long job: one attempt" "$(echo "$hj" | jq -r .attempts)" 1
expect_eq "long job: result of attempt 1" "$(echo "$hj" | jq -r .result.attempt)" 1
expect_eq "long job: no lease expiry" "$(echo "$hj" | jq -r '.error // "none"')" none
runs=$(( $(ran "$HID" hb1) + $(ran "$HID" hb2) ))
expect_eq "long job: delivered once" "$runs" 1
Q=hb
expect_eq "long job: leased once" "$(events "$HID" processing)" 1
figure "heartbeat: ${HB_MS} ms job under a ${HB_LEASE} ms lease, 2 workers:" \
       "runs=$runs attempts=$(echo "$hj" | jq -r .attempts)"
rel_finish
