#!/usr/bin/env bash
# bench/idle.sh: what idle connections cost the active ones (part of
# `make bench`; run.sh calls it and prints $OUT/idle.txt).
#
# One echo_server (single-threaded, level-triggered epoll) holds N idle
# connections from `connbench hold` while `connbench ping` measures the 64 B
# round trip on one more connection and `connbench conn` the connection
# rate, for N = 0, 1000 and 10000 (QUICK=1: 0, 500, 2000), plain and
# sealed (chachapoly, both ends).  Before the wait became O(ready), every
# epoll_wait walked every sealed registration: the round trip grew with N.
#
#   B=/abs/build OUT=/abs/out [QUICK=1] bash bench/idle.sh
#
# Reports, never fails on a figure; exits non-zero only when the harness
# breaks.  Every process it starts is stopped by PID and bounded by its
# own timeout.  Loopback only.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
B=${B:-$HERE/../build}
B=$(cd "$B" && pwd) || exit 1
OUT=${OUT:-$B/bench}
QUICK=${QUICK:-0}
BIN=$OUT/bin
WORK=$OUT/work/idle
RAW=$OUT/raw/idle
mkdir -p "$BIN" "$WORK" "$RAW"
CC=${CC:-cc}
TMO=300

if [ "$QUICK" = 1 ]; then
    COUNTS="0 500 2000"; PING_N=3000; CONN_N=300
else
    COUNTS="0 1000 10000"; PING_N=20000; CONN_N=1000
fi

for t in echo_server connbench; do
    [ -x "$BIN/$t" ] && [ "$BIN/$t" -nt "$HERE/$t.c" ] && continue
    $CC -O2 -g -Wall -Wextra -D_GNU_SOURCE -o "$BIN/$t" "$HERE/$t.c" || exit 1
done

# Every idle connection costs an fd on each side.
ulimit -n 65536 2> /dev/null || ulimit -n "$(ulimit -Hn)"

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2> /dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null; done
}
trap cleanup EXIT

port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
kv() { grep -o "$1=[0-9.]*" "$2" 2> /dev/null | head -1 | cut -d= -f2; }

P=$(port)
rm -f "$WORK/k.key"
"$B/sockseal-keytool" gen "$WORK/k.key" > /dev/null || exit 1
cat > "$WORK/policy" << EOF
key k $WORK/k.key
connect 127.0.0.1:$P key=k
accept 127.0.0.1:$P key=k
EOF
: > "$WORK/policy_plain"

# run MODE: the whole series against one server.  MODE is plain or sealed.
run() {
    local mode=$1 pol srv n hold i
    pol=$WORK/policy
    [ "$mode" = plain ] && pol=$WORK/policy_plain
    "$B/sockseal" -f "$pol" -- "$BIN/echo_server" 127.0.0.1 "$P" "$TMO" \
        > "$RAW/server_$mode.log" 2>&1 &
    srv=$!
    PIDS+=("$srv")
    for i in $(seq 100); do
        ss -Hltn "sport = :$P" | grep -q . && break
        sleep 0.05
    done
    for n in $COUNTS; do
        hold=
        if [ "$n" -gt 0 ]; then
            "$B/sockseal" -f "$pol" -- "$BIN/connbench" hold 127.0.0.1 "$P" "$n" "$TMO" \
                > "$RAW/hold_${mode}_$n.log" 2>&1 &
            hold=$!
            PIDS+=("$hold")
            for i in $(seq 100); do
                grep -q BASE "$RAW/hold_${mode}_$n.log" && break
                sleep 0.05
            done
            kill -USR1 "$hold"
            for i in $(seq 1200); do
                grep -q READY "$RAW/hold_${mode}_$n.log" && break
                sleep 0.1
            done
        fi
        "$B/sockseal" -f "$pol" -- "$BIN/connbench" ping 127.0.0.1 "$P" "$PING_N" 64 60 \
            > "$RAW/ping_${mode}_$n.log" 2>&1
        "$B/sockseal" -f "$pol" -- "$BIN/connbench" conn 127.0.0.1 "$P" "$CONN_N" 60 \
            > "$RAW/conn_${mode}_$n.log" 2>&1
        RTT[$mode,$n]=$(kv median_us "$RAW/ping_${mode}_$n.log")
        CPS[$mode,$n]=$(kv per_s "$RAW/conn_${mode}_$n.log")
        HELD[$mode,$n]=$( [ -n "$hold" ] && grep -o 'READY [0-9]*' "$RAW/hold_${mode}_$n.log" | cut -d' ' -f2 || echo 0)
        if [ -n "$hold" ]; then
            kill -USR1 "$hold" 2> /dev/null
            wait "$hold" 2> /dev/null
        fi
    done
    kill -TERM "$srv" 2> /dev/null
    wait "$srv" 2> /dev/null
}

declare -A RTT CPS HELD
run plain
run sealed

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a==""||b==""||b+0==0) print "NA"; else printf "%.2f", a/b }'; }
# held MODE N: were all N idle connections held?  A figure measured with
# fewer (the server at its descriptor limit, say) is not the level's.
held() { [ "$2" -eq 0 ] || [ "${HELD[$1,$2]:-0}" -ge "$2" ]; }
# fig MODE N VALUE: VALUE, or n/a where the level was not held.
fig() { if held "$1" "$2"; then echo "${3:-NA}"; else echo "n/a"; fi; }
{
    echo "idle connections on one level-triggered epoll echo server (64 B round trip, median; conn/s sequential)"
    printf '  %-7s %-12s %-12s %-12s %-13s %-13s %-13s\n' idle "held" "RTT plain" "RTT sealed" "sealed vs 0" "conn/s plain" "conn/s sealed"
    first=${COUNTS%% *}
    short=
    for n in $COUNTS; do
        held plain "$n" && held sealed "$n" || short=1
        rs=$(fig sealed "$n" "${RTT[sealed,$n]:-}")
        printf '  %-7s %-12s %-12s %-12s %-13s %-13s %-13s\n' "$n" \
            "${HELD[plain,$n]:-?}/${HELD[sealed,$n]:-?}" \
            "$(fig plain "$n" "${RTT[plain,$n]:-}")" "$rs" \
            "$([ "$rs" = n/a ] && echo n/a || echo "$(ratio "$rs" "${RTT[sealed,$first]:-}")x")" \
            "$(fig plain "$n" "${CPS[plain,$n]:-}")" "$(fig sealed "$n" "${CPS[sealed,$n]:-}")"
    done
    [ -n "$short" ] && echo "  n/a: fewer idle connections held than asked (held plain/sealed); the server's" \
        "log in raw/idle says why (a sealed connection takes three descriptors: its" \
        "stand-in, its kfd and its state object, so a low hard limit stops it first)"
    echo "  target: the sealed round trip with the most idle connections within 1.2x of none; conn/s not falling"
} > "$OUT/idle.txt"
cat "$OUT/idle.txt"
