#!/bin/bash
# exec() with a live sealed connection (DESIGN "Processes"; interception
# surface §4.2; docs/handoff.md): a connection accepted before exec and not
# yet used keeps working in the new image (socat EXEC:…,nofork; inetd style
# dup2 onto 0/1); a connection that carried sealed bytes before exec goes
# on in the new image with the same session (its state travels with the
# socket), under strict and permissive rules; an exec'd child that only
# inherits the fd and never touches it changes nothing.
. "$(dirname "$0")/lib.sh"

SRV=$PROGS/exec_server.py
CLI=$PROGS/exec_client.py

# setup_policy PORT [ACCEPT-OPTIONS]: one key, a connect and an accept rule
# for PORT.
setup_policy() {
    loopback_policy "$1" "${2:-}" || return 1
}

# (a) socat accepts and execs cat in its own process (nofork): cat has the
# connection on stdin/stdout, untouched before exec.
test_socat_exec_nofork_echo() {
    local port m rc=0
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" $((1024 * 1024)) "$m"
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat,nofork
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    sealed socat -t 30 "TCP:127.0.0.1:$port" STDIO <"$TD/in" >"$TD/out" 2>"$TD/cli.err" || rc=$?
    assertEquals "client socat exit status" 0 "$rc"
    rc=0
    wait_bg srv || rc=$?
    assertEquals "server (socat, then cat) exit status" 0 "$rc"
    cap_stop
    assertSameFile "1 MiB echoed by the exec'd cat" "$TD/in" "$TD/out"
    assertFileNotContains "no shim failure in the client" "$TD/cli.err" "failed|truncat"
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes $((2 * 1024 * 1024))
    assertEquals "capture: sealed, no plaintext" 0 $?
}

# (b) inetd style: python accepts, dup2s the connection onto 0 and 1, execs
# /bin/sh -c 'tr a-z A-Z'.
test_inetd_dup2_exec_tr() {
    local port rc=0
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    "$PY" - "$TD/in" <<'PY'
import os, sys
lines = []
for i in range(20000):
    lines.append(("line %d of the sockseal exec test: abcdefghijklmnopqrstuvwxyz %s\n"
                  % (i, os.urandom(8).hex())))
open(sys.argv[1], "w").write("".join(lines))
PY
    tr a-z A-Z <"$TD/in" >"$TD/expected"
    bg srv sealed "$PY" "$SRV" "$port" inetd /bin/sh -c 'tr a-z A-Z'
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    sealed "$PY" "$CLI" "$port" "$TD/in" "$TD/out" >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    assertEquals "client exit status" 0 "$rc"
    rc=0
    wait_bg srv || rc=$?
    assertEquals "server (python, then sh/tr) exit status" 0 "$rc"
    cap_stop
    assertFileContains "client: clean end of stream" "$TD/cli.out" "^recv EOF $(fsize "$TD/expected")\$"
    assertSameFile "transformed echo" "$TD/expected" "$TD/out"
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat"
    cap_check --preface "$PREFACE_HEX" --marker "SOCKSEAL EXEC TEST" --min-bytes "$(fsize "$TD/in")"
    assertEquals "capture: sealed, no plaintext (either case)" 0 $?
    cap_check --marker "sockseal exec test" >/dev/null
    assertEquals "capture: the client's lines are not in clear" 0 $?
}

# (c) the connection carried sealed bytes (HELLO/READY) before exec: the
# session's state travels into the new image (issue 14), which goes on with
# the same keys and counters, no new handshake.  The client sees the exec'd
# program's line, then its echo, then a clean end of stream; no plaintext
# on the wire.
exec_after_io_continues() {   # [ACCEPT-OPTIONS]
    local port m rc=0
    port=$(free_port)
    setup_policy "$port" "${1:-}" || { fail "policy"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" 200000 "CLIENT-$m"
    bg srv sealed "$PY" "$SRV" "$port" after-io /bin/sh -c 'printf "%s\n" "$0"; exec cat' "$m"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    sealed "$PY" "$CLI" "$port" "$TD/in" "$TD/out" --hello >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    wait_bg srv
    cap_stop
    assertFileContains "the sealed HELLO/READY exchange worked before exec" "$TD/cli.out" "^hello reply b'READY'\$"
    assertEquals "client ends cleanly" 0 "$rc"
    { printf '%s\n' "$m"; cat "$TD/in"; } >"$TD/expected"
    assertFileContains "client saw a clean end of stream" "$TD/cli.out" "^recv EOF $(fsize "$TD/expected")\$"
    assertSameFile "the exec'd program's line, then the echo" "$TD/expected" "$TD/out"
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat|cannot"
    assertFileNotContains "no second handshake" "$TD/srv.err" "handshake (done|complete).*handshake (done|complete)"
    cap_check --preface "$PREFACE_HEX" --marker "$m"
    assertEquals "capture: no plaintext marker on the wire" 0 $?
}

test_exec_after_sealed_io_continues() { exec_after_io_continues; }

# (c') the same under a permissive accept rule: the exec'd image must not
# take the sealed client for a plaintext one (issue 13: no downgrade).
test_exec_after_sealed_io_permissive_continues() {
    exec_after_io_continues mode=permissive
}

# (c'') a plaintext client of a permissive rule stays plaintext across the
# server's exec: the exec'd program's output reaches it.
test_exec_after_plain_io_permissive_stays_plain() {
    local port m rc=0
    port=$(free_port)
    setup_policy "$port" mode=permissive || { fail "policy"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" 20000 "CLIENT-$m"
    bg srv sealed "$PY" "$SRV" "$port" after-io /bin/sh -c 'printf "%s\n" "$0"; exec cat' "$m"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    plain "$PY" "$CLI" "$port" "$TD/in" "$TD/out" --hello >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    wait_bg srv
    assertFileContains "the plaintext HELLO/READY exchange worked" "$TD/cli.out" "^hello reply b'READY'\$"
    assertTrue "the exec'd program's output reached the plaintext client" "grep -q '$m' '$TD/out'"
}

# (d) an exec'd child that inherits the connection but never touches it,
# and exits, while the server keeps using the connection.
test_exec_child_bystander() {
    local port m rc=0
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" $((1024 * 1024)) "$m"
    bg srv sealed "$PY" "$SRV" "$port" bystander
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    sealed "$PY" "$CLI" "$port" "$TD/in" "$TD/out" --hello >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    assertEquals "client exit status" 0 "$rc"
    rc=0
    wait_bg srv || rc=$?
    assertEquals "server exit status" 0 "$rc"
    cap_stop
    assertFileContains "the child ran" "$TD/srv.out" "^child exited 0\$"
    assertFileContains "server echoed to a clean end" "$TD/srv.out" "^echo OK $(fsize "$TD/in")\$"
    assertFileContains "client: clean end of stream" "$TD/cli.out" "^recv EOF $(fsize "$TD/in")\$"
    assertSameFile "1 MiB echoed after the exec'd child exited" "$TD/in" "$TD/out"
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes $((2 * 1024 * 1024))
    assertEquals "capture: sealed, no plaintext" 0 $?
}

# (e) a connected socket made before exec, by a program without the shim, on
# a high fd: the new image finds it at start and seals it (connect rule, the
# peer's address).  The shim finds inherited fds with poll() when the soft
# RLIMIT_NOFILE is small and by reading /proc/self/fd when it is large; both
# ways are run.  Regression: the poll() way replaced the /proc read at start
# (a hundred microseconds per exec on a virtual machine).
adopt_at_start() {
    local limit=$1 fd=$2 port m rc=0
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" $((256 * 1024)) "$m"
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" PIPE
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    # connect without the shim, move the socket to FD, exec the sealed
    # reader/writer (ulimit applies to both images)
    (
        ulimit -n "$limit" || exit 99
        # SAN_ENV reaches the exec'd image through this one's environment
        plain env "${SAN_ENV[@]}" "$PY" - "$port" "$fd" "$TD/in" "$TD/out" "$PRELOAD" "$POLICY" <<'PY'
import os, socket, sys
port, fd, src, dst, preload, policy = sys.argv[1:7]
s = socket.create_connection(("127.0.0.1", int(port)))
os.dup2(s.fileno(), int(fd))
s.close()
os.set_inheritable(int(fd), True)
child = r"""
import os, socket, sys
fd, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(fileno=fd)
s.sendall(open(src, "rb").read())
s.shutdown(socket.SHUT_WR)
with open(dst, "wb") as out:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out.write(b)
"""
env = dict(os.environ, LD_PRELOAD=preload, SOCKSEAL_POLICY=policy, SOCKSEAL_LOG="info")
os.execve(sys.executable, [sys.executable, "-c", child, fd, src, dst], env)
PY
    ) >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    if [ "$rc" = 99 ]; then
        cap_stop
        echo "    skipped: ulimit -n $limit not permitted here"
        return 0
    fi
    assertEquals "client exit status (ulimit -n $limit, fd $fd)" 0 "$rc"
    stop_bg srv
    cap_stop
    assertFileContains "the exec'd image adopted fd $fd" "$TD/cli.err" \
        "adopted inherited connection to 127\.0\.0\.1:$port on fd $fd "
    assertSameFile "256 KiB echoed through the adopted connection" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes $((512 * 1024))
    assertEquals "capture: sealed, no plaintext" 0 $?
}
test_adopt_at_start_poll() { adopt_at_start 1024 700; }
test_adopt_at_start_proc() { adopt_at_start 8192 5000; }

. shunit2
