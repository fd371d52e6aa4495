#!/bin/bash
# Attacks by the independent peer (or a sealed client with the wrong key)
# against sealed python programs: what the program sees (errno names), that
# nothing forged or truncated is delivered as data, that a server keeps
# serving, and that the log names the peer and the policy FILE:LINE.
. "$(dirname "$0")/lib.sh"

. "$LIB_DIR/attack_lib.sh"

test_wrong_key_client_refused_server_continues() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    sealed_server 2 || { fail "server did not listen"; return 0; }
    # a sealed client whose policy names another key
    sed "s/^connect \(.*\) key=k/connect \1 key=other/" "$POLICY" >"$TD/wrong.policy"
    echo hello >"$TD/in"
    POLICY=$TD/wrong.policy sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/in" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "wrong-key client exit status (connect failed)" 3 $?
    assertFileContains "client's connect() failed with ECONNREFUSED" "$TD/cli.out" \
        "^connect: ERROR ConnectionRefusedError errno=ECONNREFUSED"
    assertFileContains "client log names its policy FILE:LINE" "$TD/cli.err" "wrong.policy:4"
    assertFileContains "client log names a wrong key as the likely cause" "$TD/cli.err" \
        "during the handshake: a wrong key"
    assertFileContains "client log names the server" "$TD/cli.err" "127\\.0\\.0\\.1.*\\b$PORT\\b"
    # the next client, sealed with the right key, is served
    mkdata "$TD/good2" 300000
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/good2" >"$TD/cli2.out" 2>"$TD/cli2.err"
    assertEquals "good sealed client after the attack: exit status" 0 $?
    assertFileContains "good client saw a clean end" "$TD/cli2.out" "^recv: OK recv=0 "
    finish_server 2
    assertFileContains "server's recv on the bad connection: ECONNRESET, no data" "$TD/srv.out" \
        "^conn 1: ERROR ConnectionResetError errno=ECONNRESET recv=0\$"
    assertFileContains "server log names the policy FILE:LINE" "$TD/srv.err" "$ACCEPT_LINE"
}

test_plaintext_client_against_strict_server() {
    local m
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" 100000 "$m"
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --plaintext --recv-out "$TD/hostile.got"
    good_client 2
    finish_server 2
    assert_conn_reset 1 0
    assertFileNotContains "the program never saw the plaintext" "$TD/got.1" "$m"
    assertEquals "nothing sent back in plaintext" 0 "$(fsize "$TD/hostile.got")"
    assert_server_log
}

test_permissive_server_takes_plaintext_and_sealed_clients() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    sed -i "s/^accept .*/& mode=permissive/" "$POLICY"
    mkdata "$TD/in" 100000
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --plaintext
    assertEquals "plaintext client ends cleanly" 0 "$HOSTILE_RC"
    good_client 2
    finish_server 2
    assertFileContains "permissive: the plaintext client's data arrives as is" "$TD/srv.out" \
        "^conn 1: OK recv=100000 sha256=$(sha "$TD/in") "
}

# A permissive server tells plaintext from sealed clients by "SKSL": a
# sealed client of another version or suite is refused, never handed to
# the program as plaintext.
test_permissive_server_refuses_other_versions_and_suites() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    sed -i "s/^accept .*/& mode=permissive/" "$POLICY"
    mkdata "$TD/in" 10000
    sealed_server 3 || { fail "server did not listen"; return 0; }
    hostile_client --bad-version
    assertNotEquals "bad version: the peer's handshake did not complete" 0 "$HOSTILE_RC"
    hostile_client --bad-suite
    assertNotEquals "bad suite: the peer's handshake did not complete" 0 "$HOSTILE_RC"
    good_client 3
    finish_server 3
    assert_conn_reset 1 0
    assert_conn_reset 2 0
}

test_bad_preface_bad_suite_bad_version() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 10000
    sealed_server 4 || { fail "server did not listen"; return 0; }
    hostile_client --bad-preface
    assertNotEquals "bad preface: the peer's handshake did not complete" 0 "$HOSTILE_RC"
    hostile_client --bad-suite
    assertNotEquals "bad suite: the peer's handshake did not complete" 0 "$HOSTILE_RC"
    hostile_client --bad-version
    assertNotEquals "bad version: the peer's handshake did not complete" 0 "$HOSTILE_RC"
    good_client 4
    finish_server 4
    assert_conn_reset 1 0
    assert_conn_reset 2 0
    assert_conn_reset 3 0
    assert_server_log
}

test_flipped_handshake_bit_from_initiator() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 10000
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --flip-hs
    assertEquals "peer: handshake refused (connection closed, exit 3)" 3 "$HOSTILE_RC"
    good_client 2
    finish_server 2
    assert_conn_reset 1 0
    assert_server_log
}

test_flipped_record_to_server() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 100000
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --flip-record 3
    good_client 2
    finish_server 2
    assert_conn_reset 1 2000
    assert_server_log
}

test_replayed_record_to_server() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 100000
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --replay-record 2
    good_client 2
    finish_server 2
    assert_conn_reset 1 2000
}

test_reordered_records_to_server() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 100000
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --reorder
    good_client 2
    finish_server 2
    assert_conn_reset 1 0
}

test_bad_record_length_to_server() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 100000
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --bad-length
    good_client 2
    finish_server 2
    assert_conn_reset 1 1000
}

test_truncation_to_server_is_not_eof() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 100000
    sealed_server 2 || { fail "server did not listen"; return 0; }
    hostile_client --truncate
    assertEquals "peer sent everything" 0 "$HOSTILE_RC"
    good_client 2
    finish_server 2
    assert_conn_reset 1 100000
    assert_server_log
}

test_stalled_initiator_times_out_server_continues() {
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    sed -i "s/^accept \(.*\) timeout=5000/accept \1 timeout=1000/" "$POLICY"
    sealed_server 2 || { fail "server did not listen"; return 0; }
    bg staller peer connect 127.0.0.1 "$PORT" --key "$TD/k.key" --stall 30
    wait_line "$TD/srv.out" "^conn 1: (OK|ERROR)" 15
    assertFileContains "the stalled handshake failed the program's recv with ECONNRESET" \
        "$TD/srv.out" "^conn 1: ERROR ConnectionResetError errno=ECONNRESET recv=0\$"
    wait_bg staller
    assertFileContains "the server ended the stalled connection (before the peer's 30 s)" \
        "$TD/staller.err" "stalled; other side: (EOF|ECONNRESET)"
    good_client 2
    finish_server 2
}

test_stalled_responder_connect_fails() {
    mkkey k >/dev/null || { fail "no key"; return 0; }
    peer_listen p --key "$TD/k.key" --stall 30 || { fail "peer did not listen"; return 0; }
    write_policy <<EOF
key k $TD/k.key
connect 127.0.0.1:$PEER_PORT key=k timeout=1000
EOF
    echo hi >"$TD/up"
    sealed "$PY" "$PROG" client 127.0.0.1 "$PEER_PORT" --send "$TD/up" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client exit status (connect failed)" 3 $?
    assertFileContains "connect() failed with ECONNREFUSED (or ETIMEDOUT)" "$TD/cli.out" \
        "^connect: ERROR .*errno=(ECONNREFUSED|ETIMEDOUT)"
    wait_bg p
    assertFileContains "the client ended the stalled connection (before the peer's 30 s)" \
        "$TD/p.err" "stalled; other side: (EOF|ECONNRESET)"
}

test_client_wrong_key_responder_refused() {
    mkdata "$TD/in" 10000
    client_vs_hostile_peer --wrong-key || { fail "setup"; return 0; }
    assertEquals "client exit status (connect failed)" 3 "$CLI_RC"
    assertFileContains "connect() failed with ECONNREFUSED" "$TD/cli.out" \
        "^connect: ERROR ConnectionRefusedError errno=ECONNREFUSED"
    assertFileContains "client log names the policy FILE:LINE" "$TD/cli.err" "$(basename "$POLICY"):2"
    assertFileContains "client log names the peer" "$TD/cli.err" "127\\.0\\.0\\.1.*\\b$PEER_PORT\\b"
}

test_client_flipped_message2_refused() {
    mkdata "$TD/in" 10000
    client_vs_hostile_peer --flip-hs || { fail "setup"; return 0; }
    assertEquals "client exit status (connect failed)" 3 "$CLI_RC"
    assertFileContains "connect() failed with ECONNREFUSED" "$TD/cli.out" \
        "^connect: ERROR ConnectionRefusedError errno=ECONNREFUSED"
    assertFileContains "client log names the policy FILE:LINE" "$TD/cli.err" "$(basename "$POLICY"):2"
}

test_client_flipped_record_reset() {
    mkdata "$TD/in" 100000
    client_vs_hostile_peer --flip-record 5 || { fail "setup"; return 0; }
    assert_client_reset 4000 "after 4 good records, nothing forged"
}

test_client_truncation_reset_not_eof() {
    mkdata "$TD/in" 100000
    client_vs_hostile_peer --truncate || { fail "setup"; return 0; }
    assert_client_reset 100000 "ECONNRESET, not EOF, after all the data"
}

test_client_replayed_record_reset() {
    mkdata "$TD/in" 100000
    client_vs_hostile_peer --replay-record 1 || { fail "setup"; return 0; }
    assert_client_reset 1000 "after 1 record"
}


test_stalled_handshake_does_not_stall_other_connections() {
    # a non-blocking (asyncio) sealed server: a client that never finishes
    # its handshake must not hold up the others
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    sed -i "s/^accept \(.*\) timeout=5000/accept \1 timeout=30000/" "$POLICY"
    mkdata "$TD/in" 500000
    bg srv sealed "$PY" "$PROGS/aecho.py" server 127.0.0.1 "$PORT" --count 5
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    bg staller peer connect 127.0.0.1 "$PORT" --key "$TD/k.key" --stall 40
    wait_line "$TD/staller.err" "connected local" 10
    sealed "$PY" "$PROGS/aecho.py" client 127.0.0.1 "$PORT" --send "$TD/in" --conns 4 \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "4 clients served while a handshake stalls" 0 $?
    assertTrue "the staller is still connected (its handshake never ended)" "running staller"
    stop_bg staller
    wait_bg srv
    assertEquals "4 good connections echoed" 4 "$(grep -c '^conn [0-9]*: OK recv=500000' "$TD/srv.out")"
}

. shunit2
