#!/bin/bash
# Readiness matrix (tests/helpers/ready_matrix.c): an ordinary C program,
# sealed, against a raw-wire driver (tests/programs/ready_driver.py) that
# cuts records and holds handshake messages back on command.  Checks that
# epoll (LT, ET, ONESHOT, RDHUP), poll, select and FIONREAD report what the
# next call does: half records are not readable, leftover plaintext is,
# EPOLLOUT waits for the handshake, a bad message 2 is EPOLLERR +
# ECONNREFUSED, end-of-stream is EPOLLRDHUP + 0, a bare FIN is ECONNRESET,
# epoll data and registration lifetime (close, dup, number reuse) as on Linux.
. "$(dirname "$0")/lib.sh"

HELPER=$B/tests/ready_matrix
DRIVER=$PROGS/ready_driver.py
EXPECTED_CHECKS=119

scenario_setup() {
    [ -x "$HELPER" ] || echo "36-readiness: $HELPER missing (make helpers)" >&2
}

test_readiness_matrix() {
    [ -x "$HELPER" ] || { fail "$HELPER missing (make helpers)"; return 0; }
    local key lport dport cport rc=0 n
    key=$(rawkey k)
    lport=$(free_port)
    bg driver plain env -u LD_PRELOAD "$PY" "$DRIVER" --key "$key" \
        --port-file "$TD/driver.port" --timeout 20
    wait_file "$TD/driver.port" 10 || { fail "driver did not start"; return 0; }
    read -r dport cport <"$TD/driver.port"
    # the control port has no rule: it stays plain
    write_policy <<EOF2
key k $key
connect 127.0.0.1:$dport key=k
accept  127.0.0.1:$lport key=k
EOF2
    sealed "$HELPER" "$dport" "$cport" "$lport" >"$TD/matrix.out" 2>"$TD/matrix.err" || rc=$?
    wait_bg driver || true
    sed 's/^/    /' "$TD/matrix.out"
    assertEquals "ready_matrix exit status" 0 "$rc"
    assertFileNotContains "no failed checks" "$TD/matrix.out" "^not ok "
    assertFileContains "the program finished" "$TD/matrix.out" "^# checks: [0-9]+ failed: 0$"
    n=$(grep -cE '^(not )?ok [0-9]+ - ' "$TD/matrix.out")
    assertEquals "number of checks run" "$EXPECTED_CHECKS" "$n"
}

. shunit2
