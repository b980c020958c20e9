#!/bin/bash
# worker_crash.sh — `kill -9` of `jqrun worker` processes at random moments
# while they work through a load: every acknowledged job ends completed.
#   long:  10,000 jobs, 3 workers, 10 kills     short: 1,000 jobs, 3 kills
# Figures: acknowledged, lost (no trace of the job: must be 0), not
# completed (must be 0), jobs run twice (at-least-once: allowed, counted from
# the handler's own RUN log lines) and jobs that used more than one attempt.
source tests/lib.sh
source tests/reliability/common.sh
JOBS=$(pick 1000 10000)
KILLS=$(pick 3 10)
WORKERS=3
MS=$(pick 20 10)          # handler sleep per job: keeps jobs in flight
LIMIT=$(pick 45 150)      # seconds the whole drain may take
export JQRUN_PREFIX=wc
P=wc
rredis_start
rconf 1000 25

rstart api server
PORT=$(rport api)
check "api is up" test -n "$PORT"
for i in $(seq $WORKERS); do rstart "w$i" worker; done

# The load: bulk requests of 100 jobs, everything acknowledged goes to acked.
t0=$(date +%s%N)
"$RELCLIENT" post "$PORT" "$T/acked" -n "$JOBS" -c 2 -b 100 -m "$MS" -t "$LIMIT" \
    >"$T/post.out" 2>&1 &
LOADER=$!

# The killer: a random worker, at a random moment, restarted at once.
sleep 0.3
killed=0
for k in $(seq "$KILLS"); do
    sleep "0.$(( RANDOM % 5 + 2 ))"
    i=$(( RANDOM % WORKERS + 1 ))
    pidvar="w${i}_PID"
    kill -9 "${!pidvar}" 2>/dev/null && killed=$((killed + 1))
    wait "${!pidvar}" 2>/dev/null
    rstart "w$i" worker
done
wait "$LOADER"
cat "$T/post.out"
ACKED=$(wc -l < "$T/acked")
expect_eq "every job acknowledged" "$ACKED" "$JOBS"
expect_eq "kills done" "$killed" "$KILLS"
check "all completed in ${LIMIT}s" wait_count completed "$ACKED" "$LIMIT"
secs=$(( ($(date +%s%N) - t0) / 1000000 ))

sort "$T/acked" > "$T/acked.sorted"
ids_in completed > "$T/completed"
comm -23 "$T/acked.sorted" "$T/completed" > "$T/missing"
NOT_DONE=$(wc -l < "$T/missing")
LOST=0
while read -r id; do
    [ "$(rcli exists "$P:{$Q}:job:$id")" = 1 ] || LOST=$((LOST + 1))
done < "$T/missing"
runs_per_id > "$T/runs"
TWICE=$(awk '$1 > 1' "$T/runs" | wc -l)
RERUNS=$(awk '$1 > 1 {n += $1 - 1} END {print n + 0}' "$T/runs")
NEVER=$(comm -23 "$T/acked.sorted" <(awk '{print $2}' "$T/runs" | sort) | wc -l)
sed "s/^/HGET $P:{$Q}:job:/; s/\$/ attempts/" "$T/acked.sorted" | rcli > "$T/attempts"
MULTI=$(awk '$1 > 1' "$T/attempts" | wc -l)

expect_eq "lost jobs" "$LOST" 0
expect_eq "jobs not completed" "$NOT_DONE" 0
expect_eq "completed jobs that never ran" "$NEVER" 0
for s in wait active delayed failed; do
    expect_eq "nothing left in $s" "$(rcli zcard "$P:{$Q}:$s")" 0
done
check "the kills cost reruns or attempts" test $((TWICE + MULTI)) -gt 0
figure "jobs=$ACKED workers=$WORKERS kills=$killed lost=$LOST not_completed=$NOT_DONE" \
       "run_twice=$TWICE extra_runs=$RERUNS attempts_gt1=$MULTI seconds=$((secs / 1000)).$((secs % 1000 / 100))"
rel_finish
