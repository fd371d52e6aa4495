#!/bin/bash
# Python asyncio (epoll selector, non-blocking sockets, write_eof half-close),
# both ends sealed: an echo server with 8 concurrent 2 MiB connections that
# write while they read, and a server-first variant (greeting before any
# read).  Every stream is checked end to end (sha256 per connection, on both
# sides), and the capture shows the preface on every connection and none of
# the plaintext.
. "$(dirname "$0")/lib.sh"

PROG=$PROGS/asyncio_echo.py
CONNS=8
SIZE=$((2 * 1024 * 1024))

policy_for() {   # policy_for PORT
    loopback_policy "$1" || return 1
}

# make_inputs MARKER: $TD/in.1..in.$CONNS, distinct random data with MARKER
make_inputs() {
    local k
    for ((k = 1; k <= CONNS; k++)); do
        mkmarked "$TD/in.$k" "$SIZE" "$1" || return 1
    done
}

# run_echo [GREETING_FILE]: sealed server and client on $PORT; output in
# $TD/srv.out, $TD/cli.out, echoes in $TD/out.K; sets CLI_RC and SRV_RC.
run_echo() {
    local sargs=() cargs=() k
    if [ -n "${1:-}" ]; then
        sargs=(--greeting "$1")
        cargs=(--greeting-bytes "$(fsize "$1")")
    fi
    for ((k = 1; k <= CONNS; k++)); do cargs+=(--send "$TD/in.$k"); done
    bg srv sealed "$PY" "$PROG" server 127.0.0.1 "$PORT" --count "$CONNS" "${sargs[@]}"
    wait_listen "$PORT" srv || return 1
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --out "$TD/out" "${cargs[@]}" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    CLI_RC=$?
    wait_bg srv
    SRV_RC=$?
    return 0
}

# assert_echoes: every connection echoed exactly, seen OK by both sides
assert_echoes() {
    local k want got
    assertEquals "client exit status" 0 "$CLI_RC"
    assertEquals "server exit status" 0 "$SRV_RC"
    for ((k = 1; k <= CONNS; k++)); do
        assertFileContains "conn $k: client sent all, then read a clean EOF" "$TD/cli.out" \
            "^conn $k: OK sent=$SIZE recv=$SIZE sha256=$(sha "$TD/in.$k")\$"
        assertSameFile "conn $k: echo" "$TD/in.$k" "$TD/out.$k"
    done
    # the server does not know which connection is which: compare the sets
    want=$(for ((k = 1; k <= CONNS; k++)); do sha "$TD/in.$k"; done | sort | tr '\n' ' ')
    got=$(sed -n "s/^conn [0-9]*: OK recv=$SIZE sha256=\([0-9a-f]*\) sent=$((SIZE + ${1:-0})) peer .*/\1/p" \
        "$TD/srv.out" | sort | tr '\n' ' ')
    assertEquals "server: every stream whole, echoed and ended cleanly" "$want" "$got"
    assertFileNotContains "server: no connection failed" "$TD/srv.out" "ERROR"
}

test_eight_concurrent_echo_connections_with_write_eof() {
    local m
    PORT=$(free_port)
    policy_for "$PORT" || { fail "no key"; return 0; }
    m=$(newmarker)
    make_inputs "$m" || { fail "no input data"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    run_echo || { fail "server did not listen"; return 0; }
    cap_stop
    assert_echoes
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-conns "$CONNS" \
        --min-bytes $((2 * CONNS * SIZE))
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

test_server_speaks_first_greeting_then_echo() {
    local m g k
    PORT=$(free_port)
    policy_for "$PORT" || { fail "no key"; return 0; }
    m=$(newmarker)
    g=$(newmarker)
    make_inputs "$m" || { fail "no input data"; return 0; }
    mkmarked "$TD/greeting" 300000 "$g"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    run_echo "$TD/greeting" || { fail "server did not listen"; return 0; }
    cap_stop
    for ((k = 1; k <= CONNS; k++)); do
        assertSameFile "conn $k: greeting read before the client sent anything" \
            "$TD/greeting" "$TD/out.greeting.$k"
    done
    assert_echoes "$(fsize "$TD/greeting")"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --marker "$g" --min-conns "$CONNS" \
        --min-bytes $((2 * CONNS * SIZE))
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

. shunit2
