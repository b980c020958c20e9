# tests/reliability/common.sh — helpers for the reliability scenarios.
# Source tests/lib.sh first, then this file.  It adds:
#   LONG            1 for the long form (RELIABILITY=long), else 0
#   pick SHORT LONG echoes the number for the current form
#   MEMX            8 under a sanitizer build (memory bounds scale), else 1
#   RELCLIENT       the C client (tests/reliability/relclient.c), built here
#   rredis_start [APPENDFSYNC] [ARGS...]
#                   a private redis-server with AOF on (appendfsync everysec
#                   unless given) on a unix socket in $T/redis; sets
#                   REDIS_SOCK, REDIS_PID, JQRUN_REDIS (rcli works)
#   rredis_stop graceful|kill   SHUTDOWN (AOF flushed) or kill -9
#   rredis_restart              starts it again on the same files
#   rstart NAME ARGS...         $JQRUN ARGS with output in $T/NAME.log; the
#                               pid lands in the variable NAME_PID
#   rport NAME                  the HTTP port NAME listens on (waits 10 s)
#   rss_kb PID                  resident memory of PID in KiB
#   figure TEXT                 prints "FIGURES <suite>: TEXT"
#   ids_in STATE                the ids of queue $Q in STATE, sorted
#   wait_count STATE N SECS     waits until STATE holds at least N jobs
#   runs_per_id                 "count id" for every RUN line of the logs
#   consistent                  every job of $Q is in the index of its status
#   rel_finish                  stop everything, check sanitizer reports, finish
export LC_ALL=C
LONG=0
[ "${RELIABILITY:-short}" = long ] && LONG=1
pick() { if [ "$LONG" = 1 ]; then echo "$2"; else echo "$1"; fi; }
# MEMX multiplies memory bounds: ASan builds (B=build-san) use far more.
MEMX=1
case $B in *san*) MEMX=8 ;; esac

REL=tests/reliability
RELCLIENT=$PWD/$B/rel/relclient
if [ ! -x "$RELCLIENT" ] || [ "$REL/relclient.c" -nt "$RELCLIENT" ]; then
    mkdir -p "$B/rel"
    # shellcheck disable=SC2046
    cc -O2 -g -Wall -Wextra -o "$RELCLIENT.tmp.$$" "$REL/relclient.c" \
        $(pkg-config --cflags --libs libcurl jansson) && mv "$RELCLIENT.tmp.$$" "$RELCLIENT" \
        || { echo "cannot build relclient"; exit 1; }
fi

P=${JQRUN_PREFIX:-jq}
Q=${Q:-default}
REDIS_ARGS=()

rredis_start() {
    local fsync=${1:-everysec}
    [ $# -gt 0 ] && shift
    mkdir -p "$T/redis"
    REDIS_SOCK=$T/redis/redis.sock
    REDIS_ARGS=(--port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --dir "$T/redis"
                --save '' --appendonly yes --appendfsync "$fsync" --daemonize no
                --logfile "$T/redis/redis.log" "$@")
    rredis_restart
    export REDIS_SOCK JQRUN_REDIS="unix://$REDIS_SOCK"
}
rredis_restart() {
    redis-server "${REDIS_ARGS[@]}" &
    REDIS_PID=$!
    PIDS="$PIDS $REDIS_PID"
    # PING answers LOADING while the AOF is read back: wait for PONG.
    wait_for 20 sh -c "redis-cli -s '$REDIS_SOCK' ping 2>/dev/null | grep -q PONG" \
        || { echo "redis did not start"; tail -n 20 "$T/redis/redis.log"; exit 1; }
}
rredis_stop() {
    if [ "$1" = kill ]; then
        kill -9 "$REDIS_PID" 2>/dev/null
    else
        redis-cli -s "$REDIS_SOCK" shutdown >/dev/null 2>&1
    fi
    wait "$REDIS_PID" 2>/dev/null
    rm -f "$REDIS_SOCK"
}

RNAMES=""
rstart() {
    local name=$1
    shift
    "$JQRUN" "$@" >>"$T/$name.log" 2>&1 &
    printf -v "${name}_PID" %s "$!"
    PIDS="$PIDS $!"
    case " $RNAMES " in *" $name "*) ;; *) RNAMES="$RNAMES $name" ;; esac
}
rport() {
    local port="" i
    for i in $(seq 200); do
        port=$(sed -n 's/.*api: listening on http:\/\/[^ ]*:\([0-9][0-9]*\)$/\1/p' "$T/$1.log" | tail -n 1)
        [ -n "$port" ] && break
        sleep 0.05
    done
    echo "$port"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
figure() { echo "FIGURES $SUITE: $*"; }

ids_in() { rcli zrange "$P:{$Q}:$1" 0 -1 | sed "/^$/d" | sort; }
wait_count() {
    local key=$1 n=$2 secs=$3
    wait_for "$secs" sh -c "[ \"\$(redis-cli -s '$REDIS_SOCK' zcard '$P:{$Q}:$key')\" -ge $n ]"
}
runs_per_id() {
    cat "$T"/*.log 2>/dev/null | sed -n 's/.* job \([0-9a-f-]*\) \[[^]]*\]: RUN$/\1/p' | sort | uniq -c
}

# consistent: every job hash of queue $Q is in exactly one index, the one
# of its status; prints what is wrong and fails otherwise.
consistent() {
    local s
    : > "$T/indexed"
    for s in wait:waiting delayed:delayed active:processing completed:completed \
             failed:failed canceled:canceled; do
        rcli zrange "$P:{$Q}:${s%%:*}" 0 -1 | sed "/^\$/d; s/\$/ ${s#*:}/" >> "$T/indexed"
    done
    rcli --scan --pattern "$P:{$Q}:job:*" | sed "s/^$P:{$Q}:job://" | sort > "$T/hashes"
    sort "$T/indexed" > "$T/indexed.sorted"
    # one index entry per hash, none without a hash
    awk '{print $1}' "$T/indexed.sorted" | uniq -d > "$T/dups"
    if [ -s "$T/dups" ]; then
        echo "in two indexes: $(head -n 3 "$T/dups" | tr '\n' ' ')"; return 1
    fi
    if ! cmp -s "$T/hashes" <(awk '{print $1}' "$T/indexed.sorted"); then
        echo "hashes and indexes differ:"
        diff "$T/hashes" <(awk '{print $1}' "$T/indexed.sorted") | head -n 5; return 1
    fi
    # and the hash's status matches its index
    awk '{print "HGET '"$P:{$Q}"':job:" $1 " status"}' "$T/indexed.sorted" | rcli > "$T/status"
    paste -d' ' "$T/indexed.sorted" "$T/status" | awk '$2 != $3' > "$T/wrong"
    if [ -s "$T/wrong" ]; then
        echo "status differs from index: $(head -n 3 "$T/wrong" | tr '\n' ' ')"; return 1
    fi
}

# check_consistent NAME: a test that $Q is consistent.
check_consistent() {
    if consistent > "$T/why" 2>&1; then pass; else fail "$1: $(cat "$T/why")"; fi
}

# rel_finish stops every jqrun process the scenario started (SIGTERM, as
# an operator would; kill -9 after 15 s), fails on any sanitizer report in
# their logs (leaks are reported at exit), shows the logs on failure and
# ends the scenario with lib.sh's finish.
rel_finish() {
    local name pidvar pid f
    for name in $RNAMES; do
        pidvar="${name}_PID"
        pid=${!pidvar}
        kill -CONT "$pid" 2>/dev/null
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null && fail "$name did not stop within 15 s of SIGTERM"
        wait "$pid" 2>/dev/null
    done
    for f in "$T"/*.log; do
        [ -f "$f" ] || continue
        if grep -q -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$f"; then
            fail "sanitizer report in ${f#"$T"/}:"
            grep -E -A30 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$f" | head -n 60
        else
            pass
        fi
    done
    rel_dump
    finish
}

# When a scenario fails, show the end of every log it wrote.
rel_dump() {
    [ "$FAIL" -gt 0 ] || return 0
    for f in "$T"/*.log "$T"/redis/redis.log; do
        [ -f "$f" ] || continue
        echo "--- $SUITE: last lines of ${f#"$T"/}"
        tail -n 15 "$f"
    done
}

# rconf LEASE MAX_ATTEMPTS writes the scenario config (listen on any port,
# the reliability handlers, 4 at once on the default queue, finished jobs
# kept so they can be counted) and exports JQRUN_CONFIG.
rconf() {
    cat > "$T/jqrun.conf" <<CONF
listen   = "127.0.0.1:0"
handlers = "$PWD/$REL/handlers"
queues   = { default = { concurrency = 4 } }
lease    = $1
defaults = { max_attempts = $2, backoff = 50, timeout = 10000 }
shutdown_grace = 2000
retention = { completed = { count = 1000000, age = 86400000 },
              failed    = { count = 1000000, age = 86400000 } }
CONF
    export JQRUN_CONFIG=$T/jqrun.conf
}
