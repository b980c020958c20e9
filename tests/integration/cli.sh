#!/bin/bash
# cli.sh — the CLI as a process: enqueue, get, cancel, retry, list, stats,
# exit codes, and the embedded Redis keeping data between invocations.
source tests/lib.sh
redis_start
export JQRUN_PREFIX=clit

# version / help / usage
expect_match "version" "$($JQRUN version)" "jqrun "
check "help exits 0" $JQRUN help
$JQRUN frobnicate >/dev/null 2>&1; expect_eq "unknown command exits 2" $? 2
$JQRUN --bogus get x >/dev/null 2>&1; expect_eq "unknown global flag exits 2" $? 2

# enqueue and get
id=$($JQRUN enqueue send-email '{"to":"a@example.com"}' --priority 5)
expect_eq "enqueue exit" $? 0
check "enqueue prints a uuid" grep -Eq '^[0-9a-f-]{36}$' <<<"$id"
job=$($JQRUN get "$id")
expect_eq "get type" "$(jq -r .type <<<"$job")" "send-email"
expect_eq "get status" "$(jq -r .status <<<"$job")" "waiting"
expect_eq "get priority" "$(jq -r .priority <<<"$job")" "5"
expect_eq "get payload" "$(jq -r .payload.to <<<"$job")" "a@example.com"
expect_eq "get queue" "$(jq -r .queue <<<"$job")" "default"
check "createdAt is ms" test "$(jq -r .createdAt <<<"$job")" -gt 1700000000000

# payload from a file and from stdin
echo '{"from":"file"}' > "$T/p.json"
id2=$($JQRUN enqueue t @"$T/p.json" --queue q2 --delay 60000)
expect_eq "payload from @file" "$($JQRUN get "$id2" | jq -r .payload.from)" "file"
expect_eq "delay -> delayed" "$($JQRUN get "$id2" | jq -r .status)" "delayed"
id3=$(echo '{"from":"stdin"}' | $JQRUN enqueue t - --at 2099-01-01T00:00:00Z --attempts 7 --backoff 50)
expect_eq "payload from stdin" "$($JQRUN get "$id3" | jq -r .payload.from)" "stdin"
expect_eq "--at" "$($JQRUN get "$id3" | jq -r .runAt)" "4070908800000"
expect_eq "--attempts" "$($JQRUN get "$id3" | jq -r .maxAttempts)" "7"

# usage errors name what is wrong, exit 2
out=$($JQRUN enqueue t '{"a":' 2>&1); rc=$?
expect_eq "bad JSON exits 2" $rc 2
expect_match "bad JSON names the position" "$out" "column"
out=$($JQRUN enqueue t '{}' --priority 11 2>&1); rc=$?
expect_eq "priority out of range exits 2" $rc 2
expect_match "priority message" "$out" "'priority'"
out=$($JQRUN enqueue t '{}' --frob 1 2>&1); rc=$?
expect_eq "unknown flag exits 2" $rc 2
expect_match "unknown flag named" "$out" "--frob"
out=$($JQRUN enqueue t '{}' --delay soon 2>&1); rc=$?
expect_eq "non-integer flag exits 2" $rc 2
$JQRUN enqueue 'bad type!' '{}' >/dev/null 2>&1; expect_eq "bad type exits 2" $? 2
$JQRUN enqueue t '[1]' >/dev/null 2>&1; expect_eq "array payload exits 2" $? 2

# Decimal numbers keep their short form through Redis and back.
idp=$($JQRUN enqueue t '{"price":19.99}')
expect_match "decimal payload kept" "$($JQRUN get "$idp" | tr -d ' \n')" '"price":19.99}'

# idempotency key
k1=$($JQRUN enqueue t '{}' --key order-1); k2=$($JQRUN enqueue t '{}' --key order-1)
expect_eq "idempotency key returns the first job" "$k2" "$k1"

# cancel, retry, conflicts
out=$($JQRUN cancel "$id"); expect_eq "cancel exit" $? 0
expect_eq "canceled" "$($JQRUN get "$id" | jq -r .status)" "canceled"
out=$($JQRUN cancel "$id" 2>&1); rc=$?
expect_eq "cancel twice exits 1" $rc 1
expect_match "cancel conflict names the state" "$out" "canceled"
check "retry canceled" $JQRUN retry "$id"
expect_eq "retried -> waiting" "$($JQRUN get "$id" | jq -r .status)" "waiting"
$JQRUN get 00000000-0000-4000-8000-000000000000 >/dev/null 2>&1; expect_eq "unknown id exits 1" $? 1
out=$($JQRUN retry "$id" 2>&1); expect_eq "retry waiting exits 1" $? 1

# list and stats
out=$($JQRUN list --status waiting)
expect_match "list shows the job" "$out" "$id"
check "list --type filters" bash -c "! $JQRUN list --type nothing-like-this | grep -q '$id'"
$JQRUN list --status bogus >/dev/null 2>&1; expect_eq "list bad status exits 2" $? 2
out=$($JQRUN stats)
expect_match "stats lists default" "$out" "default"
expect_match "stats lists q2" "$out" "q2"

# Redis down: a clear error, exit 1, no crash.
JQRUN_REDIS=unix://$T/nothing.sock $JQRUN get "$id" >"$T/out" 2>&1; rc=$?
expect_eq "redis down exits 1" $rc 1
expect_match "redis down message" "$(cat "$T/out")" "cannot connect"

# Embedded Redis: no redis configured -> jqrun starts one under data_dir
# and a second invocation sees the same job.
unset JQRUN_REDIS
D=$T/data
eid=$($JQRUN --data-dir "$D" enqueue emb '{"x":1}')
expect_eq "embedded enqueue" $? 0
expect_eq "embedded get in a new invocation" "$($JQRUN --data-dir "$D" get "$eid" | jq -r .payload.x)" "1"
check "embedded redis uses AOF" grep -q . <(redis-cli -s "$D/redis.sock" config get appendonly | grep yes)
# Restart the embedded server: the job survives (AOF).
redis-cli -s "$D/redis.sock" shutdown >/dev/null 2>&1
wait_for 5 bash -c "! redis-cli -s '$D/redis.sock' ping"
expect_eq "job survives an embedded restart" "$($JQRUN --data-dir "$D" get "$eid" | jq -r .id)" "$eid"
redis-cli -s "$D/redis.sock" shutdown nosave >/dev/null 2>&1
finish
