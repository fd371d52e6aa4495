#!/bin/bash
# haproxy (event-driven proxy: 2 threads, each with its own epoll loop,
# non-blocking sockets, accept4 on a shared listener, backend connections
# opened with a non-blocking connect and, in HTTP mode, kept idle and
# reused across clients and threads; prctl(PR_SET_NO_NEW_PRIVS) at start).
# Sealed clients (tests/programs/http_ka.py) -> sealed haproxy (accept
# rule) -> two sealed origins (tests/programs/http_origin.py; connect and
# accept rules): both hops sealed.  HTTP mode (round robin, http-reuse
# always) and TCP mode, with and without kernel splicing asked for.
# Bodies by sha256; the capture of all three ports shows the preface on
# every connection and no plaintext.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
HAP_TRACE=()    # a tracer to run haproxy under (hstop finds haproxy below it)
BIG=$((2 * 1024 * 1024))
UP=$((1024 * 1024))

scenario_setup() {
    [ -x "$HAPROXY" ] || echo "55-haproxy: haproxy missing (make install-deps)" >&2
}

# hstart MODE [OPTION...]: origins on BPORT and BPORT2, haproxy in MODE
# (http|tcp, with "option OPTION" lines) on PORT, all sealed; the capture
# of the three ports running; files $TD/www/big.bin, $TD/up.bin marked M.
hstart() {
    local mode=$1 o opts=
    shift
    [ -x "$HAPROXY" ] || { fail "haproxy missing"; return 1; }
    san_can_run "$HAPROXY" -v || { startSkipping; return 2; }
    PORT=$(free_port)
    BPORT=$(free_port)
    BPORT2=$(free_port)
    mkkey k >/dev/null || return 1
    write_policy <<EOF2
key k $TD/k.key
connect 127.0.0.1:$PORT key=k
accept 127.0.0.1:$PORT key=k
connect 127.0.0.1:$BPORT key=k
accept 127.0.0.1:$BPORT key=k
connect 127.0.0.1:$BPORT2 key=k
accept 127.0.0.1:$BPORT2 key=k
EOF2
    for o in "$@"; do opts+="    option $o"$'\n'; done
    cat >"$TD/haproxy.cfg" <<EOF2
global
    nbthread 2
    log stderr format short local0 info
defaults
    mode $mode
    log global
    option ${mode}log
$opts    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
frontend fe
    bind 127.0.0.1:$PORT
    default_backend be
backend be
    balance roundrobin
    http-reuse always
    server o1 127.0.0.1:$BPORT
    server o2 127.0.0.1:$BPORT2
EOF2
    [ "$mode" = tcp ] && sed -i '/http-reuse/d; /http-keep-alive/d' "$TD/haproxy.cfg"
    M=$(newmarker)
    mkdir -p "$TD/www"
    mkmarked "$TD/www/big.bin" "$BIG" "$M"
    mkmarked "$TD/up.bin" "$UP" "$M"
    # one filter for the three ports (cap_start puts "tcp port" in front)
    cap_start "$PORT or tcp port $BPORT or tcp port $BPORT2" || return 1
    bg origin sealed "$PY" "$ORIGIN" "$BPORT" "$TD/www"
    bg origin2 sealed "$PY" "$ORIGIN" "$BPORT2" "$TD/www"
    wait_listen "$BPORT" origin || return 1
    wait_listen "$BPORT2" origin2 || return 1
    # -db: foreground, no master process
    bg hap sealed "${HAP_TRACE[@]}" "$HAPROXY" -db -f "$TD/haproxy.cfg"
    wait_listen "$PORT" hap 20
}

# hstop CONNS BYTES: SIGUSR1 to haproxy itself (the child of its timeout
# wrapper): a soft stop, exit 0; the origins stopped; then the capture.
# BYTES is what the client hop alone carries: both hops together carry
# twice that, so a loaded machine where tcpdump drops packets (it reports
# "dropped by kernel") does not fail the byte count.
hstop() {
    local rc=0 pid
    assertTrue "haproxy still running" "running hap"
    pid=$(ps -o pid= --ppid "${BGPID[hap]}" | tr -d ' ')
    [ -n "${HAP_TRACE[*]}" ] && pid=$(ps -o pid= --ppid "$pid" | tr -d ' ')
    kill -USR1 "$pid"
    wait_bg hap || rc=$?
    assertEquals "haproxy: exit status after the soft stop" 0 "$rc"
    assertFileContains "haproxy: frontend stopped" "$TD/hap.err" "Proxy fe stopped"
    stop_bg origin
    stop_bg origin2
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "big.bin" --min-conns "$1" --min-bytes "$2"
    assertEquals "capture: preface on every connection of both hops, no plaintext" 0 $?
}

# HTTP mode: 4 keep-alive connections at once, 3 rounds of GET 2 MiB and
# POST 1 MiB each, balanced over both origins; idle backend connections
# are reused (fewer backend connections than requests).
test_http_keepalive_two_origins() {
    local n1 n2 c
    hstart http || { [ $? = 2 ] || fail "haproxy did not start"; return 0; }
    ka "$PORT" --conns 4 --rounds 3 --get "/big.bin=$TD/www/big.bin" --post "/echo=$TD/up.bin"
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 4 6
    n1=$(grep -c '^origin: .* 200 ' "$TD/origin.err")
    n2=$(grep -c '^origin: .* 200 ' "$TD/origin2.err")
    assertEquals "origins: 24 requests in all" 24 $((n1 + n2))
    assertTrue "origin 1 served some ($n1)" "[ $n1 -gt 0 ]"
    assertTrue "origin 2 served some ($n2)" "[ $n2 -gt 0 ]"
    c=$(cat "$TD/origin.err" "$TD/origin2.err" | sed -n 's/.* lport=\([0-9]*\)$/\1/p' | sort -u | wc -l)
    assertTrue "backend connections reused ($c for 24 requests)" "[ $c -lt 24 ]"
    hstop 6 $((4 * 3 * (BIG + 2 * UP)))
}

# HTTP mode: 12 connections at once, one 2 MiB GET each.
test_http_twelve_parallel() {
    hstart http || { [ $? = 2 ] || fail "haproxy did not start"; return 0; }
    ka "$PORT" --conns 12 --get "/big.bin=$TD/www/big.bin"
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 12 1
    hstop 13 $((12 * BIG))
}

# TCP mode: each client connection gets its own backend connection; the
# HTTP keep-alive inside is the client's and the origin's business.
test_tcp_mode() {
    hstart tcp || { [ $? = 2 ] || fail "haproxy did not start"; return 0; }
    ka "$PORT" --conns 4 --rounds 2 --get "/big.bin=$TD/www/big.bin" --post "/echo=$TD/up.bin"
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 4 4
    hstop 8 $((4 * 2 * (BIG + 2 * UP)))
}

# TCP mode with kernel splicing asked for both ways (option splice-request,
# option splice-response): haproxy moves the bytes between its sealed
# client and origin connections with splice() through its own pipes, which
# the shim emulates (shim/hook_splice.c; it used to refuse, and haproxy
# ended every spliced session with SD).  haproxy runs under strace, which
# shows that splices moved bytes (haproxy's no_new_privs keeps the shim's
# own log quiet); not under a sanitizer, whose runtime strace would load.
test_tcp_mode_splice_requested() {
    local n
    [ -z "$SAN" ] && HAP_TRACE=(strace -f -qq -e trace=splice -e signal=none -o "$TD/strace.out")
    hstart tcp splice-request splice-response || { [ $? = 2 ] || fail "haproxy did not start"; return 0; }
    ka "$PORT" --conns 4 --rounds 2 --get "/big.bin=$TD/www/big.bin" --post "/echo=$TD/up.bin"
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 4 4
    assertFileNotContains "haproxy: no session ended by a server-side error" "$TD/hap.err" " SD "
    hstop 6 $((4 * 2 * (BIG + 2 * UP)))
    if [ -n "${HAP_TRACE[*]}" ]; then
        n=$(grep -c 'splice(.*= [1-9][0-9]*$' "$TD/strace.out")
        echo "    splice() calls that moved bytes: $n"
        assertTrue "haproxy spliced ($n calls moved bytes)" "[ $n -gt 0 ]"
    fi
    HAP_TRACE=()
}

. shunit2
