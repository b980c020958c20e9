#!/bin/sh
# tests/run.sh — runs every unit test binary and every integration script,
# then prints the total as "N passed, N failed".
B=${B:-build}
total_pass=0; total_fail=0; broken=0
out=$(mktemp)
run() {
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out"
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "BROKEN: $* ended (exit $rc) without a summary line"
        broken=$((broken+1)); total_fail=$((total_fail+1)); return
    fi
    p=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\2/')
    f=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\3/')
    total_pass=$((total_pass+p)); total_fail=$((total_fail+f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "BROKEN: $* exited $rc"; total_fail=$((total_fail+1))
    fi
}
for t in "$B"/tests/*; do
    [ -x "$t" ] && run "$t"
done
for t in tests/integration/*.sh; do
    [ -f "$t" ] && run bash "$t"
done
rm -f "$out"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
