#!/bin/bash
# hostile_http.sh — `jqrun server` under hostile HTTP: a corpus of malformed
# JSON (tests/reliability/http_corpus.txt), invalid UTF-8, 10,000-deep
# nesting, wrong types, huge numbers, duplicate keys, oversized bodies
# (with a length and chunked), wrong content types, header floods, huge
# URLs, 1,000 connections at once and slowloris clients.
#   - every answer jqrun makes is a JSON 4xx ({statusCode, error, message});
#   - answers libmicrohttpd makes itself before a request reaches jqrun
#     (431 header too big, 414 URL too long, 400 malformed framing, 505)
#     are 4xx/5xx and close the connection (their body is libmicrohttpd's
#     HTML: see RELIABILITY.md);
#   - the server stays up and answers /health promptly throughout;
#   - its memory stays flat: RSS after the first pass and after the last
#     differ by less than 8 MiB (long form), and stays within 64 MiB of
#     the start after everything.
#   long: 5 passes, 40 rounds of 1,000 connections, 300 slowloris clients
#   for 10 s; short: 1 pass, 15 rounds, 50 slowloris clients for 4 s
source tests/lib.sh
source tests/reliability/common.sh
PASSES=$(pick 1 5)
SLOW_N=$(pick 50 300)
SLOW_S=$(pick 4 10)
export JQRUN_PREFIX=hx
P=hx
rredis_start
cat > "$T/jqrun.conf" <<CONF
listen   = "127.0.0.1:0"
handlers = "$PWD/$REL/handlers"
queues   = { default = { concurrency = 1 } }
http     = { max_body = 1048576, connection_timeout = 30, max_connections = 1024 }
log      = { level = "${HX_LOG:-info}" }
CONF
# The slowloris server closes idle connections after 2 s; the last one
# takes at most 100 connections.
sed 's/connection_timeout = 30/connection_timeout = 2/' "$T/jqrun.conf" > "$T/slow.conf"
sed 's/max_connections = 1024/max_connections = 100/' "$T/jqrun.conf" > "$T/lim.conf"
export JQRUN_CONFIG=$T/jqrun.conf
rstart api server
PORT=$(rport api)
check "api is up" test -n "$PORT"
url=http://127.0.0.1:$PORT
ZERO=00000000-0000-4000-8000-000000000000
RSS_START=$(rss_kb "$api_PID")

# answer NAME EXPECT CURL-ARGS...: one request; EXPECT is "json" (a JSON
# 4xx error) or "mhd" (any 4xx/5xx, or the connection cut).
BAD=0
answer() {
    local name=$1 expect=$2 st
    shift 2
    st=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' "$@" 2>/dev/null)
    echo "$st" > "$T/status"
    case $expect in
    json) if [ "${st:0:1}" = 4 ] && "$RELCLIENT" check "$T/status" "$T/body"; then pass; else
              fail "$name: status $st, body $(head -c 200 "$T/body")"; BAD=$((BAD + 1)); fi ;;
    mhd)  if [ "$st" = 000 ] || [ "${st:0:1}" = 4 ] || [ "${st:0:1}" = 5 ]; then pass; else
              fail "$name: status $st"; BAD=$((BAD + 1)); fi ;;
    esac
}
post() { # post NAME EXPECT PATH FILE [CONTENT-TYPE]
    answer "$1" "$2" -X POST -H "Content-Type: ${5-application/json}" --data-binary "@$4" "$url$3"
}
raw() { # raw NAME EXPECT-STATUS: stdin is the request, sent as it is
    local st
    st=$("$RELCLIENT" raw "$PORT" | head -n 1)
    if [ "$st" = "$2" ]; then pass; else fail "$1: status $st, want $2"; BAD=$((BAD + 1)); fi
}
alive() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$url/health")" = 200 ]; }

# Generated cases, written once.
G=$T/gen
mkdir -p "$G"
printf '{"type":"x","payload":{"a":"\xff\xfe"}}' > "$G/utf8_ff"
printf '{"type":"x","payload":{"a":"\xc0\xaf"}}' > "$G/utf8_overlong"
printf '{"type":"x","payload":{"a":"\xed\xa0\x80"}}' > "$G/utf8_surrogate"
printf '{"type":"x","payload":{"a":"\xe2\x82"}}' > "$G/utf8_truncated"
printf '{"type":"x","payload":{"\xff":1}}' > "$G/utf8_key"
printf '{"type":"x\xff","payload":{}}' > "$G/utf8_type"
# An unknown field of 150 two-byte characters: the message quotes 100 bytes
# of it; cutting a character in half once made the answer "null".
{ printf '{"type":"x","payload":{},"a'; for i in $(seq 150); do printf '\xc3\xa9'; done; printf '":1}'; } > "$G/utf8_cut_name"
nest() { # nest OPEN CLOSE N: OPEN*N then CLOSE*N
    head -c "$3" /dev/zero | tr '\0' "$1"; head -c "$3" /dev/zero | tr '\0' "$2"
}
nest '[' ']' 10000 > "$G/deep_array"
{ printf '{"type":"x","payload":{"a":'; nest '[' ']' 10000; printf '}}'; } > "$G/deep_payload_array"
{ printf '{"type":"x","payload":'; for i in $(seq 10000); do printf '{"a":'; done; printf '1';
  head -c 10000 /dev/zero | tr '\0' '}'; printf '}'; } > "$G/deep_payload_object"
{ printf '{"type":"x","payload":{"a":"'; head -c 2000000 /dev/zero | tr '\0' a; printf '"}}'; } > "$G/oversized"
{ printf '{"type":"x","payload":{"a":'; head -c 1200000 /dev/zero | tr '\0' 9; printf '}}'; } > "$G/oversized_number"
{ printf '{"type":"x","payload":{"a":1'; head -c 500000 /dev/zero | tr '\0' 0; printf '}}'; } > "$G/huge_number"
{ printf '{"type":"x","payload":{"a":0.'; head -c 500000 /dev/zero | tr '\0' 1; printf 'e99999999999}}'; } > "$G/huge_exponent"
{ printf '{"type":"x","payload":{'; for i in $(seq 20000); do printf '"k%d":1,' "$i"; done; printf '"k":1,"k":2}}'; } > "$G/dup_after_many"
printf '{"type":"x","payload":{}}' > "$G/valid"

one_pass() {
    local line n=0
    while IFS= read -r line; do
        case $line in '#'*) continue ;; esac
        n=$((n + 1))
        [ "$line" = "<empty>" ] && line=""
        printf '%s' "$line" > "$T/case"
        post "corpus $n: $line" json /jobs "$T/case"
        if [ $n -le 12 ]; then
            post "corpus $n to /jobs/bulk" json /jobs/bulk "$T/case"
            post "corpus $n to complete" json "/jobs/$ZERO/complete" "$T/case"
            answer "corpus $n to PUT /jobs/:id" json -X PUT -H 'Content-Type: application/json' \
                --data-binary "@$T/case" "$url/jobs/$ZERO"
        fi
    done < "$REL/http_corpus.txt"
    for f in utf8_ff utf8_overlong utf8_surrogate utf8_truncated utf8_key utf8_type \
             utf8_cut_name deep_array deep_payload_array deep_payload_object huge_number \
             huge_exponent dup_after_many; do
        post "$f" json /jobs "$G/$f"
    done
    post "deep to bulk" json /jobs/bulk "$G/deep_array"
    # Oversized: 413 from the length alone; chunked ones at their end.
    post "oversized" json /jobs "$G/oversized"
    post "oversized number" json /jobs "$G/oversized_number"
    answer "oversized chunked" json -X POST -H 'Content-Type: application/json' \
        -H 'Transfer-Encoding: chunked' --data-binary "@$G/oversized_number" "$url/jobs"
    # Content types.
    post "text/plain" json /jobs "$G/valid" text/plain
    post "no content type" json /jobs "$G/valid" ""
    post "application/jsonx" json /jobs "$G/valid" application/jsonx
    post "multipart" json /jobs "$G/valid" "multipart/form-data; boundary=x"
    # Paths and queries, some not UTF-8.
    answer "unknown route" json "$url/nope"
    answer "path traversal" json "$url/jobs/../../../etc/passwd"
    answer "id not UTF-8" json "$url/jobs/%ff%fe"
    answer "id with NUL" json "$url/jobs/a%00b"
    answer "id too long" json "$url/jobs/$(head -c 5000 /dev/zero | tr '\0' a)"
    answer "queue not UTF-8" json "$url/jobs?queue=%ff"
    answer "unknown query key not UTF-8" json "$url/jobs?%ff%fe=1"
    answer "metadata key not UTF-8" json "$url/jobs?metadata.%ff=1"
    answer "limit huge" json "$url/jobs?limit=99999999999999999999999"
    answer "cursor garbage" json "$url/jobs?cursor=9:-1"
    answer "lease wait huge" json -X POST "$url/queues/default/lease?wait=1e99"
    answer "lease bad queue" json -X POST "$url/queues/%ff/lease"
    answer "method" json -X FOO "$url/jobs"
    answer "delete jobs bad status" json -X DELETE "$url/queues/default/jobs?status=completed"
    # Header floods and framing that libmicrohttpd answers itself.
    { printf 'GET /health HTTP/1.1\r\nHost: x\r\n'; for i in $(seq 5000); do printf 'X-H%d: aaaaaaaaaaaaaaaa\r\n' "$i"; done; printf '\r\n'; } |
        raw "5,000 headers" 431
    { printf 'GET /health HTTP/1.1\r\nHost: x\r\nX-Big: '; head -c 100000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } |
        raw "one 100 KB header" 431
    { printf 'GET /'; head -c 100000 /dev/zero | tr '\0' a; printf ' HTTP/1.1\r\nHost: x\r\n\r\n'; } |
        raw "100 KB URL" 414
    printf 'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}' |
        raw "Content-Length not a number" 400
    printf 'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n\r\n{}' |
        raw "Content-Length overflow" 413
    printf 'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n' |
        raw "bad chunk size" 400
    printf 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n' | raw "HTTP/9.9" 505
    printf 'GARBAGE\r\n\r\n' | raw "garbage request line" 0
    printf '\x00\x01\x02\xff\xfe\r\n\r\n' | raw "binary request line" 0
    { printf 'GET /health HTTP/1.1\r\nHost: x\r\n'; for i in $(seq 200); do printf 'X-Ok%d: %d\r\n' "$i" "$i"; done; printf '\r\n'; } |
        raw "200 small headers are fine" 200
    check "alive after a pass" alive
}

one_pass
RSS1=$(rss_kb "$api_PID")
for p in $(seq 2 "$PASSES"); do one_pass; done
RSS2=$(rss_kb "$api_PID")

# 1,000 connections at once, each with a bad request, several rounds.
ROUNDS=$(pick 15 40)
conns_bad=0
for i in $(seq "$ROUNDS"); do
    "$RELCLIENT" conns "$PORT" 1000 > "$T/conns.out" 2>&1 || conns_bad=$((conns_bad + 1))
    grep -q 'unanswered=0 ' "$T/conns.out" || cat "$T/conns.out"
done
expect_eq "1,000 concurrent connections all answered with JSON errors, $ROUNDS rounds" "$conns_bad" 0
check "alive after 1,000 connections" alive

# Slowloris: trickling and silent clients while /health is checked, on a
# second server whose idle timeout is 2 s.
rstart slow -c "$T/slow.conf" server
SPORT=$(rport slow)
check "slowloris server is up" test -n "$SPORT"
"$RELCLIENT" slowloris "$SPORT" "$SLOW_N" "$SLOW_S" 2 > "$T/slow.out" 2>&1
slow_rc=$?
cat "$T/slow.out"
expect_eq "slowloris: health kept answering, silent clients closed" "$slow_rc" 0
check "alive after slowloris" sh -c "[ \"\$(curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$SPORT/health)\" = 200 ]"
check "slowloris server never died" kill -0 "$slow_PID"
RSS3=$(rss_kb "$api_PID")

RSS_SLOW=$(rss_kb "$slow_PID")

# Over max_connections: 300 connections at once against a limit of 100
# wait their turn (in the listen backlog) and are all answered promptly.
rstart lim -c "$T/lim.conf" server
LPORT=$(rport lim)
"$RELCLIENT" conns "$LPORT" 300 > "$T/lim.out" 2>&1
lim_rc=$?
cat "$T/lim.out"
lim_secs=$(sed -n 's/^conns:.* seconds=\([0-9]*\).*/\1/p' "$T/lim.out")
expect_eq "limit 100: 300 connections all answered" "$lim_rc" 0
check "limit 100: within 5 s (${lim_secs:-?} s)" test "${lim_secs:-99}" -lt 5
check "limit 100: still serving" sh -c "[ \"\$(curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$LPORT/health)\" = 200 ]"

# And it still does its job.
printf '{"type":"count","payload":{"ok":true}}' > "$T/case"
answer_ok=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "@$T/case" "$url/jobs")
expect_eq "a good job is still accepted" "$answer_ok" 201
check "the server never died" kill -0 "$api_PID"
[ "$PASSES" -gt 1 ] && check "memory flat between passes (${RSS1} -> ${RSS2} KiB)" test $((RSS2 - RSS1)) -lt $((8192 * MEMX))
check "memory bounded after 1,000 connections (${RSS3} KiB)" test $((RSS3 - RSS_START)) -lt $((65536 * MEMX))
check "slowloris server memory bounded (${RSS_SLOW} KiB)" test "$RSS_SLOW" -lt $((RSS_START + 65536 * MEMX))
figure "passes=$PASSES requests_not_json_4xx=$BAD RSS_KiB start=$RSS_START after_pass1=$RSS1" \
       "after_pass$PASSES=$RSS2 after_1000_conns=$RSS3 slowloris_server=$RSS_SLOW;" \
       "rounds of 1,000 connections=$ROUNDS, last: $(sed -n 's/^conns: //p' "$T/conns.out");" \
       "$(sed -n 's/^slowloris: //p' "$T/slow.out");" \
       "limit 100 of 300: $(sed -n 's/^conns: //p' "$T/lim.out")"
rel_finish
