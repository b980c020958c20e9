#!/bin/bash
# hostile_handlers.sh — handlers that loop, eat memory, recurse without end,
# raise tables or nil (or objects whose __tostring loops or raises), misuse
# coroutines, return huge, deep or cyclic results, write globals, call
# os.exit, or get stuck in one long C call (string.find with a pathological
# pattern, which only the watchdog can take back).  One `jqrun worker` with
# ONE worker thread runs each of them followed by a good job: every hostile
# attempt fails with its message, every good job after it completes, the
# process stays up and its memory stays bounded.
source tests/lib.sh
source tests/reliability/common.sh
PATTERN_N=450   # string.find steps ~ n^4/24: ~10 s of C here, > the 2.3 s watchdog anywhere
export JQRUN_PREFIX=hh
P=hh
rredis_start
cat > "$T/jqrun.conf" <<CONF
handlers = "$PWD/$REL/handlers"
queues   = { default = { concurrency = 1 } }
lease    = 2000
defaults = { max_attempts = 1, backoff = 50, timeout = 10000 }
limits   = { memory = 32 * 1024 * 1024 }
shutdown_grace = 1000
CONF
export JQRUN_CONFIG=$T/jqrun.conf
rstart w worker
sleep 0.3
RSS0=$(rss_kb "$w_PID")

# what|expected message (a grep -E pattern)
CASES='loop|timeout after 300 ms
pcall_loop|timeout after 300 ms
membomb|memory limit exceeded
deep|memory limit exceeded|stack overflow
err_table|error object is a table value
err_nil|error object is a nil value
err_tostring_loop|timeout after 300 ms
err_tostring_err|hostile.lua:[0-9]+: again
err_binary|hostile.lua:[0-9]+: bad .* bytes
yield_outside|attempt to yield from outside a coroutine
coro_loop|timeout after 300 ms
coro_dead|cannot resume dead coroutine
huge_result|memory limit exceeded
deep_result|not JSON-serializable: tables nested deeper
cyclic_result|not JSON-serializable: table is cyclic
global_write|attempted to write global .new_global.
global_clobber|attempted to write global .string.
exit|os.exit is not allowed
pattern|timeout after 300 ms \(handler stuck; thread replaced\)'

enqueue() { "$JQRUN" enqueue "$@"; }
: > "$T/pairs"
while IFS='|' read -r what want; do
    # 300 ms for the cases about time; the others get room (ASan is slow).
    case $want in *"timeout after 300"*) tmo=300 ;; *) tmo=10000 ;; esac
    hid=$(enqueue hostile "{\"what\":\"$what\",\"n\":$PATTERN_N}" --timeout "$tmo" --attempts 1)
    oid=$(enqueue count "{\"after\":\"$what\"}" --attempts 1)
    echo "$what|$hid|$oid|$want" >> "$T/pairs"
done <<< "$CASES"
BIG=$(enqueue hostile '{"what":"big_result"}' --attempts 1)
LAST=$(enqueue count '{"last":true}' --attempts 1)
N=$(( $(wc -l < "$T/pairs") * 2 + 2 ))
t0=$(date +%s)
check "every job ends" wait_for 90 sh -c \
    "[ \$((\$(redis-cli -s '$REDIS_SOCK' zcard '$P:{$Q}:completed') + \$(redis-cli -s '$REDIS_SOCK' zcard '$P:{$Q}:failed'))) -ge $N ]"
secs=$(( $(date +%s) - t0 ))

get() { "$JQRUN" get "$1"; }
while IFS='|' read -r what hid oid want; do
    h=$(get "$hid")
    expect_eq "$what: fails" "$(echo "$h" | jq -r .status)" failed
    err=$(echo "$h" | jq -r .error)
    if echo "$err" | grep -Eq "$want"; then pass; else fail "$what: error '$err' does not match '$want'"; fi
    expect_eq "$what: the next job completes" "$(get "$oid" | jq -r .status)" completed
done < "$T/pairs"
expect_eq "a 4 MB result is stored" "$(get "$BIG" | jq -r '.result.s | length')" 4194304
expect_eq "the last job completes" "$(get "$LAST" | jq -r .status)" completed
check "the worker is alive" kill -0 "$w_PID"
check "the watchdog replaced the stuck thread" grep -q "replacing its worker thread" "$T/w.log"
check "the stuck call returns and its thread exits" wait_for 60 grep -q "stuck handler finally returned" "$T/w.log"

# The pool still has its thread, and the process its wits: 20 more jobs.
: > "$T/more"
for i in $(seq 20); do enqueue count "{\"i\":$i}" >> "$T/more"; done
check "20 more jobs complete" wait_for 20 sh -c \
    "[ \$(redis-cli -s '$REDIS_SOCK' zcard '$P:{$Q}:completed') -ge $((N / 2 + 21)) ]"
RSS1=$(rss_kb "$w_PID")
# One Lua state may hold 32 MiB; allow four (times MEMX under ASan).
MAXGROW=$((4 * 32 * 1024 * MEMX))
check "worker memory bounded (${RSS0} -> ${RSS1} KiB)" test "$RSS1" -lt $((RSS0 + MAXGROW))
check "the worker is still alive" kill -0 "$w_PID"
figure "hostile handlers=$(wc -l < "$T/pairs") all failed with their message; good jobs after each" \
       "completed; worker RSS ${RSS0} -> ${RSS1} KiB; ${secs}s"
rel_finish
