#!/bin/bash
# The independent peer on its own (no shim): Noise vectors, PROTOCOL.md's
# worked example, peer<->peer transfers across the rekey boundary, the
# hostile modes are detected, and the capture checker is not vacuous.
. "$(dirname "$0")/lib.sh"

vectors_file() {
    local f
    for f in "$ROOT/../shared/vectors/noise-cacophony.json" \
             "$ROOT/tests/fixtures/noise-nnpsk0-vectors.json" \
             /work/shared/vectors/noise-cacophony.json; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

test_selftest_vectors() {
    local v
    v=$(vectors_file) || { fail "no Noise test vector file found"; return 0; }
    if [ "$v" = "$ROOT/tests/fixtures/noise-nnpsk0-vectors.json" ]; then
        # the fixtures hold NNpsk0 and IKpsk2 apart: one file of both
        "$PY" -c 'import json, sys
print(json.dumps({"vectors": [x for f in sys.argv[1:] for x in json.load(open(f))["vectors"]]}))' \
            "$v" "$ROOT/tests/fixtures/noise-ikpsk2-vectors.json" >"$TD/vectors.json"
        v=$TD/vectors.json
    fi
    "$PY" "$PEER" --selftest "$v" >"$TD/selftest.out" 2>&1
    assertEquals "peer self-test exit status" 0 $?
    assertFileContains "ChaChaPoly vector" "$TD/selftest.out" "ok Noise_NNpsk0_25519_ChaChaPoly_SHA256"
    assertFileContains "IKpsk2 ChaChaPoly vector (suite 3)" "$TD/selftest.out" \
        "ok Noise_IKpsk2_25519_ChaChaPoly_SHA256"
    assertFileContains "self-test verdict" "$TD/selftest.out" "^selftest: PASS"
}

test_protocol_md_worked_example() {
    # PROTOCOL.md's example, recomputed by the peer (test_protocol.c does
    # the same with the shim's code); a changed value must fail
    "$PY" "$PEER" --check-example "$ROOT/PROTOCOL.md" >"$TD/example.out" 2>&1
    assertEquals "example check exit status" 0 $?
    assertFileContains "example verdict" "$TD/example.out" "^example: PASS"
    sed 's/^\(s1\.message2  *\)7/\18/' "$ROOT/PROTOCOL.md" >"$TD/bad.md"
    "$PY" "$PEER" --check-example "$TD/bad.md" >"$TD/bad.out" 2>&1
    assertEquals "a changed value fails the check" 1 $?
    assertFileContains "names the value" "$TD/bad.out" "FAIL s1.message2"
    # and in the identities' block (section 15)
    sed 's/^\(s3\.message2  *\)7/\18/' "$ROOT/PROTOCOL.md" >"$TD/bad3.md"
    "$PY" "$PEER" --check-example "$TD/bad3.md" >"$TD/bad3.out" 2>&1
    assertEquals "a changed identity value fails the check" 1 $?
    assertFileContains "names it" "$TD/bad3.out" "FAIL s3.message2"
}

# peer_pair SUITE CHUNK BYTES: echo through two peers; checks sha and rekeys.
peer_pair() {
    local key
    key=$(rawkey k)
    mkdata "$TD/in" "$3"
    peer_listen srv --key "$key" --echo --suite "$1" --stats "$TD/srv.json" || { fail "peer did not listen"; return; }
    peer connect 127.0.0.1 "$PEER_PORT" --key "$key" --suite "$1" --send "$TD/in" \
        --chunk "$2" --recv-out "$TD/out" --stats "$TD/cli.json" 2>"$TD/cli.err"
    assertEquals "client peer exit status" 0 $?
    wait_bg srv
    assertEquals "listening peer exit status" 0 $?
    assertSameFile "echoed data" "$TD/in" "$TD/out"
}

test_peer_pair_chachapoly_rekey() {
    peer_pair 1 16 1200000     # 75000 records each way: crosses 65536
    assertFileContains "client rekeyed sending" "$TD/cli.json" '"send_rekeys": 1'
    assertFileContains "client rekeyed receiving" "$TD/cli.json" '"recv_rekeys": 1'
    assertFileContains "server rekeyed" "$TD/srv.json" '"send_rekeys": 1'
}

test_peer_pair_aesgcm() {
    "$PY" -c 'from cryptography.hazmat.primitives.ciphers.aead import AESGCM' 2>/dev/null ||
        { startSkipping; return 0; }
    peer_pair 2 65519 3000000
    assertFileContains "suite 2 used" "$TD/srv.json" '"suite": 2'
}

# hostile CLIENT_OPTS... : listening peer must detect it; prints its error line.
hostile_vs_peer() {
    local key
    key=$(rawkey k)
    mkdata "$TD/in" 100000
    peer_listen srv --key "$key" --recv-out "$TD/got" --timeout 10 || return 1
    peer connect 127.0.0.1 "$PEER_PORT" --key "$key" --send "$TD/in" --chunk 1000 \
        --timeout 10 "$@" >"$TD/cli.out" 2>"$TD/cli.err"
    wait_bg srv
    SRV_RC=$?
}

test_peer_detects_wrong_key() {
    hostile_vs_peer --wrong-key
    assertEquals "handshake auth failure exit code" 4 "$SRV_RC"
    assertFileContains "error line" "$TD/srv.err" "ERROR HANDSHAKE_AUTH"
}

test_peer_detects_flip_hs() {
    hostile_vs_peer --flip-hs
    assertEquals "handshake auth failure exit code" 4 "$SRV_RC"
}

test_peer_detects_bad_preface_and_suite() {
    hostile_vs_peer --bad-preface
    assertEquals "bad preface: protocol error" 7 "$SRV_RC"
    stop_all
    hostile_vs_peer --bad-suite
    assertEquals "bad suite: protocol error" 7 "$SRV_RC"
}

test_peer_detects_flip_replay_reorder() {
    local opt
    for opt in "--flip-record 3" "--replay-record 2" "--reorder"; do
        # shellcheck disable=SC2086
        hostile_vs_peer $opt
        assertEquals "$opt: transport auth failure exit code" 5 "$SRV_RC"
        assertFileContains "$opt: error line" "$TD/srv.err" "ERROR AUTH"
        stop_all
    done
}

test_peer_detects_truncation() {
    hostile_vs_peer --truncate
    assertEquals "truncation exit code" 6 "$SRV_RC"
    assertFileContains "error line" "$TD/srv.err" "ERROR TRUNCATED"
    assertEquals "data before the truncation was delivered" 100000 "$(fsize "$TD/got")"
}

test_capture_check_is_not_vacuous() {
    local key port m
    key=$(rawkey k)
    m=$(newmarker)
    mkmarked "$TD/in" 300000 "$m"
    # sealed by two peers: preface, no marker
    peer_listen srv --key "$key" --recv-out "$TD/got" || { fail "peer did not listen"; return; }
    cap_start "$PEER_PORT" || { fail "tcpdump did not start"; return; }
    peer connect 127.0.0.1 "$PEER_PORT" --key "$key" --send "$TD/in" 2>"$TD/cli.err"
    assertEquals "peer transfer" 0 $?
    wait_bg srv
    cap_stop
    assertSameFile "received" "$TD/in" "$TD/got"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes 300000
    assertEquals "sealed capture passes" 0 $?
    # negative control: the same bytes in plaintext
    port=$(free_port)
    bg srv2 plain socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TD/got2,creat,trunc"
    wait_listen "$port" srv2 || { fail "socat did not listen"; return; }
    cap_start "$port"
    plain socat -u "OPEN:$TD/in" "TCP:127.0.0.1:$port"
    wait_bg srv2
    cap_stop
    assertSameFile "plain copy" "$TD/in" "$TD/got2"
    cap_check --marker "$m" --expect-marker --min-bytes 300000
    assertEquals "marker is seen on an unsealed transfer" 0 $?
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes 300000
    assertNotEquals "unsealed capture fails the sealed check" 0 $?
}

. shunit2
