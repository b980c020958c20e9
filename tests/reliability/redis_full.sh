#!/bin/bash
# redis_full.sh — Redis reaches maxmemory (policy noeviction) under an
# enqueue load while workers run jobs:
#   - POST /jobs and /jobs/bulk answer a JSON 503 naming the cause;
#   - nothing already stored changes (byte for byte), every job answered
#     201 is whole, the indexes stay consistent;
#   - jobs running when memory ran out still complete, with one attempt
#     (their lease extensions and completions go through);
#   - once memory frees, enqueueing and work resume by themselves.
source tests/lib.sh
source tests/reliability/common.sh
STORED=$(pick 50 500)
BUSY_MS=$(pick 4000 6000)   # outlives the fill by more than a lease
export JQRUN_PREFIX=rf
P=rf
rredis_start everysec --maxmemory-policy noeviction
cat > "$T/jqrun.conf" <<CONF
listen   = "127.0.0.1:0"
handlers = "$PWD/$REL/handlers"
queues   = { default = { concurrency = 2 }, busy = { concurrency = 2 } }
lease    = 1000
defaults = { max_attempts = 3, backoff = 50, timeout = 30000 }
shutdown_grace = 2000
CONF
export JQRUN_CONFIG=$T/jqrun.conf
rstart app run
PORT=$(rport app)
check "api is up" test -n "$PORT"
url=http://127.0.0.1:$PORT
code() { curl -s -m 10 -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$url$1" -d "$2"; }
job() { curl -s -m 5 "$url/jobs/$1"; }
dump() { sed "s/^/HGETALL $P:{$Q}:job:/" "$1" | rcli; }

# Jobs already stored: waiting in a paused queue, captured byte for byte.
expect_eq "pause" "$(code /queues/default/pause '')" 200
: > "$T/stored"
for i in $(seq "$STORED"); do
    code /jobs "{\"type\":\"count\",\"payload\":{\"i\":$i,\"s\":\"stored \u00e9 $i\"},\"priority\":$((i % 5))}" >/dev/null
    jq -r .id "$T/body" >> "$T/stored"
done
expect_eq "stored jobs" "$(grep -c . "$T/stored")" "$STORED"
dump "$T/stored" > "$T/before"

# Jobs running when memory runs out.
: > "$T/busy"
for i in 1 2; do
    code /jobs "{\"type\":\"count\",\"queue\":\"busy\",\"payload\":{\"ms\":$BUSY_MS}}" >/dev/null
    jq -r .id "$T/body" >> "$T/busy"
done
check "busy jobs run" wait_for 5 sh -c "[ \$(grep -c 'RUN\$' '$T/app.log') -ge 2 ]"

# Fill Redis: big jobs, then small ones, until even small ones are refused.
used=$(rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
rcli config set maxmemory $((used + 2000000)) >/dev/null
"$RELCLIENT" post "$PORT" "$T/flood" -q fill -p 50000 -c 2 -n 100000 -t 1 > "$T/flood1.out"
"$RELCLIENT" post "$PORT" "$T/flood" -q fill -p 200 -c 2 -n 100000 -t 1 > "$T/flood2.out"
cat "$T/flood1.out" "$T/flood2.out"
FLOOD=$(wc -l < "$T/flood")
REFUSED=$(cat "$T/flood1.out" "$T/flood2.out" | sed -n 's/.* 503=\([0-9]*\) .*/\1/p' | awk '{n += $1} END {print n + 0}')
check "the flood was refused at some point" test "$REFUSED" -gt 0

expect_eq "enqueue when full: 503" "$(code /jobs '{"type":"count","payload":{}}')" 503
check "enqueue when full: a JSON error" "$RELCLIENT" check <(echo 503) "$T/body"
MSG=$(jq -r .message "$T/body")
expect_match "enqueue when full: names the cause" "$MSG" "maxmemory"
expect_eq "bulk when full: 503" "$(code /jobs/bulk '[{"type":"count","payload":{}}]')" 503
check "bulk when full: a JSON error" "$RELCLIENT" check <(echo 503) "$T/body"
first=$(head -n 1 "$T/stored")
expect_eq "reads still work when full" "$(job "$first" | jq -r .status)" waiting

# The running jobs finish while Redis is still full.
done_busy() { for id in $(cat "$T/busy"); do [ "$(job "$id" | jq -r .status)" = completed ] || return 1; done; }
check "running jobs complete while full" wait_for $((BUSY_MS / 1000 + 10)) done_busy
still_full=$(code /jobs '{"type":"count","payload":{}}')
expect_eq "Redis was full all along" "$still_full" 503
for id in $(cat "$T/busy"); do
    expect_eq "busy job used one attempt" "$(job "$id" | jq -r .attempts)" 1
done
BUSY_RUNS=$(runs_per_id | grep -F -f "$T/busy" | awk '{n += $1} END {print n + 0}')
expect_eq "busy jobs ran once each" "$BUSY_RUNS" 2

# Nothing stored was damaged.
dump "$T/stored" > "$T/after"
check "stored jobs unchanged" cmp -s "$T/before" "$T/after"
sed "s/^/HSTRLEN $P:{fill}:job:/; s/\$/ payload/" "$T/flood" | rcli > "$T/lens"
expect_eq "every acknowledged flood job is whole" "$(awk '$1 < 200' "$T/lens" | wc -l)" 0
for q in default busy fill; do
    Q=$q check_consistent "queue $q consistent when full"
done

# Memory frees: everything resumes.
rcli config set maxmemory 0 >/dev/null
expect_eq "resume after memory frees" "$(code /queues/default/resume '')" 200
expect_eq "enqueue after memory frees" "$(code /jobs '{"type":"count","payload":{}}')" 201
check "stored jobs complete after" wait_count completed $((STORED + 1)) 30
Q=default check_consistent "queue default consistent after"
figure "stored=$STORED flood_acknowledged=$FLOOD refused_503=$REFUSED" \
       "busy_attempts=$(for id in $(cat "$T/busy"); do job "$id" | jq -r .attempts; done | tr '\n' ,)" \
       "busy_runs=$BUSY_RUNS stored_changed=$(cmp -s "$T/before" "$T/after" && echo 0 || echo 1)" \
       "message=\"$MSG\""
rel_finish
