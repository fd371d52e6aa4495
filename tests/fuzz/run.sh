#!/bin/bash
# run.sh FZ SECONDS TARGET...: run each libFuzzer target for SECONDS on a
# fresh copy of its seed corpus (tests/fuzz/corpus/TARGET), with its
# dictionary (tests/fuzz/TARGET.dict) if any.  Crashes, leaks and timeouts
# go to FZ/crashes/; the exit status is 1 if any target failed.
set -u
fz=$1 secs=$2
shift 2

# Longest input per target: a policy, a key file, a peer's byte stream.
maxlen() {
    case $1 in
    fuzz_keyfile) echo 512 ;;
    *) echo 4096 ;;
    esac
}

mkdir -p "$fz/crashes"
failed=()
for t in "$@"; do
    work=$fz/corpus/$t
    rm -rf "$work"
    mkdir -p "$work"
    cp tests/fuzz/corpus/"$t"/* "$work"/
    dict=()
    [ -f tests/fuzz/"$t".dict ] && dict=(-dict=tests/fuzz/"$t".dict)
    echo "== $t: ${secs}s" >&2
    if ! "$fz/$t" -max_total_time="$secs" -max_len="$(maxlen "$t")" \
        -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$fz/crashes/$t-" "${dict[@]}" "$work" \
        </dev/null 2>"$fz/$t.log"; then
        failed+=("$t")
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$fz/$t.log" >&2
    fi
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$fz/$t.log" >&2
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-run: FAILED: ${failed[*]} (inputs in $fz/crashes, logs in $fz/*.log)" >&2
    exit 1
fi
echo "fuzz-run: $# targets, ${secs}s each, no crash" >&2
