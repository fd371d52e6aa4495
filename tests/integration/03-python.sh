#!/bin/bash
# Python blocking sockets, both ends sealed: sendall/recv loops, threads
# reading while another writes, shutdown(SHUT_WR), sendmsg/recvmsg/recv_into,
# peer addresses, IPv6.
. "$(dirname "$0")/lib.sh"

PROG=$PROGS/sockprog.py

policy_for() {   # policy_for ADDR PORT   (ADDR 127.0.0.1 or [::1])
    mkkey k >/dev/null || return 1
    write_policy <<EOF2
key k $TD/k.key
connect $1:$2 key=k
accept $1:$2 key=k
EOF2
}

# start_server ARGS...: sealed sockprog server on 127.0.0.1:$PORT
start_server() {
    bg srv sealed "$PY" "$PROG" server "${HOST:-127.0.0.1}" "$PORT" "$@"
    wait_listen "$PORT" srv
}

test_duplex_echo_threads() {
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    mkdata "$TD/in" $((4 * 1024 * 1024))
    start_server --mode echo || { fail "server did not listen"; return 0; }
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/in" --recv-out "$TD/out" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    assertFileContains "client saw a clean end" "$TD/cli.out" "^recv: OK recv=4194304 "
    assertFileContains "server saw the whole stream" "$TD/srv.out" "^conn 1: OK recv=4194304 sha256=$(sha "$TD/in") sent=4194304"
    assertSameFile "echo" "$TD/in" "$TD/out"
}

test_upload_then_download_sequential() {
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    mkdata "$TD/up" $((3 * 1024 * 1024 + 5))
    mkdata "$TD/down" $((2 * 1024 * 1024 + 77))
    start_server --mode sinksource --reply "$TD/down" --out "$TD/got" || { fail "server did not listen"; return 0; }
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --mode sequential --send "$TD/up" \
        --recv-out "$TD/down.got" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    assertSameFile "upload" "$TD/up" "$TD/got.1"
    assertSameFile "download after the client's SHUT_WR" "$TD/down" "$TD/down.got"
}

test_server_speaks_first() {
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    mkdata "$TD/down" 1000000
    mkdata "$TD/up" 500000
    start_server --mode source --reply "$TD/down" --out "$TD/got" || { fail "server did not listen"; return 0; }
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/up" --recv-out "$TD/down.got" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    assertSameFile "server-first data" "$TD/down" "$TD/down.got"
    assertSameFile "client data" "$TD/up" "$TD/got.1"
}

# The server reads 1 byte, then half-closes (its end-of-stream record reaches
# the client, which never reads); the client sends, then closes, while most of its data is
# still queued (the server reads only after that, through a 4 KiB buffer).
# On plain TCP every byte arrives: the closed socket's kernel keeps sending.
# The sealed pair must deliver the same, not turn close() into a reset.
half_close_first() {   # half_close_first sealed|plain
    mkdata "$TD/up" 200000
    : >"$TD/empty"
    rm -f "$TD/go-srv" "$TD/go-cli"
    bg srv "$1" "$PY" "$PROG" server 127.0.0.1 "$PORT" --mode source --reply "$TD/empty" \
        --rcvbuf 4096 --read-first --wait-file "$TD/go-srv" --out "$TD/got"
    wait_listen "$PORT" srv || return 1
    bg cli "$1" "$PY" "$PROG" client 127.0.0.1 "$PORT" --mode sendonly --send "$TD/up" \
        --no-shut-wr --sndbuf 1048576 --wait-file "$TD/go-cli"
    wait_line "$TD/srv.out" "^conn 1: half-closed" 10 || return 1
    wait_line "$TD/cli.out" "^send: OK sent=200000" 10 || return 1
    touch "$TD/go-cli"
    wait_bg cli
    assertEquals "$1: client exit status" 0 $?
    touch "$TD/go-srv"
    wait_bg srv
    assertFileContains "$1: server got everything, then a clean end" "$TD/srv.out" \
        "^conn 1: OK recv=200000 sha256=$(sha "$TD/up") "
    return 0
}

test_server_half_closes_first_client_closes_with_data_queued() {
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    half_close_first plain || { fail "plain run did not start"; return 0; }
    half_close_first sealed || { fail "sealed run did not start"; return 0; }
}

test_sendmsg_recvmsg_recv_into() {
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    mkdata "$TD/in" 2000000
    start_server --mode echo --count 2 || { fail "server did not listen"; return 0; }
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/in" --recv-out "$TD/out1" \
        --send-api sendmsg --recv-api recvmsg >"$TD/cli1.out" 2>"$TD/cli1.err"
    assertEquals "sendmsg/recvmsg client" 0 $?
    assertSameFile "sendmsg/recvmsg echo" "$TD/in" "$TD/out1"
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/in" --recv-out "$TD/out2" \
        --send-api send --recv-api recv_into >"$TD/cli2.out" 2>"$TD/cli2.err"
    assertEquals "send/recv_into client" 0 $?
    assertSameFile "send/recv_into echo" "$TD/in" "$TD/out2"
    wait_bg srv
}

test_addresses_are_the_real_ones() {
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    start_server --mode echo || { fail "server did not listen"; return 0; }
    echo hello >"$TD/in"
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/in" --recv-out "$TD/out" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    local cli_local
    cli_local=$(sed -n 's/^connected local \([^ ]*\) peer .*/\1/p' "$TD/cli.out")
    assertFileContains "client's peer is the server" "$TD/cli.out" "peer 127.0.0.1:$PORT\$"
    assertFileContains "server's peer is the client's local address" "$TD/srv.out" \
        "^conn 1: peer $cli_local local 127.0.0.1:$PORT\$"
}

# The socket's error queue (recvmsg MSG_ERRQUEUE: ICMP errors, timestamps)
# answers as on TCP, sealed or not: socat reads it after a failed connect.
# Both runs must print the same.
test_error_queue_as_on_tcp() {
    local how port2 p
    PORT=$(free_port)
    port2=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    start_server --mode echo || { fail "server did not listen"; return 0; }
    bg psrv plain socat "TCP-LISTEN:$port2,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port2" psrv || { fail "plain server did not listen"; return 0; }
    for how in sealed plain; do
        p=$PORT; [ "$how" = plain ] && p=$port2
        "$how" "$PY" - "$p" >"$TD/eq.$how" 2>&1 <<'PYEQ'
import errno, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"x"); s.recv(1)
f = socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT
for name, call in (("recvmsg", lambda: s.recvmsg(100, 100, f)),
                   ("recv", lambda: s.recv(100, f)),
                   ("recvfrom", lambda: s.recvfrom(100, f))):
    try:
        print(name, "got", call())
    except OSError as e:
        print(name, "error", errno.errorcode[e.errno])
PYEQ
    done
    assertEquals "sealed answers as plain TCP" "$(cat "$TD/eq.plain")" "$(cat "$TD/eq.sealed")"
    assertEquals "(EAGAIN: nothing queued, for each call)" 3 "$(grep -c ' error EAGAIN$' "$TD/eq.plain")"
    stop_bg psrv
}

test_ipv6_loopback() {
    if ! "$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
        startSkipping
        return 0
    fi
    PORT=$(free_port ::1)
    policy_for "[::1]" "$PORT" || { fail "no key"; return 0; }
    mkdata "$TD/in" 1500000
    HOST=::1 start_server --mode echo || { fail "server did not listen"; return 0; }
    cap_start "$PORT"
    sealed "$PY" "$PROG" client ::1 "$PORT" --send "$TD/in" --recv-out "$TD/out" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    cap_stop
    assertSameFile "IPv6 echo" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --min-bytes 3000000
    assertEquals "IPv6 capture sealed" 0 $?
}


test_asyncio_concurrent_echo() {
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    mkdata "$TD/in" 1048576
    bg srv sealed "$PY" "$PROGS/aecho.py" server 127.0.0.1 "$PORT" --count 8
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    sealed "$PY" "$PROGS/aecho.py" client 127.0.0.1 "$PORT" --send "$TD/in" --conns 8 \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "asyncio client: every echo matched" 0 $?
    assertEquals "8 clients OK" 8 "$(grep -c "^client [0-9]*: OK recv=1048576 sha256=$(sha "$TD/in")" "$TD/cli.out")"
    wait_bg srv
    assertEquals "asyncio server exit status" 0 $?
    assertEquals "8 server connections OK" 8 "$(grep -c "^conn [0-9]*: OK recv=1048576" "$TD/srv.out")"
}


test_ipv4_mapped_ipv6_matches_ipv4_rule() {
    # an AF_INET6 client connecting to ::ffff:127.0.0.1 must be sealed by
    # the IPv4 connect rule (never plaintext)
    if ! "$PY" -c 'import socket; socket.socket(socket.AF_INET6)' 2>/dev/null; then
        startSkipping
        return 0
    fi
    PORT=$(free_port)
    policy_for 127.0.0.1 "$PORT" || { fail "no key"; return 0; }
    local m
    m=$(newmarker)
    mkmarked "$TD/in" 300000 "$m"
    start_server --mode echo || { fail "server did not listen"; return 0; }
    cap_start "$PORT"
    sealed "$PY" "$PROG" client ::ffff:127.0.0.1 "$PORT" --send "$TD/in" --recv-out "$TD/out" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "mapped-address client exit status" 0 $?
    wait_bg srv
    cap_stop
    assertSameFile "echo over the mapped address" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes 600000
    assertEquals "sealed on the wire" 0 $?
}

. shunit2
