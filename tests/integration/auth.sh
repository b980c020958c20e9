#!/bin/bash
# tests/integration/auth.sh — applications and API keys (seed 002): 401 /
# 403 / revocation, an isolation matrix of two applications against every
# endpoint, an application's queue served by a worker, the per-key rate
# limit (429 + Retry-After), and the open API's warning.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

MK=master-key-for-tests

# req KEY METHOD PATH [JSON]: one request with x-api-key KEY ("" = none);
# the status lands in $ST, the body in $OUT, the headers in $T/hdr.
req() {
    local k=$1 m=$2 p=$3
    local args=(-s -o "$T/out" -D "$T/hdr" -w '%{http_code}' -X "$m")
    [ -n "$k" ] && args+=(-H "x-api-key: $k")
    [ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    ST=$(curl "${args[@]}" "$U$p")
    OUT=$(cat "$T/out")
}
jf() { jq -r "$1" <<<"$OUT" 2>/dev/null; }
is_error() {
    expect_eq "$1 status" "$ST" "$2"
    expect_eq "$1 body" "$(jq -c '[.statusCode, .error, (.message | type)]' <<<"$OUT" 2>/dev/null)" \
        "[$2,\"$3\",\"string\"]"
}
matches() { [[ $1 =~ $2 ]]; }
header() { tr -d '\r' <"$T/hdr" | grep -i "^$1:" | head -n 1 | sed 's/^[^:]*: *//'; }
# start_server CONF NAME MODE: starts jqrun, sets $U, logs to $T/NAME.log.
start_server() {
    "$JQRUN" -c "$1" "$3" >"$T/$2.log" 2>&1 &
    JQ_PID=$!
    PIDS="$PIDS $JQ_PID"
    if ! wait_for 10 grep -q 'api: listening on http://' "$T/$2.log"; then
        fail "$2 did not start"; cat "$T/$2.log"; finish
    fi
    U=$(grep -o 'api: listening on http://[^ ]*' "$T/$2.log" | head -n 1 | sed 's/.* on //')
}

redis_start
mkdir -p "$T/handlers"
cp handlers/echo.lua "$T/handlers/"
# fan: a handler whose follow-up job names a queue of its own.
cat >"$T/handlers/fan.lua" <<'EOF'
return function(job, ctx)
  return { next = ctx.enqueue("echo", { from = job.id }, { queue = "followups" }) }
end
EOF
cat >"$T/auth.conf" <<EOF
listen = "127.0.0.1:0"
handlers = "$T/handlers"
auth = { master_key = "$MK" }
EOF
start_server "$T/auth.conf" server server
SERVER_PID=$JQ_PID
check "no open-API warning with a master key" bash -c "! grep -q 'no master_key set' '$T/server.log'"

# ---- open and closed doors ----
req "" GET /health
expect_eq "health needs no key" "$ST" 200
req "" GET /jobs
is_error "no key" 401 Unauthorized
expect_eq "401 says how to authenticate" "$(header WWW-Authenticate)" Bearer
req "jq_0000" GET /queues
is_error "unknown key" 401 Unauthorized
req "" GET /no/such/route
is_error "unknown route without a key" 401 Unauthorized
req "$MK" GET /no/such/route
is_error "unknown route with the master key" 404 "Not Found"
req "" POST /applications '{"name":"x"}'
is_error "create without a key" 401 Unauthorized

# ---- applications ----
req "$MK" POST /applications '{"name":"Alpha","settings":{"maxConcurrentJobs":10}}'
expect_eq "create A" "$ST" 201
expect_eq "create A keys" "$(jf 'keys_unsorted | join(",")')" "id,name,apiKey,settings,createdAt,queuePrefix"
AID=$(jf .id); KA=$(jf .apiKey)
check "A's key is jq_ + 64 hex" matches "$KA" '^jq_[0-9a-f]{64}$'
expect_eq "A's queue prefix" "$(jf .queuePrefix)" "app.$AID."
expect_eq "A's settings" "$(jf .settings.maxConcurrentJobs)" 10
req "$MK" POST /applications '{"name":"Bravo"}'
expect_eq "create B" "$ST" 201
BID=$(jf .id); KB=$(jf .apiKey)
check "two keys differ" [ "$KA" != "$KB" ]
rcli hgetall 'jq:{@auth}:apps' >"$T/stored"; rcli hgetall 'jq:{@auth}:keys' >>"$T/stored"
check "the key itself is stored nowhere" bash -c "! grep -q '${KA#jq_}' '$T/stored'"
check "its SHA-256 is" grep -q "$(printf %s "$KA" | sha256sum | cut -c1-64)" "$T/stored"
req "$MK" GET /applications
expect_eq "list" "$(jf '[.applications[].name] | join(",")'),$(jf .count)" "Alpha,Bravo,2"
expect_eq "list shows no key" "$(jf '[.applications[] | has("apiKey") or has("keyHash")] | any')" false
req "$MK" GET "/applications/$AID"
expect_eq "get one" "$ST/$(jf .name)" "200/Alpha"
req "$MK" POST /applications '{"settings":{}}'
is_error "create without a name" 400 "Bad Request"
req "$MK" POST /applications '{"name":"x","apiKey":"mine"}'
is_error "create with an unknown field" 400 "Bad Request"
req "$MK" POST /applications '{"name":"x","settings":[1]}'
is_error "create with array settings" 400 "Bad Request"
for route in "POST /applications" "GET /applications" "GET /applications/$BID" \
             "DELETE /applications/$BID" "GET /metrics"; do
    req "$KA" $route '{"name":"sneaky"}'
    is_error "app key on $route" 403 Forbidden
done
curl -s -o /dev/null -H "Authorization: Bearer $KA" -w '%{http_code}' "$U/queues" >"$T/bearer"
expect_eq "Authorization: Bearer works" "$(cat "$T/bearer")" 200

# ---- isolation matrix ----
# Both applications use the same queue names and the same idempotency key.
req "$KA" POST /jobs '{"type":"echo","queue":"emails","payload":{"n":1},"idempotencyKey":"k1"}'
expect_eq "A enqueues" "$ST/$(jf .queue)" "201/emails"
JA=$(jf .id)
req "$KB" POST /jobs '{"type":"echo","queue":"emails","payload":{"n":2},"idempotencyKey":"k1"}'
expect_eq "B enqueues (same idempotency key, own job)" "$ST/$(jf .queue)" "201/emails"
JB=$(jf .id)
check "idempotency keys are per application" [ "$JA" != "$JB" ]
req "$KA" POST /jobs/bulk '[{"type":"echo","queue":"bulk","payload":{}},{"type":"echo","payload":{}}]'
expect_eq "A bulk" "$ST/$(jf '[.[].queue] | join(",")')" "201/bulk,default"
JA2=$(jf '.[0].id')
req "$KB" POST /jobs/bulk '[{"type":"echo","queue":"bulk","payload":{}}]'
expect_eq "B bulk" "$ST" 201
JB2=$(jf '.[0].id')
req "$MK" POST /jobs '{"type":"echo","queue":"emails","payload":{"n":0}}'
JM=$(jf .id)
LONGQ=$(printf 'q%.0s' $(seq 1 110))
req "$KA" POST /jobs "{\"type\":\"echo\",\"queue\":\"$LONGQ\",\"payload\":{}}"
is_error "A's queue name too long for its namespace" 400 "Bad Request"

req "$KA" GET "/jobs/$JA"
expect_eq "A reads its job" "$ST/$(jf .queue)/$(jf .payload.n)" "200/emails/1"
req "$KB" GET "/jobs/$JA"
is_error "B reads A's job" 404 "Not Found"
req "$KA" GET "/jobs/$JB"
is_error "A reads B's job" 404 "Not Found"
req "$KA" GET "/jobs/$JM"
is_error "A reads the master's job" 404 "Not Found"
req "$MK" GET "/jobs/$JA"
expect_eq "master reads A's job" "$ST/$(jf .queue)/$(jf .app)" "200/app.$AID.emails/$AID"
req "$MK" GET "/jobs/$JB2"
expect_eq "master reads B's job" "$ST/$(jf .queue)" "200/app.$BID.bulk"

req "$KA" GET "/jobs?queue=emails"
expect_eq "A lists its emails" "$(jf '[.jobs[].id] | join(",")')/$(jf .count)" "$JA/1"
req "$KB" GET "/jobs?queue=emails"
expect_eq "B lists its emails" "$(jf '[.jobs[].id] | join(",")')/$(jf '[.jobs[].queue] | unique | join(",")')" "$JB/emails"
req "$KB" GET "/jobs?queue=bulk"
expect_eq "B lists its bulk" "$(jf '[.jobs[].id] | join(",")')" "$JB2"
req "$MK" GET "/jobs?queue=emails"
expect_eq "master lists the global emails" "$(jf '[.jobs[].id] | join(",")')" "$JM"
req "$MK" GET "/jobs?queue=app.$AID.emails"
expect_eq "master lists A's emails" "$(jf '[.jobs[].id] | join(",")')" "$JA"

req "$KA" GET /queues
expect_eq "A's queues" "$(jf '[.queues[].name] | join(",")')" "bulk,default,emails"
expect_eq "A's counts" "$(jf '[.queues[].waiting] | add')" 3
req "$KB" GET /queues
expect_eq "B's queues" "$(jf '[.queues[].name] | join(",")')" "bulk,emails"
req "$MK" GET /queues
expect_eq "master sees every queue" \
    "$(jf "[.queues[].name | select(. == \"app.$AID.emails\" or . == \"app.$BID.emails\" or . == \"emails\")] | length")" 3

req "$KB" DELETE "/jobs/$JA"
is_error "B cancels A's job" 404 "Not Found"
req "$KA" GET "/jobs/$JA"
expect_eq "A's job untouched" "$(jf .status)" waiting
req "$KA" DELETE "/jobs/$JA2"
expect_eq "A cancels its job" "$ST/$(jf .job.status)/$(jf .job.queue)" "200/canceled/bulk"
req "$KB" POST "/jobs/$JA2/retry"
is_error "B retries A's job" 404 "Not Found"
req "$KA" POST "/jobs/$JA2/retry"
expect_eq "A retries its job" "$ST/$(jf .job.status)" "200/waiting"

req "$KA" POST /queues/emails/pause
expect_eq "A pauses emails" "$ST/$(jf .queue)/$(jf .paused)" "200/emails/true"
req "$KB" GET /queues
expect_eq "B's emails not paused" "$(jf '.queues[] | select(.name == "emails") | .paused')" false
req "$MK" GET /queues
expect_eq "the global emails not paused" "$(jf '.queues[] | select(.name == "emails") | .paused')" false
req "$KB" POST /queues/emails/lease
expect_eq "B still leases from its emails" "$ST/$(jf .job.id)/$(jf .job.queue)" "200/$JB/emails"
TB=$(jf .leaseToken)
req "$KA" POST /queues/emails/resume
expect_eq "A resumes" "$ST/$(jf .paused)" "200/false"

req "$KB" POST /jobs '{"type":"echo","queue":"emails","payload":{}}'
req "$KB" DELETE /queues/emails/jobs
expect_eq "B empties its emails" "$ST/$(jf .removed)" "200/1"
req "$KA" GET "/jobs/$JA"
expect_eq "A's waiting job survives B's purge" "$(jf .status)" waiting
req "$MK" GET "/jobs/$JM"
expect_eq "the master's job survives B's purge" "$(jf .status)" waiting

req "$KB" POST /queues/emails/lease
expect_eq "B finds nothing to lease (A's job is A's)" "$ST" 204
req "$KA" POST /queues/emails/lease
expect_eq "A leases its job" "$ST/$(jf .job.id)/$(jf .job.queue)" "200/$JA/emails"
TA=$(jf .leaseToken)
for op in heartbeat progress complete fail; do
    body="{\"leaseToken\":\"$TA\"$([ $op = progress ] && echo ',"progress":5')}"
    req "$KB" POST "/jobs/$JA/$op" "$body"
    is_error "B $op on A's job (with A's token)" 404 "Not Found"
done
req "$KB" PUT "/jobs/$JA" "{\"status\":\"completed\",\"leaseToken\":\"$TA\"}"
is_error "B PUT on A's job" 404 "Not Found"
req "$KA" POST "/jobs/$JA/complete" "{\"leaseToken\":\"$TA\",\"result\":{\"ok\":true}}"
expect_eq "A completes its job" "$ST/$(jf .status)" "200/completed"
req "$KB" PUT "/jobs/$JB" "{\"status\":\"completed\",\"leaseToken\":\"$TB\"}"
expect_eq "B completes its job with PUT" "$ST/$(jf .status)" "200/completed"
req "$KB" POST /queues/emails/lease?wait=300
expect_eq "a long poll sees only B's queue" "$ST" 204

# Subscriptions and live events, when this build has them.
req "$MK" GET /subscriptions
if [ "$ST" != 404 ]; then
    req "$KA" POST /subscriptions '{"name":"a-sub","endpoint":"http://127.0.0.1:9/x","events":["completed"]}'
    expect_eq "A subscribes" "$ST" 201
    SA=$(jf .id)
    req "$KB" GET /subscriptions
    expect_eq "B does not see A's subscription" \
        "$(jq -r "[.. | objects | select(.id? == \"$SA\")] | length" <<<"$OUT")" 0
    req "$KB" DELETE "/subscriptions/$SA"
    is_error "B deletes A's subscription" 404 "Not Found"
    req "$KA" GET /subscriptions
    expect_eq "A sees its subscription" \
        "$(jq -r "[.. | objects | select(.id? == \"$SA\")] | length" <<<"$OUT")" 1
    req "$MK" GET /subscriptions
    expect_eq "master sees A's subscription" \
        "$(jq -r "[.. | objects | select(.id? == \"$SA\")] | length" <<<"$OUT")" 1
fi
ST=$(curl -s -o /dev/null -w '%{http_code}' -m 1 -H "x-api-key: $MK" "$U/events")
if [ "$ST" = 200 ] || [ "$ST" = 000 ]; then
    curl -s -N -m 2 -H "x-api-key: $KB" "$U/events" >"$T/events.b" 2>/dev/null &
    EV=$!
    sleep 0.3
    req "$KA" POST /jobs '{"type":"echo","queue":"emails","payload":{}}'
    JE=$(jf .id)
    req "$KB" POST /jobs '{"type":"echo","queue":"emails","payload":{}}'
    JEB=$(jf .id)
    wait $EV
    check "B's events show B's job" grep -q "$JEB" "$T/events.b"
    check "B's events never show A's job" bash -c "! grep -q '$JE' '$T/events.b'"
fi

# ---- an application's queue, worked by a configured worker ----
cat >"$T/worker.conf" <<EOF
listen = "127.0.0.1:0"
handlers = "$T/handlers"
queues = { ["app.$AID.work"] = { concurrency = 1 } }
auth = { master_key = "$MK" }
EOF
"$JQRUN" -c "$T/worker.conf" worker >"$T/worker.log" 2>&1 &
WPID=$!
PIDS="$PIDS $WPID"
req "$KA" POST /jobs '{"type":"fan","queue":"work","payload":{}}'
JW=$(jf .id)
done_ok() { req "$KA" GET "/jobs/$JW"; [ "$(jf .status)" = completed ]; }
check "the worker runs A's job" wait_for 10 done_ok
expect_eq "A sees its queue name" "$(jf .queue)" work
NEXT=$(jf .result.next)
req "$KA" GET "/jobs/$NEXT"
expect_eq "the handler's follow-up stays in A's namespace" "$ST/$(jf .queue)/$(jf .app)" "200/followups/$AID"
req "$KB" GET "/jobs/$NEXT"
is_error "B cannot see A's follow-up" 404 "Not Found"
kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null

# ---- revocation ----
req "$KB" GET /queues
expect_eq "B works before revocation" "$ST" 200
req "$MK" DELETE "/applications/$BID"
expect_eq "revoke B" "$ST/$(jf .application.id)" "200/$BID"
req "$KB" GET /queues
is_error "B's key right after revocation" 401 Unauthorized
req "$KB" GET "/jobs/$JB"
is_error "B's key on a job" 401 Unauthorized
req "$MK" GET "/jobs/$JB"
expect_eq "B's jobs stay for the master" "$ST" 200
req "$MK" DELETE "/applications/$BID"
is_error "revoke twice" 404 "Not Found"
req "$MK" GET /applications
expect_eq "B is gone from the list" "$(jf '[.applications[].id] | join(",")')" "$AID"
req "$KA" GET /queues
expect_eq "A still works" "$ST" 200
kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null

# ---- rate limit ----
cat >"$T/rl.conf" <<EOF
listen = "127.0.0.1:0"
handlers = "$T/handlers"
auth = { master_key = "$MK", rate_limit = { requests = 5, per = 2000 } }
EOF
start_server "$T/rl.conf" rl server
RL_PID=$JQ_PID
codes=""
for i in $(seq 1 8); do
    codes="$codes $(curl -s -o "$T/rl.out" -D "$T/hdr" -w '%{http_code}' -H "x-api-key: $KA" "$U/queues")"
    [ "${codes##* }" = 429 ] && break
done
expect_eq "5 requests pass, the 6th is limited" "$codes" " 200 200 200 200 200 429"
OUT=$(cat "$T/rl.out"); ST=429
is_error "429 body" 429 "Too Many Requests"
RA=$(header Retry-After)
check "Retry-After is whole seconds, at least 1 (got '$RA')" matches "$RA" '^[1-9][0-9]*$'
req "$MK" GET /queues
expect_eq "another key has its own bucket" "$ST" 200
req "" GET /health
expect_eq "health is never limited" "$ST" 200
sleep "$RA"
req "$KA" GET /queues
expect_eq "after Retry-After the key works again" "$ST" 200
kill "$RL_PID" 2>/dev/null; wait "$RL_PID" 2>/dev/null

# ---- no master key: open, and said so ----
cat >"$T/open.conf" <<EOF
listen = "127.0.0.1:0"
handlers = "$T/handlers"
EOF
start_server "$T/open.conf" open server
check "the open API is announced" grep -q "auth: no master_key set: the API is open to anyone who can reach ${U#http://}" "$T/open.log"
req "" GET /queues
expect_eq "open API needs no key" "$ST" 200
req "" GET "/jobs/$JA"
expect_eq "open API sees every job" "$ST/$(jf .queue)" "200/app.$AID.emails"

finish
