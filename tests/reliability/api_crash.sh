#!/bin/bash
# api_crash.sh — `kill -9` of `jqrun server` while clients POST jobs, then a
# restart on the same port: every job answered 201 exists afterwards and is
# worked to completion by a separate `jqrun worker`.
#   long: 5 kills   short: 1 kill
# Figures: jobs acknowledged, missing (must be 0), requests cut by the kill
# (their outcome unknown to the client) and jobs stored without a 201 (the
# kill came between the store and the answer: a client that retries makes
# a duplicate unless it sends an idempotencyKey).
source tests/lib.sh
source tests/reliability/common.sh
KILLS=$(pick 1 5)
export JQRUN_PREFIX=ac
P=ac
rredis_start
rconf 2000 5
rstart api server
PORT=$(rport api)
check "api is up" test -n "$PORT"
rstart w worker

"$RELCLIENT" post "$PORT" "$T/acked" -n 10000000 -c 8 -t 120 -s "$T/stop" > "$T/post.out" 2>&1 &
LOADER=$!
up() { [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ]; }
restarts=0
for k in $(seq "$KILLS"); do
    sleep "0.$(( RANDOM % 5 + 5 ))"
    kill -9 "$api_PID"
    wait "$api_PID" 2>/dev/null
    sleep 0.2
    rstart api --listen "127.0.0.1:$PORT" server
    wait_for 10 up && restarts=$((restarts + 1))
done
sleep 0.5
touch "$T/stop"
wait "$LOADER"
cat "$T/post.out"
expect_eq "the server came back every time" "$restarts" "$KILLS"
ACKED=$(wc -l < "$T/acked")
CUT=$(sed -n 's/.*transport_errors=\([0-9]*\).*/\1/p' "$T/post.out")
check "some jobs acknowledged" test "$ACKED" -gt 100
sort "$T/acked" > "$T/acked.sorted"
sed "s/^/EXISTS $P:{$Q}:job:/" "$T/acked.sorted" | rcli > "$T/exists"
MISSING=$(grep -c -v '^1$' "$T/exists")
expect_eq "acknowledged jobs missing" "$MISSING" 0
STORED=$(rcli --scan --pattern "$P:{$Q}:job:*" | wc -l)
check "all stored jobs complete" wait_count completed "$STORED" 60
ids_in completed > "$T/completed"
expect_eq "acknowledged jobs not completed" "$(comm -23 "$T/acked.sorted" "$T/completed" | wc -l)" 0
check_consistent "the store is consistent"
figure "kills=$KILLS acknowledged=$ACKED missing=$MISSING requests_cut=$CUT" \
       "stored_without_201=$((STORED - ACKED))"
rel_finish
