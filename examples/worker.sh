#!/bin/sh
# examples/worker.sh — an external jqrun worker in plain shell (curl + jq).
#
# It long-polls a queue for a job (POST /queues/Q/lease?wait=ms), "works"
# it, reporting progress, and then completes it with a result — or fails
# it, when the payload asks for that.  Any language that speaks HTTP can
# do the same; jqrun's own workers run Lua handlers instead.
#
# usage: examples/worker.sh [QUEUE]
#   JQRUN_URL  the API (default http://127.0.0.1:8080)
#   WAIT       ms to wait for a job per request, at most 30000 (default 10000)
#   ONCE=1     stop after one job
#
# The job's payload drives the pretend work:
#   {"sleep": 2}               take 2 seconds (heartbeats keep the lease)
#   {"fail": "message"}        fail; jqrun retries it with backoff
#   {"fail": "m", "permanent": true}   fail for good, no retry
# Anything else completes with {"worker": ..., "echo": <payload>}.
set -u
URL=${JQRUN_URL:-http://127.0.0.1:8080}
QUEUE=${1:-default}
WAIT=${WAIT:-10000}
ONCE=${ONCE:-0}
ME="worker.sh:$(hostname):$$"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'echo "$ME: stopping"; exit 0' INT TERM

log() { echo "$(date -u +%H:%M:%S) $ME: $*" >&2; }

# post PATH JSON: POST a JSON body; prints the status code, body in $TMP/out.
post() {
    curl -s -o "$TMP/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary "$2" "$URL$1"
}

# lease: one long poll.  Prints the status code; the answer is in $TMP/job.
lease() {
    curl -s -o "$TMP/job" -w '%{http_code}' -X POST "$URL/queues/$QUEUE/lease?wait=$WAIT"
}

# pj FILTER: a field of the current job's payload.
pj() { printf '%s\n' "$payload" | jq -r "$1"; }

# work ID TOKEN: does the job of $TMP/job and reports the outcome.
work() {
    id=$1 token=$2
    payload=$(jq -c '.job.payload' "$TMP/job")
    secs=$(pj '.sleep // 0 | floor')
    post "/jobs/$id/progress" "$(jq -nc --arg t "$token" '{leaseToken: $t, progress: 10}')" >/dev/null
    # Sleep a second at a time, heartbeating so the lease does not expire.
    i=0
    while [ "$i" -lt "$secs" ]; do
        sleep 1
        i=$((i + 1))
        code=$(post "/jobs/$id/heartbeat" "$(jq -nc --arg t "$token" '{leaseToken: $t}')")
        if [ "$code" = 409 ]; then
            log "job $id: lost the lease; dropping it"
            return
        fi
    done
    err=$(pj '.fail // empty')
    if [ -n "$err" ]; then
        retry=$(pj 'if .permanent then "false" else "true" end')
        body=$(jq -nc --arg t "$token" --arg e "$err" --argjson r "$retry" \
            '{leaseToken: $t, error: $e, retry: $r}')
        code=$(post "/jobs/$id/fail" "$body")
    else
        body=$(jq -nc --arg t "$token" --arg w "$ME" --argjson p "$payload" \
            '{leaseToken: $t, result: {worker: $w, echo: $p}}')
        code=$(post "/jobs/$id/complete" "$body")
    fi
    case $code in
    200) log "job $id: $(jq -r .status "$TMP/out")" ;;
    409) log "job $id: lease expired before we finished; jqrun gave it to another worker" ;;
    *)   log "job $id: answer $code: $(cat "$TMP/out")" ;;
    esac
}

log "serving queue $QUEUE at $URL"
while :; do
    code=$(lease)
    case $code in
    200)
        id=$(jq -r .job.id "$TMP/job")
        token=$(jq -r .leaseToken "$TMP/job")
        log "job $id ($(jq -r .job.type "$TMP/job")), attempt $(jq -r .job.attempts "$TMP/job")"
        work "$id" "$token"
        [ "$ONCE" = 1 ] && exit 0
        ;;
    204) ;;                       # nothing came within WAIT: ask again
    000) log "cannot reach $URL; retrying"; sleep 1 ;;
    *)   log "lease answered $code: $(cat "$TMP/job")"; sleep 1 ;;
    esac
done
