#!/bin/bash
# tests/integration/http_listen.sh — the API's listen address forms, bind
# errors, keep-alive, and a clean stop with a long poll parked.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

redis_start
cat >"$T/jqrun.conf" <<EOF
handlers = "$PWD/handlers"
queues = { default = { concurrency = 1 } }
EOF

# serve LISTEN: starts `jqrun server` on LISTEN; sets PORT from its log.
serve() {
    : >"$T/jqrun.log"
    jq_start -c "$T/jqrun.conf" --listen "$1" server
    if wait_for 10 grep -q 'api: listening on http://' "$T/jqrun.log"; then
        PORT=$(grep -o 'api: listening on http://[^ ]*' "$T/jqrun.log" | head -n 1 |
            sed 's/.*:\([0-9]*\)$/\1/')
    else
        PORT=""
    fi
}
code() { curl -s -g -o /dev/null -w '%{http_code}' "$@"; }

# 0.0.0.0: every IPv4 address, so the loopback too.
serve 0.0.0.0:0
check "0.0.0.0 started" test -n "$PORT"
expect_eq "0.0.0.0 answers on 127.0.0.1" "$(code "http://127.0.0.1:$PORT/health")" 200
# Keep-alive: the second request (a 404 too) reuses the connection.
CONNS=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' \
    "http://127.0.0.1:$PORT/nowhere" "http://127.0.0.1:$PORT/health")
expect_eq "keep-alive after a 404" "$CONNS" "1 0 "
# A port in use is an error that says so, and jqrun exits 1.
"$JQRUN" -c "$T/jqrun.conf" --listen "127.0.0.1:$PORT" server >"$T/busy.log" 2>&1 &
BUSY=$!
if wait_for 10 sh -c "! kill -0 $BUSY 2>/dev/null"; then
    wait $BUSY
    expect_eq "busy port exit code" "$?" 1
    expect_match "busy port message" "$(cat "$T/busy.log")" "cannot listen on 127.0.0.1:$PORT"
else
    kill $BUSY
    fail "a second server on a busy port kept running"
fi

# api_stop answers a parked long poll (204) and stops within a wait slice.
curl -s -o /dev/null -w '%{http_code}' -X POST \
    "http://127.0.0.1:$PORT/queues/idle/lease?wait=20000" >"$T/lp.code" &
LP=$!
sleep 0.3
T0=$(date +%s%N)
jq_stop
T1=$(date +%s%N)
wait $LP
expect_eq "parked lease answered at stop" "$(cat "$T/lp.code")" 204
check "stop does not wait for the long poll" test $(((T1 - T0) / 1000000)) -lt 3000

# [::1]: IPv6, when the machine has it.
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    serve '[::1]:0'
    check "[::1] started" test -n "$PORT"
    expect_eq "[::1] answers" "$(code "http://[::1]:$PORT/health")" 200
    jq_stop
else
    echo "note $SUITE: no IPv6 loopback; [::1] not checked"
fi

# A malformed address is refused with a message naming it.
"$JQRUN" -c "$T/jqrun.conf" --listen nonsense server >"$T/bad.log" 2>&1 &
BAD=$!
if wait_for 10 sh -c "! kill -0 $BAD 2>/dev/null"; then
    wait $BAD
    check "bad listen exit code" test "$?" -ne 0
    expect_match "bad listen message" "$(cat "$T/bad.log")" "nonsense"
else
    kill $BAD
    fail "a server with listen 'nonsense' kept running"
fi

finish
