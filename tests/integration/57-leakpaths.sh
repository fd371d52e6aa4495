#!/bin/bash
# Paths that move bytes around a plain write() hook (issue 13 §2), each on a
# sealed connection to a sealed echo server: the echo must come back exact,
# and the capture must show the preface on every connection and no marker.
#   stdio after dup2 onto fd 1; fdopen() before connect(); dprintf;
#   pwritev2/preadv2 (offset -1; any other is ESPIPE); POSIX AIO (works or
#   fails with an error); MSG_FASTOPEN through sendmsg and sendmmsg; a
#   24-byte sockaddr_in6; MPTCP sockets in both roles.
. "$(dirname "$0")/lib.sh"

LEAK=$B/tests/leakpaths

setup_port() {
    PORT=$(free_port)
    mkkey k >/dev/null || return 1
    write_policy <<EOF2
key k $TD/k.key
connect 127.0.0.1:$PORT key=k
accept 127.0.0.1:$PORT key=k
connect [::1]:$PORT key=k
accept [::1]:$PORT key=k
EOF2
}

# echo_server [v6|mptcp]: a sealed echo server on $PORT.
echo_server() {
    case "${1:-v4}" in
        v4) bg srv sealed socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" EXEC:cat ;;
        v6) bg srv sealed socat "TCP6-LISTEN:$PORT,bind=[::1],ipv6only=1,reuseaddr,fork" EXEC:cat ;;
        mptcp) bg srv sealed "$PY" -c '
import socket, sys
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(4)
c, _ = l.accept()
print("accepted proto", c.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL), flush=True)
while True:
    b = c.recv(65536)
    if not b: break
    c.sendall(b)
' "$PORT" ;;
    esac
    wait_listen "$PORT" srv
}

# path MODE [SERVER] [HOST]: MODE's echo is exact and the wire is sealed.
path() {
    local mode=$1 kind=${2:-v4} host=${3:-127.0.0.1} rc
    setup_port || { fail "no key"; return 0; }
    M=$(newmarker)
    cap_start "$PORT" || { fail "no capture"; return 0; }
    echo_server "$kind" || { fail "echo server did not start"; return 0; }
    sealed "$LEAK" "$mode" "$host" "$PORT" "$M" >"$TD/cli.out" 2>"$TD/cli.err"
    rc=$?
    sed 's/^/    client: /' "$TD/cli.out" "$TD/cli.err"
    stop_bg srv
    cap_stop
    if [ "$rc" = 77 ]; then startSkipping; fi
    assertEquals "$mode: the echo came back exact" 0 "$rc"
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-conns 1
    assertEquals "$mode: preface, no marker on the wire" 0 $?
}

test_stdio_after_dup2_onto_stdout() { path stdio-dup2; }
test_fdopen_before_connect() { path fdopen-early; }
test_dprintf() { path dprintf; }
test_pwritev2_preadv2() { path pwritev2; }
test_aio_works_or_fails_with_an_error() { path aio; }
test_fastopen_sendmsg_with_destination() { path fastopen-sendmsg; }
test_fastopen_sendmmsg_with_destination() { path fastopen-sendmmsg; }
test_short_ipv6_sockaddr() { path v6short v6 ::1; }
test_mptcp_both_roles() {
    path mptcp mptcp
    assertTrue "the server's socket is MPTCP" "grep -q 'accepted proto 262' '$TD/srv.out'"
}

. shunit2
