#!/bin/bash
# redis_restart.sh — the Redis server goes away in the middle of an enqueue
# + work load (`jqrun run`, HTTP clients posting jobs), then comes back on
# the same files: jqrun reconnects by itself and the load goes on.
#   graceful: SHUTDOWN (the AOF is flushed): every job answered 201 is
#             there afterwards and completes (missing must be 0).
#   kill -9 (long form): with appendfsync everysec Redis may lose what it
#             had not fsynced; missing is printed and must stay within
#             the acknowledgements of that window (see RELIABILITY.md).
# Afterwards every stored job is consistent (in exactly the index of its
# status), and nothing is left waiting or processing.
source tests/lib.sh
source tests/reliability/common.sh
LIMIT=$(pick 30 60)
DOWN=$(pick 0.5 2)       # seconds Redis stays down
export JQRUN_PREFIX=rr
P=rr
rredis_start everysec
rconf 2000 25
rstart app run
PORT=$(rport app)
check "api is up" test -n "$PORT"
health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health"; }

# phase MODE: load, stop Redis (MODE graceful|kill), restart, load again.
phase() {
    local mode=$1 acked=$T/acked.$1 before c1 c2 after missing lost total
    : > "$acked"
    "$RELCLIENT" post "$PORT" "$acked" -n 1000000 -c 4 -m 2 -t "$LIMIT" -s "$T/stop.$mode" \
        >"$T/post.$mode" 2>&1 &
    local loader=$!
    sleep 1
    c1=$(wc -l < "$acked")
    sleep 1
    c2=$(wc -l < "$acked")
    rredis_stop "$mode"
    before=$(wc -l < "$acked")
    expect_eq "$mode: /health says 503 while Redis is down" "$(health)" 503
    sleep "$DOWN"
    rredis_restart
    check "$mode: /health is 200 again" wait_for 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/health)\" = 200 ]"
    check "$mode: jobs are acknowledged again" wait_for 15 sh -c "[ \$(wc -l < '$acked') -gt $((before + 100)) ]"
    touch "$T/stop.$mode"
    wait "$loader"
    cat "$T/post.$mode"
    after=$(( $(wc -l < "$acked") - before ))
    total=$(wc -l < "$acked")
    # Every acknowledged job that Redis still has must complete.
    sort "$acked" > "$acked.sorted"
    sed "s/^/EXISTS $P:{$Q}:job:/" "$acked.sorted" | rcli > "$T/exists.$mode"
    lost=$(grep -c '^0$' "$T/exists.$mode")
    check "$mode: nothing left to do in ${LIMIT}s" wait_for "$LIMIT" sh -c \
        "[ \$(redis-cli -s '$REDIS_SOCK' zcard '$P:{$Q}:wait') = 0 ] && [ \$(redis-cli -s '$REDIS_SOCK' zcard '$P:{$Q}:active') = 0 ] && [ \$(redis-cli -s '$REDIS_SOCK' zcard '$P:{$Q}:delayed') = 0 ]"
    ids_in completed > "$T/completed"
    missing=$(comm -23 "$acked.sorted" "$T/completed" | wc -l)
    check_consistent "$mode: the store is consistent"
    if [ "$mode" = graceful ]; then
        expect_eq "graceful: acknowledged jobs missing" "$lost" 0
        expect_eq "graceful: acknowledged jobs not completed" "$missing" 0
    else
        # everysec: at most about the last second (two in the worst case)
        # of writes is lost; allow the acks of the 1 s sample window twice.
        check "kill: missing ($lost) within the fsync window ($((c2 - c1)) acks/s)" \
            test "$lost" -le $(( 2 * (c2 - c1) + 50 ))
        expect_eq "kill: acknowledged jobs still stored but not completed" "$((missing - lost))" 0
    fi
    figure "$mode restart: acknowledged=$total before_stop=$before after_restart=$after" \
           "ack_rate_per_s=$((c2 - c1)) missing=$lost not_completed=$((missing - lost))" \
           "down_s=$DOWN"
}

phase graceful
[ "$LONG" = 1 ] && phase kill
check "jqrun is still running" kill -0 "$app_PID"
rel_finish
