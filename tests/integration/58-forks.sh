#!/bin/bash
# Copies of a process made around the fork() symbol (issue 13 §2): the fork
# bookkeeping lives in the fork handlers, so forkpty() (Python's pty.fork),
# clone() and syscall(SYS_clone) get it too, and a vfork() child leaves its
# parent's tables alone.  A child that still uses a connection keeps its
# state: the parent never ends the stream under it, nor recycles the
# state for a new connection.  Every exchange is checked, and the capture
# shows the preface on every connection and no marker.
. "$(dirname "$0")/lib.sh"

FORKS=$B/tests/forks

setup_port() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
}

echo_server() {
    bg srv sealed socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
    wait_listen "$PORT" srv
}

# helper MODE: the forks helper in MODE against a sealed echo server.
helper() {
    setup_port || { fail "no key"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    echo_server || { fail "echo server did not start"; return 0; }
    sealed "$FORKS" "$1" "$PORT" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "$1: every exchange exact" 0 $?
    sed 's/^/    /' "$TD/cli.out" "$TD/cli.err"
    stop_bg srv
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "child on A" --marker "parent on B" --min-conns 1
    assertEquals "$1: preface, no plaintext on the wire" 0 $?
}

test_vfork_child_close_leaves_parent_alone() { helper vfork; }
test_clone_child_keeps_its_connection() { helper clone; }
test_syscall_clone_child_keeps_its_connection() { helper sysclone; }

# A sealed server hands the connection to a pty.fork() child and closes its
# own copy at once; the child sends 1 MiB.  The stream must arrive whole,
# with a clean end (the parent must not end it under the child).
test_forkpty_child_carries_the_stream() {
    setup_port || { fail "no key"; return 0; }
    M=$(newmarker)
    mkmarked "$TD/data" $((1024 * 1024)) "$M"
    cat >"$TD/srv.py" <<'PY'
import os, pty, socket, sys, time
port, data = int(sys.argv[1]), open(sys.argv[2], "rb").read()
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(1)
c, _ = l.accept()
assert c.recv(3) == b"GO\n"
pid, _ = pty.fork()
if pid == 0:
    time.sleep(0.3)
    c.sendall(data)
    c.close()
    os._exit(0)
c.close()
_, st = os.waitpid(pid, 0)
print("child status", st, flush=True)
PY
    cat >"$TD/cli.py" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"GO\n")
got = bytearray()
while True:
    b = c.recv(65536)
    if not b: break
    got += b
open(sys.argv[2], "wb").write(got)
print("EOF", len(got), flush=True)
PY
    cap_start "$PORT" || { fail "no capture"; return 0; }
    bg srv sealed "$PY" "$TD/srv.py" "$PORT" "$TD/data"
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    sealed "$PY" "$TD/cli.py" "$PORT" "$TD/got" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client: clean end of stream" 0 $?
    wait_bg srv
    assertEquals "server exit status" 0 $?
    cap_stop
    assertFileContains "the pty child exited 0" "$TD/srv.out" "^child status 0\$"
    assertSameFile "1 MiB from the pty.fork() child" "$TD/data" "$TD/got"
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-conns 1 --min-bytes $((1024 * 1024))
    assertEquals "preface, no marker on the wire" 0 $?
}

. shunit2
