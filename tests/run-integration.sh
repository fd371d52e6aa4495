#!/bin/bash
# Runs every tests/integration/NN-*.sh (shunit2 scripts) in order.
#   B=<abs build dir> PRELOAD="<san runtime> <abs libsockseal.so>" SAN=''|asan|tsan
#   bash tests/run-integration.sh [PATTERN]     (PATTERN: only scripts matching it;
#                                                several globs separated by commas)
# Ends with exactly one line "integration: N passed, M failed, K skipped";
# exits 1 on failure.  (A test skips only where a sanitizer runtime keeps a
# third-party program from starting at all; it never runs unsealed instead.)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export B="${B:-$ROOT/build}"
export PRELOAD="${PRELOAD:-$B/libsockseal.so}"
export SAN="${SAN:-}"
export SOCKSEAL_ROOT="$ROOT"
PER_SCRIPT_TIMEOUT="${PER_SCRIPT_TIMEOUT:-600}"
pattern="${1:-}"

passed=0
failed=0
skipped=0
failed_scripts=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/sockseal-it.XXXXXX")
# The statistics files of every shimmed process of the run go here, not
# into the machine's /run/sockseal (68-stats sets its own per test).
if [ -z "${SOCKSEAL_STATS_DIR:-}" ]; then
    SOCKSEAL_STATS_DIR=$logdir/stats
    mkdir -m 1777 "$SOCKSEAL_STATS_DIR" && chmod 1777 "$SOCKSEAL_STATS_DIR"
    export SOCKSEAL_STATS_DIR
fi

for t in tests/integration/[0-9][0-9]-*.sh; do
    [ -e "$t" ] || continue
    if [ -n "$pattern" ]; then
        hit=
        IFS=, read -ra pats <<< "$pattern"
        for p in "${pats[@]}"; do
            # shellcheck disable=SC2053
            [[ "$t" == *$p* ]] && hit=1
        done
        [ -n "$hit" ] || continue
    fi
    name=$(basename "$t" .sh)
    log="$logdir/$name.log"
    echo "=== $name"
    start=$(date +%s)
    timeout -k 10 "$PER_SCRIPT_TIMEOUT" bash "$t" </dev/null 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    clean=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
    ran=$(printf '%s\n' "$clean" | sed -n 's/^Ran \([0-9][0-9]*\) tests\?\..*/\1/p' | tail -1)
    fails=$(printf '%s\n' "$clean" | sed -n 's/^FAILED (failures=\([0-9][0-9]*\).*/\1/p' | tail -1)
    ran=${ran:-0}
    fails=${fails:-0}
    skips=0
    # shunit2's failures= counts failed asserts; lib.sh's tearDown prints one
    # "TESTRESULT <name> PASS|FAIL" line per test function: prefer those.
    if grep -q '^TESTRESULT ' <<<"$clean"; then
        fails=$(printf '%s\n' "$clean" | grep -c '^TESTRESULT .* FAIL$')
        skips=$(printf '%s\n' "$clean" | grep -c '^TESTRESULT .* SKIP$')
        # a script killed part-way never prints "Ran N tests."
        results=$(printf '%s\n' "$clean" | grep -c '^TESTRESULT ')
        [ "$results" -gt "$ran" ] && ran=$results
    fi
    [ "$fails" -gt "$ran" ] && fails=$ran
    if [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
        # crashed, timed out, or shunit2 never reported: count the script as one failure
        echo "--- $name: exit status $rc without a shunit2 failure count (timeout is 124)"
        fails=1
        [ "$ran" -eq 0 ] && ran=1
    fi
    passed=$((passed + ran - fails - skips))
    failed=$((failed + fails))
    skipped=$((skipped + skips))
    [ "$fails" -gt 0 ] && failed_scripts+=("$name")
    echo "--- $name: ran $ran, failed $fails, skipped $skips, $(( $(date +%s) - start ))s"
done

rm -rf "$logdir"
if [ ${#failed_scripts[@]} -gt 0 ]; then
    echo "failing scripts: ${failed_scripts[*]}"
fi
echo "integration: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
