#!/bin/bash
# tests/reliability/run.sh — the reliability scenarios (see RELIABILITY.md).
#   RELIABILITY=long   the issue's full counts (`make test-reliability`)
#   RELIABILITY=short  smaller counts, under a minute (`make test` runs it
#                      through tests/integration/reliability_short.sh)
#   REL_JOBS=N         scenarios run at once (default: 1 long, 3 short)
#   REL_ONLY="a b"     only these scenarios
# Each scenario bounds its own time and load, talks only to loopback and
# prints "FIGURES <scenario>: ..." lines; they are repeated at the end,
# followed by one line "N passed, N failed" summing every scenario.
set -u
B=${B:-build}
export B
MODE=${RELIABILITY:-short}
export RELIABILITY=$MODE
SCENARIOS=${REL_ONLY:-"worker_crash redis_restart hung_worker redis_full api_crash hostile_http hostile_handlers"}
if [ "$MODE" = long ]; then JOBS=${REL_JOBS:-1}; else JOBS=${REL_JOBS:-3}; fi
OUT=$(mktemp -d /tmp/jqrel.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
t0=$(date +%s)

# Build the client once, before scenarios start at the same time.
( source tests/lib.sh; source tests/reliability/common.sh; trap - EXIT; rm -rf "$T" )

running=0
for s in $SCENARIOS; do
    ( start=$(date +%s)
      timeout 600 bash "tests/reliability/$s.sh" > "$OUT/$s.out" 2>&1
      echo "rc=$? seconds=$(( $(date +%s) - start ))" > "$OUT/$s.rc" ) &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

pass=0; fail=0
for s in $SCENARIOS; do
    out=$OUT/$s.out
    rc=$(sed -n 's/^rc=\([0-9]*\).*/\1/p' "$OUT/$s.rc" 2>/dev/null)
    secs=$(sed -n 's/.*seconds=\([0-9]*\).*/\1/p' "$OUT/$s.rc" 2>/dev/null)
    # The handlers' RUN lines are evidence for the scenario, noise here.
    grep -v ': RUN$' "$out"
    line=$(grep -E "^$s: [0-9]+ passed, [0-9]+ failed" "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "BROKEN: $s ended (exit ${rc:-?}) without a summary line"
        fail=$((fail + 1))
        continue
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    pass=$((pass + p)); fail=$((fail + f))
    if [ "${rc:-1}" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "BROKEN: $s exited ${rc:-?}"; fail=$((fail + 1))
    fi
    echo "$s: ${secs:-?} s"
done
echo "--- reliability figures ($MODE form, $(( $(date +%s) - t0 )) s)"
cat "$OUT"/*.out | grep '^FIGURES ' | sed 's/^FIGURES /  /'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
