#!/usr/bin/env bash
# bench/run.sh: `make bench`.  Measures, in one run on loopback, plain TCP,
# sockseal (chachapoly and aesgcm), stunnel (TLS 1.3) and spiped side by side
# and prints one table with ratios against the issue targets; then what
# idle sealed connections cost an active one (bench/idle.sh); then a soak
# (bench/soak.sh: redis-server and redis-benchmark through the shim for
# SOAK_SECONDS, default 600, QUICK=1: 30) reporting RSS and open fds.
#
#   B=/abs/build bash bench/run.sh      (make bench sets B)
#   QUICK=1                             ~1-minute smoke run
#
# It is not a test: it exits 0 whatever the numbers are, and non-zero only
# when the harness itself breaks (no shim, a tool that does not build).
# Results: $B/bench/results.txt (the table), results.tsv (one line per
# figure: median, min, max, raw runs), raw/ (every iperf3 JSON, connbench
# line, config, log and the commands run).  Every process it starts is
# stopped by PID, and each one is also bounded by timeout(1) or its own
# alarm.  Loopback only.
set -u
export LC_ALL=C

# Packages this benchmark needs (Debian names); installed with apt-get when
# missing and we are root.  Build deps of sockseal itself (gcc, libsodium-dev)
# come from the project's own install steps.
BENCH_PACKAGES="iperf3 stunnel4 spiped jq openssl util-linux iproute2 procps"
BENCH_PACKAGES_OPTIONAL="hyperfine linux-perf redis-server"

HERE=$(cd "$(dirname "$0")" && pwd)
B=${B:-$HERE/../build}
B=$(cd "$B" 2>/dev/null && pwd) || { echo "bench: build dir missing; run make first" >&2; exit 1; }
SHIM=$B/libsockseal.so
LAUNCHER=$B/sockseal
KEYTOOL=$B/sockseal-keytool
for f in "$SHIM" "$LAUNCHER" "$KEYTOOL"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "bench: $f missing; run make first" >&2; exit 1; }
done

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    IPERF_T=2; REPS=3; IPERF_REPS=2; PLAIN_EXTRA=0; CONN_N=500; PING_N=3000; HOLD_N=500
    START_RUNS=100; AEAD_SECS=0.2; AEAD_REPS=2
else
    IPERF_T=5; REPS=3; IPERF_REPS=3; PLAIN_EXTRA=2; CONN_N=2000; PING_N=20000; HOLD_N=500
    START_RUNS=200; AEAD_SECS=0.5; AEAD_REPS=3
fi
MAX_RUNTIME=1800            # no server outlives this many seconds

OUT=$B/bench
RAW=$OUT/raw
BIN=$OUT/bin
WORK=$OUT/work
rm -rf "$RAW" "$WORK"
mkdir -p "$RAW" "$BIN" "$WORK"
TSV=$OUT/results.tsv
: > "$RAW/commands.txt"
T_START=$(date +%s)

log() { echo "bench: $*" | tee -a "$RAW/log.txt" >&2; [ -n "${BUSY_START:-}" ] && snapshot "$*"; }
cmdlog() { echo "$*" >> "$RAW/commands.txt"; }

# ------------------------------------------------------------------ packages
have() { command -v "$1" > /dev/null 2>&1; }
pkg_missing() { ! dpkg -s "$1" > /dev/null 2>&1; }
install_pkgs() {
    local want="" p
    for p in "$@"; do pkg_missing "$p" && want+=" $p"; done
    [ -z "$want" ] && return 0
    if [ "$(id -u)" != 0 ] || ! have apt-get; then
        log "missing packages:$want (not root or no apt-get); their columns will be n/a"
        return 0
    fi
    log "installing:$want"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $want \
            >> "$RAW/apt.log" 2>&1; then
        apt-get update -qq >> "$RAW/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $want \
            >> "$RAW/apt.log" 2>&1 || log "apt-get install failed for:$want (see raw/apt.log)"
    fi
}
install_pkgs $BENCH_PACKAGES
for p in $BENCH_PACKAGES_OPTIONAL; do install_pkgs "$p"; done
have iperf3 || { echo "bench: iperf3 is required" >&2; exit 1; }
have jq || { echo "bench: jq is required" >&2; exit 1; }
have ss || { echo "bench: ss (iproute2) is required" >&2; exit 1; }

# ------------------------------------------------------------------ tools
CC=${CC:-cc}
for t in echo_server connbench startloop; do
    $CC -O2 -g -Wall -Wextra -D_GNU_SOURCE -o "$BIN/$t" "$HERE/$t.c" 2> "$RAW/build_$t.log" \
        || { cat "$RAW/build_$t.log" >&2; echo "bench: cannot build $t" >&2; exit 1; }
done
$CC -O2 -g -Wall -Wextra -shared -fPIC -o "$BIN/preload_sodium.so" "$HERE/preload_sodium.c" -lsodium \
    2> "$RAW/build_preload_sodium.log" \
    || { cat "$RAW/build_preload_sodium.log" >&2; echo "bench: cannot build preload_sodium.so" >&2; exit 1; }
$CC -O2 -g -Wall -Wextra -o "$BIN/aead_speed" "$HERE/aead_speed.c" -lsodium 2> "$RAW/build_aead_speed.log" \
    || { cat "$RAW/build_aead_speed.log" >&2; echo "bench: cannot build aead_speed" >&2; exit 1; }

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "sockseal: $(git -C "$HERE/.." describe --always --dirty 2>/dev/null)"
    echo "quick: $QUICK iperf_t=$IPERF_T reps=$REPS iperf_reps=$IPERF_REPS conn_n=$CONN_N ping_n=$PING_N hold_n=$HOLD_N"
    echo "iperf3: $(iperf3 --version 2>&1 | head -1)"
    have stunnel4 && echo "stunnel: $(stunnel4 -version 2>&1 | grep -m1 '^stunnel')"
    have spiped && echo "spiped: $(spiped -v 2>&1)"
    echo "openssl: $(openssl version 2>&1)"
    echo "libsodium: $(dpkg-query -W -f '${Version}' libsodium23 2>/dev/null)"
    echo "loadavg at start: $(cat /proc/loadavg)"
} > "$RAW/env.txt"

# ------------------------------------------------------------------ is the machine quiet?
# busy_pct: % of all CPUs busy over 1 s (we run nothing meanwhile).  Other
# work on a 2-vCPU machine moves every figure; the report warns about it.
busy_pct() {
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat); sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); u=y[1]-x[1]; i=y[2]-x[2];
        printf "%.0f", (u+i) ? 100*u/(u+i) : 0}'
}
snapshot() { { echo "== $1 $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; top -bn1 -w 200 2> /dev/null | sed -n '7,14p'; } >> "$RAW/top.txt"; }
BUSY_START=$(busy_pct)
snapshot start
echo "cpu busy before the run (1 s, all CPUs): ${BUSY_START}%" >> "$RAW/env.txt"

# ------------------------------------------------------------------ processes
PIDS=()
LASTPID=
# start_bg LOG CMD...: run CMD in the background, bounded by timeout(1).
# LASTPID is timeout's PID (stop it to stop CMD); real_pid finds CMD's.
start_bg() {
    local logf=$1; shift
    cmdlog "$* &"
    timeout -k 5 "$MAX_RUNTIME" "$@" > "$logf" 2>&1 &
    LASTPID=$!
    PIDS+=("$LASTPID")
}
real_pid() {
    local i c
    for i in $(seq 50); do
        c=$(pgrep -P "$1" | head -1)
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.05
    done
    return 1
}
stop_pid() {
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2> /dev/null || { wait "$p" 2> /dev/null; return 0; }
    for i in $(seq 50); do
        kill -0 "$p" 2> /dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2> /dev/null
    wait "$p" 2> /dev/null
    return 0
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -0 "$p" 2> /dev/null && stop_pid "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

USED_PORTS=" "
pick_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 10000))
        case $USED_PORTS in *" $p "*) continue ;; esac
        ss -Htan "( sport = :$p or dport = :$p )" 2> /dev/null | grep -q . && continue
        USED_PORTS+="$p "
        echo "$p"
        return
    done
}
wait_listen() {
    local i
    for i in $(seq 100); do
        ss -Hltn "sport = :$1" 2> /dev/null | grep -q . && return 0
        sleep 0.05
    done
    log "nothing listens on port $1 after 5 s"
    return 1
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2> /dev/null || echo 0; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2> /dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------ results
# rec METRIC CONFIG UNIT "v1 v2 ..." [NOTES]: median, min, max into TSV and
# the MED/CELL tables the report is built from.  Empty runs give NA.
declare -A MED CELL
printf 'metric\tconfig\tmedian\tmin\tmax\tunit\truns\tnotes\n' > "$TSV"
stats() {   # values on stdin -> "median min max n"
    sort -g | awk '{v[NR]=$1} END{ if (NR==0) {print "NA NA NA 0"; exit}
        m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; print m, v[1], v[NR], NR }'
}
fmtn() {    # number with sensible precision
    awk -v x="$1" 'BEGIN{ if (x=="NA"||x=="") {print "NA"; exit}
        a = x<0?-x:x; if (a>=1000) printf "%.0f", x; else if (a>=100) printf "%.0f", x;
        else if (a>=10) printf "%.1f", x; else printf "%.2f", x }'
}
rec() {
    local metric=$1 cfg=$2 unit=$3 vals=$4 notes=${5:-} med mn mx n
    read -r med mn mx n <<< "$(tr ' ' '\n' <<< "$vals" | grep -E '^-?[0-9.]+$' | stats)"
    MED[$metric,$cfg]=$med
    if [ "$n" = 0 ]; then CELL[$metric,$cfg]="NA"
    elif [ "$n" = 1 ]; then CELL[$metric,$cfg]="$(fmtn "$med")"
    else CELL[$metric,$cfg]="$(fmtn "$med") ($(fmtn "$mn")-$(fmtn "$mx"))"; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$metric" "$cfg" "$med" "$mn" "$mx" "$unit" \
        "$(echo $vals | tr ' ' ',')" "$notes" >> "$TSV"
}
kv() { grep -o "$1=[0-9.]*" "$2" 2> /dev/null | head -1 | cut -d= -f2; }

# ------------------------------------------------------------------ measurements
# iperf_once LABEL I PORT [PREFIX...]: one iperf3 client run, 128 KiB writes;
# echoes "Gbit/s host_cpu remote_cpu" or nothing on failure.
iperf_once() {
    local label=$1 i=$2 port=$3 f; shift 3
    f="$RAW/iperf_${label}_$i.json"
    [ "$i" = 1 ] && cmdlog "$* iperf3 -c 127.0.0.1 -p $port -t $IPERF_T -l 128K -J   # $label"
    timeout -k 5 $((IPERF_T + 20)) "$@" iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_T" -l 128K -J \
        > "$f" 2> "$RAW/iperf_${label}_$i.err"
    jq -r '[.end.sum_received.bits_per_second/1e9, .end.cpu_utilization_percent.host_total,
            .end.cpu_utilization_percent.remote_total] | map(. * 100 | round / 100) | @tsv' "$f" 2> /dev/null \
        | grep -E '^[0-9]' || log "iperf3 $label run $i failed: $(head -c 200 "$RAW/iperf_${label}_$i.err")"
}
# iperf_test LABEL CONFIG PORT "TUNNEL_PIDS" [PREFIX...]
iperf_test() {
    local label=$1 cfg=$2 port=$3 tp=$4 i g h r bps="" hc="" rc="" tc="" t0 t1 k0 k1 p; shift 4
    for i in $(seq "$IPERF_REPS"); do
        k0=0; for p in $tp; do k0=$((k0 + $(ticks "$p"))); done; t0=$(date +%s.%N)
        read -r g h r <<< "$(iperf_once "$label" "$i" "$port" "$@")"
        k1=0; for p in $tp; do k1=$((k1 + $(ticks "$p"))); done; t1=$(date +%s.%N)
        [ -n "$g" ] || continue
        bps+="$g "; hc+="${h%.*} "; rc+="${r%.*} "
        [ -n "$tp" ] && tc+="$(awk -v a="$k0" -v b="$k1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
            'BEGIN{printf "%.0f", (b-a)/hz/(t1-t0)*100}') "
        sleep 0.3
    done
    local note="iperf3 CPU% sender [${hc% }] receiver [${rc% }]"
    [ -n "$tp" ] && note+="; tunnel pair CPU% of 200 [${tc% }]"
    rec bulk "$cfg" Gbit/s "$bps" "$note"
}
# conn_test LABEL CONFIG PORT [PREFIX...]
conn_test() {
    local label=$1 cfg=$2 port=$3 i f cps="" med=""; shift 3
    cmdlog "$* connbench conn 127.0.0.1 $port $CONN_N 10   # $label x$REPS"
    for i in $(seq "$REPS"); do
        f="$RAW/conn_${label}_$i.txt"
        timeout -k 5 120 "$@" "$BIN/connbench" conn 127.0.0.1 "$port" "$CONN_N" 10 > "$f" 2>&1 \
            || log "conn $label run $i: $(tail -c 300 "$f")"
        cps+="$(kv per_s "$f") "; med+="$(kv median_us "$f") "
        sleep 0.2
    done
    rec conn_s "$cfg" conn/s "$cps" "N=$CONN_N sequential connect+1B echo+close"
    rec conn_us "$cfg" us "$med" "median socket()->echoed byte"
}
# ping_test LABEL CONFIG PORT [PREFIX...]
ping_test() {
    local label=$1 cfg=$2 port=$3 i f med="" p99=""; shift 3
    cmdlog "$* connbench ping 127.0.0.1 $port $PING_N 64 10   # $label x$REPS"
    for i in $(seq "$REPS"); do
        f="$RAW/ping_${label}_$i.txt"
        timeout -k 5 120 "$@" "$BIN/connbench" ping 127.0.0.1 "$port" "$PING_N" 64 10 > "$f" 2>&1 \
            || log "ping $label run $i: $(tail -c 300 "$f")"
        med+="$(kv median_us "$f") "; p99+="$(kv p99_us "$f") "
        sleep 0.2
    done
    rec rtt_med "$cfg" us "$med" "1 conn, 200 warm-up + $PING_N round trips of 64 B"
    rec rtt_p99 "$cfg" us "$p99" ""
    # Pinned (SRV_PID: the echo server): unpinned, the scheduler puts the
    # two processes on one CPU or on two from run to run, and a wake-up
    # across CPUs (an IPI, a VM exit) is worth 10 us here, more than the
    # whole difference being measured.  So also both on CPU 1 (the path's
    # own CPU time plus two context switches), and client on CPU 0 with
    # the server on CPU 1 (plus the cross-CPU wake-ups).
    [ -n "${SRV_PID:-}" ] && [ -n "$PIN" ] || return 0
    local place cc
    for place in one two; do
        [ "$place" = one ] && cc=1 || cc=0
        taskset -a -p -c 1 "$SRV_PID" > /dev/null 2>&1 || return 0
        med=""
        for i in $(seq "$REPS"); do
            f="$RAW/ping_${label}_${place}cpu_$i.txt"
            timeout -k 5 120 taskset -c "$cc" "$@" "$BIN/connbench" ping 127.0.0.1 "$port" "$PING_N" 64 10 > "$f" 2>&1 \
                || log "ping $label $place CPU run $i: $(tail -c 300 "$f")"
            med+="$(kv median_us "$f") "
            sleep 0.2
        done
        rec "rtt_$place" "$cfg" us "$med" "as rtt_med, server on CPU 1, client on CPU $cc"
    done
    cmdlog "taskset -a -p -c 1 SERVER; taskset -c 1|0 $* connbench ping 127.0.0.1 $port $PING_N 64 10   # $label, pinned x$REPS"
    taskset -a -p -c "0-$(( $(nproc) - 1 ))" "$SRV_PID" > /dev/null 2>&1
    return 0
}
# mem_test LABEL CONFIG PID_CLIENT_SIDE PID_SERVER_SIDE PORT [PREFIX...]
# Holds HOLD_N idle connections through PORT (connbench hold, run with
# PREFIX); the two PIDs are the processes whose VmRSS is read.  An empty
# client PID means "the connbench process itself".
mem_test() {
    local label=$1 cfg=$2 pc=$3 ps=$4 port=$5 f hp cp i n c0 s0 c1 s1; shift 5
    f="$RAW/hold_${label}.txt"
    cmdlog "$* connbench hold 127.0.0.1 $port $HOLD_N 60 &   # $label"
    timeout -k 5 180 "$@" "$BIN/connbench" hold 127.0.0.1 "$port" "$HOLD_N" 60 > "$f" 2>&1 &
    hp=$!; PIDS+=("$hp")
    for i in $(seq 100); do grep -q '^BASE' "$f" && break; sleep 0.05; done
    cp=$(awk '/^BASE/{print $2}' "$f")
    [ -z "$pc" ] && pc=$cp
    sleep 0.3
    c0=$(rss_kb "$pc"); s0=$(rss_kb "$ps")
    [ -n "$cp" ] && kill -USR1 "$cp"
    for i in $(seq 600); do grep -q '^READY' "$f" && break; kill -0 "$hp" 2> /dev/null || break; sleep 0.1; done
    sleep 1
    n=$(awk '/^READY/{print $2}' "$f"); n=${n:-0}
    c1=$(rss_kb "$pc"); s1=$(rss_kb "$ps")
    {
        echo "client-side pid $pc: $c0 -> $c1 KiB; server-side pid $ps: $s0 -> $s1 KiB; conns $n"
        grep -E '^(VmRSS|RssAnon|RssFile|Threads)' "/proc/$pc/status" "/proc/$ps/status"
    } >> "$f" 2>&1
    [ -n "$cp" ] && kill -USR1 "$cp"
    stop_pid "$hp"
    if [ "$n" -gt 0 ]; then
        rec mem_client "$cfg" KiB/conn "$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN{printf "%.1f", (b-a)/n}')" \
            "client side: pid $pc VmRSS $c0 -> $c1 KiB with $n idle conns"
        rec mem_server "$cfg" KiB/conn "$(awk -v a="$s0" -v b="$s1" -v n="$n" 'BEGIN{printf "%.1f", (b-a)/n}')" \
            "server side: pid $ps VmRSS $s0 -> $s1 KiB with $n idle conns"
        rec mem_pair "$cfg" KiB/conn "$(awk -v a="$((c0 + s0))" -v b="$((c1 + s1))" -v n="$n" 'BEGIN{printf "%.1f", (b-a)/n}')" \
            "both sides"
    else
        log "memory $label: no connection held ($(head -c 300 "$f"))"
        rec mem_client "$cfg" KiB/conn ""; rec mem_server "$cfg" KiB/conn ""; rec mem_pair "$cfg" KiB/conn ""
    fi
}

# ------------------------------------------------------------------ keys, policies, ports
P_IPERF=$(pick_port); P_ECHO=$(pick_port)          # plain servers
U_IPERF=$(pick_port); U_ECHO=$(pick_port)          # plain servers under the shim, unmatched
S_IPERF=$(pick_port); S_ECHO=$(pick_port); S_HOLD=$(pick_port)   # sealed servers
echo "ports: plain iperf/echo $P_IPERF/$P_ECHO; unmatched $U_IPERF/$U_ECHO; sealed $S_IPERF/$S_ECHO/$S_HOLD" >> "$RAW/env.txt"

"$KEYTOOL" gen "$WORK/bench.key" > /dev/null || { echo "bench: keytool gen failed" >&2; exit 1; }
for c in chachapoly aesgcm; do
    {
        echo "# sockseal bench policy, cipher $c"
        echo "key k $WORK/bench.key"
        for p in $S_IPERF $S_ECHO $S_HOLD; do
            echo "connect 127.0.0.1:$p key=k cipher=$c"
            echo "accept  127.0.0.1:$p key=k cipher=$c"
        done
    } > "$WORK/policy_$c"
    cp "$WORK/policy_$c" "$RAW/"
done
{
    echo "# sockseal bench policy: matches no benchmark port (port 1 only)"
    echo "key k $WORK/bench.key"
    echo "connect 127.0.0.1:1 key=k"
    echo "accept  127.0.0.1:1 key=k"
} > "$WORK/policy_unmatched"
cp "$WORK/policy_unmatched" "$RAW/"
# identities (suites 3, 4): a key pair for each end, no PSK (32 zero bytes)
rm -f "$WORK/srv.id" "$WORK/cli.id"
SRV_PUB=$("$KEYTOOL" identity "$WORK/srv.id") && CLI_PUB=$("$KEYTOOL" identity "$WORK/cli.id") \
    || { echo "bench: keytool identity failed" >&2; exit 1; }
for c in chachapoly aesgcm; do
    {
        echo "# sockseal bench policy, identities, cipher $c"
        echo "identity srv $WORK/srv.id"
        echo "identity cli $WORK/cli.id"
        echo "peer server $SRV_PUB"
        echo "peer client $CLI_PUB"
        for p in $S_IPERF $S_ECHO $S_HOLD; do
            echo "connect 127.0.0.1:$p identity=cli peer=server cipher=$c"
            echo "accept  127.0.0.1:$p identity=srv peers=client cipher=$c"
        done
    } > "$WORK/policy_id-$c"
    cp "$WORK/policy_id-$c" "$RAW/"
done
"$KEYTOOL" check "$WORK/policy_id-chachapoly" > "$RAW/keytool_check_id.txt" 2>&1 \
    || { cat "$RAW/keytool_check_id.txt" >&2; echo "bench: identity policy rejected" >&2; exit 1; }
"$KEYTOOL" check "$WORK/policy_chachapoly" > "$RAW/keytool_check.txt" 2>&1 \
    || { cat "$RAW/keytool_check.txt" >&2; echo "bench: bench policy rejected" >&2; exit 1; }
sealed() { echo "$LAUNCHER" -f "$WORK/policy_$1" --; }

# ------------------------------------------------------------------ 7. AEAD ceiling
log "7. one-core libsodium AEAD ceiling (16 KiB messages)"
PIN=""; have taskset && [ "$(nproc)" -gt 1 ] && PIN="taskset -c 1"
cmdlog "$PIN aead_speed 16384 $AEAD_SECS $AEAD_REPS"
$PIN "$BIN/aead_speed" 16384 "$AEAD_SECS" "$AEAD_REPS" > "$RAW/aead_speed.txt" 2>&1
for c in chachapoly aesgcm chachapoly-open aesgcm-open; do
    rec aead_gbps "$c" Gbit/s "$(grep "aead=$c " "$RAW/aead_speed.txt" | grep -o 'Gbps=[0-9.]*' | cut -d= -f2 | tr '\n' ' ')" \
        "MB/s runs [$(grep "aead=$c " "$RAW/aead_speed.txt" | grep -o 'MBps=[0-9.]*' | cut -d= -f2 | tr '\n' ',')] ${PIN:-unpinned}"
done
rec x25519_us x25519 us "$(grep '^x25519 ' "$RAW/aead_speed.txt" | grep -o 'us=[0-9.]*' | cut -d= -f2 | tr '\n' ' ')" \
    "one crypto_scalarmult, ${PIN:-unpinned}"

# ------------------------------------------------------------------ 5. process start
log "5. process start: /bin/true x$START_RUNS plain, with a libsodium-only preload, with the shim"
PRE_ENV="LD_PRELOAD=$SHIM SOCKSEAL_POLICY=$WORK/policy_chachapoly"
SOD_ENV="LD_PRELOAD=$BIN/preload_sodium.so"
if env $PRE_ENV cat /proc/self/maps | grep -q libsockseal; then shim_mapped=yes; else shim_mapped=no; fi
S0=""; S1=""; S2=""
if have hyperfine; then
    # hf_median FILE PATTERN: median (us) of the command matching PATTERN
    hf_median() { jq -r --arg p "$2" '.results[] | select(.command | test($p)) | .median*1e6' "$1" 2> /dev/null; }
    for i in 1 2 3; do
        a="env /bin/true"; b="env $SOD_ENV /bin/true"; c="env $PRE_ENV /bin/true"
        case $i in 1) set -- "$a" "$b" "$c" ;; 2) set -- "$c" "$a" "$b" ;; *) set -- "$b" "$c" "$a" ;; esac
        cmdlog "hyperfine -N --warmup 20 --runs $START_RUNS '$1' '$2' '$3'"
        timeout -k 5 180 hyperfine -N --style none --warmup 20 --runs "$START_RUNS" \
            --export-json "$RAW/start_$i.json" "$1" "$2" "$3" > "$RAW/start_$i.txt" 2>&1 \
            || log "hyperfine run $i failed: $(tail -c 300 "$RAW/start_$i.txt")"
        S0+="$(hf_median "$RAW/start_$i.json" '^env /bin/true$') "
        S1+="$(hf_median "$RAW/start_$i.json" 'SOCKSEAL_POLICY') "
        S2+="$(hf_median "$RAW/start_$i.json" 'preload_sodium') "
    done
    set --
    how="hyperfine -N, $START_RUNS runs x3 invocations in rotating order (medians)"
else
    for pre in shim sodium; do
        if [ $pre = shim ]; then so=$SHIM; else so=$BIN/preload_sodium.so; fi
        cmdlog "startloop $START_RUNS $so policy /bin/true"
        timeout -k 5 180 "$BIN/startloop" "$START_RUNS" "$so" "$WORK/policy_chachapoly" /bin/true > "$RAW/start_loop_$pre.txt" 2>&1
    done
    S0=$(grep -o 'runs_plain=[0-9.,]*' "$RAW/start_loop_shim.txt" | cut -d= -f2 | tr ',' ' ')
    S1=$(grep -o 'runs_preload=[0-9.,]*' "$RAW/start_loop_shim.txt" | cut -d= -f2 | tr ',' ' ')
    # the sodium loop has its own plain runs: shift them onto the shim loop's plain median
    S2=$(awk -F'[ =,]' '{for (i=1;i<=NF;i++) if ($i=="delta_us") print $(i+1)}' "$RAW/start_loop_sodium.txt" \
        | awk -v p="$(tr ' ' '\n' <<< "$S0" | grep . | stats | cut -d' ' -f1)" '{printf "%.1f", p+$1}')
    how="startloop (posix_spawn), $START_RUNS spawns x3 (medians)"
fi
rec start_us plain us "$S0" "$how: env /bin/true"
rec start_us preload us "$S1" "$how: env LD_PRELOAD=libsockseal.so SOCKSEAL_POLICY=... /bin/true; shim mapped: $shim_mapped"
rec start_us sodium us "$S2" "$how: env LD_PRELOAD=preload_sodium.so /bin/true (constructor: sodium_init only)"
# the per-start differences, from the paired medians of each invocation
pair_delta() { paste -d' ' <(tr ' ' '\n' <<< "$1" | grep .) <(tr ' ' '\n' <<< "$2" | grep .) | awk 'NF==2{printf "%.1f ", $1-$2}'; }
rec start_delta sockseal us "$(pair_delta "$S1" "$S0")" "per-start cost of preloading the shim"
rec start_delta sodium us "$(pair_delta "$S2" "$S0")" "per-start cost of preloading any libsodium-linked library (reference)"

# ------------------------------------------------------------------ plain servers
log "servers: plain, and plain under the shim with an unmatched policy"
start_bg "$RAW/iperf3_plain_server.log" iperf3 -s -B 127.0.0.1 -p "$P_IPERF"; PI=$LASTPID
start_bg "$RAW/echo_plain_server.log" "$BIN/echo_server" 127.0.0.1 "$P_ECHO" "$MAX_RUNTIME"; PE=$LASTPID
start_bg "$RAW/iperf3_unmatched_server.log" $(sealed unmatched) iperf3 -s -B 127.0.0.1 -p "$U_IPERF"; UI=$LASTPID
start_bg "$RAW/echo_unmatched_server.log" $(sealed unmatched) "$BIN/echo_server" 127.0.0.1 "$U_ECHO" "$MAX_RUNTIME"; UE=$LASTPID
for p in $P_IPERF $P_ECHO $U_IPERF $U_ECHO; do wait_listen "$p" || { echo "bench: a server did not start" >&2; exit 1; }; done

# ------------------------------------------------------------------ 1,2,3,6: plain and unmatched
# Plain and unmatched are measured in alternation, so drift hits both alike.
log "1/6. bulk throughput: plain and shim-unmatched (iperf3 -t $IPERF_T, alternating)"
PB=""; UB=""; PH=""; UH=""
# The order flips run by run (plain first, then unmatched first), so a
# drift within the section (TIME_WAIT sockets piling up, the host getting
# busier) does not always land on the same side.
bulk_plain() {
    read -r g h r <<< "$(iperf_once plain "$i" "$P_IPERF")"; [ -n "$g" ] && { PB+="$g "; PH+="${h%.*}/${r%.*} "; }
    sleep 0.3
}
bulk_unmatched() {
    read -r g h r <<< "$(iperf_once unmatched "$i" "$U_IPERF" $(sealed unmatched))"; [ -n "$g" ] && { UB+="$g "; UH+="${h%.*}/${r%.*} "; }
    sleep 0.3
}
for i in $(seq $((IPERF_REPS + PLAIN_EXTRA))); do
    if [ $((i % 2)) = 1 ]; then bulk_plain; bulk_unmatched; else bulk_unmatched; bulk_plain; fi
done
rec bulk plain Gbit/s "$PB" "iperf3 CPU% sender/receiver [${PH% }]"
rec bulk unmatched Gbit/s "$UB" "both iperf3 ends under the shim, policy matches no port; CPU% [${UH% }]"
log "2/6. connections/s: plain and shim-unmatched"
PC=""; UC=""; PCU=""; UCU=""
conn_plain() {
    f="$RAW/conn_plain_$i.txt"
    timeout -k 5 120 "$BIN/connbench" conn 127.0.0.1 "$P_ECHO" "$CONN_N" 10 > "$f" 2>&1 || log "conn plain $i: $(cat "$f")"
    PC+="$(kv per_s "$f") "; PCU+="$(kv median_us "$f") "
}
conn_unmatched() {
    f="$RAW/conn_unmatched_$i.txt"
    timeout -k 5 120 $(sealed unmatched) "$BIN/connbench" conn 127.0.0.1 "$U_ECHO" "$CONN_N" 10 > "$f" 2>&1 || log "conn unmatched $i: $(cat "$f")"
    UC+="$(kv per_s "$f") "; UCU+="$(kv median_us "$f") "
}
for i in $(seq "$REPS"); do
    if [ $((i % 2)) = 1 ]; then conn_plain; conn_unmatched; else conn_unmatched; conn_plain; fi
    sleep 0.2
done
cmdlog "[sockseal -f policy_unmatched --] connbench conn 127.0.0.1 PORT $CONN_N 10   # plain / unmatched, alternating x$REPS"
rec conn_s plain conn/s "$PC" "N=$CONN_N sequential connect+1B echo+close"
rec conn_us plain us "$PCU" ""
rec conn_s unmatched conn/s "$UC" "client and echo server under the shim, policy matches no port"
rec conn_us unmatched us "$UCU" ""
log "3. 64-byte ping-pong: plain"
SRV_PID=$(real_pid "$PE") ping_test plain plain "$P_ECHO"
log "4. memory: plain (reference: what the programs themselves cost)"
start_bg "$RAW/echo_plain_hold_server.log" "$BIN/echo_server" 127.0.0.1 "$S_HOLD" "$MAX_RUNTIME"; H=$LASTPID
wait_listen "$S_HOLD" && mem_test plain plain "" "$(real_pid "$H")" "$S_HOLD"
stop_pid "$H"
stop_pid "$UI"; stop_pid "$UE"

# ------------------------------------------------------------------ sockseal
# id-*: the identity suites (3, 4), the same programs and ports
for c in chachapoly aesgcm id-chachapoly id-aesgcm; do
    log "sockseal $c: bulk, conn/s, ping-pong, memory"
    start_bg "$RAW/iperf3_${c}_server.log" $(sealed $c) iperf3 -s -B 127.0.0.1 -p "$S_IPERF"; SI=$LASTPID
    start_bg "$RAW/echo_${c}_server.log" $(sealed $c) "$BIN/echo_server" 127.0.0.1 "$S_ECHO" "$MAX_RUNTIME"; SE=$LASTPID
    if wait_listen "$S_IPERF" && wait_listen "$S_ECHO"; then
        iperf_test "sockseal_$c" "$c" "$S_IPERF" "" $(sealed $c)
        conn_test "sockseal_$c" "$c" "$S_ECHO" $(sealed $c)
        SRV_PID=$(real_pid "$SE") ping_test "sockseal_$c" "$c" "$S_ECHO" $(sealed $c)
    fi
    stop_pid "$SI"; stop_pid "$SE"
    # fresh server for the memory figure
    start_bg "$RAW/echo_${c}_hold_server.log" $(sealed $c) "$BIN/echo_server" 127.0.0.1 "$S_HOLD" "$MAX_RUNTIME"; H=$LASTPID
    wait_listen "$S_HOLD" && mem_test "sockseal_$c" "$c" "" "$(real_pid "$H")" "$S_HOLD" $(sealed $c)
    stop_pid "$H"
    grep -h 'sockseal\[' "$RAW"/*"${c}"*.log "$RAW"/*"${c}"*.err "$RAW"/*"${c}"*.txt 2> /dev/null | sort | uniq -c | sort -rn | head -20 \
        > "$RAW/sockseal_${c}_log_summary.txt"
done

# ------------------------------------------------------------------ stunnel
if have stunnel4 && have openssl; then
    log "stunnel (TLS 1.3): bulk, conn/s, ping-pong, memory"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
        -keyout "$WORK/stunnel_key.pem" -out "$WORK/stunnel_cert.pem" > "$RAW/openssl_req.log" 2>&1
    cmdlog "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost -keyout key.pem -out cert.pem"
    ST_CI=$(pick_port); ST_SI=$(pick_port); ST_CE=$(pick_port); ST_SE=$(pick_port)
    # stunnel_conf ROLE -> file.  syslog = no: without a syslogd glibc falls
    # back to the console, which is slow in a VM.
    stunnel_conf() {
        local role=$1 f="$WORK/stunnel_$1.conf"
        {
            echo "foreground = yes"
            echo "syslog = no"
            echo "debug = 4"
            echo "pid ="
            echo "sslVersionMin = TLSv1.3"
            if [ "$role" = server ]; then
                echo "cert = $WORK/stunnel_cert.pem"
                echo "key = $WORK/stunnel_key.pem"
                printf '[iperf]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\n' "$ST_SI" "$P_IPERF"
                printf '[echo]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\n' "$ST_SE" "$P_ECHO"
            else
                printf '[iperf]\nclient = yes\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\n' "$ST_CI" "$ST_SI"
                printf '[echo]\nclient = yes\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\n' "$ST_CE" "$ST_SE"
            fi
        } > "$f"
        cp "$f" "$RAW/"
        echo "$f"
    }
    stunnel_start() {   # -> STS STC (timeout PIDs), STS_R STC_R (stunnel PIDs)
        start_bg "$RAW/stunnel_server_$1.log" stunnel4 "$(stunnel_conf server)"; STS=$LASTPID
        start_bg "$RAW/stunnel_client_$1.log" stunnel4 "$(stunnel_conf client)"; STC=$LASTPID
        wait_listen "$ST_SI" && wait_listen "$ST_SE" && wait_listen "$ST_CI" && wait_listen "$ST_CE" || return 1
        STS_R=$(real_pid "$STS"); STC_R=$(real_pid "$STC")
    }
    if stunnel_start 1; then
        timeout 10 openssl s_client -connect "127.0.0.1:$ST_SE" -tls1_3 < /dev/null > "$RAW/stunnel_suite.txt" 2>&1
        ST_SUITE=$(grep -o 'Cipher is [A-Z0-9_]*' "$RAW/stunnel_suite.txt" | head -1 | awk '{print $3}')
        echo "stunnel negotiated: ${ST_SUITE:-unknown}" >> "$RAW/env.txt"
        iperf_test stunnel stunnel "$ST_CI" "$STC_R $STS_R"
        conn_test stunnel stunnel "$ST_CE"
        ping_test stunnel stunnel "$ST_CE"
    fi
    stop_pid "$STC"; stop_pid "$STS"; sleep 0.2
    stunnel_start 2 && mem_test stunnel stunnel "$STC_R" "$STS_R" "$ST_CE"
    stop_pid "$STC"; stop_pid "$STS"
else
    log "stunnel4 or openssl missing: stunnel column n/a"
fi

# ------------------------------------------------------------------ spiped
if have spiped; then
    log "spiped: bulk, conn/s, ping-pong, memory"
    head -c 32 /dev/urandom > "$WORK/spiped.key"
    SP_EI=$(pick_port); SP_DI=$(pick_port); SP_EE=$(pick_port); SP_DE=$(pick_port)
    # spiped_pair ENC DEC TARGET -> SPE SPD (timeout PIDs), SPE_R SPD_R
    spiped_pair() {
        start_bg "$RAW/spiped_d_$2.log" spiped -F -d -s "[127.0.0.1]:$2" -t "[127.0.0.1]:$3" -k "$WORK/spiped.key" -n 1000; SPD=$LASTPID
        start_bg "$RAW/spiped_e_$1.log" spiped -F -e -s "[127.0.0.1]:$1" -t "[127.0.0.1]:$2" -k "$WORK/spiped.key" -n 1000; SPE=$LASTPID
        wait_listen "$1" && wait_listen "$2" || return 1
        SPE_R=$(real_pid "$SPE"); SPD_R=$(real_pid "$SPD")
    }
    if spiped_pair "$SP_EI" "$SP_DI" "$P_IPERF"; then
        iperf_test spiped spiped "$SP_EI" "$SPE_R $SPD_R"
    fi
    stop_pid "$SPE"; stop_pid "$SPD"
    if spiped_pair "$SP_EE" "$SP_DE" "$P_ECHO"; then
        conn_test spiped spiped "$SP_EE"
        ping_test spiped spiped "$SP_EE"
    fi
    stop_pid "$SPE"; stop_pid "$SPD"; sleep 0.2
    spiped_pair "$SP_EE" "$SP_DE" "$P_ECHO" && mem_test spiped spiped "$SPE_R" "$SPD_R" "$SP_EE"
    stop_pid "$SPE"; stop_pid "$SPD"
else
    log "spiped missing: spiped column n/a"
fi
stop_pid "$PI"; stop_pid "$PE"

# ------------------------------------------------------------------ 7b. idle
log "7b. idle sealed connections: round trip and conn/s at 0, 1000, 10000 (bench/idle.sh)"
B="$B" OUT="$OUT" QUICK="$QUICK" bash "$HERE/idle.sh" > /dev/null 2>> "$RAW/log.txt" \
    || log "idle: the harness failed (see raw/log.txt)"

# ------------------------------------------------------------------ 8. soak
log "8. soak: redis-server and redis-benchmark under the shim (bench/soak.sh)"
OUT="$OUT" TSV="$TSV" QUICK="$QUICK" bash "$HERE/soak.sh" > /dev/null 2>> "$RAW/log.txt" \
    || log "soak: the harness failed (see raw/log.txt)"

# ------------------------------------------------------------------ report
BUSY_END=$(busy_pct)
snapshot end
echo "cpu busy after the run (1 s, all CPUs): ${BUSY_END}%" >> "$RAW/env.txt"
T_END=$(date +%s)
echo "runtime_s: $((T_END - T_START))" >> "$RAW/env.txt"
echo "loadavg at end: $(cat /proc/loadavg)" >> "$RAW/env.txt"

cell() { echo "${CELL[$1,$2]:-n/a}"; }
med() { echo "${MED[$1,$2]:-NA}"; }
# ratio A B -> A/B with 2 decimals, or NA
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a==""||b==""||a=="NA"||b=="NA"||b+0==0) print "NA"; else printf "%.2f", a/b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a==""||b==""||a=="NA"||b=="NA"||b+0==0) print "NA"; else printf "%.0f%%", 100*a/b }'; }
# verdict VALUE OP LIMIT -> "met" / "NOT met" / "n/a"
verdict() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN{ if (v==""||v=="NA") {print "n/a"; exit}
    ok = (op==">=") ? (v+0 >= l+0) : (v+0 <= l+0); print ok ? "met" : "NOT met" }'; }

{
    W=22
    printf '%-36s' "metric (median (min-max))"
    for h in plain sockseal-chacha sockseal-aes stunnel spiped ceiling id-chacha id-aes; do printf " %-${W}s" "$h"; done
    printf '\n'
    row() {   # LABEL plain chacha aes stunnel spiped ceiling [id-chacha id-aes]
        local l=$1; shift
        printf '%-36s' "$l"
        for v in "$@"; do printf " %-${W}s" "$v"; done
        printf '\n'
    }
    row "bulk 1 stream, Gbit/s" "$(cell bulk plain)" "$(cell bulk chachapoly)" "$(cell bulk aesgcm)" \
        "$(cell bulk stunnel)" "$(cell bulk spiped)" "c $(fmtn "$(med aead_gbps chachapoly)") / a $(fmtn "$(med aead_gbps aesgcm)")" \
        "$(cell bulk id-chachapoly)" "$(cell bulk id-aesgcm)"
    row "connections/s (1-byte echo)" "$(cell conn_s plain)" "$(cell conn_s chachapoly)" "$(cell conn_s aesgcm)" \
        "$(cell conn_s stunnel)" "$(cell conn_s spiped)" "" \
        "$(cell conn_s id-chachapoly)" "$(cell conn_s id-aesgcm)"
    row "connect->echo median, us" "$(cell conn_us plain)" "$(cell conn_us chachapoly)" "$(cell conn_us aesgcm)" \
        "$(cell conn_us stunnel)" "$(cell conn_us spiped)" "" \
        "$(cell conn_us id-chachapoly)" "$(cell conn_us id-aesgcm)"
    row "64 B RTT median, us" "$(cell rtt_med plain)" "$(cell rtt_med chachapoly)" "$(cell rtt_med aesgcm)" \
        "$(cell rtt_med stunnel)" "$(cell rtt_med spiped)" "" \
        "$(cell rtt_med id-chachapoly)" "$(cell rtt_med id-aesgcm)"
    row "64 B RTT p99, us" "$(cell rtt_p99 plain)" "$(cell rtt_p99 chachapoly)" "$(cell rtt_p99 aesgcm)" \
        "$(cell rtt_p99 stunnel)" "$(cell rtt_p99 spiped)" "" \
        "$(cell rtt_p99 id-chachapoly)" "$(cell rtt_p99 id-aesgcm)"
    row "  pinned, both on 1 CPU" "$(cell rtt_one plain)" "$(cell rtt_one chachapoly)" "$(cell rtt_one aesgcm)" "" "" "" \
        "$(cell rtt_one id-chachapoly)" "$(cell rtt_one id-aesgcm)"
    row "  pinned, 1 CPU each" "$(cell rtt_two plain)" "$(cell rtt_two chachapoly)" "$(cell rtt_two aesgcm)" "" "" "" \
        "$(cell rtt_two id-chachapoly)" "$(cell rtt_two id-aesgcm)"
    row "RSS/idle conn, client side, KiB" "$(cell mem_client plain)" "$(cell mem_client chachapoly)" "$(cell mem_client aesgcm)" \
        "$(cell mem_client stunnel)" "$(cell mem_client spiped)" "" \
        "$(cell mem_client id-chachapoly)" "$(cell mem_client id-aesgcm)"
    row "RSS/idle conn, server side, KiB" "$(cell mem_server plain)" "$(cell mem_server chachapoly)" "$(cell mem_server aesgcm)" \
        "$(cell mem_server stunnel)" "$(cell mem_server spiped)" "" \
        "$(cell mem_server id-chachapoly)" "$(cell mem_server id-aesgcm)"
    row "RSS/idle conn, pair, KiB" "$(cell mem_pair plain)" "$(cell mem_pair chachapoly)" "$(cell mem_pair aesgcm)" \
        "$(cell mem_pair stunnel)" "$(cell mem_pair spiped)" "" \
        "$(cell mem_pair id-chachapoly)" "$(cell mem_pair id-aesgcm)"
    row "start /bin/true, us (+shim)" "$(cell start_us plain)" "+$(cell start_delta sockseal)" "(same shim)" "" "" ""
    row "  of which any libsodium preload" "" "+$(cell start_delta sodium)" "" "" "" ""
    row "shim loaded, unmatched: Gbit/s" "$(cell bulk unmatched)" "" "" "" "" ""
    row "shim loaded, unmatched: conn/s" "$(cell conn_s unmatched)" "" "" "" "" ""
    row "AEAD 16 KiB, 1 core, Gbit/s" "" "$(cell aead_gbps chachapoly)" "$(cell aead_gbps aesgcm)" "" "" ""
    row "  same, decrypt+verify, Gbit/s" "" "$(cell aead_gbps chachapoly-open)" "$(cell aead_gbps aesgcm-open)" "" "" ""
    row "X25519, 1 core, us" "" "" "" "" "" "$(cell x25519_us x25519)"
    echo
    echo "ratios (medians; target in brackets for reference, this is not a test):"
    bc=$(ratio "$(med bulk chachapoly)" "$(med bulk stunnel)"); ba=$(ratio "$(med bulk aesgcm)" "$(med bulk stunnel)")
    printf '  bulk     sockseal/stunnel   chacha %sx [>=1.5x: %s]   aes %sx [>=2x: %s]\n' \
        "$bc" "$(verdict "$bc" '>=' 1.5)" "$ba" "$(verdict "$ba" '>=' 2)"
    printf '  bulk     sockseal/plain     chacha %s   aes %s\n' \
        "$(pct "$(med bulk chachapoly)" "$(med bulk plain)")" "$(pct "$(med bulk aesgcm)" "$(med bulk plain)")"
    gc=$(ratio "$(med bulk chachapoly)" "$(awk -v x="$(med aead_gbps chachapoly)" 'BEGIN{print x}')")
    ga=$(ratio "$(med bulk aesgcm)" "$(med aead_gbps aesgcm)")
    printf '  bulk     sockseal/ceiling   chacha %s   aes %s   [>=70%% of the one-core AEAD ceiling: %s / %s]\n' \
        "$(pct "$(med bulk chachapoly)" "$(med aead_gbps chachapoly)")" "$(pct "$(med bulk aesgcm)" "$(med aead_gbps aesgcm)")" \
        "$(verdict "$gc" '>=' 0.7)" "$(verdict "$ga" '>=' 0.7)"
    sc=$(ratio "$(med conn_s chachapoly)" "$(med conn_s stunnel)"); sa=$(ratio "$(med conn_s aesgcm)" "$(med conn_s stunnel)")
    printf '  conn/s   sockseal/stunnel   chacha %sx   aes %sx   [>=5x: %s / %s]\n' \
        "$sc" "$sa" "$(verdict "$sc" '>=' 5)" "$(verdict "$sa" '>=' 5)"
    printf '  conn/s   sockseal/plain     chacha %s   aes %s\n' \
        "$(pct "$(med conn_s chachapoly)" "$(med conn_s plain)")" "$(pct "$(med conn_s aesgcm)" "$(med conn_s plain)")"
    rc=$(ratio "$(med rtt_med chachapoly)" "$(med rtt_med plain)"); ra=$(ratio "$(med rtt_med aesgcm)" "$(med rtt_med plain)")
    printf '  RTT      sockseal/plain     chacha %sx   aes %sx   [<=1.15x: %s / %s]\n' \
        "$rc" "$ra" "$(verdict "$rc" '<=' 1.15)" "$(verdict "$ra" '<=' 1.15)"
    for pl in one two; do
        rc=$(ratio "$(med rtt_$pl chachapoly)" "$(med rtt_$pl plain)"); ra=$(ratio "$(med rtt_$pl aesgcm)" "$(med rtt_$pl plain)")
        printf '  RTT      pinned, %s CPU%s     chacha %sx   aes %sx   [<=1.15x: %s / %s]\n' "$([ $pl = one ] && echo 1 || echo 2)" \
            "$([ $pl = one ] && echo ' ' || echo s)" "$rc" "$ra" "$(verdict "$rc" '<=' 1.15)" "$(verdict "$ra" '<=' 1.15)"
    done
    rt=$(ratio "$(med rtt_med chachapoly)" "$(med rtt_med stunnel)")
    printf '  RTT      sockseal/stunnel   chacha %sx   aes %sx\n' "$rt" "$(ratio "$(med rtt_med aesgcm)" "$(med rtt_med stunnel)")"
    mx=$(awk -v a="$(med mem_client chachapoly)" -v b="$(med mem_server chachapoly)" -v c="$(med mem_client aesgcm)" -v d="$(med mem_server aesgcm)" \
        'BEGIN{ m="NA"; n=split(a" "b" "c" "d, v, " "); for (i=1;i<=n;i++) if (v[i]!="NA" && (m=="NA" || v[i]+0>m+0)) m=v[i]; print m }')
    printf '  memory   worst sockseal side %s KiB/idle conn   [<=16 KiB: %s]   pair vs stunnel %s, vs spiped %s\n' \
        "$(fmtn "$mx")" "$(verdict "$mx" '<=' 16)" \
        "$(pct "$(med mem_pair chachapoly)" "$(med mem_pair stunnel)")" "$(pct "$(med mem_pair chachapoly)" "$(med mem_pair spiped)")"
    printf '  start    +%s us per exec with the shim (+%s us of it for loading any libsodium-linked preload)   [<=1000 us: %s]\n' \
        "$(fmtn "$(med start_delta sockseal)")" "$(fmtn "$(med start_delta sodium)")" "$(verdict "$(med start_delta sockseal)" '<=' 1000)"
    ic=$(ratio "$(med conn_s id-chachapoly)" "$(med conn_s stunnel)"); ia=$(ratio "$(med conn_s id-aesgcm)" "$(med conn_s stunnel)")
    printf '  identity conn/s /stunnel    chacha %sx   aes %sx   [>=3x: %s / %s]   vs PSK suites: chacha %s   aes %s\n' \
        "$ic" "$ia" "$(verdict "$ic" '>=' 3)" "$(verdict "$ia" '>=' 3)" \
        "$(pct "$(med conn_s id-chachapoly)" "$(med conn_s chachapoly)")" "$(pct "$(med conn_s id-aesgcm)" "$(med conn_s aesgcm)")"
    printf '  identity bulk /PSK suites   chacha %s   aes %s;   RTT /plain   chacha %sx   aes %sx\n' \
        "$(pct "$(med bulk id-chachapoly)" "$(med bulk chachapoly)")" "$(pct "$(med bulk id-aesgcm)" "$(med bulk aesgcm)")" \
        "$(ratio "$(med rtt_med id-chachapoly)" "$(med rtt_med plain)")" "$(ratio "$(med rtt_med id-aesgcm)" "$(med rtt_med plain)")"
    # The handshake's critical path, X25519s that wait for each other: NNpsk0
    # 2 (the responder's ee | the initiator's ee), IKpsk2 4 (es, ee | ee,
    # se).  Both sides' ephemerals are made ahead, while each waits on its
    # previous handshake's peer, with the DH of that peer's static key when
    # it came twice running (the initiator's es, the responder's se;
    # shim/session_eph.c, tests/unit/test_session_eph.c); ss is kept per
    # pair of static keys.
    x=$(med x25519_us x25519)
    hs() { awk -v a="$(med conn_us "$1")" -v b="$(med conn_us plain)" -v x="$x" -v n="$2" 'BEGIN{
        if (a=="NA"||b=="NA"||x=="NA") { print "n/a"; exit }
        d=a-b; printf "+%.0f us over plain, %d X25519 in a row = %.0f us (%.0f%% of the extra)", d, n, n*x, (d > 0 ? 100*n*x/d : 0) }'; }
    printf '  handshake  PSK (chacha) %s\n' "$(hs chachapoly 2)"
    printf '             identity (chacha) %s\n' "$(hs id-chachapoly 4)"
    ub=$(ratio "$(med bulk unmatched)" "$(med bulk plain)"); uc=$(ratio "$(med conn_s unmatched)" "$(med conn_s plain)")
    # only a slowdown counts: unmatched at or above 0.98x plain is "within 2%"
    printf '  unmatched/plain   bulk %sx   conn/s %sx   [>=0.98x, i.e. within 2%%: %s / %s]\n' \
        "$ub" "$uc" "$(verdict "$ub" '>=' 0.98)" "$(verdict "$uc" '>=' 0.98)"
    echo
    echo "stunnel: TLS 1.3 $(grep -o 'negotiated: .*' "$RAW/env.txt" | cut -d' ' -f2), P-256 cert, default session resumption; spiped: default (DH handshake), -n 1000"
    echo "$( [ "$QUICK" = 1 ] && echo 'QUICK run; ')iperf3 -t $IPERF_T -l 128K x$IPERF_REPS (plain/unmatched x$((IPERF_REPS + PLAIN_EXTRA))), conn N=$CONN_N x$REPS, ping $PING_N x$REPS, hold $HOLD_N; runtime $((T_END - T_START)) s"
    [ -s "$OUT/idle.txt" ] && cat "$OUT/idle.txt"
    [ -s "$OUT/soak.txt" ] && cat "$OUT/soak.txt"
    echo "raw data: $RAW   per-run values: $TSV"
    if [ "$BUSY_START" -gt 10 ] || [ "$BUSY_END" -gt 10 ]; then
        echo "WARNING: the machine was not quiet: ${BUSY_START}% CPU busy before the run, ${BUSY_END}% after, with nothing of ours running;"
        echo "         other work shares the cores, so the figures are disturbed (raw/top.txt shows what ran)"
    fi
} > "$OUT/results.txt"
cat "$OUT/results.txt"
log "done in $((T_END - T_START)) s"
exit 0
