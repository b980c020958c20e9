#!/bin/bash
# tests/integration/http_api.sh — the REST API of DESIGN.md against a real
# redis-server: every route, every error path, seed 000's examples, paging,
# the external-worker cycle, long polls, metrics, and Redis going away.
#
# Runs `jqrun server` (API + scheduler, no workers), so jobs stay where the
# API puts them.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
ISO_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'

# req METHOD PATH [JSON [CONTENT-TYPE]]: one request; the status lands in
# $ST, the body in $OUT, the headers in $T/hdr.
req() {
    local m=$1 p=$2
    if [ $# -ge 3 ]; then
        ST=$(curl -s -o "$T/out" -D "$T/hdr" -w '%{http_code}' -X "$m" \
            -H "Content-Type: ${4:-application/json}" --data-binary "$3" "$U$p")
    else
        ST=$(curl -s -o "$T/out" -D "$T/hdr" -w '%{http_code}' -X "$m" "$U$p")
    fi
    OUT=$(cat "$T/out")
}
# jf FILTER: a field of the last answer, as jq -r prints it.
jf() { jq -r "$1" <<<"$OUT" 2>/dev/null; }
# is_error NAME STATUS REASON: the last answer is the error shape.
is_error() {
    expect_eq "$1 status" "$ST" "$2"
    expect_eq "$1 body" "$(jq -c '[.statusCode, .error, (.message | type)]' <<<"$OUT" 2>/dev/null)" \
        "[$2,\"$3\",\"string\"]"
}
enqueue() { req POST /jobs "$1"; jf .id; }
matches() { [[ $1 =~ $2 ]]; }
contains() { case "$1" in *"$2"*) return 0 ;; esac; return 1; }

redis_start
cat >"$T/jqrun.conf" <<EOF
listen = "127.0.0.1:0"
handlers = "$PWD/handlers"
queues = { default = { concurrency = 2 } }
http = { max_body = 65536 }
lease = 3000
EOF
jq_start -c "$T/jqrun.conf" server
if ! wait_for 10 grep -q 'api: listening on http://' "$T/jqrun.log"; then
    fail "server did not start"
    finish
fi
U=$(grep -o 'api: listening on http://[^ ]*' "$T/jqrun.log" | head -n 1 | sed 's/.* on //')

# ---- health ----
req GET /health
expect_eq "health status" "$ST" 200
expect_eq "health body" "$(jq -c . <<<"$OUT")" '{"status":"ok","redis":"ok"}'

# ---- seed 000, example 1: a simple job ----
req POST /jobs '{
  "type": "generate-report",
  "payload": { "reportId": "xyz-789", "format": "pdf" }
}'
expect_eq "example 1 status" "$ST" 201
expect_eq "example 1 keys" "$(jf 'keys_unsorted | join(",")')" "id,type,queue,status,createdAt"
check "example 1 id is a uuid" matches "$(jf .id)" "$UUID_RE"
expect_eq "example 1 type" "$(jf .type)" generate-report
expect_eq "example 1 queue" "$(jf .queue)" default
expect_eq "example 1 waiting" "$(jf .status)" waiting
check "example 1 createdAt is ISO" matches "$(jf .createdAt)" "$ISO_RE"
REPORT=$(jf .id)

# ---- seed 000, example 2: delayed, high priority, webhook ----
req POST /jobs '{
  "type": "send-push-notification",
  "payload": { "recipient": "push-token-abc", "message": "Your order has shipped!" },
  "priority": 10,
  "delay": 30000,
  "webhook": { "url": "https://webhook.site/your-unique-id",
               "headers": { "X-Auth-Token": "secret-token" } }
}'
expect_eq "example 2 status" "$ST" 201
expect_eq "example 2 delayed" "$(jf .status)" delayed
PUSH=$(jf .id)

# ---- seed 000, API reference body ----
req POST /jobs '{"type":"send-welcome-email","payload":{"userId":"user-123","template":"welcome-v2"},"priority":5,"delay":10000,"webhook":{"url":"https://api.example.com/job-updates"}}'
expect_eq "reference status" "$ST" 201
expect_eq "reference delayed" "$(jf .status)" delayed
WELCOME=$(jf .id)

# ---- GET /jobs/:id ----
req GET "/jobs/$WELCOME"
expect_eq "get status" "$ST" 200
expect_eq "get fields" "$(jf '[.id, .type, .status, .priority, .payload.userId, .queue] | join(",")')" \
    "$WELCOME,send-welcome-email,delayed,5,user-123,default"
expect_eq "get createdAt is ms" "$(jf '.createdAt | type')" number
expect_eq "get id first" "$(jf 'keys_unsorted[0]')" id
MISSING=00000000-0000-4000-8000-000000000000
req GET "/jobs/$MISSING"
is_error "get unknown" 404 "Not Found"
expect_eq "get unknown message" "$(jf .message)" "Job with ID '$MISSING' not found."
req GET /jobs/not-a-uuid
is_error "get malformed id" 404 "Not Found"

# ---- DELETE /jobs/:id ----
req DELETE "/jobs/$PUSH"
expect_eq "cancel status" "$ST" 200
expect_eq "cancel message" "$(jf .message)" "Job '$PUSH' was successfully canceled."
expect_eq "cancel job" "$(jf '[.job.id, .job.status] | join(",")')" "$PUSH,canceled"
check "cancel updatedAt" test "$(jf .job.updatedAt)" -gt 0
req DELETE "/jobs/$PUSH"
is_error "cancel twice" 409 Conflict
expect_eq "cancel twice message" "$(jf .message)" \
    "Job with ID '$PUSH' cannot be canceled because it is in the 'canceled' state."
req DELETE "/jobs/$MISSING"
is_error "cancel unknown" 404 "Not Found"

# ---- POST /jobs/:id/retry ----
req POST "/jobs/$PUSH/retry"
expect_eq "retry canceled" "$ST" 200
expect_eq "retry job state" "$(jf .job.status)" waiting
check "retry message" test -n "$(jf .message)"
req POST "/jobs/$REPORT/retry"
is_error "retry waiting" 409 Conflict
expect_match "retry waiting message" "$(jf .message)" "in the 'waiting' state"
req POST "/jobs/$MISSING/retry"
is_error "retry unknown" 404 "Not Found"

# ---- validation ----
req POST /jobs '{"payload":{}}'
is_error "no type" 400 "Bad Request"
expect_match "no type names it" "$(jf .message)" "'type'"
req POST /jobs '{"type":"t","payload":{},"priority":11}'
is_error "priority range" 400 "Bad Request"
expect_match "priority names it" "$(jf .message)" "priority"
req POST /jobs '{"type":"t","payload":[1]}'
is_error "payload array" 400 "Bad Request"
expect_match "payload names it" "$(jf .message)" "payload"
req POST /jobs '{"type":"t","payload":{},"prority":1}'
is_error "unknown field" 400 "Bad Request"
expect_match "unknown field names it" "$(jf .message)" "prority"
req POST /jobs '{"type": "t", "payload": {'
is_error "malformed json" 400 "Bad Request"
expect_match "malformed json position" "$(jf .message)" "line 1, column"
req POST /jobs ''
is_error "empty body" 400 "Bad Request"

# ---- content types and sizes ----
req POST /jobs '{"type":"t","payload":{}}' text/plain
is_error "text/plain" 415 "Unsupported Media Type"
ST=$(curl -s -o "$T/out" -w '%{http_code}' -X POST --data-binary '{"type":"t","payload":{}}' \
    -H 'Content-Type:' "$U/jobs")
OUT=$(cat "$T/out")
is_error "no content type" 415 "Unsupported Media Type"
req POST /jobs '{"type":"t","payload":{}}' 'application/json; charset=utf-8'
expect_eq "json with charset" "$ST" 201
head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/{"type":"t","payload":{"s":"/; s/$/"}}/' >"$T/big.json"
ST=$(curl -s -o "$T/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @"$T/big.json" "$U/jobs")
OUT=$(cat "$T/out")
is_error "body over max_body" 413 "Content Too Large"
ST=$(curl -s -o "$T/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json" "$U/jobs")
OUT=$(cat "$T/out")
is_error "chunked body over max_body" 413 "Content Too Large"

# ---- routing ----
req GET /nowhere
is_error "unknown route" 404 "Not Found"
req PATCH /jobs
is_error "wrong method" 405 "Method Not Allowed"
ALLOW=$(grep -i '^allow:' "$T/hdr" | tr -d '\r')
expect_match "405 allows GET" "$ALLOW" GET
expect_match "405 allows POST" "$ALLOW" POST
req GET /jobs/bulk
is_error "GET bulk" 405 "Method Not Allowed"
expect_eq "bulk allows POST" "$(grep -i '^allow:' "$T/hdr" | tr -d '\r')" "Allow: POST"
req DELETE /health
is_error "DELETE health" 405 "Method Not Allowed"
ST=$(curl -s -o /dev/null -w '%{http_code}' -I "$U/health")
expect_eq "HEAD health" "$ST" 200

# ---- idempotency ----
req POST /jobs '{"type":"charge","payload":{"amount":5},"idempotencyKey":"order-42"}'
expect_eq "idem first" "$ST" 201
FIRST=$(jf .id)
req POST /jobs '{"type":"charge","payload":{"amount":5},"idempotencyKey":"order-42"}'
expect_eq "idem repeat status" "$ST" 200
expect_eq "idem repeat id" "$(jf .id)" "$FIRST"
expect_eq "idem repeat shape" "$(jf 'keys_unsorted | join(",")')" "id,type,queue,status,createdAt"

# ---- bulk ----
req POST /jobs/bulk '[{"type":"a","payload":{"n":1}},{"type":"b","payload":{"n":2},"queue":"bulkq"},{"type":"a","payload":{"n":3},"delay":60000}]'
expect_eq "bulk status" "$ST" 201
expect_eq "bulk shapes" "$(jf '[.[] | .type + "/" + .queue + "/" + .status] | join(",")')" \
    "a/default/waiting,b/bulkq/waiting,a/default/delayed"
req GET /queues
BEFORE=$(jf '.queues[] | select(.name == "bulkq") | .waiting')
req POST /jobs/bulk '[{"type":"a","payload":{},"queue":"bulkq"},{"type":"a","payload":{},"priority":99,"queue":"bulkq"}]'
is_error "bulk invalid" 400 "Bad Request"
check "bulk names the index" contains "$(jf .message)" "[1].priority"
req GET /queues
expect_eq "bulk all or nothing" "$(jf '.queues[] | select(.name == "bulkq") | .waiting')" "$BEFORE"
req POST /jobs/bulk '{"type":"a","payload":{}}'
is_error "bulk not an array" 400 "Bad Request"
req POST /jobs/bulk '[]'
is_error "bulk empty" 400 "Bad Request"
jq -nc '[range(1001) | {type: "a", payload: {}}]' >"$T/bulk1001.json"
req POST /jobs/bulk "$(cat "$T/bulk1001.json")"
is_error "bulk over 1000" 400 "Bad Request"

# ---- GET /jobs: paging and filters ----
jq -nc '[range(25) | {type: (if . % 5 == 0 then "odd" else "page" end), queue: "pages",
        payload: {n: .}, metadata: {customerId: (if . < 3 then "c1" else "c2" end)}}]' \
    >"$T/pages.json"
req POST /jobs/bulk "$(cat "$T/pages.json")"
expect_eq "pages enqueued" "$ST" 201
: >"$T/seen"
CURSOR="" PAGES=0
while :; do
    req GET "/jobs?queue=pages&limit=10${CURSOR:+&cursor=$CURSOR}"
    [ "$ST" = 200 ] || { fail "page $PAGES status $ST"; break; }
    jf '.jobs[].id' >>"$T/seen"
    expect_eq "page count field" "$(jf .count)" "$(jf '.jobs | length')"
    PAGES=$((PAGES + 1))
    CURSOR=$(jf '.next // empty')
    [ -z "$CURSOR" ] || [ $PAGES -ge 10 ] && break
done
expect_eq "pages" "$PAGES" 3
expect_eq "paged jobs" "$(wc -l <"$T/seen" | tr -d ' ')" 25
expect_eq "paged jobs unique" "$(sort -u "$T/seen" | wc -l | tr -d ' ')" 25
req GET "/jobs?queue=pages&limit=10&cursor=0:10"
expect_eq "cursor resumes" "$ST" 200
req GET "/jobs?queue=pages&type=odd"
expect_eq "type filter" "$(jf '[.jobs[].type] | unique | join(",")'),$(jf .count)" "odd,5"
req GET "/jobs?queue=pages&metadata.customerId=c1"
expect_eq "metadata filter" "$(jf .count)" 3
req GET "/jobs?queue=pages&status=waiting&limit=1000"
expect_eq "status filter" "$(jf .count),$(jf .next)" "25,null"
req GET "/jobs?queue=pages&status=delayed"
expect_eq "status filter empty" "$(jf .count),$(jf .next)" "0,null"
req GET "/jobs?status=completed"
expect_eq "queue defaults to default" "$ST" 200
req GET "/jobs?status=running"
is_error "bad status" 400 "Bad Request"
for l in 0 1001 abc -1; do
    req GET "/jobs?limit=$l"
    is_error "limit $l" 400 "Bad Request"
done
req GET "/jobs?stauts=waiting"
is_error "unknown query parameter" 400 "Bad Request"
req GET "/jobs?queue=pages&cursor=garbage"
is_error "bad cursor" 400 "Bad Request"
req GET "/jobs?queue=bad%20name"
is_error "bad queue" 400 "Bad Request"

# ---- queues ----
req GET /queues
expect_eq "queues status" "$ST" 200
expect_eq "queue shape" "$(jf '.queues[] | select(.name == "pages") | keys_unsorted | join(",")')" \
    "name,waiting,delayed,processing,completed,failed,canceled,paused"
expect_eq "queue counts" "$(jf '.queues[] | select(.name == "pages") | .waiting')" 25
req POST /queues/pages/pause
expect_eq "pause" "$ST,$(jq -c . <<<"$OUT")" '200,{"queue":"pages","paused":true}'
req GET /queues
expect_eq "paused listed" "$(jf '.queues[] | select(.name == "pages") | .paused')" true
req POST /queues/pages/lease
expect_eq "lease on paused queue" "$ST" 204
req POST /queues/pages/resume
expect_eq "resume" "$ST,$(jq -c . <<<"$OUT")" '200,{"queue":"pages","paused":false}'
req DELETE "/queues/pages/jobs?type=odd"
expect_eq "remove by type" "$ST,$(jf .removed)" "200,5"
req DELETE "/queues/pages/jobs?status=processing"
is_error "remove bad status" 400 "Bad Request"
req DELETE "/queues/pages/jobs?status=waiting"
expect_eq "remove waiting" "$ST,$(jf .removed)" "200,20"
req GET /queues
expect_eq "removed" "$(jf '.queues[] | select(.name == "pages") | .waiting')" 0
req POST /queues/pages/pause '{}'
expect_eq "pause ignores a body" "$ST" 200
req POST /queues/pages/resume

# ---- handlers ----
req GET /handlers
expect_eq "handlers" "$ST,$(jf '.handlers | type')" "200,array"

# ---- external workers: lease, heartbeat, progress, complete ----
ID=$(enqueue '{"type":"ext-work","queue":"ext","payload":{"x":1}}')
req POST /queues/ext/lease
expect_eq "lease status" "$ST" 200
expect_eq "lease job" "$(jf '[.job.id, .job.status, .job.attempts] | join(",")')" "$ID,processing,1"
TOKEN=$(jf .leaseToken)
check "lease token" test -n "$TOKEN"
check "lease deadline" test "$(jf .leaseExpiresAt)" -gt "$(($(date +%s) * 1000))"
req POST /queues/ext/lease
expect_eq "lease empty queue" "$ST,$OUT" "204,"
req POST "/jobs/$ID/heartbeat" "{\"leaseToken\":\"$TOKEN\"}"
expect_eq "heartbeat" "$ST" 200
check "heartbeat deadline" test "$(jf .leaseExpiresAt)" -gt 0
req POST "/jobs/$ID/heartbeat" '{"leaseToken":"stale"}'
is_error "heartbeat stale token" 409 Conflict
req POST "/jobs/$ID/heartbeat" '{}'
is_error "heartbeat without token" 400 "Bad Request"
req POST "/jobs/$ID/progress" "{\"leaseToken\":\"$TOKEN\",\"progress\":50}"
expect_eq "progress" "$ST" 200
req POST "/jobs/$ID/progress" "{\"leaseToken\":\"$TOKEN\",\"progress\":150}"
is_error "progress range" 400 "Bad Request"
req GET "/jobs/$ID"
expect_eq "progress stored" "$(jf .progress)" 50
req POST "/jobs/$ID/complete" "{\"leaseToken\":\"$TOKEN\",\"result\":{\"ok\":true,\"rows\":3}}"
expect_eq "complete" "$ST,$(jq -c . <<<"$OUT")" "200,{\"id\":\"$ID\",\"status\":\"completed\"}"
req GET "/jobs/$ID"
expect_eq "completed job" "$(jf '[.status, (.result | tostring)] | join(" ")')" 'completed {"ok":true,"rows":3}'
req POST "/jobs/$ID/complete" "{\"leaseToken\":\"$TOKEN\"}"
is_error "complete twice" 409 Conflict
req POST "/jobs/$MISSING/complete" '{"leaseToken":"x"}'
is_error "complete unknown" 404 "Not Found"
req POST "/jobs/$ID/complete" "{\"leaseToken\":\"$TOKEN\"}" text/plain
is_error "complete text/plain" 415 "Unsupported Media Type"

# ---- external workers: fail ----
ID=$(enqueue '{"type":"ext-work","queue":"ext","payload":{},"retry":{"maxAttempts":3,"backoff":60000}}')
req POST /queues/ext/lease
TOKEN=$(jf .leaseToken)
req POST "/jobs/$ID/fail" "{\"leaseToken\":\"$TOKEN\",\"error\":\"upstream 502\"}"
expect_eq "fail retried" "$ST,$(jf .status)" "200,delayed"
req GET "/jobs/$ID"
expect_eq "fail error stored" "$(jf .error)" "upstream 502"
ID=$(enqueue '{"type":"ext-work","queue":"ext","payload":{}}')
req POST /queues/ext/lease
TOKEN=$(jf .leaseToken)
req POST "/jobs/$ID/fail" "{\"leaseToken\":\"$TOKEN\",\"error\":\"bad input\",\"retry\":false}"
expect_eq "fail permanent" "$ST,$(jf .status)" "200,failed"
req POST "/jobs/$ID/fail" "{\"leaseToken\":\"$TOKEN\",\"error\":\"again\"}"
is_error "fail stale token" 409 Conflict
req POST "/jobs/$ID/retry"
expect_eq "retry failed job" "$ST,$(jf .job.status)" "200,waiting"

# ---- seed 002: PUT /jobs/:id ----
req POST /queues/ext/lease
ID=$(jf .job.id) TOKEN=$(jf .leaseToken)
req PUT "/jobs/$ID" "{\"status\":\"started\",\"leaseToken\":\"$TOKEN\"}"
expect_eq "put started" "$ST,$(jf .success),$(jf .message)" "200,true,Job $ID updated"
req PUT "/jobs/$ID" "{\"status\":\"progress\",\"progress\":75,\"leaseToken\":\"$TOKEN\"}"
expect_eq "put progress" "$ST" 200
req PUT "/jobs/$ID" "{\"status\":\"done\",\"leaseToken\":\"$TOKEN\"}"
is_error "put bad status" 400 "Bad Request"
req PUT "/jobs/$ID" '{"status":"completed"}'
is_error "put without token" 400 "Bad Request"
req PUT "/jobs/$ID" "{\"status\":\"completed\",\"result\":{\"recordsProcessed\":10000},\"leaseToken\":\"$TOKEN\"}"
expect_eq "put completed" "$ST,$(jf .status)" "200,completed"
req GET "/jobs/$ID"
expect_eq "put result" "$(jf '[.status, .progress, .result.recordsProcessed] | join(",")')" \
    "completed,75,10000"

# ---- long polls ----
req POST "/queues/ext/lease?wait=99999"
is_error "wait too long" 400 "Bad Request"
T0=$(date +%s%N)
req POST "/queues/lp/lease?wait=400"
T1=$(date +%s%N)
expect_eq "long poll times out" "$ST" 204
check "long poll waited" test $(((T1 - T0) / 1000000)) -ge 350
curl -s -o "$T/lp.out" -w '%{http_code}' -X POST "$U/queues/lp/lease?wait=5000" >"$T/lp.code" &
LP=$!
sleep 0.3
LPID=$(enqueue '{"type":"t","queue":"lp","payload":{}}')
T0=$(date +%s%N)
wait $LP
T1=$(date +%s%N)
expect_eq "long poll wakes" "$(cat "$T/lp.code"),$(jq -r .job.id "$T/lp.out")" "200,$LPID"
check "long poll wakes fast" test $(((T1 - T0) / 1000000)) -lt 1500
# Parked lease requests do not hold the API's threads.
LPS=""
for i in $(seq 1 12); do
    curl -s -o /dev/null -X POST "$U/queues/idle/lease?wait=3000" &
    LPS="$LPS $!"
done
sleep 0.3
T0=$(date +%s%N)
req GET /health
T1=$(date +%s%N)
expect_eq "health during long polls" "$ST" 200
check "health during long polls is fast" test $(((T1 - T0) / 1000000)) -lt 500
wait $LPS

# ---- an expired lease is taken back (the scheduler), its token refused ----
ID=$(enqueue '{"type":"t","queue":"exp","payload":{}}')
req POST /queues/exp/lease
TOKEN=$(jf .leaseToken)
job_waiting() { [ "$(curl -s "$U/jobs/$ID" | jq -r .status)" = waiting ]; }
check "expired lease reclaimed" wait_for 10 job_waiting
req POST "/jobs/$ID/complete" "{\"leaseToken\":\"$TOKEN\"}"
is_error "complete after reclaim" 409 Conflict

# ---- examples/worker.sh: the shell worker does one job each run ----
ID=$(enqueue '{"type":"shell","queue":"shw","payload":{"sleep":1,"n":7}}')
JQRUN_URL=$U WAIT=5000 ONCE=1 timeout 20 sh examples/worker.sh shw 2>>"$T/worker.log"
req GET "/jobs/$ID"
expect_eq "worker.sh completes" "$(jf '[.status, .result.echo.n, .progress] | join(",")')" "completed,7,10"
expect_match "worker.sh result" "$(jf .result.worker)" "worker.sh:"
ID=$(enqueue '{"type":"shell","queue":"shw","payload":{"fail":"boom","permanent":true}}')
JQRUN_URL=$U WAIT=5000 ONCE=1 timeout 20 sh examples/worker.sh shw 2>>"$T/worker.log"
req GET "/jobs/$ID"
expect_eq "worker.sh fails" "$(jf '[.status, .error] | join(",")')" "failed,boom"

# ---- metrics ----
metric() { curl -s "$U/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
CT=$(curl -s -o "$T/metrics" -w '%{content_type}' "$U/metrics")
expect_match "metrics content type" "$CT" "text/plain; version=0.0.4"
expect_match "metrics queue gauge" "$(cat "$T/metrics")" 'jqrun_jobs{queue="default",state="waiting"}'
K='jqrun_jobs_enqueued_total{queue="default",type="generate-report"}'
N0=$(metric "$K")
W0=$(metric 'jqrun_jobs{queue="default",state="waiting"}')
enqueue '{"type":"generate-report","payload":{}}' >/dev/null
enqueue '{"type":"generate-report","payload":{}}' >/dev/null
expect_eq "enqueued counter moves" "$(metric "$K")" "$((N0 + 2))"
expect_eq "waiting gauge moves" "$(metric 'jqrun_jobs{queue="default",state="waiting"}')" "$((W0 + 2))"
check "completed counter" test "$(metric 'jqrun_jobs_completed_total{queue="ext",type="ext-work"}')" -ge 1
check "lease rejections counted" test "$(metric jqrun_lease_rejected_total)" -ge 3
check "http histogram" test "$(metric 'jqrun_http_request_duration_seconds_count{code="201"}')" -ge 1
if command -v promtool >/dev/null 2>&1; then
    curl -s "$U/metrics" >"$T/metrics"
    check "promtool check metrics" promtool check metrics <"$T/metrics"
else
    echo "note $SUITE: promtool not installed; Prometheus format not checked"
fi

# ---- Redis goes away, then comes back ----
kill "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
req GET /health
is_error "health without redis" 503 "Service Unavailable"
expect_eq "health says redis" "$(jf .redis)" unavailable
req POST /jobs '{"type":"t","payload":{}}'
is_error "enqueue without redis" 503 "Service Unavailable"
req GET "/jobs/$REPORT"
is_error "get without redis" 503 "Service Unavailable"
req GET /metrics
expect_eq "metrics without redis" "$ST" 200
expect_match "redis_up 0" "$OUT" "jqrun_redis_up 0"
redis_start
health_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ]; }
check "health after redis restart" wait_for 10 health_ok
req POST /jobs '{"type":"t","payload":{}}'
expect_eq "enqueue after redis restart" "$ST" 201
req GET "/jobs/$(jf .id)"
expect_eq "get after redis restart" "$ST" 200

# ---- Redis refuses writes (OOM) ----
rcli config set maxmemory 1 >/dev/null
req POST /jobs '{"type":"t","payload":{}}'
is_error "enqueue on OOM" 503 "Service Unavailable"
expect_match "OOM message" "$(jf .message)" "OOM"
rcli config set maxmemory 0 >/dev/null

finish
