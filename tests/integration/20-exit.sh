#!/bin/bash
# Process exit with a sealed socket still open (tests/helpers/exit_noclose):
# returning from main, exit(0) or _exit(0) must send the end-of-stream mark
# (the shim's destructor, and its _exit hook: TCP sends its FIN on _exit
# too; dash and forked children exit that way), so the sealed server reads
# every byte and a clean EOF; SIGKILL runs nothing, so the server must see
# a truncation (ECONNRESET), never a clean EOF.  Checked against a sealed
# python server and against the independent peer.
. "$(dirname "$0")/lib.sh"

HELPER=$B/tests/exit_noclose

scenario_setup() {
    [ -x "$HELPER" ] || echo "20-exit: $HELPER missing (make helpers)" >&2
}

# A one-connection server: reads to EOF into OUT; prints "EOF <n>" and exits
# 0 on a clean end, prints "ERROR <ExceptionName> <errno> <n>" and exits 1
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
            b = c.recv(65536)
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

# setup_policy PORT: one key, a connect and an accept rule for PORT.
setup_policy() {
    loopback_policy "$1" || return 1
}

# run_case HOW SIZE: sealed server, sealed exit_noclose client ending by HOW.
# Sets SRV_RC and CLI_RC; data in $TD/in, received in $TD/got.
run_case() {
    local how=$1 size=$2 port
    [ -x "$HELPER" ] || { fail "$HELPER missing"; return 1; }
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 1; }
    write_server
    mkdata "$TD/in" "$size"
    bg srv sealed "$PY" "$TD/srv.py" "$port" "$TD/got"
    wait_listen "$port" srv || { fail "server did not listen"; return 1; }
    CLI_RC=0
    sealed "$HELPER" "$port" "$how" -f "$TD/in" >"$TD/cli.out" 2>"$TD/cli.err" || CLI_RC=$?
    SRV_RC=0
    wait_bg srv || SRV_RC=$?
}

assert_clean() {
    assertEquals "client exit status" 0 "$CLI_RC"
    assertEquals "server exit status (clean EOF)" 0 "$SRV_RC"
    assertFileContains "server saw a clean EOF" "$TD/srv.out" "^EOF $1\$"
    assertSameFile "received data" "$TD/in" "$TD/got"
    assertFileNotContains "no shim errors in the server" "$TD/srv.err" "truncated|failed"
}

assert_truncated() {
    # the handshake worked and every byte written arrived before the end
    assertFileContains "server got all data, then ECONNRESET" "$TD/srv.out" \
        "^ERROR ConnectionResetError 104 $1\$"
    assertNotEquals "server must not exit cleanly" 0 "$SRV_RC"
    assertFileContains "server read failed with ECONNRESET" "$TD/srv.out" \
        "^ERROR ConnectionResetError 104 "
    assertFileNotContains "server never saw a clean EOF" "$TD/srv.out" "^EOF"
    # what arrived before the end is a prefix of what was sent
    if [ -f "$TD/got" ]; then
        cmp -s "$TD/got" <(head -c "$(fsize "$TD/got")" "$TD/in") ||
            fail "received bytes are not a prefix of the sent data"
    fi
}

test_return_from_main_sends_eof() {
    run_case return 1000000 || return 0
    assert_clean 1000000
}

test_return_small() {
    run_case return 1 || return 0
    assert_clean 1
}

test_exit0_sends_eof() {
    run_case exit 3000000 || return 0
    assert_clean 3000000
}

test_underscore_exit_sends_eof() {
    run_case _exit 500000 || return 0
    assertEquals "client exit status" 0 "$CLI_RC"
    assert_clean 500000
}

test_sigkill_is_truncation() {
    run_case kill 500000 || return 0
    assertEquals "client killed by SIGKILL (timeout reports 128+9)" 137 "$CLI_RC"
    assert_truncated 500000
}

# Pattern mode (-n) against the independent peer: the peer is the judge of
# the end-of-stream mark (exit 0) versus a truncation (exit 6).
peer_case() {
    local how=$1 rc=0
    [ -x "$HELPER" ] || { fail "$HELPER missing"; return 1; }
    KEY=$(rawkey k)
    peer_listen srv --key "$KEY" --recv-out "$TD/got" --no-eos --timeout 20 ||
        { fail "peer did not listen"; return 1; }
    write_policy <<EOF
key k $KEY
connect 127.0.0.1:$PEER_PORT key=k
EOF
    sealed "$HELPER" "$PEER_PORT" "$how" -n 777777 >"$TD/cli.out" 2>"$TD/cli.err" || true
    wait_bg srv || rc=$?
    PEER_RC=$rc
}

test_peer_sees_eos_after_return() {
    peer_case return || return 0
    assertEquals "peer: clean end-of-stream" 0 "$PEER_RC"
    assertEquals "peer received every byte" 777777 "$(fsize "$TD/got")"
    "$PY" - "$TD/got" <<'PY' || fail "pattern mismatch"
import sys
d = open(sys.argv[1], "rb").read()
sys.exit(0 if all(b == (i * 7 + 3) & 0xff for i, b in enumerate(d)) else 1)
PY
}

test_peer_sees_truncation_after_kill() {
    peer_case kill || return 0
    assertEquals "peer: truncation" 6 "$PEER_RC"
    assertFileContains "peer error line" "$TD/srv.err" "ERROR TRUNCATED"
}

. shunit2
