#!/bin/sh
# tests/bench/run.sh — `make bench`: runs build/bench (tests/bench/bench.c)
# against a private redis-server in a fresh temp dir, which is removed
# afterwards.  The report goes to stdout and is appended to
# bench/results.md.  BENCH_QUICK=1: one short run of each figure.
#
# bench.c keeps its own time budget; the timeout here is only the backstop
# that guarantees `make bench` ends even if something wedges.
B=${B:-build}
set -u
for tool in redis-server timeout; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found (make deps)"; exit 1; }
done
[ -x "$B/bench" ] && [ -x "$B/jqrun" ] || { echo "bench: build $B/bench and $B/jqrun first"; exit 1; }
limit=270
case "${BENCH_QUICK:-0}" in ''|0) ;; *) limit=55 ;; esac
T=$(mktemp -d /tmp/jqbench.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
timeout -k 5 "$limit" "$B/bench" --dir "$T" --jqrun "$B/jqrun" \
    --handlers tests/bench/handlers --results bench/results.md
rc=$?
[ "$rc" -eq 124 ] && echo "bench: killed after $limit s (time budget); no report written"
exit "$rc"
