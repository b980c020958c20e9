#!/bin/bash
# tests/fuzz/run.sh — the libFuzzer targets (`make fuzz`).
#
# Builds each target with clang (-fsanitize=fuzzer,address,undefined)
# straight from src/ into build-fuzz/, replays the seed corpus
# (tests/fuzz/corpus/<target>/) and every input that once crashed
# (tests/fuzz/regressions/<target>/), then fuzzes each target for
# FUZZ_SECONDS (default 30).  New inputs go to build-fuzz/corpus/<target>/,
# crashes to build-fuzz/crashes/<target>-*: copy a crash into
# tests/fuzz/regressions/<target>/ once it is fixed, and it is replayed on
# every run from then on (and by the unit test test_fuzz_corpus).
#   FUZZ_SECONDS=N      seconds of fuzzing per target (0: replay only)
#   FUZZ_TARGETS="..."  a subset of: job config router
# Ends with one line "N passed, N failed" (a replay and a fuzzing run per
# target).
set -u
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
TARGETS=${FUZZ_TARGETS:-"job config router"}
OUT=build-fuzz
CC=${FUZZ_CC:-clang}
PKGS="lua5.4 hiredis libmicrohttpd libcurl libcrypto jansson lua5.4-cjson"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=gnu11 -g -O1 -fno-omit-frame-pointer $SAN -Isrc -I$OUT $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -pthread -lm"
PASS=0; FAIL=0

command -v "$CC" >/dev/null || { echo "fuzz: $CC is not installed (apt-get install clang)"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$OUT/obj" "$OUT/crashes"

# The library: every src/*.c but main.c, instrumented for coverage.
sh tools/embed.sh lua/*.lua > "$OUT/scripts.c.tmp" && mv "$OUT/scripts.c.tmp" "$OUT/scripts.c"
objs=()
for src in src/*.c "$OUT/scripts.c"; do
    base=$(basename "$src" .c)
    [ "$base" = main ] && continue
    obj=$OUT/obj/$base.o
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find src -name '*.h' -newer "$obj")" ]; then
        # shellcheck disable=SC2086
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c -o "$obj" "$src" || { echo "fuzz: cannot compile $src"; echo "0 passed, 1 failed"; exit 1; }
    fi
    objs+=("$obj")
done

for t in $TARGETS; do
    bin=$OUT/fuzz_$t
    link=()
    for o in "${objs[@]}"; do
        # the router target includes http.c and api.c itself
        if [ "$t" = router ] && { [ "$o" = "$OUT/obj/http.o" ] || [ "$o" = "$OUT/obj/api.o" ]; }; then
            continue
        fi
        link+=("$o")
    done
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS -fsanitize=fuzzer -o "$bin" "tests/fuzz/fuzz_$t.c" "${link[@]}" $LIBS; then
        echo "FAIL fuzz $t: does not build"; FAIL=$((FAIL + 1)); continue
    fi
    mkdir -p "$OUT/corpus/$t" "tests/fuzz/regressions/$t"
    # Replay: every seed and every past crash, once.
    if "$bin" -runs=0 "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$OUT/$t.replay.log" 2>&1; then
        PASS=$((PASS + 1))
        echo "fuzz $t: replayed $(ls "tests/fuzz/corpus/$t" | wc -l) seeds and $(ls "tests/fuzz/regressions/$t" | wc -l) regressions"
    else
        FAIL=$((FAIL + 1)); echo "FAIL fuzz $t: replay"; tail -n 40 "$OUT/$t.replay.log"
    fi
    [ "$FUZZ_SECONDS" -gt 0 ] || continue
    if "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -artifact_prefix="$OUT/crashes/$t-" -print_final_stats=1 \
            "$OUT/corpus/$t" "tests/fuzz/corpus/$t" >"$OUT/$t.log" 2>&1; then
        PASS=$((PASS + 1))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$t.log")
        cov=$(grep -o 'cov: [0-9]*' "$OUT/$t.log" | tail -n 1)
        echo "fuzz $t: ${FUZZ_SECONDS}s, $execs runs, $cov, corpus $(ls "$OUT/corpus/$t" | wc -l) inputs, no crash"
    else
        FAIL=$((FAIL + 1))
        echo "FAIL fuzz $t: a crash; reproducer in $OUT/crashes/"
        grep -E -A25 'ERROR|runtime error|deadly signal|Timeout|out-of-memory' "$OUT/$t.log" | head -n 60
    fi
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
