#!/bin/bash
# fork() with a live sealed connection (DESIGN "Processes"; interception
# surface §4.1): the session is shared by parent and child, so writes from
# both arrive in order under one nonce sequence, a close() or exit in one
# process never ends the stream while another still holds it, and the last
# holder's close ends it cleanly.
#   tests/helpers/fork_alternate.c  one connection, two writing processes
#   socat TCP-LISTEN,fork SYSTEM:cat  fork per connection (sequential and
#                                     concurrent clients)
. "$(dirname "$0")/lib.sh"

HELPER=$B/tests/fork_alternate
ROUNDS=${FORK_ROUNDS:-300}

scenario_setup() {
    [ -x "$HELPER" ] || echo "42-fork: $HELPER missing (make helpers)" >&2
}

# setup_policy PORT: one key, a connect and an accept rule for PORT.
setup_policy() {
    loopback_policy "$1" || return 1
}

# A one-connection sink: reads to the end into OUT; prints "EOF <n>" and
# exits 0 on a clean end, "ERROR <ExceptionName> <errno> <n>" and exits 1
# on a read error.
write_server() {
    cat >"$TD/srv.py" <<'PY'
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(1)
c, _ = ls.accept()
n = 0
with open(out, "wb") as f:
    try:
        while True:
            b = c.recv(262144)
            if not b:
                break
            f.write(b)
            n += len(b)
    except OSError as e:
        f.flush()
        print("ERROR", type(e).__name__, e.errno, n, flush=True)
        sys.exit(1)
print("EOF", n, flush=True)
c.close()
PY
}

# run_mode MODE: sealed sink server, sealed fork_alternate client in MODE.
# Sets SRV_RC and CLI_RC; expected stream in $TD/expected, received $TD/got.
run_mode() {
    local port
    [ -x "$HELPER" ] || { fail "$HELPER missing"; return 1; }
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 1; }
    write_server
    bg srv sealed "$PY" "$TD/srv.py" "$port" "$TD/got"
    wait_listen "$port" srv || { fail "server did not listen"; return 1; }
    cap_start "$port" || { fail "no capture"; return 1; }
    CLI_RC=0
    sealed "$HELPER" "$port" "$1" "$ROUNDS" "$TD/expected" \
        >"$TD/cli.out" 2>"$TD/cli.err" || CLI_RC=$?
    SRV_RC=0
    wait_bg srv || SRV_RC=$?
    cap_stop
}

# assert_clean_stream: every byte in order, then a clean end-of-stream.
assert_clean_stream() {
    local n
    n=$(fsize "$TD/expected")
    assertEquals "client exit status (both processes wrote everything)" 0 "$CLI_RC"
    assertEquals "server exit status (clean EOF)" 0 "$SRV_RC"
    assertFileContains "server read every byte, then a clean EOF" "$TD/srv.out" "^EOF $n\$"
    assertSameFile "the stream as sent, in order" "$TD/expected" "$TD/got"
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat"
    assertFileNotContains "no shim failure in the client" "$TD/cli.err" "failed|truncat"
    cap_check --preface "$PREFACE_HEX" --min-bytes "$n"
    assertEquals "capture: sealed" 0 $?
}

# Parent and child alternate writes (several hundred each, 1 B..100 KB);
# the child closes and exits, the parent closes last.
test_alternate_writes() {
    run_mode alt || return 0
    assert_clean_stream
}

# (a) the child _exit()s without closing; the parent writes on and closes.
test_child_underscore_exit_parent_continues() {
    run_mode alt_exit || return 0
    assert_clean_stream
}

# (b) the parent closes its copy right after fork(); the child carries the
# whole stream and ends it (socat fork, postgres).
test_parent_closes_child_carries() {
    run_mode handoff || return 0
    assert_clean_stream
}

# (b') as (b), the child ends with exit(0) without closing: the shim's exit
# path sends the end-of-stream mark (the child is the last holder).
test_parent_closes_child_exits_without_close() {
    run_mode handoff_exit || return 0
    assert_clean_stream
}

# (c) a child that never touches the connection exit(0)s (destructors run)
# while the parent keeps writing: no premature end-of-stream mark.
test_bystander_child_exit() {
    run_mode bystander || return 0
    assert_clean_stream
}

# socat fork server: each connection is accepted, then served in a forked
# child; the parent closes its copy.
start_fork_server() {
    PORT=$(free_port)
    setup_policy "$PORT" || { fail "policy"; return 1; }
    bg srv sealed socat -t 30 "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" SYSTEM:cat
    wait_listen "$PORT" srv || { fail "server did not listen"; return 1; }
}

test_socat_fork_sequential_clients() {
    local i rc m
    start_fork_server || return 0
    cap_start "$PORT" || { fail "no capture"; return 0; }
    m=$(newmarker)
    for i in 1 2 3 4 5; do
        mkmarked "$TD/in$i" $((1024 * 1024)) "$m"
        rc=0
        sealed socat -t 30 "TCP:127.0.0.1:$PORT" STDIO <"$TD/in$i" >"$TD/out$i" 2>"$TD/cli$i.err" || rc=$?
        assertEquals "client $i exit status" 0 "$rc"
        assertSameFile "client $i: 1 MiB echoed by a forked child" "$TD/in$i" "$TD/out$i"
    done
    assertTrue "fork server still running" "running srv"
    stop_bg srv
    cap_stop
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-conns 5 --min-bytes $((10 * 1024 * 1024))
    assertEquals "capture: 5 sealed connections, no plaintext" 0 $?
}

test_socat_fork_concurrent_clients() {
    local i m
    start_fork_server || return 0
    cap_start "$PORT" || { fail "no capture"; return 0; }
    m=$(newmarker)
    for i in 1 2 3; do
        mkmarked "$TD/in$i" $((1024 * 1024)) "$m"
    done
    for i in 1 2 3; do
        bg "cli$i" sealed sh -c 'exec socat -t 30 "TCP:127.0.0.1:$1" STDIO <"$2" >"$3"' \
            sh "$PORT" "$TD/in$i" "$TD/echo$i"
    done
    for i in 1 2 3; do
        wait_bg "cli$i"
        assertEquals "client $i exit status" 0 $?
    done
    for i in 1 2 3; do
        assertSameFile "concurrent client $i: 1 MiB echoed" "$TD/in$i" "$TD/echo$i"
    done
    assertTrue "fork server still running" "running srv"
    stop_bg srv
    cap_stop
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-conns 3 --min-bytes $((6 * 1024 * 1024))
    assertEquals "capture: 3 sealed connections, no plaintext" 0 $?
}

. shunit2
