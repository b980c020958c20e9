#!/bin/bash
# webhooks.sh — job webhooks and subscriptions end to end: a receiver on
# loopback (tests/integration/wh_receiver.js) checks body, headers and the
# Standard Webhooks signature, with the npm package `standardwebhooks` and
# with openssl; retries on 5xx, no retry on 4xx, a receiver that is down,
# jqrun killed with deliveries pending, subscription filters.
source tests/lib.sh
redis_start
export JQRUN_PREFIX=wh
H=$T/handlers
mkdir -p "$H"
cat > "$T/jqrun.conf" <<CONF
listen   = "127.0.0.1:0"
handlers = "$H"
queues   = { default = { concurrency = 2 }, subs = { concurrency = 2 } }
defaults = { max_attempts = 1, backoff = 100, timeout = 5000 }
webhooks = { attempts = 5, backoff = 100, timeout = 2000 }
CONF
export JQRUN_CONFIG=$T/jqrun.conf
cat > "$H/echo.lua" <<'LUA'
return function(job, ctx) ctx.progress(50) return { echo = job.payload } end
LUA
cat > "$H/nope.lua" <<'LUA'
return function(job, ctx) ctx.fail("no way") end
LUA

# The verifying library, installed for this run only.  Without network the
# openssl check below still verifies every signature.
LIB=1
if ! timeout 90 npm install --no-save --silent --prefix "$T/npm" standardwebhooks >"$T/npm.log" 2>&1; then
    LIB=0
    echo "webhooks: npm install standardwebhooks failed; verifying with openssl only"
fi
export NODE_PATH=$T/npm/node_modules

RPORT=0
recv_start() {
    node tests/integration/wh_receiver.js "$RPORT" "${SECRET:-}" >"$T/recv.out" 2>&1 &
    RECV_PID=$!
    PIDS="$PIDS $RECV_PID"
    wait_for 5 grep -q '^port ' "$T/recv.out" || { echo "receiver did not start"; cat "$T/recv.out"; }
    RPORT=$(sed -n 's/^port //p' "$T/recv.out")
    R=http://127.0.0.1:$RPORT
}
recv_stop() { kill "$RECV_PID" 2>/dev/null; wait "$RECV_PID" 2>/dev/null; }
api_url() {
    wait_for 10 grep -q 'api: listening on http://' "$T/jqrun.log" || return 1
    U=$(grep -o 'api: listening on http://[^ ]*' "$T/jqrun.log" | tail -n 1 | sed 's/.* on //')
}
post() { curl -s -X POST "$U$1" -H 'Content-Type: application/json' -d "$2"; }
job() { curl -s "$U/jobs/$1"; }
got() { curl -s "$R/ctl/log?path=$1"; }
count() { got "$1" | jq length; }
plan() { curl -s -X POST "$R/ctl/plan?path=$1&codes=$2" >/dev/null; }
delivery() { job "$1" | jq -r ".webhookDeliveries[] | select(.event == \"$2\") | $3"; }

# sig_ok checks request $2 of path $1 with openssl, the way the README
# shows: HMAC-SHA256 keyed with the base64-decoded secret.
sig_ok() {
    local req key want
    req=$(got "$1" | jq -c ".[$2]")
    key=$(printf %s "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
    want=$(printf '%s.%s.%s' "$(jq -r '.headers["webhook-id"]' <<<"$req")" \
               "$(jq -r '.headers["webhook-timestamp"]' <<<"$req")" "$(jq -r .body <<<"$req")" |
           openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
    [ "v1,$want" = "$(jq -r '.headers["webhook-signature"]' <<<"$req")" ]
}
lib_ok() { [ "$LIB" = 0 ] || [ "$(got "$1" | jq "[.[] | select(.verified != true)] | length")" = 0 ]; }

recv_start
jq_start run
api_url || { echo "jqrun did not start"; cat "$T/jqrun.log"; }

# No secret configured: one is generated, shared through Redis and logged.
SECRET=$(rcli get wh:webhook_secret)
expect_match "secret generated" "$SECRET" "whsec_"
check "secret logged at start" grep -q "webhook secret: $SECRET" "$T/jqrun.log"
curl -s -X POST -G "$R/ctl/secret" --data-urlencode "value=$SECRET" >/dev/null

# 500 twice, then 200: delivered once, three attempts, one webhook-id.
plan /done 500,500,200
id=$(post /jobs "{\"type\":\"echo\",\"payload\":{\"n\":1},\"webhooks\":{\"completed\":{\"url\":\"$R/done\",\"headers\":{\"X-Token\":\"t0k\"}},\"progress\":\"$R/prog\"}}" | jq -r .id)
check "delivered after two 500s" wait_for 10 bash -c "[ \"\$(curl -s $U/jobs/$id | jq -r '.webhookDeliveries[] | select(.event == \"completed\") | .status')\" = delivered ]"
expect_eq "three requests" "$(count /done)" 3
expect_eq "three attempts on the job" "$(delivery "$id" completed .attempts)" 3
expect_eq "last error kept" "$(delivery "$id" completed .lastError)" "HTTP 500"
expect_eq "one webhook-id for every retry" "$(got /done | jq -r '[.[].headers["webhook-id"]] | unique | length')" 1
expect_eq "webhook-id is the delivery id" "$(got /done | jq -r '.[0].headers["webhook-id"]')" "$(delivery "$id" completed .id)"
B=$(got /done | jq -r '.[2].body')
expect_eq "body jobId" "$(jq -r .jobId <<<"$B")" "$id"
expect_eq "body status" "$(jq -r .status <<<"$B")" completed
expect_eq "body type" "$(jq -r .type <<<"$B")" echo
expect_eq "body result" "$(jq -c .result <<<"$B")" '{"echo":{"n":1}}'
check "body timestamp and completedAt (ms)" jq -e '(.timestamp > 1600000000000) and (.completedAt == .timestamp)' <<<"$B"
HD=$(got /done | jq -c '.[2].headers')
expect_eq "X-Job-Id" "$(jq -r '.["x-job-id"]' <<<"$HD")" "$id"
expect_eq "X-Job-Status" "$(jq -r '.["x-job-status"]' <<<"$HD")" completed
expect_eq "Content-Type" "$(jq -r '.["content-type"]' <<<"$HD")" application/json
expect_eq "the job's own header" "$(jq -r '.["x-token"]' <<<"$HD")" t0k
check "webhook-timestamp is unix seconds" bash -c "[ \$(( \$(date +%s) - $(jq -r '.["webhook-timestamp"]' <<<"$HD") )) -lt 60 ]"
check "signature verifies with openssl" sig_ok /done 2
check "signature verifies with the standardwebhooks library" lib_ok /done
check "progress webhook delivered" wait_for 5 bash -c "[ \"\$(curl -s '$R/ctl/log?path=/prog' | jq length)\" = 1 ]"
expect_eq "progress body" "$(got /prog | jq -r '.[0].body | fromjson | .progress')" 50
check "progress signature (openssl)" sig_ok /prog 0

# The openssl check does fail on a signature made with another secret.
wrong_secret() { local SECRET=whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; ! sig_ok /done 2; }
check "openssl check rejects a wrong secret" wrong_secret

# Seed 000's webhook on a job that fails for good: the failed event.
id=$(post /jobs "{\"type\":\"nope\",\"payload\":{},\"webhook\":{\"url\":\"$R/seed0\"}}" | jq -r .id)
check "failed webhook delivered" wait_for 5 bash -c "[ \"\$(curl -s '$R/ctl/log?path=/seed0' | jq length)\" = 1 ]"
expect_eq "failed body status" "$(got /seed0 | jq -r '.[0].body | fromjson | .status')" failed
expect_match "failed body error" "$(got /seed0 | jq -r '.[0].body | fromjson | .error')" "no way"
check "failed signature (openssl)" sig_ok /seed0 0

# A 4xx other than 408/429 is not retried.
plan /gone 410
id=$(post /jobs "{\"type\":\"echo\",\"payload\":{},\"webhooks\":{\"completed\":\"$R/gone\"}}" | jq -r .id)
check "4xx recorded as failed" wait_for 5 bash -c "[ \"\$(curl -s $U/jobs/$id | jq -r '.webhookDeliveries[0].status')\" = failed ]"
sleep 0.6
expect_eq "4xx sent once" "$(count /gone)" 1
expect_eq "4xx one attempt" "$(delivery "$id" completed .attempts)" 1
expect_eq "4xx error" "$(delivery "$id" completed .lastError)" "HTTP 410"

# A receiver that never answers times out (webhooks.timeout) and is retried.
plan /slow hang,200
id=$(post /jobs "{\"type\":\"echo\",\"payload\":{},\"webhooks\":{\"completed\":\"$R/slow\"}}" | jq -r .id)
check "delivered after a timeout" wait_for 8 bash -c "[ \"\$(curl -s $U/jobs/$id | jq -r '.webhookDeliveries[0].status')\" = delivered ]"
expect_eq "timeout recorded" "$(delivery "$id" completed .lastError)" "timeout after 2000 ms"
expect_eq "timeout: two attempts" "$(delivery "$id" completed .attempts)" 2

# The receiver is down while the job completes: delivered once it is back.
recv_stop
id=$(post /jobs "{\"type\":\"echo\",\"payload\":{},\"webhooks\":{\"completed\":\"$R/late\"}}" | jq -r .id)
check "first attempt fails while down" wait_for 5 bash -c "[ \"\$(curl -s $U/jobs/$id | jq -r '.webhookDeliveries[0].attempts')\" -ge 1 ]"
expect_eq "still pending" "$(delivery "$id" completed .status)" pending
recv_start
check "delivered after the receiver is back" wait_for 10 bash -c "[ \"\$(curl -s $U/jobs/$id | jq -r '.webhookDeliveries[0].status')\" = delivered ]"
expect_eq "late delivery received once" "$(count /late)" 1
check "late signature (openssl)" sig_ok /late 0

# jqrun killed (-9) with a delivery pending: delivered after a restart.
recv_stop
id=$(post /jobs "{\"type\":\"echo\",\"payload\":{},\"webhooks\":{\"completed\":\"$R/crash\"}}" | jq -r .id)
check "pending before the crash" wait_for 5 bash -c "[ \"\$(curl -s $U/jobs/$id | jq -r '.webhookDeliveries[0].attempts')\" -ge 1 ]"
kill -9 "$JQ_PID"; wait "$JQ_PID" 2>/dev/null
expect_eq "outbox holds it across the crash" "$(rcli zcard 'wh:{default}:outbox')" 1
recv_start
jq_start run
check "delivered after the restart" wait_for 15 bash -c "[ \"\$(redis-cli -s $REDIS_SOCK hget 'wh:{default}:wh:$(rcli hget "wh:{default}:job:$id" whIds)' status)\" = delivered ]"
expect_eq "crash delivery received once" "$(count /crash)" 1
api_url
check "the restarted process logs the same secret" bash -c "[ \$(grep -c 'webhook secret: $SECRET' $T/jqrun.log) -ge 2 ]"

# Subscriptions: validation, then filters by queue, type and metadata.
r=$(post /subscriptions '{"name":"x","endpoint":"ftp://nope"}')
expect_eq "bad endpoint: 400" "$(jq -r .statusCode <<<"$r")" 400
expect_match "bad endpoint named" "$(jq -r .message <<<"$r")" "'endpoint'"
r=$(post /subscriptions "{\"name\":\"x\",\"endpoint\":\"$R/s\",\"events\":[\"finished\"]}")
expect_match "bad event named" "$(jq -r .message <<<"$r")" "'events"
r=$(post /subscriptions "{\"endpoint\":\"$R/s\"}")
expect_match "missing name" "$(jq -r .message <<<"$r")" "'name'"
r=$(post /subscriptions "{\"name\":\"x\",\"endpoint\":\"$R/s\",\"filters\":{\"metadata\":{\"k\":{}}}}")
expect_match "bad metadata filter" "$(jq -r .message <<<"$r")" "'filters.metadata.k'"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/subscriptions" -H 'Content-Type: application/json' -d '{"name":')
expect_eq "broken JSON: 400" "$code" 400

S1=$(post /subscriptions "{\"name\":\"gold echo\",\"endpoint\":\"$R/sub1\",\"filters\":{\"queues\":[\"subs\"],\"types\":[\"echo\"],\"metadata\":{\"tier\":\"gold\"}},\"events\":[\"completed\"],\"headers\":{\"X-Sub\":\"one\"}}")
expect_eq "subscription created" "$(jq -r .name <<<"$S1")" "gold echo"
S1=$(jq -r .id <<<"$S1")
S2=$(post /subscriptions "{\"name\":\"failures\",\"endpoint\":\"$R/sub2\",\"events\":[\"failed\"]}" | jq -r .id)
expect_eq "two listed" "$(curl -s "$U/subscriptions" | jq .count)" 2
sleep 1.2   # the dispatcher re-reads subscriptions every second
post /jobs '{"type":"echo","queue":"subs","payload":{"k":"a"},"metadata":{"tier":"gold"}}' >/dev/null
post /jobs '{"type":"echo","queue":"subs","payload":{"k":"b"},"metadata":{"tier":"silver"}}' >/dev/null
post /jobs '{"type":"nope","queue":"subs","payload":{"k":"c"},"metadata":{"tier":"gold"}}' >/dev/null
post /jobs '{"type":"echo","queue":"default","payload":{"k":"d"},"metadata":{"tier":"gold"}}' >/dev/null
check "subscription delivery" wait_for 10 bash -c "[ \"\$(curl -s '$R/ctl/log?path=/sub1' | jq length)\" -ge 1 ]"
check "failure subscription delivery" wait_for 10 bash -c "[ \"\$(curl -s '$R/ctl/log?path=/sub2' | jq length)\" -ge 1 ]"
sleep 1
expect_eq "only the gold echo job of queue subs" "$(got /sub1 | jq -c '[.[].body | fromjson | .result.echo.k]')" '["a"]'
SB=$(got /sub1 | jq -r '.[0].body')
expect_eq "subscription body status" "$(jq -r .status <<<"$SB")" completed
expect_eq "subscription body queue" "$(jq -r .queue <<<"$SB")" subs
expect_eq "subscription body metadata" "$(jq -r .metadata.tier <<<"$SB")" gold
expect_eq "subscription id in body" "$(jq -r .subscriptionId <<<"$SB")" "$S1"
expect_eq "subscription header" "$(got /sub1 | jq -r '.[0].headers["x-sub"]')" one
check "subscription signature (openssl)" sig_ok /sub1 0
check "subscription signature (library)" lib_ok /sub1
expect_eq "failures: the one failed job" "$(got /sub2 | jq -c '[.[].body | fromjson | .status]')" '["failed"]'
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$U/subscriptions/$S1")
expect_eq "delete subscription" "$code" 200
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$U/subscriptions/$S1")
expect_eq "deleted twice: 404" "$code" 404
expect_eq "one left" "$(curl -s "$U/subscriptions" | jq -r '.subscriptions[0].id')" "$S2"
sleep 1.2
post /jobs '{"type":"echo","queue":"subs","payload":{"k":"e"},"metadata":{"tier":"gold"}}' >/dev/null
sleep 1.5
expect_eq "no delivery after delete" "$(count /sub1)" 1

finish
