# shellcheck shell=bash
# Shared helpers for the integration scenarios (tests/integration/NN-*.sh).
# Each scenario: `. "$(dirname "$0")/lib.sh"`, test functions, `. shunit2`.
#
# Environment (set by tests/run-integration.sh / make integration):
#   B        absolute build dir (libsockseal.so, sockseal-keytool, sockseal)
#   PRELOAD  what LD_PRELOAD gets for sealed programs (sanitizer runtime first)
#   SAN      '' | asan | tsan
# Per test: $TD (fresh temp dir), $POLICY ($TD/policy).
# KEEP_TMP=1 keeps the temp dirs; TEST_TIMEOUT bounds every program (default 60 s).

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${SOCKSEAL_ROOT:-$(cd "$LIB_DIR/../.." && pwd)}
B=${B:-$ROOT/build}
PRELOAD=${PRELOAD:-$B/libsockseal.so}
SAN=${SAN:-}
KEYTOOL=$B/sockseal-keytool
LAUNCHER=$B/sockseal
PY=/usr/bin/python3
PEER=$ROOT/tests/peer/sockseal_peer.py
PROGS=$ROOT/tests/programs
PCAPCHECK=$LIB_DIR/pcapcheck.py
TMO=${TEST_TIMEOUT:-60}
PREFACE_HEX=534b534c01010000
SHUNIT_COLOR=none
export SHUNIT_COLOR

# the sanitizer runtime(s): every word of PRELOAD but the last (the shim)
SAN_RT=
case "$PRELOAD" in *" "*) SAN_RT=${PRELOAD% *} ;; esac

SAN_ENV=()
case "$SAN" in
    asan) SAN_ENV=(ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}") ;;
    tsan) SAN_ENV=(TSAN_OPTIONS="report_signal_unsafe=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}") ;;
esac

declare -gA BGPID=()

# ------------------------------------------------------------ shunit2 hooks

oneTimeSetUp() {
    SUITE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sockseal-$(basename "$0" .sh).XXXXXX")
    if declare -F scenario_setup >/dev/null; then scenario_setup; fi
    return 0
}

oneTimeTearDown() {
    [ -n "${SUITE_TMP:-}" ] || return 0
    stop_all
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $SUITE_TMP"
    else
        rm -rf "$SUITE_TMP"
    fi
    SUITE_TMP=
    return 0
}

# The test functions, in file order (as shunit2 finds them), each wrapped
# so that this file knows which test runs and whether one of its
# assertions failed, without shunit2's private variables.  shunit2 calls
# suite() once its own functions exist: the assertions are wrapped too.
SK_TEST=
SK_FAILED=0
suite() {
    local f t
    for f in assertEquals assertNotEquals assertContains assertNotContains \
        assertNull assertNotNull assertSame assertNotSame assertTrue \
        assertFalse fail failNotEquals failFound failNotFound failSame \
        failNotSame; do
        declare -F "$f" >/dev/null || continue
        eval "_sk_$(declare -f "$f")"
        eval "$f() { _sk_$f \"\$@\"; local r=\$?; [ \$r = 0 ] || SK_FAILED=1; return \$r; }"
    done
    for t in $(sed -n 's/^\(test_[A-Za-z0-9_]*\)[[:space:]]*().*$/\1/p' "$0"); do
        declare -F "$t" >/dev/null || continue
        eval "_sk_$(declare -f "$t")"
        eval "$t() { sk_begin $t; _sk_$t \"\$@\"; }"
        suite_addTest "$t"
    done
}

# sk_begin NAME: test NAME starts: its own $TD, $POLICY and processes.
sk_begin() {
    SK_TEST=$1
    SK_FAILED=0
    TD=$SUITE_TMP/$1
    rm -rf "$TD"
    mkdir -p "$TD"
    POLICY=$TD/policy
    BGPID=()
}

setUp() { return 0; }

tearDown() {
    stop_all
    [ -n "$SK_TEST" ] || return 0   # shunit2's exit cleanup
    if [ "$SK_FAILED" = 0 ]; then
        if isSkipping; then
            echo "TESTRESULT $SK_TEST SKIP"
        else
            echo "TESTRESULT $SK_TEST PASS"
        fi
    else
        echo "TESTRESULT $SK_TEST FAIL"
        dump_logs
    fi
    SK_TEST=
    return 0
}

# On failure: show what the programs said.
dump_logs() {
    local f
    for f in "$TD"/*.err "$TD"/*.out "$TD"/policy; do
        [ -s "$f" ] || continue
        echo "    --- ${f#"$TD"/} (last 15 lines)"
        tail -n 15 "$f" | sed 's/^/    | /'
    done
}

# ------------------------------------------------------------------ basics

# free_port [ADDR]: a port free on ADDR (127.0.0.1 or ::1) right now.
free_port() {
    "$PY" - "${1:-127.0.0.1}" <<'PY'
import socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET)
s.bind((a, 0))
print(s.getsockname()[1])
PY
}

# mkkey NAME: $TD/NAME.key made with the key tool; prints the path.
mkkey() {
    local f=$TD/$1.key
    "$KEYTOOL" gen "$f" >"$TD/keytool-gen-$1.out" 2>&1 || {
        echo "mkkey: $KEYTOOL gen $f failed:" >&2
        cat "$TD/keytool-gen-$1.out" >&2
        return 1
    }
    echo "$f"
}

# rawkey NAME: a key file made without the key tool (wg genpsk form).
rawkey() {
    local f=$TD/$1.key
    head -c 32 /dev/urandom | base64 >"$f"
    chmod 600 "$f"
    echo "$f"
}

# write_policy: $POLICY from stdin.
write_policy() { cat >"$POLICY"; }

# loopback_policy PORT [ACCEPT-OPTIONS]: the prelude most scenarios need: a
# new key k (its path in KEY) and $POLICY with a connect and an accept rule
# for 127.0.0.1:PORT (lines 2 and 3), the accept rule with ACCEPT-OPTIONS.
loopback_policy() {
    KEY=$(mkkey k) || return 1
    write_policy <<EOF
key k $KEY
connect 127.0.0.1:$1 key=k
accept 127.0.0.1:$1 key=k${2:+ $2}
EOF
}

# mkdata FILE BYTES: random data.
mkdata() { head -c "$2" /dev/urandom >"$1"; }

# mkmarked FILE BYTES MARKER...: random data with the markers repeated inside.
mkmarked() {
    "$PY" - "$@" <<'PY'
import os, sys
path, size, markers = sys.argv[1], int(sys.argv[2]), [m.encode() for m in sys.argv[3:]]
out, i = bytearray(), 0
while len(out) < size:
    out += markers[i % len(markers)] + b"\n" + os.urandom(1000)
    i += 1
open(path, "wb").write(out[:size])
PY
}

# newmarker: a unique plaintext marker string.
newmarker() { echo "SOCKSEAL-MARKER-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }

sha() { sha256sum "$1" | cut -d' ' -f1; }
fsize() { stat -c %s "$1"; }

# assertSameFile MSG EXPECTED ACTUAL: same size and sha256.
assertSameFile() {
    if [ ! -f "$3" ]; then
        fail "$1: $3 does not exist"
        return 0
    fi
    assertEquals "$1 (size)" "$(fsize "$2")" "$(fsize "$3")"
    assertEquals "$1 (sha256)" "$(sha "$2")" "$(sha "$3")"
}

# assertFileContains MSG FILE REGEX
assertFileContains() {
    grep -qE -- "$3" "$2" || fail "$1: /$3/ not in ${2#"$TD"/}: $(tail -n 5 "$2" 2>/dev/null | tr '\n' '|')"
}
assertFileNotContains() {
    ! grep -qE -- "$3" "$2" || fail "$1: /$3/ found in ${2#"$TD"/}: $(grep -E -- "$3" "$2" | head -n 3 | tr '\n' '|')"
}

# assertFileHasString MSG FILE STRING (fixed string, not a regex)
assertFileHasString() {
    grep -qF -- "$3" "$2" || fail "$1: '$3' not in ${2#"$TD"/}: $(tail -n 5 "$2" 2>/dev/null | tr '\n' '|')"
}

# assertFileLacksString MSG FILE STRING (fixed string, not a regex)
assertFileLacksString() {
    ! grep -qF -- "$3" "$2" || fail "$1: '$3' found in ${2#"$TD"/}"
}

# -------------------------------------------------------- running programs

# san_can_run CMD ARGS...: true, unless the shim under test is a sanitizer
# build and CMD cannot even start with that sanitizer runtime alone
# preloaded (no shim): Debian's curl and postgres hang at start-up under
# gcc 12's libasan/libtsan.  Such tests are skipped, never run unsealed.
san_can_run() {
    [ -n "$SAN_RT" ] || return 0
    timeout -k 2 10 env LD_PRELOAD="$SAN_RT" "${SAN_ENV[@]}" "$@" >/dev/null 2>&1 &&
        return 0
    echo "    skipped: $1 does not start with LD_PRELOAD=$SAN_RT alone (no shim)"
    return 1
}

# curl_usable: can curl run under the sanitizer runtime that sealed
# programs get first in LD_PRELOAD?  On Debian 12 curl deadlocks in
# setlocale() at start under the asan and tsan runtimes alone; tests then
# skip curl (or use another client), never run it unsealed.
CURL_USABLE=
curl_usable() {
    if [ -z "$CURL_USABLE" ]; then
        CURL_USABLE=yes
        [ -z "$SAN_RT" ] || timeout 10 env LD_PRELOAD="$SAN_RT" "${SAN_ENV[@]}" \
            curl -s -o /dev/null file:///dev/null || CURL_USABLE=no
    fi
    [ "$CURL_USABLE" = yes ]
}

# sealed CMD...: run CMD with the shim and $POLICY (bounded by $TMO).
sealed() {
    timeout -k 5 "$TMO" env LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$POLICY" \
        "${SAN_ENV[@]}" "$@"
}

# plain CMD...: run CMD without the shim (bounded by $TMO).
plain() { timeout -k 5 "$TMO" "$@"; }

# peer ARGS...: the independent python peer, never shimmed.
peer() { timeout -k 5 "$TMO" env -u LD_PRELOAD "$PY" "$PEER" "$@"; }

# bg NAME sealed|plain|peer CMD...: start in the background; stdout and
# stderr go to $TD/NAME.out and $TD/NAME.err; BGPID[NAME] is the pid.
bg() {
    local name=$1 how=$2
    shift 2
    case "$how" in
        sealed) set -- timeout -k 5 "$TMO" env LD_PRELOAD="$PRELOAD" \
                    SOCKSEAL_POLICY="$POLICY" "${SAN_ENV[@]}" "$@" ;;
        plain) set -- timeout -k 5 "$TMO" "$@" ;;
        peer) set -- timeout -k 5 "$TMO" env -u LD_PRELOAD "$PY" "$PEER" "$@" ;;
        *) echo "bg: sealed|plain|peer, not $how" >&2; return 1 ;;
    esac
    "$@" >"$TD/$name.out" 2>"$TD/$name.err" </dev/null &
    BGPID[$name]=$!
}

# wait_bg NAME: wait for it (bounded by the timeout wrapper); returns its status.
wait_bg() {
    local pid=${BGPID[$1]:-}
    [ -n "$pid" ] || { echo "wait_bg: no $1" >&2; return 127; }
    local rc=0
    wait "$pid" || rc=$?
    unset "BGPID[$1]"
    return "$rc"
}

# stop_bg NAME [SIGNAL]: stop one process this test started, by pid.
stop_bg() {
    local pid=${BGPID[$1]:-}
    [ -n "$pid" ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "BGPID[$1]"
    return 0
}

stop_all() {
    local n
    for n in "${!BGPID[@]}"; do stop_bg "$n"; done
    return 0
}

running() { local pid=${BGPID[$1]:-}; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# wait_listen PORT [NAME] [SECS]: until something listens on PORT (checked
# with ss, never by connecting). Fails early if background NAME has exited.
wait_listen() {
    local port=$1 name=${2:-} i tries=$(( ${3:-10} * 20 ))
    for ((i = 0; i < tries; i++)); do
        if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then return 0; fi
        if [ -n "$name" ] && ! running "$name"; then
            echo "wait_listen: $name exited before listening on $port" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "wait_listen: nothing listens on $port after ${3:-10}s" >&2
    return 1
}

# wait_file FILE [SECS]: until FILE is non-empty.
wait_file() {
    local i tries=$(( ${2:-10} * 20 ))
    for ((i = 0; i < tries; i++)); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    echo "wait_file: $1 still empty after ${2:-10}s" >&2
    return 1
}

# wait_line FILE REGEX [SECS]: until a line of FILE matches REGEX.
wait_line() {
    local i tries=$(( ${3:-10} * 20 ))
    for ((i = 0; i < tries; i++)); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "wait_line: /$2/ not in $1 after ${3:-10}s" >&2
    return 1
}

# peer_listen NAME ARGS...: python peer listening on 127.0.0.1, port chosen
# by the kernel; sets PEER_PORT.
peer_listen() {
    local name=$1
    shift
    rm -f "$TD/$name.port"
    bg "$name" peer listen 127.0.0.1 0 --port-file "$TD/$name.port" "$@"
    wait_file "$TD/$name.port" 10 || return 1
    PEER_PORT=$(cat "$TD/$name.port")
}

# ----------------------------------------------------------------- capture

# cap_start PORT: tcpdump on lo for tcp port PORT into $TD/cap.pcap.
cap_start() {
    CAP=$TD/cap.pcap
    bg tcpdump plain tcpdump -i lo -n -U --immediate-mode -B 65536 -s 0 -w "$CAP" "tcp port $1"
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q "listening on" "$TD/tcpdump.err" 2>/dev/null && return 0
        running tcpdump || break
        sleep 0.05
    done
    echo "cap_start: tcpdump did not start: $(cat "$TD/tcpdump.err")" >&2
    return 1
}

# cap_stop: wait (bounded) until every captured connection has ended, then
# stop tcpdump.
cap_stop() {
    "$PY" "$PCAPCHECK" "$CAP" --wait-closed 5 >/dev/null 2>&1
    stop_bg tcpdump INT
}

# cap_check ARGS...: pcapcheck.py on the capture, output in $TD/capcheck.out.
cap_check() {
    "$PY" "$PCAPCHECK" "$CAP" "$@" >"$TD/capcheck.out" 2>&1
    local rc=$?
    sed 's/^/    capcheck: /' "$TD/capcheck.out"
    return $rc
}
