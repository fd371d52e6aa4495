#!/bin/bash
# Twisted (asynchronous runtime: one thread, the epoll reactor, level-
# triggered, non-blocking sockets; twisted.web.static.File streams a file as
# a producer that the transport pauses when its write buffer is full and
# resumes when it drains), tests/programs/twisted_http.py, sealed.  Clients:
# the blocking keep-alive client (tests/programs/http_ka.py) and a Twisted
# Agent with a persistent connection pool (both ends on the reactor), both
# sealed.  Bodies by sha256; the capture shows the preface on every
# connection and no plaintext.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"

TW=$PROGS/twisted_http.py
BIG=$((2 * 1024 * 1024))
UP=$((1024 * 1024))

scenario_setup() {
    env -u LD_PRELOAD "$PY" -c 'import twisted.web' 2>/dev/null ||
        echo "54-twisted: python3-twisted missing (make install-deps)" >&2
}

# tstart: the sealed Twisted server on PORT, capture running; files
# $TD/www/big.bin and $TD/up.bin marked with M.
tstart() {
    env -u LD_PRELOAD "$PY" -c 'import twisted.web' 2>/dev/null ||
        { fail "python3-twisted missing"; return 1; }
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    M=$(newmarker)
    mkdir -p "$TD/www"
    mkmarked "$TD/www/big.bin" "$BIG" "$M"
    mkmarked "$TD/up.bin" "$UP" "$M"
    cap_start "$PORT" || return 1
    bg srv sealed "$PY" "$TW" server "$PORT" "$TD/www"
    wait_line "$TD/srv.out" "^server: listening" 20 || return 1
    wait_listen "$PORT" srv
}

# tstop CONNS BYTES: TERM to the server's pid (not to its timeout wrapper,
# which would deliver it twice, to the child and to the group, and a second
# TERM during the reactor's shutdown kills python): a clean shutdown, exit 0; the capture: at least CONNS connections,
# BYTES bytes, the preface on each, no plaintext.
tstop() {
    local rc=0
    assertTrue "twisted server still running" "running srv"
    kill -TERM "$(sed -n 's/^server: listening pid=\([0-9]*\)$/\1/p' "$TD/srv.out")"
    wait_bg srv || rc=$?
    assertEquals "server: exit status after TERM" 0 "$rc"
    assertFileContains "server: clean reactor shutdown" "$TD/srv.out" "^server: stopped"
    assertFileNotContains "server: no traceback" "$TD/srv.err" "Traceback|Unhandled"
    cap_stop
    # (half of BYTES: tcpdump may drop packets on a loaded machine)
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "big.bin" --min-conns "$1" --min-bytes $(($2 / 2))
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

# 4 blocking keep-alive connections at once, 3 rounds of GET 2 MiB (static
# producer) and POST 1 MiB (echoed) on each.
test_keepalive_static_and_echo() {
    tstart || { fail "twisted server did not start"; return 0; }
    ka "$PORT" --conns 4 --rounds 3 --get "/files/big.bin=$TD/www/big.bin" --post "/echo=$TD/up.bin"
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 4 6
    tstop 4 $((4 * 3 * (BIG + 2 * UP)))
}

# Both ends on a Twisted reactor: an Agent with a persistent pool of 4,
# 4 request chains of 3 rounds (GET 2 MiB, POST 1 MiB): 24 requests over
# exactly 4 TCP connections (the pool reuses them).
test_twisted_agent_persistent_pool() {
    local n
    tstart || { fail "twisted server did not start"; return 0; }
    sealed "$PY" "$TW" client "$PORT" 4 3 "/files/big.bin=$TD/www/big.bin" "/echo=$TD/up.bin" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "agent client exit status" 0 $?
    assertFileContains "agent client: 24 requests right" "$TD/cli.out" "^client: OK 24 requests\$"
    assertFileNotContains "agent client: no error" "$TD/cli.out" "ERROR"
    tstop 4 $((4 * 3 * (BIG + 2 * UP)))
    n=$(sed -n 's/^\([0-9][0-9]*\) connections,.*/\1/p' "$TD/capcheck.out")
    assertEquals "capture: 4 TCP connections for 24 requests" 4 "$n"
}

# 16 connections at once on the one reactor thread, each a 2 MiB GET: 16
# producers paused and resumed as the sealed transports fill and drain.
test_sixteen_concurrent_downloads() {
    tstart || { fail "twisted server did not start"; return 0; }
    ka "$PORT" --conns 16 --get "/files/big.bin=$TD/www/big.bin"
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 16 1
    tstop 16 $((16 * BIG))
}

. shunit2
