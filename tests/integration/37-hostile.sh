#!/bin/bash
# More hostile peers (tests/peer/sockseal_peer.py, no shim code), both ways:
# a hostile client against a sealed server, and a hostile server against a
# sealed client.  Dropped records, empty and maximum-length forged frames,
# handshake frames of the wrong length, bit flips all over both handshake
# messages, a handshake message sent twice, a recorded session replayed, a
# peer that stops in the middle of a record, a plaintext server; and the
# bound on handshakes in flight (SOCKSEAL_MAX_HANDSHAKES).  Each test checks
# what the program saw (an error, and only the genuine bytes before it) and
# that a server still serves a good client afterwards.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/attack_lib.sh"

# server_attack NBAD OPTS...: a sealed sink server for NBAD hostile
# connections (each with OPTS, sending $TD/in as 1000-byte records) and a
# good one; checks the good one was served.
server_attack() {
    local nbad=$1 i
    shift
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 1; }
    [ -f "$TD/in" ] || mkdata "$TD/in" 100000
    sealed_server $((nbad + 1)) || { fail "server did not listen"; return 1; }
    for ((i = 0; i < nbad; i++)); do hostile_client "$@"; done
    good_client $((nbad + 1))
    finish_server $((nbad + 1))
}

# ----------------------------------------------- hostile client, sealed server

test_dropped_record_to_server() {
    server_attack 1 --drop-record 3 || return 0
    assert_conn_reset 1 2000
    assert_server_log
    assertFileContains "log says why" "$TD/srv.err" "record failed authentication"
}

test_zero_length_frame_to_server() {
    server_attack 1 --bad-length 0 || return 0
    assert_conn_reset 1 1000
    assertFileContains "log says why" "$TD/srv.err" "bad record length"
}

test_max_length_forged_frame_to_server() {
    # 65535 is the largest length the 2-byte field can say: a frame that
    # long of noise must be refused, not delivered nor waited on
    server_attack 1 --bad-length 65535 || return 0
    assert_conn_reset 1 1000
    assertFileContains "log says why" "$TD/srv.err" "record failed authentication"
}

test_handshake_message1_wrong_lengths() {
    local len i
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 10000
    sealed_server 5 || { fail "server did not listen"; return 0; }
    for len in 0 47 49 65535; do
        hostile_client --hs-length "$len"
        assertNotEquals "message 1 framed as $len bytes: handshake refused" 0 "$HOSTILE_RC"
    done
    good_client 5
    finish_server 5
    for i in 1 2 3 4; do assert_conn_reset "$i" 0; done
    assertEquals "log: four bad message 1 lengths" 4 \
        "$(grep -c 'bad handshake message 1 length' "$TD/srv.err")"
}

test_message1_bit_flips_everywhere() {
    local off i
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 10000
    sealed_server 6 || { fail "server did not listen"; return 0; }
    # ephemeral key (first, middle, last byte), tag (first, last byte)
    for off in 0 16 31 32 47; do
        hostile_client --flip-hs "$off"
        assertEquals "byte $off of message 1 flipped: handshake refused (exit 3)" 3 "$HOSTILE_RC"
    done
    good_client 6
    finish_server 6
    for i in 1 2 3 4 5; do assert_conn_reset "$i" 0; done
    assertEquals "log: five authentication failures of message 1" 5 \
        "$(grep -c 'handshake message 1 failed authentication' "$TD/srv.err")"
}

test_message1_sent_twice_to_server() {
    server_attack 1 --hs-twice || return 0
    assert_conn_reset 1 0
    assertFileContains "log: the second message 1 is a forged record" "$TD/srv.err" \
        "record failed authentication"
}

test_replayed_session_to_server() {
    # a recorded good session (preface, message 1, records) replayed on a
    # new connection: message 1 is accepted (NNpsk0's message 1 is
    # replayable) but the replayer learns nothing and delivers nothing
    local m
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/reply" 20000 "$m"
    mkdata "$TD/in" 1000        # a short session: the replay fits in the socket buffers
    sealed_server 3 --mode source --reply "$TD/reply" || { fail "server did not listen"; return 0; }
    hostile_client --save-sent "$TD/capture" --recv-out "$TD/first.got"
    assertEquals "recorded session: the peer finished cleanly" 0 "$HOSTILE_RC"
    assertSameFile "recorded session: the server's reply arrived" "$TD/reply" "$TD/first.got"
    peer connect 127.0.0.1 "$PORT" --plaintext --send "$TD/capture" --recv-out "$TD/replay.got" \
        --timeout 10 >"$TD/replay.out" 2>"$TD/replay.err"
    good_client 3
    finish_server 3
    assertFileContains "first connection: OK" "$TD/srv.out" "^conn 1: OK recv=1000 "
    assertFileContains "replayed connection: the program's recv failed, nothing delivered" \
        "$TD/srv.out" "^conn 2: ERROR ConnectionResetError errno=ECONNRESET recv=0\$"
    assertEquals "replayed connection: no bytes delivered" 0 "$(fsize "$TD/got.2")"
    assertTrue "the replayer got something back (message 2 and sealed records)" \
        "[ $(fsize "$TD/replay.got") -ge 50 ]"
    assertFileLacksString "the replayer cannot read the server's reply" "$TD/replay.got" "$m"
}

test_stop_mid_record_to_event_driven_server() {
    # the peer sends 3 records and half of the 4th, then holds the
    # connection: the program sees exactly the 3 records (echoed back),
    # its other connections are served meanwhile, and the peer's close
    # is an error, not an end of stream
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    mkdata "$TD/in" 10000
    mkdata "$TD/many" 300000
    bg srv sealed "$PY" "$PROGS/aecho.py" server 127.0.0.1 "$PORT" --count 3
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    bg hostile peer connect 127.0.0.1 "$PORT" --key "$TD/k.key" --send "$TD/in" --chunk 1000 \
        --stop-mid-record 4 --hold 40 --go-file "$TD/go"
    wait_line "$TD/hostile.err" "holding mid-record 4 after 3000 bytes" 10 ||
        { fail "the peer did not get to the middle of record 4"; return 0; }
    sealed "$PY" "$PROGS/aecho.py" client 127.0.0.1 "$PORT" --send "$TD/many" --conns 2 \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "2 clients served while a record hangs half-sent" 0 $?
    assertTrue "the peer still holds its half record" "running hostile"
    touch "$TD/go"
    wait_bg hostile
    assertFileContains "the program echoed exactly the 3 whole records" "$TD/hostile.err" \
        "received 3000 bytes"
    wait_bg srv
    assertEquals "server exit status" 0 $?
    assertFileContains "the peer's close without the mark: ECONNRESET after 3000 bytes" \
        "$TD/srv.out" "^conn 1: ERROR ConnectionResetError errno=ECONNRESET recv=3000\$"
    assertEquals "2 good connections echoed" 2 \
        "$(grep -c '^conn [23]: OK recv=300000$' "$TD/srv.out")"
}

# ----------------------------------------------- hostile server, sealed client

test_client_plaintext_server_refused() {
    local m
    m=$(newmarker)
    mkmarked "$TD/in" 100000 "$m"
    client_vs_hostile_peer --plaintext || { fail "setup"; return 0; }
    assertEquals "client exit status (connect failed)" 3 "$CLI_RC"
    assertFileContains "connect() failed with ECONNREFUSED" "$TD/cli.out" \
        "^connect: ERROR ConnectionRefusedError errno=ECONNREFUSED"
    assertFileLacksString "the program never saw the plaintext" "$TD/cli.out" "$m"
    assertFalse "nothing received" "[ -s $TD/down ]"
    assertFileContains "log says why" "$TD/cli.err" "bad handshake message 2 length"
}

test_client_message2_wrong_lengths() {
    local len
    for len in 0 47 65535; do
        mkdata "$TD/in" 10000
        client_vs_hostile_peer --hs-length "$len" || { fail "setup"; return 0; }
        assertEquals "message 2 framed as $len bytes: connect failed" 3 "$CLI_RC"
        assertFileContains "connect() failed with ECONNREFUSED ($len)" "$TD/cli.out" \
            "^connect: ERROR ConnectionRefusedError errno=ECONNREFUSED"
        assertFileContains "log says why ($len)" "$TD/cli.err" "bad handshake message 2 length"
        rm -f "$TD"/*.key
    done
}

test_client_message2_bit_flips_everywhere() {
    local off
    for off in 0 31 32 47; do
        mkdata "$TD/in" 10000
        client_vs_hostile_peer --flip-hs "$off" || { fail "setup"; return 0; }
        assertEquals "byte $off of message 2 flipped: connect failed" 3 "$CLI_RC"
        assertFileContains "log ($off)" "$TD/cli.err" "handshake message 2 failed authentication"
        rm -f "$TD"/*.key
    done
}

test_client_message2_sent_twice() {
    mkdata "$TD/in" 10000
    client_vs_hostile_peer --hs-twice || { fail "setup"; return 0; }
    assert_client_reset 0 "the second message 2 is no record"
}

test_client_dropped_record() {
    mkdata "$TD/in" 100000
    client_vs_hostile_peer --drop-record 3 || { fail "setup"; return 0; }
    assert_client_reset 2000 "records 1 and 2, nothing after the gap"
}

test_client_reordered_records() {
    mkdata "$TD/in" 100000
    client_vs_hostile_peer --reorder || { fail "setup"; return 0; }
    assert_client_reset 0 "record 2 first"
}

test_client_zero_and_max_length_frames() {
    local len
    for len in 0 65535; do
        mkdata "$TD/in" 100000
        client_vs_hostile_peer --bad-length "$len" || { fail "setup"; return 0; }
        assert_client_reset 1000 "frame length $len after the first record"
        rm -f "$TD"/*.key
    done
}

test_client_server_stops_mid_record() {
    mkdata "$TD/in" 10000
    client_vs_hostile_peer --stop-mid-record 4 --hold 2 || { fail "setup"; return 0; }
    assert_client_reset 3000 "the 3 whole records, then ECONNRESET at the close"
    assertFileContains "the peer got the client's data and end mark meanwhile" "$TD/p.err" \
        "received 12 bytes"
}

# ------------------------------------------------------- handshakes in flight

test_handshake_limit_refuses_beyond_and_recovers() {
    local i
    PORT=$(free_port)
    attack_policy "$PORT" || { fail "no keys"; return 0; }
    sed -i "s/^accept \(.*\) timeout=5000/accept \1 timeout=30000/" "$POLICY"
    mkdata "$TD/in" 100000
    SOCKSEAL_MAX_HANDSHAKES=4 bg srv sealed "$PY" "$PROGS/aecho.py" server 127.0.0.1 "$PORT" --count 7
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    # five silent connections: four handshakes fill the bound, the fifth is refused
    bg flood plain "$PY" "$PROGS/flood_stall.py" 127.0.0.1 "$PORT" --silent 5 --partial 0 \
        --garbage 0 --wait 40
    wait_line "$TD/flood.out" "^opened 5\$" 10 || { fail "flood: not opened"; return 0; }
    wait_line "$TD/flood.out" "^closed silent " 10
    assertEquals "one stalled connection refused by the server" 1 \
        "$(grep -c '^closed silent ' "$TD/flood.out")"
    # while the bound is full, a sealed client is refused too
    sealed "$PY" "$PROGS/aecho.py" client 127.0.0.1 "$PORT" --send "$TD/in" --conns 1 \
        >"$TD/cli1.out" 2>"$TD/cli1.err"
    assertEquals "client while full: failed" 1 $?
    assertFileContains "client while full: connect refused" "$TD/cli1.out" \
        "^client 1: ERROR connect ConnectionRefusedError errno=ECONNREFUSED"
    assertEquals "server log: two refusals, naming the bound" 2 \
        "$(grep -c 'refused: 4 handshakes in flight (SOCKSEAL_MAX_HANDSHAKES)' "$TD/srv.err")"
    assertEquals "the other four are still held" 1 "$(grep -c '^closed silent ' "$TD/flood.out")"
    # the stalled ones go away: the server notices, and serves again
    stop_bg flood
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c 'peer closed the connection during the handshake' "$TD/srv.err")" -ge 4 ] && break
        sleep 0.1
    done
    assertEquals "server log: the four held handshakes ended" 4 \
        "$(grep -c 'peer closed the connection during the handshake' "$TD/srv.err")"
    sealed "$PY" "$PROGS/aecho.py" client 127.0.0.1 "$PORT" --send "$TD/in" --conns 1 \
        >"$TD/cli2.out" 2>"$TD/cli2.err"
    assertEquals "client after the stalls ended: served" 0 $?
    wait_bg srv
    assertEquals "server exit status" 0 $?
    assertEquals "server: six connections failed with ECONNRESET, none delivered data" 6 \
        "$(grep -c '^conn [0-9]*: ERROR ConnectionResetError errno=ECONNRESET recv=0$' "$TD/srv.out")"
    assertEquals "server: one good connection" 1 "$(grep -c '^conn 7: OK recv=100000$' "$TD/srv.out")"
}

test_handshake_limit_on_connect_is_enobufs() {
    PORT=$(free_port)
    mkkey k >/dev/null || { fail "no key"; return 0; }
    write_policy <<EOF
key k $TD/k.key
connect 127.0.0.1:$PORT key=k timeout=20000
EOF
    # the program listens itself (no accept rule: the listener is plain)
    # and never accepts, so its own sealed connects stay in their handshake
    SOCKSEAL_MAX_HANDSHAKES=1 sealed "$PY" - "$PORT" >"$TD/nb.out" 2>"$TD/nb.err" <<'PY'
import errno, socket, sys
port = int(sys.argv[1])
ls = socket.socket()
ls.bind(("127.0.0.1", port))
ls.listen(8)
def nb():
    s = socket.socket()
    s.setblocking(False)
    return s, errno.errorcode.get(s.connect_ex(("127.0.0.1", port)), "OK")
a, e1 = nb()
b, e2 = nb()
print("first", e1)
print("second", e2)
c = socket.socket()
try:
    c.connect(("127.0.0.1", port))
    print("blocking OK")
except OSError as e:
    print("blocking", errno.errorcode.get(e.errno))
a.close()
b.close()
d, e3 = nb()
print("after close", e3)
PY
    assertEquals "program exit status" 0 $?
    assertFileContains "first connect in progress" "$TD/nb.out" "^first EINPROGRESS$"
    assertFileContains "second connect: ENOBUFS" "$TD/nb.out" "^second ENOBUFS$"
    assertFileContains "blocking connect: ENOBUFS" "$TD/nb.out" "^blocking ENOBUFS$"
    assertFileContains "after the first closed: in progress again" "$TD/nb.out" "^after close EINPROGRESS$"
    assertFileContains "log names the destination, the rule and the bound" "$TD/nb.err" \
        "connect to 127\\.0\\.0\\.1:$PORT \\(rule [^)]*policy:2\\) refused: 1 handshakes in flight"
}

. shunit2
