#!/usr/bin/env bash
# bench/soak.sh: the soak section of `make bench` (bench/run.sh runs it last;
# it also runs alone: B=/abs/build bash bench/soak.sh).
#
# redis-server and redis-benchmark, both under the shim on one sealed port,
# for SOAK_SECONDS (default 600; QUICK=1: 30): rounds of redis-benchmark
# (50 clients, SET and GET, every other round pipelined -P 16), one after
# another, so connections open and close all the time.  Reports
# redis-server's VmRSS and open fds at start, after the first round and at
# the end (and every minute in raw/soak_samples.txt), the rounds, requests
# and connections, and what the shim logged.  Not a test: it exits 0
# whatever the numbers are.  Every process it starts is bounded by
# timeout(1) and stopped by PID.
#
# Output: $OUT/soak.txt (summary, appended to the bench report),
# $OUT/raw/soak_* (logs); one line per figure appended to $TSV when set.
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
B=${B:-$HERE/../build}
B=$(cd "$B" 2>/dev/null && pwd) || { echo "soak: build dir missing; run make first" >&2; exit 1; }
LAUNCHER=$B/sockseal
KEYTOOL=$B/sockseal-keytool
OUT=${OUT:-$B/bench}
RAW=$OUT/raw
WORK=$OUT/soak_work
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then SOAK_SECONDS=${SOAK_SECONDS:-30}; else SOAK_SECONDS=${SOAK_SECONDS:-600}; fi
ROUND_N=20000               # requests per test per round
SUMMARY=$OUT/soak.txt
mkdir -p "$RAW" "$WORK"
rm -f "$SUMMARY" "$RAW"/soak_*

say() { echo "soak: $*" | tee -a "$RAW/soak_log.txt" >&2; }
na() {
    say "$1; soak n/a"
    echo "soak: n/a ($1)" > "$SUMMARY"
    exit 0
}
for t in redis-server redis-benchmark redis-cli; do
    command -v "$t" >/dev/null 2>&1 || na "$t not installed"
done

SRV=                        # timeout(1)'s PID; RPID is redis-server's
cleanup() {
    [ -n "$SRV" ] || return 0
    kill -TERM "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    SRV=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -Htan "( sport = :$1 or dport = :$1 )" 2>/dev/null | grep -q .; }
PORT=$((30000 + RANDOM % 5000))
while ! port_free "$PORT"; do PORT=$((30000 + RANDOM % 5000)); done

rm -f "$WORK/soak.key"   # keytool never overwrites a key: a fresh one per run
"$KEYTOOL" gen "$WORK/soak.key" >/dev/null 2>&1 || na "keytool gen failed"
cat >"$WORK/policy" <<EOF
# sockseal soak policy
key k $WORK/soak.key
connect 127.0.0.1:$PORT key=k
accept  127.0.0.1:$PORT key=k
EOF
cat >"$WORK/redis.conf" <<EOF
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize no
save ""
appendonly no
dir $WORK
logfile ""
maxclients 1000
EOF
sealed() { "$LAUNCHER" -f "$WORK/policy" -- "$@"; }

timeout -k 5 $((SOAK_SECONDS + 600)) "$LAUNCHER" -f "$WORK/policy" -- \
    redis-server "$WORK/redis.conf" >"$RAW/soak_redis.log" 2>&1 &
SRV=$!
RPID=
for _ in $(seq 100); do
    [ -z "$RPID" ] && RPID=$(pgrep -P "$SRV" | head -1)
    [ -n "$RPID" ] && ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && break
    sleep 0.1
done
[ -n "$RPID" ] && kill -0 "$RPID" 2>/dev/null || na "redis-server did not start ($(tail -c 200 "$RAW/soak_redis.log"))"

rss() { awk '/^VmRSS:/{print $2}' "/proc/$RPID/status" 2>/dev/null; }
nfds() { ls "/proc/$RPID/fd" 2>/dev/null | wc -l; }
sample() { echo "$(( $(date +%s) - T0 )) s: rss $(rss) KiB fds $(nfds) rounds $rounds" >>"$RAW/soak_samples.txt"; }

# round I: one redis-benchmark run (SET and GET, 50 clients); appends the
# req/s figures to SETS/GETS, returns its exit status.
SETS=""
GETS=""
round() {
    local f=$RAW/soak_round.txt p=1
    [ $(($1 % 2)) = 0 ] && p=16
    timeout -k 5 300 "$LAUNCHER" -f "$WORK/policy" -- redis-benchmark -h 127.0.0.1 -p "$PORT" \
        -c 50 -n "$ROUND_N" -P "$p" -t set,get --csv >"$f" 2>&1 || { cat "$f" >>"$RAW/soak_errors.txt"; return 1; }
    [ "$p" = 1 ] || return 0
    SETS+="$(awk -F'"' '$2 == "SET" {print $4}' "$f") "
    GETS+="$(awk -F'"' '$2 == "GET" {print $4}' "$f") "
    return 0
}

T0=$(date +%s)
rounds=0
failed=0
RSS0=$(rss)
FDS0=$(nfds)
say "redis-server pid $RPID on port $PORT: rss ${RSS0} KiB, ${FDS0} fds; running ${SOAK_SECONDS} s"
round 0 || failed=$((failed + 1))
rounds=1
RSSW=$(rss)
FDSW=$(nfds)
sample
next=$((T0 + 60))
while [ "$(date +%s)" -lt $((T0 + SOAK_SECONDS)) ]; do
    round "$rounds" || failed=$((failed + 1))
    rounds=$((rounds + 1))
    if [ "$(date +%s)" -ge "$next" ]; then sample; next=$((next + 60)); fi
    kill -0 "$RPID" 2>/dev/null || break
done
T1=$(date +%s)
sleep 1                     # let the last connections close
alive=yes
kill -0 "$RPID" 2>/dev/null || alive=no
RSS1=$(rss)
FDS1=$(nfds)
sample
sealed redis-cli -h 127.0.0.1 -p "$PORT" INFO >"$RAW/soak_info.txt" 2>&1
field() { sed -n "s/^$1:\\([0-9]*\\).*/\\1/p" "$RAW/soak_info.txt" | head -1; }
CONNS=$(field total_connections_received)
CMDS=$(field total_commands_processed)
CLIENTS=$(field connected_clients)
cleanup
SHIMLOG=$(grep -c 'sockseal\[' "$RAW/soak_redis.log" 2>/dev/null)

median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | awk '{v[NR]=$1} END{ if (!NR) print "NA";
    else print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2 }'; }
{
    echo "soak: $((T1 - T0)) s of redis-benchmark through the shim (redis-server and redis-benchmark sealed, chachapoly):"
    echo "soak:   $rounds rounds of 50 clients x SET+GET x $ROUND_N, $failed failed; redis counted ${CONNS:-?} connections, ${CMDS:-?} commands; ${CLIENTS:-?} client connected at the end (the INFO one)"
    echo "soak:   redis-server VmRSS ${RSS0:-?} KiB at start, ${RSSW:-?} KiB after the first round, ${RSS1:-?} KiB at the end"
    echo "soak:   redis-server open fds ${FDS0:-?} at start, ${FDSW:-?} after the first round, ${FDS1:-?} at the end; alive at the end: $alive"
    echo "soak:   median req/s per unpipelined round: SET $(median <<<"$SETS"), GET $(median <<<"$GETS"); shim log lines: ${SHIMLOG:-0}"
} >"$SUMMARY"
cat "$SUMMARY"
# tsv METRIC CONFIG UNIT NOTES V...: one results.tsv line; the "median"
# column holds the last value (the end of the soak), min and max are over V.
tsv() {
    local m=$1 c=$2 u=$3 n=$4 lo hi
    shift 4
    read -r lo hi <<<"$(printf '%s\n' "$@" | grep -E '^[0-9]+$' | sort -n | sed -n '1p;$p' | tr '\n' ' ')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$c" "${!#:-NA}" "${lo:-NA}" "${hi:-NA}" "$u" \
        "$(IFS=,; echo "$*")" "$n" >>"$TSV"
}
if [ -n "${TSV:-}" ] && [ -f "$TSV" ]; then
    tsv soak_rss redis-server KiB "start, after round 1, end of $SOAK_SECONDS s" "${RSS0:-NA}" "${RSSW:-NA}" "${RSS1:-NA}"
    tsv soak_fds redis-server fds "start, after round 1, end" "${FDS0:-NA}" "${FDSW:-NA}" "${FDS1:-NA}"
    tsv soak_commands redis-server commands "$rounds rounds, $failed failed" "${CMDS:-NA}"
fi
exit 0
