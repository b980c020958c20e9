# tests/lib.sh — shared by the shell integration tests.  Source it, then use:
#   redis_start          a private redis-server on a unix socket in $T;
#                        exports REDIS_SOCK and JQRUN_REDIS=unix://$REDIS_SOCK
#   jq_start ARGS...     build/jqrun ARGS in the background (pid in $JQ_PID),
#                        output to $T/jqrun.log; jq_stop stops it
#   check NAME CMD...    runs CMD; pass if it exits 0
#   expect_eq NAME GOT WANT
#   wait_for SECONDS CMD...   polls CMD until it succeeds (0) or time runs out (1)
#   finish               prints "NAME: N passed, N failed", cleans up, exits
set -u
B=${B:-build}
JQRUN=${JQRUN:-$PWD/$B/jqrun}
T=$(mktemp -d /tmp/jqtest.XXXXXX)
PASS=0; FAIL=0
SUITE=$(basename "$0" .sh)
PIDS=""

pass() { PASS=$((PASS+1)); }
fail() { FAIL=$((FAIL+1)); echo "FAIL $SUITE: $*"; }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then pass; else fail "$name"; fi; }
expect_eq() { if [ "$2" = "$3" ]; then pass; else fail "$1: got '$2', want '$3'"; fi; }
expect_match() { case "$2" in *$3*) pass;; *) fail "$1: '$2' does not contain '$3'";; esac; }
wait_for() {
    local secs=$1; shift
    local end=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
    while [ $(( $(date +%s%N) / 1000000 )) -lt $end ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

redis_start() {
    REDIS_SOCK=$T/redis.sock
    redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
        --dir "$T" --save '' --appendonly no --daemonize no \
        --logfile "$T/redis.log" &
    REDIS_PID=$!
    PIDS="$PIDS $REDIS_PID"
    wait_for 5 redis-cli -s "$REDIS_SOCK" ping || { echo "redis did not start"; cat "$T/redis.log"; exit 1; }
    export REDIS_SOCK JQRUN_REDIS="unix://$REDIS_SOCK"
}
rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }

jq_start() {
    "$JQRUN" "$@" >>"$T/jqrun.log" 2>&1 &
    JQ_PID=$!
    PIDS="$PIDS $JQ_PID"
}
jq_stop() {
    [ -n "${JQ_PID:-}" ] && kill "$JQ_PID" 2>/dev/null && wait "$JQ_PID" 2>/dev/null
    JQ_PID=""
}

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    if [ "$FAIL" -gt 0 ] && [ -f "$T/jqrun.log" ]; then
        echo "--- $SUITE: last lines of jqrun.log"; tail -n 30 "$T/jqrun.log"
    fi
    rm -rf "$T"
}
finish() {
    cleanup
    trap - EXIT
    echo "$SUITE: $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}
trap 'cleanup' EXIT
